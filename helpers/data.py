"""Every file the workbook uses, and the one function that finds or downloads it.

Lookup order for :func:`fetch`:

1. the offline data pack named by ``$WORKBOOK_DATA`` (verified against its ``MANIFEST.sha256``
   and, where the registry knows it, the file's canonical sha256);
2. the per-user cache (``$WORKBOOK_CACHE``, else ``$XDG_CACHE_HOME/mobilenet-workbook``, else
   ``~/.cache/mobilenet-workbook``), verified against the registry hash;
3. a download from the canonical URL, or from ``$WORKBOOK_MIRROR`` (``https://HOST/PATH`` becomes
   ``$WORKBOOK_MIRROR/HOST/PATH``): progress bar, written to a temporary file in the cache,
   sha256 checked, then atomically renamed into place. No retries: an unreachable host fails
   within ``DOWNLOAD_TIMEOUT_S`` seconds with one :class:`DataUnavailableError`.

A folder entry (the ImageNet sample, the flower subset) has a committed listing
(``helpers/listings/<name>.tsv``: path, size, sha256 and URL of every file, no data) and is fetched
file by file, a few at a time, into ``<cache>/<name>.partial/``; the folder is renamed to
``<cache>/<name>`` only when every file verified, and a re-run keeps the verified files.

``WORKBOOK_OFFLINE=1`` skips step 3 entirely.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import shutil
import sys
import tarfile
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .errors import ChecksumError, DataUnavailableError, WorkbookError
from .paths import REPO

DATA_ENV = "WORKBOOK_DATA"
CACHE_ENV = "WORKBOOK_CACHE"
OFFLINE_ENV = "WORKBOOK_OFFLINE"
MIRROR_ENV = "WORKBOOK_MIRROR"
DOWNLOAD_TIMEOUT_S = 20.0
FOLDER_WORKERS = 4  # files of a folder entry downloaded at a time
LISTINGS = Path(__file__).resolve().parent / "listings"

_TF_MODELS = "https://download.tensorflow.org/models"
_CORAL = "https://raw.githubusercontent.com/google-coral/test_data/104342d2d3480b3e66203073dac24f4e2dbb4c41"


@dataclass(frozen=True)
class Entry:
    """One registered file or folder: where the pack keeps it, where it lives online, its sha256.

    ``sha256`` is the canonical file's hash. ``None`` means nobody could know it here (the
    online-only bigger MobileNets, ``flower_photos.tgz``): the first download records its hash in
    the cache next to the file ("trust on first use") and later uses are checked against that
    record. ``also_sha256``: other known-good copies (MNIST: the pack's faithful rebuild).
    ``listing``: a folder entry, whose files are listed in ``helpers/listings/<listing>``.
    """

    name: str
    pack_path: str
    url: str | None
    sha256: str | None
    description: str
    also_sha256: tuple[str, ...] = ()
    listing: str | None = None

    @property
    def accepted(self) -> tuple[str, ...]:
        """Every sha256 a good copy may have (empty: unknown, trust on first use)."""
        return ((self.sha256,) if self.sha256 else ()) + self.also_sha256

    @property
    def is_folder(self) -> bool:
        return self.listing is not None


@dataclass(frozen=True)
class FolderFile:
    """One file of a folder entry, from its committed listing."""

    path: str  # relative to the folder
    size: int
    sha256: str
    url: str


def _frozen(alpha: str, size: int, sha256: str | None) -> Entry:
    name = f"mobilenet_v1_{alpha}_{size}_frozen.tgz"
    where = "in the data pack" if sha256 else "online only; hash recorded on first download"
    return Entry(
        name,
        f"models/{name}",
        f"{_TF_MODELS}/{name}",
        sha256,
        f"TF-slim MobileNet V1 alpha {alpha}, {size}px, float frozen GraphDef ({where})",
    )


_PACK_FROZEN = {
    128: "30af63cf9039861bc03f86c7b8092fab754d51b27f042830c456ddbfa2b72fce",
    160: "2b2eb36110bc63f4cf749ef114063f45651be7e9d9eacb315eeedc023ab8a2f5",
    192: "a3872bf6231336e3e66778e95a2b6abf88d26cbaf3e772c6ea6ec2a422b95be6",
    224: "1cddeede49eb35af36061aaa66bf643b81f7ea89abc85f6ffef8f0bf00891756",
}

_ENTRIES: list[Entry] = [
    *(_frozen("0.25", size, sha) for size, sha in _PACK_FROZEN.items()),
    # Bigger float MobileNets: same URL pattern, not in the pack. Their sha256 is unknown here,
    # so the first download records it (see Entry).
    *(_frozen(alpha, size, None) for alpha in ("0.5", "0.75", "1.0") for size in (128, 160, 192, 224)),
    Entry(
        "mobilenet_2_5_224_tf_no_top.h5",
        "models/mobilenet_2_5_224_tf_no_top.h5",
        "https://storage.googleapis.com/tensorflow/keras-applications/mobilenet/mobilenet_2_5_224_tf_no_top.h5",
        "dbdb03ee2a22fd895301636cd328b234bb3a9952358f436d82f46b81e0d5b0bf",
        "keras.applications MobileNet alpha 0.25 ImageNet weights, no classifier",
    ),
    Entry(
        "mobilenet_v2_1.0_224_quant.tflite",
        "models/mobilenet_v2_1.0_224_quant.tflite",
        f"{_CORAL}/mobilenet_v2_1.0_224_quant.tflite",
        "7aad0c74c5e3c06e5eb3c827e13304fdd68a83da6087d92ee169c24ff9fd4776",
        "MobileNet V2 1.0/224, uint8 quantization-aware trained TFLite model (1001 classes)",
    ),
    Entry(
        "mobilenet_v1_0.25_128_quant.tflite",
        "models/mobilenet_v1_0.25_128_quant.tflite",
        f"{_CORAL}/mobilenet_v1_0.25_128_quant.tflite",
        "cb273c23ee76374b05b9583177e28aa19744858a7679c56a250e83d0333da785",
        "MobileNet V1 0.25/128 uint8 TFLite model (1001 classes)",
    ),
    Entry(
        "mobilenet_v1_0.5_160_quant.tflite",
        "models/mobilenet_v1_0.5_160_quant.tflite",
        f"{_CORAL}/mobilenet_v1_0.5_160_quant.tflite",
        "3cc6d2ca460abd2e0f699a6d0d2550c6b61c6e3b0e27a3616e384ea74cb86f43",
        "MobileNet V1 0.5/160 uint8 TFLite model (1001 classes)",
    ),
    Entry(
        "mobilenet_v1_0.75_192_quant.tflite",
        "models/mobilenet_v1_0.75_192_quant.tflite",
        f"{_CORAL}/mobilenet_v1_0.75_192_quant.tflite",
        "41daeb22fdcf947e0e5ec32373aa9df7c31f3ef45dbd0ef7b5940fbce3c20f6a",
        "MobileNet V1 0.75/192 uint8 TFLite model (1001 classes)",
    ),
    Entry(
        "imagenet_class_index.json",
        "labels/imagenet_class_index.json",
        "https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
        "a1e7a966a1f601d39e4b43e119b3e7dd4a2ad3ea08cf69847cbaf021013767bc",
        "Keras's 1000-class ImageNet index: WordNet id and name per class",
    ),
    Entry(
        "imagenet_labels_1001.txt",
        "labels/imagenet_labels_1001.txt",
        f"{_CORAL}/imagenet_labels.txt",
        "b8aaeb5630c62626a7d124a05c0e14230a7ffdd2136a31d0190a4fb71c1d82f1",
        "1001 ImageNet class names, line 0 = background (TF-slim order)",
    ),
    Entry(
        "mnist.npz",
        "datasets/mnist/mnist.npz",
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz",
        # Keras's own hash of its mnist.npz ...
        "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
        "MNIST in Keras layout (x_train, y_train, x_test, y_test)",
        # ... and the offline pack's faithful rebuild (same test split and labels byte for byte,
        # train pixels from a lossless PNG copy; see the pack's PROVENANCE.md): either verifies.
        also_sha256=("06af5dfe73b70e3bc1c36439982b18a8d76803db9b544f6fdf838a37fbb01b64",),
    ),
    Entry(
        "flower_photos.tgz",
        "datasets/flower_photos.tgz",
        "https://storage.googleapis.com/download.tensorflow.org/example_images/flower_photos.tgz",
        None,  # not in the pack; hash recorded on first download
        "TensorFlow's 3,670 flower photos in 5 class folders (online only)",
    ),
    Entry(
        "flower_photos_subset",
        "datasets/flower_photos_subset",
        None,  # a folder: every file's URL and sha256 are in its listing
        None,
        "1,000 flower photos, 160 train + 40 val per class, 224x224 "
        "(github.com/yhuag/Transfer-Learning-for-Flower-Classification-by-ResNet)",
        listing="flower_photos_subset.tsv",
    ),
    Entry(
        "imagenet_sample",
        "datasets/imagenet_sample",
        None,
        None,
        "500 labelled ImageNet photos, <wnid>_<name>.JPEG, one per even class index "
        "(github.com/EliSchwartz/imagenet-sample-images)",
        listing="imagenet_sample.tsv",
    ),
    Entry(
        "images/COPYRIGHT_google-coral_test_data.txt",
        "images/COPYRIGHT_google-coral_test_data.txt",
        f"{_CORAL}/COPYRIGHT",
        "ed11966e8384c477c89f13f1ef06f3d68a634efc6ea2f9b3f12f170ad7e62e87",
        "licenses and sources of the test photos (google-coral/test_data's COPYRIGHT file)",
    ),
    *(
        Entry(
            f"images/{photo}",
            f"images/{photo}",
            f"{_CORAL}/{photo}",
            sha,
            f"test photo {photo} (google-coral/test_data; see the pack's COPYRIGHT file)",
        )
        for photo, sha in {
            "parrot.jpg": "a8fba9e7e29439fa414c13129aad661f2289ff891231920a7c33641b076f1833",
            "cat.bmp": "34f235786382686111728287fd26d4c24dd8c25de8233469d6eeb301888ce0a9",
            "grace_hopper.bmp": "c43444bf3b1b1e3080551ca194bd231da4b67f20fc91454502915a6b806b614f",
            "bird.bmp": "3fd22d6ed352b8e721d9982e38ed655f8429e168bb53ad205c6f3cdfa848e994",
            "sunflower.bmp": "896b5e31cee42ebe32ee91251fc42041ca03c767fe02bd7ebc0e37d45f4a45b2",
            "owl.jpg": "ea9a0e3943bbd0acaeb472a6e66e777d13cf76646f9e42e84cafa931cc8a5bf7",
        }.items()
    ),
]

REGISTRY: dict[str, Entry] = {e.name: e for e in _ENTRIES}
PACK_PHOTOS = ("parrot.jpg", "cat.bmp", "grace_hopper.bmp", "bird.bmp", "sunflower.bmp", "owl.jpg")


def pack_dir() -> Path | None:
    """The offline data pack folder.

    ``$WORKBOOK_DATA`` when it is set (set but empty: no pack). Unset: the pack beside the
    repository (``../shared/data``), where the Makefile looks too, so a notebook finds it however
    Jupyter was started; ``None`` when there is none.
    """
    value = os.environ.get(DATA_ENV)
    if value is not None:
        return Path(value.strip()).expanduser() if value.strip() else None
    beside = REPO.parent / "shared" / "data"
    return beside if (beside / "MANIFEST.sha256").is_file() else None


def mirror_base() -> str | None:
    """``$WORKBOOK_MIRROR`` without a trailing slash, or ``None`` when it is unset or empty."""
    value = os.environ.get(MIRROR_ENV, "").strip().rstrip("/")
    return value or None


def resolve_url(url: str) -> str:
    """The URL to download ``url`` from: itself, or ``$WORKBOOK_MIRROR/HOST/PATH`` for ``https://HOST/PATH``."""
    base = mirror_base()
    if base is None:
        return url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise WorkbookError(f"{url} is not an https://HOST/PATH URL, so {MIRROR_ENV} cannot rewrite it")
    return f"{base}/{parts.netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def pack_status() -> str:
    """One line for a notebook's Setup cell: where this notebook's data comes from (the pack, the
    cache, a mirror or the public URLs), or how to fix a missing or wrong pack."""
    pack = pack_dir()
    fix = f"in a notebook, run `import os; os.environ['{DATA_ENV}'] = '/path/to/data'` and re-run this cell"
    if pack is not None and not (pack / "MANIFEST.sha256").is_file():
        return f"{DATA_ENV}={pack} is not the data pack (no MANIFEST.sha256 there); {fix}"
    if os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        online = f"{OFFLINE_ENV} is set, so nothing is downloaded"
    elif mirror_base():
        online = f"files not there are downloaded from the mirror {mirror_base()} (sha256-checked)"
    else:
        online = "files not there are downloaded from their public URLs (sha256-checked)"
    if pack is not None:
        return f"data pack: {pack}; then the cache {cache_dir()}; {online}"
    return f"no offline data pack: data from the cache {cache_dir()}; {online}; offline, {fix}"


def cache_dir() -> Path:
    """The per-user download cache (created on demand)."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mobilenet-workbook"


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@lru_cache(maxsize=4)
def _manifest(manifest_path: Path, mtime: float) -> dict[str, str]:
    hashes = {}
    for line in manifest_path.read_text().splitlines():
        if line.strip():
            digest, rel = line.split(maxsplit=1)
            hashes[rel.strip().removeprefix("./")] = digest
    return hashes


def pack_manifest(pack: Path) -> dict[str, str]:
    """``relative path -> sha256`` from the pack's ``MANIFEST.sha256``."""
    manifest = pack / "MANIFEST.sha256"
    if not manifest.is_file():
        raise WorkbookError(
            f"{DATA_ENV}={pack} has no MANIFEST.sha256: point {DATA_ENV} at the data pack folder "
            "(the one holding README.md, MANIFEST.sha256, models/, labels/ ...)."
        )
    return _manifest(manifest, manifest.stat().st_mtime)


_verified: dict[tuple[str, int, float], str] = {}


def _hash_cached(path: Path) -> str:
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime)
    if key not in _verified:
        _verified[key] = sha256_of(path)
    return _verified[key]


def _verify_pack_file(pack: Path, rel: str, accepted: tuple[str, ...] = ()) -> str | None:
    """Return a problem description, or None when ``pack/rel`` matches the manifest (and, when
    ``accepted`` is given, has one of those hashes: a manifest edited to fit a changed file fails)."""
    expected = pack_manifest(pack).get(rel)
    if expected is None:
        return f"{pack / rel} is not listed in {pack / 'MANIFEST.sha256'}"
    actual = _hash_cached(pack / rel)
    if actual != expected:
        return f"{pack / rel} has sha256 {actual}, the pack manifest says {expected}"
    if accepted and actual not in accepted:
        return f"{pack / rel} has sha256 {actual}, the registry expects {' or '.join(accepted)}"
    return None


@lru_cache(maxsize=8)
def folder_files(listing: str) -> tuple[FolderFile, ...]:
    """The files of a folder entry, read from ``helpers/listings/<listing>`` (``#`` lines are comments)."""
    rows = [line for line in (LISTINGS / listing).read_text(encoding="utf-8").splitlines() if not line.startswith("#")]
    header, body = rows[0].split("\t"), rows[1:]
    if header != ["path", "size", "sha256", "url"]:
        raise WorkbookError(f"{LISTINGS / listing}: expected the columns path, size, sha256, url; found {header}")
    files = []
    for row in body:
        path, size, sha256, url = row.split("\t")
        if path.startswith("/") or ".." in Path(path).parts:
            raise WorkbookError(f"{LISTINGS / listing}: {path!r} would leave its folder")
        files.append(FolderFile(path, int(size), sha256, url))
    return tuple(files)


def _from_pack(entry: Entry, problems: list[str]) -> Path | None:
    pack = pack_dir()
    if pack is None:
        problems.append(f"{DATA_ENV} is not set")
        return None
    target = pack / entry.pack_path
    if entry.is_folder:
        if not target.is_dir():
            problems.append(f"not in the data pack ({target} does not exist)")
            return None
        for item in folder_files(entry.listing):
            rel = f"{entry.pack_path}/{item.path}"
            if not (pack / rel).is_file():
                problems.append(f"{pack / rel} is missing from the data pack")
                return None
            problem = _verify_pack_file(pack, rel, (item.sha256,))
            if problem:
                problems.append(problem + " (the pack copy is left alone)")
                return None
        return target
    if not target.is_file():
        problems.append(f"not in the data pack ({target} does not exist)")
        return None
    problem = _verify_pack_file(pack, entry.pack_path, entry.accepted)
    if problem:
        # Never delete from the pack: it is shared and may be read-only. Fall through instead.
        problems.append(problem + " (the pack copy is left alone)")
        return None
    return target


def _tofu_record(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _from_cache(entry: Entry, problems: list[str]) -> Path | None:
    target = cache_dir() / entry.name
    if entry.is_folder:
        if not target.is_dir():
            return None
        if all(_good_copy(target / item.path, (item.sha256,)) for item in folder_files(entry.listing)):
            return target
        problems.append(f"cached folder {target} was incomplete or changed; fetching what is missing")
        return None
    if not target.is_file():
        return None
    accepted = entry.accepted
    if not accepted and _tofu_record(target).is_file():
        accepted = (_tofu_record(target).read_text().split()[0],)
    actual = _hash_cached(target)
    if accepted and actual not in accepted:
        target.unlink()
        problems.append(f"cached {target} had sha256 {actual}, expected {' or '.join(accepted)}; deleted it")
        return None
    return target


def _good_copy(path: Path, accepted: tuple[str, ...]) -> bool:
    """``path`` exists and has one of the accepted hashes (no hash known: exists)."""
    return path.is_file() and (not accepted or _hash_cached(path) in accepted)


def download(
    url: str, dest: Path, sha256: str | tuple[str, ...] | None, *, progress: bool = True, name: str | None = None
) -> Path:
    """Download ``url`` to ``dest`` atomically and return ``dest``.

    Writes to a temporary file beside ``dest``, checks ``sha256`` (one hash or the accepted ones,
    when given), then renames. On any failure the temporary file is removed, so ``dest`` is either
    complete and verified or absent. A wrong hash raises :class:`ChecksumError`; a network problem
    raises :class:`DataUnavailableError`; each message is one line naming the file and the URL.
    """
    accepted = (sha256,) if isinstance(sha256, str) else tuple(sha256 or ())
    label = name or dest.name
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as out:
            request = urllib.request.Request(url, headers={"User-Agent": "mobilenet-workbook"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT_S) as response:
                total = int(response.headers.get("Content-Length") or 0) or None
                bar = progress_bar(total, dest.name) if progress else None
                received = 0
                while chunk := response.read(1 << 16):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
                if bar is not None:
                    bar.close()
                if total is not None and received != total:
                    raise DataUnavailableError(
                        f"{label}: download of {url} stopped after {received} of {total} bytes; "
                        "nothing was kept, run again to retry"
                    )
        actual = digest.hexdigest()
        if accepted and actual not in accepted:
            raise ChecksumError(
                f"{label}: {url} downloaded with sha256 {actual}, expected {' or '.join(accepted)}; "
                "the bad file was deleted. The server may have changed the file, or the "
                "download was corrupted: run again, or use the offline data pack."
            )
        os.replace(tmp, dest)
        return dest
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as error:
        raise DataUnavailableError(f"{label}: could not download {url}: {error}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def download_folder(entry: Entry, dest: Path, *, progress: bool = True) -> Path:
    """Fetch every file of folder ``entry`` into ``dest`` (atomically per file, hash-checked).

    Work happens in ``dest.partial``, which keeps the files already verified when a run fails
    (the next run fetches only the rest); ``dest`` appears, by one rename, only when every file
    verified. ``FOLDER_WORKERS`` files at a time, one progress bar for the folder; a second
    process fetching the same folder waits on ``dest.lock`` and then finds it complete.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    with open(dest.with_name(dest.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one download of a folder at a time, across processes
        files = folder_files(entry.listing)
        if dest.is_dir() and all(_good_copy(dest / item.path, (item.sha256,)) for item in files):
            return dest  # another process (a second notebook) completed it while this one waited
        return _download_folder_locked(entry, files, dest, progress)


def _download_folder_locked(entry: Entry, files: tuple[FolderFile, ...], dest: Path, progress: bool) -> Path:
    partial = dest.with_name(dest.name + ".partial")
    if dest.is_dir() and not partial.exists():
        os.replace(dest, partial)  # an incomplete or changed folder: resume in place
    partial.mkdir(parents=True, exist_ok=True)
    todo = [item for item in files if not _good_copy(partial / item.path, (item.sha256,))]
    bar = progress_bar(sum(item.size for item in todo), entry.name) if progress and todo else None
    failed: list[str] = []
    lock = threading.Lock()

    def one(item: FolderFile) -> None:
        if failed:  # after the first failure, stop starting new files
            return
        try:
            target, label = partial / item.path, f"{entry.name}/{item.path}"
            download(resolve_url(item.url), target, item.sha256, progress=False, name=label)
        except WorkbookError as error:
            with lock:
                failed.append(str(error))
            return
        if bar is not None:
            with lock:
                bar.update(item.size)

    with ThreadPoolExecutor(max_workers=FOLDER_WORKERS) as pool:
        list(pool.map(one, todo))
    if bar is not None:
        bar.close()
    if failed:
        kept = sum(1 for item in files if (partial / item.path).is_file())
        kept_line = f"{kept} of {len(files)} files of {entry.name} verified and kept in {partial} for the next try"
        raise DataUnavailableError(f"{failed[0]} ({kept_line})")
    os.replace(partial, dest)
    return dest


def progress_bar(total: int | None, name: str, unit: str = "B"):
    """A tqdm bar on stderr counting ``unit`` (bytes by default); ``None`` without tqdm."""
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is pinned
        return None
    return tqdm(total=total, unit=unit, unit_scale=unit == "B", desc=name, file=sys.stderr, leave=False)


def fetch(name: str, *, progress: bool = True) -> Path:
    """Return a local path to registered file or folder ``name`` (see the module docstring for the order)."""
    if name not in REGISTRY:
        raise WorkbookError(f"unknown data file {name!r}; registered: {', '.join(sorted(REGISTRY))}")
    entry = REGISTRY[name]
    problems: list[str] = []
    found = _from_pack(entry, problems) or _from_cache(entry, problems)
    if found is not None:
        return found
    if entry.url is None and not entry.is_folder:
        problems.append("it has no download URL")
    elif os.environ.get(OFFLINE_ENV, "").strip() not in ("", "0"):
        problems.append(f"{OFFLINE_ENV} is set, so no download was tried")
    else:
        target = cache_dir() / entry.name
        try:
            if entry.is_folder:
                return download_folder(entry, target, progress=progress)
            download(resolve_url(entry.url), target, entry.accepted, progress=progress, name=entry.name)
        except ChecksumError:
            raise
        except DataUnavailableError as error:
            problems.append(str(error))
        else:
            if not entry.accepted:
                _tofu_record(target).write_text(f"{sha256_of(target)}  {entry.name}\n")
            return target
    raise DataUnavailableError(_missing_message(entry, problems))


def _missing_message(entry: Entry, problems: list[str]) -> str:
    url = entry.url or (f"one per file, listed in {LISTINGS / entry.listing}" if entry.is_folder else "(none)")
    return (
        f"missing data file {entry.name!r} ({entry.description}). URL: {url}. "
        f"Set {DATA_ENV} to the offline data pack folder (expected at "
        f"$WORKBOOK_DATA/{entry.pack_path}), or go online so it can be downloaded into "
        f"{cache_dir()}. Tried: " + "; ".join(problems) + "."
    )


def safe_extract(archive: Path, dest: Path) -> Path:
    """Extract a tar archive into ``dest``, refusing any member that would land outside it.

    Absolute paths, ``..`` components, links and device files are refused before anything is
    written; extraction goes to a temporary folder that is renamed to ``dest`` at the end.
    """
    dest = Path(dest)
    root = dest.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            target = (root / member.name).resolve()
            if member.name.startswith("/") or not target.is_relative_to(root):
                raise WorkbookError(f"refusing to extract {archive}: member {member.name!r} would leave {dest}")
            if not (member.isfile() or member.isdir()):
                raise WorkbookError(f"refusing to extract {archive}: member {member.name!r} is a link or device")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=dest.name + ".", suffix=".part", dir=dest.parent))
        try:
            tar.extractall(tmp, members=members, filter="data")
            os.replace(tmp, dest)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp)
    return dest


def write_atomic(path: str | Path, content: bytes | str) -> Path:
    """Write ``content`` to ``path`` through a temporary file beside it and a rename, so ``path`` is
    either the old file or the complete new one, never half written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = content.encode() if isinstance(content, str) else content
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def read_tar_member(archive: Path, basename: str) -> bytes:
    """Bytes of the first member of ``archive`` whose file name is ``basename`` (nothing is written)."""
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.isfile() and Path(member.name).name == basename:
                handle = tar.extractfile(member)
                assert handle is not None
                return handle.read()
    raise WorkbookError(f"{archive} holds no file named {basename!r}; is it the right archive?")
