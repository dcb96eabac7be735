"""Downloads end to end without internet: a loopback mirror serves the pack's files at their
canonical URL paths, ``WORKBOOK_MIRROR`` points at it, and there is no pack and an empty cache."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time

import pytest
from loopback import Mirror, url_path

from helpers import cli, data, flowers
from helpers import pack as packer
from helpers.errors import ChecksumError, DataUnavailableError, WorkbookError

# Files of the shared pack's manifest that no registry entry names, and why: the pack's own documents,
# and three official MNIST idx files that no notebook reads (the workbook reads mnist.npz). The
# pack's datasets/flower_photos_subset/MANIFEST.tsv (each photo's origin) is not in its manifest;
# helpers/listings/flower_photos_subset.tsv holds the same origins as URLs.
UNREGISTERED = {
    "PROVENANCE.md": "the pack's own documents",
    "README.md": "the pack's own documents",
    "datasets/mnist/t10k-images-idx3-ubyte.gz": "idx files: the workbook reads mnist.npz",
    "datasets/mnist/t10k-labels-idx1-ubyte.gz": "idx files: the workbook reads mnist.npz",
    "datasets/mnist/train-labels-idx1-ubyte.gz": "idx files: the workbook reads mnist.npz",
}


@pytest.fixture
def mirror(pack):
    with Mirror(pack) as server:
        yield server


@pytest.fixture
def new_user(tmp_path, monkeypatch, mirror):
    """No pack, an empty cache, downloads allowed, every URL rewritten to the loopback mirror."""
    monkeypatch.setenv(data.DATA_ENV, "")
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(data.OFFLINE_ENV, raising=False)
    monkeypatch.setenv(data.MIRROR_ENV, mirror.base + "/")
    return tmp_path / "cache"


def _leftovers(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def test_mirror_rewrites_https_urls(monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, "http://127.0.0.1:8000/")
    url = "https://download.tensorflow.org/models/mobilenet_v1_0.25_224_frozen.tgz"
    assert (
        data.resolve_url(url) == "http://127.0.0.1:8000/download.tensorflow.org/models/mobilenet_v1_0.25_224_frozen.tgz"
    )
    with pytest.raises(WorkbookError, match="cannot rewrite"):
        data.resolve_url("ftp://example.org/file")
    monkeypatch.setenv(data.MIRROR_ENV, "")
    assert data.resolve_url(url) == url


def test_listings_are_the_pack_byte_for_byte(pack):
    """Every file of both folder listings has the pack's sha256 (the listings were made from the
    public repositories at their pinned commits; the pack holds the same bytes)."""
    manifest = data.pack_manifest(pack)
    for name in ("imagenet_sample", "flower_photos_subset"):
        entry = data.REGISTRY[name]
        files = data.folder_files(entry.listing)
        assert len(files) == {"imagenet_sample": 500, "flower_photos_subset": 1000}[name]
        assert {f"{entry.pack_path}/{f.path}": f.sha256 for f in files} == {
            rel: digest
            for rel, digest in manifest.items()
            if rel.startswith(entry.pack_path + "/") and "MANIFEST" not in rel
        }
        assert all(f.url.startswith("https://raw.githubusercontent.com/") for f in files)


def test_pack_builder_reproduces_the_shared_pack_and_resumes(pack, new_user, mirror, tmp_path, capsys):
    built = tmp_path / "built"
    start = time.perf_counter()
    result = packer.build_pack(built, progress=False)
    seconds = time.perf_counter() - start
    shared = packer.read_manifest(pack)
    assert packer.unregistered(pack) == sorted(UNREGISTERED)
    expected = {path: digest for path, digest in shared.items() if path not in UNREGISTERED}
    assert packer.read_manifest(built) == expected  # the shared pack's lines for every registered file
    assert result["downloaded"] == len(expected) and result["kept"] == 0
    assert mirror.bytes_sent == result["bytes_downloaded"] == sum((pack / p).stat().st_size for p in expected)
    with capsys.disabled():  # the README's download size and time come from this line
        mb = mirror.bytes_sent / 1e6
        print(
            f"\n[pack] {len(expected)} files, {mb:.1f} MB in {seconds:.1f} s on loopback; "
            f"{mb * 8 / 100:.0f} s at 100 Mbit/s"
        )
    assert packer.verify_pack(built) == (len(expected), [], [])

    # A corrupt and a missing file: --verify names both, a re-run fetches exactly those two.
    corrupt, missing = (
        built / "labels/imagenet_labels_1001.txt",
        built / "datasets/imagenet_sample/n01440764_tench.JPEG",
    )
    corrupt.write_text("tampered")
    missing.unlink()
    assert cli.main(["pack", str(built), "--verify"]) == 2
    err = capsys.readouterr().err
    assert f"bad: {corrupt}: sha256" in err and f"bad: {missing}: missing" in err and "2 bad" in err
    sent = mirror.bytes_sent
    again = packer.build_pack(built, progress=False)
    assert (again["kept"], again["downloaded"]) == (len(expected) - 2, 2)
    assert (
        mirror.bytes_sent - sent
        == (pack / "labels/imagenet_labels_1001.txt").stat().st_size
        + (pack / "datasets/imagenet_sample/n01440764_tench.JPEG").stat().st_size
    )
    assert cli.main(["pack", str(built), "--verify"]) == 0
    # A manifest edited to fit a changed file does not fool --verify: the registry's hash decides.
    corrupt.write_text("tampered")
    lines = (
        (built / "MANIFEST.sha256")
        .read_text()
        .replace(shared["labels/imagenet_labels_1001.txt"], hashlib.sha256(b"tampered").hexdigest())
    )
    (built / "MANIFEST.sha256").write_text(lines)
    good, bad, _ = packer.verify_pack(built)
    assert bad == [
        f"{corrupt}: sha256 {hashlib.sha256(b'tampered').hexdigest()}, the registry expects "
        f"{shared['labels/imagenet_labels_1001.txt']}"
    ]


@pytest.mark.parametrize("fault", ["drop", "wrong", "404"])
def test_a_bad_server_leaves_nothing_and_says_which_file(new_user, mirror, fault):
    name = "imagenet_labels_1001.txt"
    mirror.faults[mirror.path_of(name)] = fault
    with pytest.raises((DataUnavailableError, ChecksumError)) as caught:
        data.fetch(name, progress=False)
    message = str(caught.value)
    assert "\n" not in message and name in message and mirror.base + mirror.path_of(name) in message
    assert _leftovers(new_user) == []  # no partial, temporary or unverified file


def test_a_folder_is_usable_only_when_every_file_verified(new_user, mirror):
    entry = data.REGISTRY["imagenet_sample"]
    files = data.folder_files(entry.listing)
    broken = files[123]
    mirror.faults[url_path(broken.url)] = "wrong"
    with pytest.raises(DataUnavailableError) as caught:
        data.fetch("imagenet_sample", progress=False)
    message = str(caught.value)
    assert "\n" not in message and broken.path in message and "verified and kept" in message
    assert not (new_user / "imagenet_sample").exists()  # nothing usable yet
    partial = new_user / "imagenet_sample.partial"
    kept = sorted(p.name for p in partial.iterdir())
    assert broken.path not in kept and not any(name.endswith(".part") for name in kept)
    by_name = {f.path: f.sha256 for f in files}
    assert all(data.sha256_of(partial / name) == by_name[name] for name in kept)  # only verified files
    # The server is fixed: the next fetch downloads only the files it lacks.
    del mirror.faults[url_path(broken.url)]
    before = len(mirror.requests)
    folder = data.fetch("imagenet_sample", progress=False)
    assert folder == new_user / "imagenet_sample" and not partial.exists()
    assert len(mirror.requests) - before == len(files) - len(kept)
    assert len(list(folder.iterdir())) == 500
    # From the cache: no request at all, and a changed file is fetched again.
    (folder / broken.path).write_bytes(b"changed")
    before = len(mirror.requests)
    assert data.fetch("imagenet_sample", progress=False) == folder
    assert mirror.requests[before:] == [url_path(broken.url)]


def test_mnist_accepts_either_known_good_copy(new_user):
    """The mirror serves the pack's rebuilt mnist.npz at Keras's URL: its hash is the entry's second one."""
    entry = data.REGISTRY["mnist.npz"]
    path = data.fetch("mnist.npz", progress=False)
    assert data.sha256_of(path) in entry.also_sha256 and entry.sha256 not in entry.also_sha256


def _flower_tgz(pack, members_per_class=20, evil=False) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name in ("daisy", "dandelion", "roses", "sunflowers", "tulips"):
            for photo in sorted((pack / "datasets/flower_photos_subset/train" / name).iterdir())[:members_per_class]:
                tar.add(photo, arcname=f"flower_photos/{name}/{photo.name}")
        info = tarfile.TarInfo("flower_photos/LICENSE.txt")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"CC BY 2"))
        if evil:
            info = tarfile.TarInfo("../escaped.txt")
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return buffer.getvalue()


def test_full_flower_archive_extracts_safely_and_splits_by_name(pack, new_user, mirror):
    mirror.extra[mirror.path_of("flower_photos.tgz")] = _flower_tgz(pack)
    root = flowers.flowers_root(full=True)
    assert root == new_user / "flower_photos" / "flower_photos"
    class_names, found = flowers.list_photos(root)
    assert class_names == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
    assert len(found["train"]) + len(found["val"]) == 100
    for path, _ in found["val"]:  # 20 photos a class: the hash rule alone decides (no class is all one side)
        assert flowers.is_val(path.name)
    for path, _ in found["train"]:
        assert not flowers.is_val(path.name)
    assert (new_user / "flower_photos.tgz.sha256").is_file()  # no published hash: recorded on first download
    assert flowers.list_photos(flowers.flowers_root(full=True)) == (class_names, found)  # same split again


def test_flower_archive_with_an_escaping_member_is_refused(pack, new_user, mirror, tmp_path):
    mirror.extra[mirror.path_of("flower_photos.tgz")] = _flower_tgz(pack, 2, evil=True)
    with pytest.raises(WorkbookError, match="would leave"):
        flowers.flowers_root(full=True)
    assert not (new_user / "flower_photos").exists() and not (new_user.parent / "escaped.txt").exists()


def test_setup_line_says_where_data_comes_from(new_user, mirror, monkeypatch, pack):
    assert f"downloaded from the mirror {mirror.base}" in data.pack_status()
    assert str(new_user) in data.pack_status()
    monkeypatch.delenv(data.MIRROR_ENV)
    assert "from their public URLs" in data.pack_status()
    monkeypatch.setenv(data.DATA_ENV, str(pack))
    assert data.pack_status().startswith(f"data pack: {pack}")


def test_pack_only_named_files_including_an_online_only_one(pack, new_user, mirror, tmp_path, capsys):
    """``--only`` takes files without a published hash too; their hash goes into the manifest and a
    re-run keeps the file; an unknown name is one line."""
    archive = _flower_tgz(pack, 2)
    mirror.extra[mirror.path_of("flower_photos.tgz")] = archive
    built = tmp_path / "built"
    assert cli.main(["pack", str(built), "--only", "flower_photos.tgz", "imagenet_labels_1001.txt", "--json"]) == 0
    assert packer.read_manifest(built) == {
        "datasets/flower_photos.tgz": hashlib.sha256(archive).hexdigest(),
        "labels/imagenet_labels_1001.txt": data.REGISTRY["imagenet_labels_1001.txt"].sha256,
    }
    assert packer.build_pack(built, ["flower_photos.tgz"], progress=False)["kept"] == 1
    assert "flower_photos.tgz" not in {item.entry for item in packer.pack_files()}  # skipped by default
    capsys.readouterr()
    assert cli.main(["pack", str(built), "--only", "mnist"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown data file(s) ['mnist']; did you mean mnist.npz?" in err


def test_two_fetches_of_one_folder_at_once_both_succeed(new_user, mirror):
    """Two notebooks opened together download the flower subset side by side: the second to finish
    finds the folder already complete instead of failing on the rename."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(2) as pool:
        first, second = pool.map(lambda _: data.fetch("flower_photos_subset", progress=False), range(2))
    assert first == second == new_user / "flower_photos_subset"
    assert sum(1 for _ in first.glob("*/*/*.jpg")) == 1000 and not (new_user / "flower_photos_subset.partial").exists()
