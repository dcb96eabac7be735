"""A loopback HTTP mirror of the registry's public URLs, serving the offline data pack's files.

``Mirror(pack)`` listens on 127.0.0.1 at a port the OS picks and answers ``GET /HOST/PATH`` for
every registered file with a URL (``https://HOST/PATH``) with the pack's copy, the way
``$WORKBOOK_MIRROR`` expects a mirror to be laid out. ``faults`` makes one path misbehave
(``"drop"``: the connection closes half-way; ``"wrong"``: other bytes of the same length;
``"404"``), ``extra`` serves more files (bytes) at given paths, and ``bytes_sent`` counts what was
served. Nothing but 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import http.server
import socket
import threading
import urllib.parse
from pathlib import Path

from helpers import data, pack


def url_path(url: str) -> str:
    """``https://HOST/PATH`` -> ``/HOST/PATH`` (unquoted), where a mirror keeps that URL."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.unquote(f"/{parts.netloc}{parts.path}")


class Mirror:
    """The server; use as a context manager (``with Mirror(pack) as mirror: mirror.base``)."""

    def __init__(self, pack_folder: Path):
        self.files: dict[str, Path] = {}
        for item in pack.pack_files():
            self.files[url_path(item.url)] = pack_folder / item.path
        self.extra: dict[str, bytes] = {}
        self.faults: dict[str, str] = {}
        self.bytes_sent = 0
        self.requests: list[str] = []
        self._lock = threading.Lock()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server API)
                path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
                with mirror._lock:
                    mirror.requests.append(path)
                fault = mirror.faults.get(path)
                if path in mirror.extra:
                    body = mirror.extra[path]
                elif path in mirror.files and mirror.files[path].is_file():
                    body = mirror.files[path].read_bytes()
                else:
                    body = None
                if body is None or fault == "404":
                    self.send_error(404)
                    return
                if fault == "wrong":
                    body = bytes(b ^ 0xFF for b in body[:64]) + body[64:]
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if fault == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                self.wfile.write(body)
                with mirror._lock:
                    mirror.bytes_sent += len(body)

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> Mirror:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=10)

    def path_of(self, name: str) -> str:
        """The mirror path of registered single file ``name``."""
        return url_path(data.REGISTRY[name].url)


if __name__ == "__main__":  # python tests/loopback.py PACK: serve until SIGTERM/Ctrl-C (by-hand checks)
    import signal
    import sys

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with Mirror(Path(sys.argv[1])) as server:
        print(f"WORKBOOK_MIRROR={server.base}", flush=True)
        try:
            server._thread.join()
        except KeyboardInterrupt:
            pass
        finally:
            print(f"served {server.bytes_sent} bytes in {len(server.requests)} requests", flush=True)
