"""Building and checking an offline data pack from the registry (``python -m helpers pack``).

A pack is a folder laid out like ``$WORKBOOK_DATA`` (each registered file at its ``pack_path``,
a folder entry's files below it) with a ``MANIFEST.sha256`` of ``sha256sum`` lines, paths relative
to the folder. :func:`build_pack` downloads every registered file that has a known hash (from its
public URL, or ``$WORKBOOK_MIRROR``) and keeps the files already there that verify, so a re-run
resumes; :func:`verify_pack` checks a pack file by file.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from . import data
from .errors import WorkbookError

MANIFEST = "MANIFEST.sha256"


@dataclass(frozen=True)
class PackFile:
    """One file of a pack: its path in the pack, where it downloads from, the hashes it may have."""

    entry: str
    path: str
    url: str
    accepted: tuple[str, ...]
    size: int | None = None


def pack_files(only: list[str] | None = None) -> list[PackFile]:
    """The files a pack holds: every registered file with a download URL and a known hash, or the
    entries named in ``only`` (which may be online-only files without a hash)."""
    if only:
        unknown = [name for name in only if name not in data.REGISTRY]
        if unknown:
            close = sorted({m for name in unknown for m in difflib.get_close_matches(name, data.REGISTRY, 3, 0.5)})
            hint = f"did you mean {', '.join(close)}? " if close else ""
            raise WorkbookError(f"unknown data file(s) {unknown}; {hint}registered: {', '.join(sorted(data.REGISTRY))}")
    files = []
    for entry in data.REGISTRY.values():
        if only and entry.name not in only:
            continue
        if entry.is_folder:
            files += [
                PackFile(entry.name, f"{entry.pack_path}/{f.path}", f.url, (f.sha256,), f.size)
                for f in data.folder_files(entry.listing)
            ]
        elif entry.url and (entry.accepted or only):
            files.append(PackFile(entry.name, entry.pack_path, entry.url, entry.accepted))
    return files


def read_manifest(folder: Path) -> dict[str, str]:
    """``path -> sha256`` of ``folder/MANIFEST.sha256`` (empty when there is none)."""
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return {}
    lines = {}
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise WorkbookError(f"{manifest}, line {number}: not a 'sha256  path' line: {line[:80]!r}")
            lines[parts[1].strip().removeprefix("./")] = parts[0]
    return lines


def _write_manifest(folder: Path, hashes: dict[str, str]) -> Path:
    text = "".join(f"{digest}  ./{path}\n" for path, digest in sorted(hashes.items()))
    return data.write_atomic(folder / MANIFEST, text)


def build_pack(folder: str | Path, only: list[str] | None = None, *, progress: bool = True) -> dict:
    """Download the registered files into ``folder`` and write its ``MANIFEST.sha256``.

    Files already in ``folder`` that verify are kept; missing or corrupt ones are fetched again
    (each download is atomic and hash-checked). Lines of an existing manifest for files not in
    this run are kept. Returns counts: ``{"kept", "downloaded", "files", "bytes_downloaded"}``.
    """
    folder = Path(folder).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = pack_files(only)
    hashes = read_manifest(folder)
    kept = downloaded = received = 0
    todo = []
    for item in wanted:
        target = folder / item.path
        actual = data.sha256_of(target) if target.is_file() else None
        if actual is not None and actual in (item.accepted or (hashes.get(item.path),)):
            hashes[item.path] = actual
            kept += 1
        else:
            todo.append(item)
    bar = data.progress_bar(len(todo), f"pack {folder}", unit="file") if progress and todo else None
    try:
        for item in todo:
            target = folder / item.path
            data.download(data.resolve_url(item.url), target, item.accepted, progress=False, name=item.path)
            hashes[item.path] = data.sha256_of(target)
            downloaded += 1
            received += target.stat().st_size
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        _write_manifest(folder, hashes)  # what verified so far: a re-run resumes from it
    return {"files": len(wanted), "kept": kept, "downloaded": downloaded, "bytes_downloaded": received}


def verify_pack(folder: str | Path) -> tuple[int, list[str], list[str]]:
    """Check every file of a pack: ``(files verified, one line per bad file, registered files absent)``.

    A file is bad when it is missing, differs from its manifest line, or (registered files) has a
    hash the registry does not accept. Registered files that the pack does not hold (a pack built
    with ``--only``) are not bad: the workbook downloads them when it needs them.
    """
    folder = Path(folder).expanduser()
    if not (folder / MANIFEST).is_file():
        raise WorkbookError(f"{folder} has no {MANIFEST}: not a data pack (build one: `python -m helpers pack DIR`)")
    hashes = read_manifest(folder)
    registered = {item.path: item for item in pack_files()}
    good, bad = 0, []
    for path, digest in sorted(hashes.items()):
        target = folder / path
        if not target.is_file():
            bad.append(f"{target}: missing (listed in {MANIFEST})")
            continue
        actual = data.sha256_of(target)
        if actual != digest:
            bad.append(f"{target}: sha256 {actual}, {MANIFEST} says {digest}")
        elif path in registered and actual not in registered[path].accepted:
            bad.append(f"{target}: sha256 {actual}, the registry expects {' or '.join(registered[path].accepted)}")
        else:
            good += 1
    absent = [path for path in registered if path not in hashes]
    return good, bad, absent


def unregistered(folder: str | Path) -> list[str]:
    """Paths of a pack's manifest that no registry entry names (the pack's own documents, extras)."""
    known = {item.path for item in pack_files()} | {e.pack_path for e in data.REGISTRY.values() if not e.is_folder}
    return sorted(path for path in read_manifest(Path(folder)) if path not in known)


def describe(result: dict, folder: Path) -> str:
    """One line about a :func:`build_pack` run."""
    return (
        f"{folder}: {result['files']} files ({result['kept']} already verified, {result['downloaded']} downloaded, "
        f"{result['bytes_downloaded'] / 1e6:.1f} MB); use it with {data.DATA_ENV}={os.path.abspath(folder)}"
    )
