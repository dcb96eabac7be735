"""The data module: pack lookup, cache, the real download path against a local server, tar safety."""

from __future__ import annotations

import hashlib
import http.server
import io
import socket
import tarfile
import threading
import time
from pathlib import Path

import pytest

from helpers import data
from helpers.errors import ChecksumError, DataUnavailableError, WorkbookError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, big enough for several progress-bar updates
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):  # noqa: N802 (http.server API)
        if self.path == "/file.bin":
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD)
        elif self.path == "/dropped.bin":
            # Announce the whole file, send a third of it, then cut the connection.
            self.send_response(200)
            self.send_header("Content-Length", str(len(PAYLOAD)))
            self.end_headers()
            self.wfile.write(PAYLOAD[: len(PAYLOAD) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        else:
            self.send_error(404)


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty cache, no pack, downloads allowed."""
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(data.DATA_ENV, "")  # set but empty: no pack, not even the one beside the repository
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    return tmp_path / "cache"


def _register(monkeypatch, name, url, sha256, pack_path=None):
    entry = data.Entry(name, pack_path or f"models/{name}", url, sha256, "test file")
    monkeypatch.setitem(data.REGISTRY, name, entry)
    return entry


def test_download_success_shows_progress_and_verifies(server, isolated, capsys):
    dest = data.download(f"{server}/file.bin", isolated / "file.bin", PAYLOAD_SHA)
    assert dest.read_bytes() == PAYLOAD
    assert "file.bin" in capsys.readouterr().err  # the progress bar names the file
    assert [p.name for p in isolated.iterdir()] == ["file.bin"]  # no temporary file left behind


def test_wrong_hash_deletes_the_file_and_says_so(server, isolated):
    with pytest.raises(ChecksumError, match="deleted"):
        data.download(f"{server}/file.bin", isolated / "file.bin", "0" * 64)
    assert list(isolated.iterdir()) == []


def test_connection_dropped_mid_file_leaves_nothing(server, isolated):
    with pytest.raises(DataUnavailableError):
        data.download(f"{server}/dropped.bin", isolated / "dropped.bin", PAYLOAD_SHA)
    assert list(isolated.iterdir()) == []


def test_fetch_downloads_into_cache_then_reuses_it(server, isolated, monkeypatch):
    _register(monkeypatch, "file.bin", f"{server}/file.bin", PAYLOAD_SHA)
    first = data.fetch("file.bin", progress=False)
    assert first == isolated / "file.bin" and first.read_bytes() == PAYLOAD
    _register(monkeypatch, "file.bin", f"{server}/gone.bin", PAYLOAD_SHA)  # a second download would 404
    assert data.fetch("file.bin", progress=False) == first


def test_corrupt_cached_file_is_deleted_and_downloaded_again(server, isolated, monkeypatch):
    _register(monkeypatch, "file.bin", f"{server}/file.bin", PAYLOAD_SHA)
    isolated.mkdir(parents=True)
    (isolated / "file.bin").write_bytes(b"truncated")
    assert data.fetch("file.bin", progress=False).read_bytes() == PAYLOAD


def test_unknown_hash_is_recorded_on_first_download(server, isolated, monkeypatch):
    _register(monkeypatch, "file.bin", f"{server}/file.bin", None)
    path = data.fetch("file.bin", progress=False)
    assert (isolated / "file.bin.sha256").read_text().split()[0] == PAYLOAD_SHA
    path.write_bytes(b"tampered")
    _register(monkeypatch, "file.bin", f"{server}/gone.bin", None)
    with pytest.raises(DataUnavailableError, match="expected " + PAYLOAD_SHA):
        data.fetch("file.bin", progress=False)


def test_nothing_available_gives_one_clear_message_fast(isolated, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _register(monkeypatch, "file.bin", f"http://127.0.0.1:{port}/file.bin", PAYLOAD_SHA)
    start = time.perf_counter()
    with pytest.raises(DataUnavailableError) as caught:
        data.fetch("file.bin", progress=False)
    assert time.perf_counter() - start < 5, "an unreachable host must fail fast, not retry"
    message = str(caught.value)
    assert "file.bin" in message and f"127.0.0.1:{port}/file.bin" in message and data.DATA_ENV in message


def test_offline_flag_skips_the_network(isolated, monkeypatch):
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    with pytest.raises(DataUnavailableError, match="mobilenet_v1_1.0_224_frozen.tgz.*download.tensorflow.org"):
        data.fetch("mobilenet_v1_1.0_224_frozen.tgz")


def test_pack_file_with_wrong_hash_is_left_alone_and_reported(tmp_path, isolated, monkeypatch):
    pack = tmp_path / "pack"
    (pack / "models").mkdir(parents=True)
    (pack / "models" / "file.bin").write_bytes(b"not the payload")
    (pack / "MANIFEST.sha256").write_text(f"{PAYLOAD_SHA}  ./models/file.bin\n")
    monkeypatch.setenv(data.DATA_ENV, str(pack))
    monkeypatch.setenv(data.OFFLINE_ENV, "1")
    _register(monkeypatch, "file.bin", "https://example.invalid/file.bin", PAYLOAD_SHA)
    with pytest.raises(DataUnavailableError, match="pack manifest says"):
        data.fetch("file.bin")
    assert (pack / "models" / "file.bin").exists()


def test_real_pack_files_verify(pack):
    path = data.fetch("imagenet_class_index.json")
    assert path == pack / "labels" / "imagenet_class_index.json"
    assert data.sha256_of(path) == data.REGISTRY["imagenet_class_index.json"].sha256
    flowers = data.fetch("flower_photos_subset")
    assert sum(1 for _ in flowers.glob("*/*/*.jpg")) == 1000


def test_pack_hashes_equal_registry_hashes_where_the_pack_is_byte_identical(pack):
    manifest = data.pack_manifest(pack)
    for entry in data.REGISTRY.values():
        if entry.sha256 and entry.pack_path in manifest and entry.name != "mnist.npz":  # mnist is REBUILT
            assert manifest[entry.pack_path] == entry.sha256, entry.name


def _tar(tmp_path: Path, members: list[tarfile.TarInfo]) -> Path:
    archive = tmp_path / "test.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        for info in members:
            payload = b"x" * info.size if info.isfile() else None
            tar.addfile(info, io.BytesIO(payload) if payload is not None else None)
    return archive


def _file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 3
    return info


def test_safe_extract_extracts_normal_members(tmp_path):
    archive = _tar(tmp_path, [_file("flowers/daisy/a.jpg"), _file("flowers/rose/b.jpg")])
    out = data.safe_extract(archive, tmp_path / "out")
    assert (out / "flowers" / "daisy" / "a.jpg").read_bytes() == b"xxx"


@pytest.mark.parametrize("name", ["../escape.txt", "/tmp/absolute.txt", "ok/../../escape.txt"])
def test_safe_extract_refuses_members_leaving_the_folder(tmp_path, name):
    archive = _tar(tmp_path, [_file("fine.txt"), _file(name)])
    with pytest.raises(WorkbookError, match="would leave"):
        data.safe_extract(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escape.txt").exists()


def test_safe_extract_refuses_links(tmp_path):
    link = tarfile.TarInfo("innocent")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    with pytest.raises(WorkbookError, match="link"):
        data.safe_extract(_tar(tmp_path, [link]), tmp_path / "out")


def test_pack_lookup_without_the_variable(monkeypatch, tmp_path):
    """Unset: the pack beside the repository (as the Makefile finds it); empty: no pack at all."""
    beside = data.REPO.parent / "shared" / "data"
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    assert data.pack_dir() == (beside if (beside / "MANIFEST.sha256").is_file() else None)
    monkeypatch.setenv(data.DATA_ENV, "")
    assert data.pack_dir() is None
    assert data.pack_status().startswith("no offline data pack") and "os.environ['WORKBOOK_DATA']" in data.pack_status()
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert "is not the data pack (no MANIFEST.sha256" in data.pack_status()


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "deep" / "model.tflite"
    data.write_atomic(target, b"first")
    data.write_atomic(target, "second, as text")
    assert target.read_bytes() == b"second, as text"
    assert sorted(p.name for p in target.parent.iterdir()) == ["model.tflite"]  # no .part left behind
