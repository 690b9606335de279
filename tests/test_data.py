"""Tests of cnnlab.data's Fashion-MNIST loader, the shipped subset, its build script and the download.

Fake data sets are encoded here with struct + gzip, independently of cnnlab.data.idx, so the
parser is checked against a second implementation of the IDX format.
"""
import gzip
import hashlib
import importlib.util
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

import cnnlab.data.fashion_mnist as fm
from cnnlab.data import (CLASSES, DataError, download_fashion_mnist, load_fashion_mnist,
                         locate_fashion_mnist, read_idx)

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data"
SUBSET = DATA / "fashion-mnist-subset"
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
HAVE_DEBIAN = all((DEBIAN / n).is_file() for n in NAMES)


# ---------------------------------------------------------------- helpers: an independent IDX writer

def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array, written out by hand: 0, 0, 0x08, ndim, sizes, data."""
    return struct.pack(">BBBB", 0, 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) \
        + array.astype(np.uint8).tobytes()


def write_gz(path: Path, payload: bytes, level: int = 6) -> str:
    path.write_bytes(gzip.compress(payload, compresslevel=level))
    return hashlib.sha256(payload).hexdigest()


def fake_images(labels: np.ndarray, start: int) -> np.ndarray:
    """Mostly black images that encode their own index and label, so each one is unique."""
    n = len(labels)
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    index = np.arange(start, start + n)
    images[:, 0, 0], images[:, 0, 1], images[:, 0, 2] = index % 256, index // 256, labels
    images[:, 5:20, 10] = 17 * labels[:, None]
    return images


def make_full_set(directory: Path, monkeypatch, per_class=(3, 2)):
    """Write a fake full set (per_class train, test images per class) and trust its digests.

    Returns {name: array} of what was written.
    """
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for (img, lab), k, start in zip([NAMES[:2], NAMES[2:]], per_class, (0, 50_000)):
        labels = np.tile(np.arange(10, dtype=np.uint8), k)
        arrays[img], arrays[lab] = fake_images(labels, start), labels
    for name, array in arrays.items():
        monkeypatch.setitem(fm.SHA256["full"], name, write_gz(directory / name, idx_bytes(array)))
    return arrays


@pytest.fixture
def nowhere(tmp_path, monkeypatch):
    """No full set anywhere: HOME, $CNNLAB_DATA and the Debian path all point at empty places."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CNNLAB_DATA", raising=False)
    monkeypatch.delenv("CNNLAB_SYSTEM_DATA", raising=False)
    monkeypatch.setattr(fm, "SYSTEM_DIR", tmp_path / "usr-share")
    return tmp_path


@pytest.fixture
def subset_copy(tmp_path, monkeypatch):
    """A private copy of the shipped subset that the loader reads instead of data/."""
    copy = tmp_path / "subset"
    shutil.copytree(SUBSET, copy)
    monkeypatch.setenv("CNNLAB_SUBSET_DIR", str(copy))
    return copy


def load_build_script():
    spec = importlib.util.spec_from_file_location("build_subset", DATA / "build_subset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------- the shipped subset

def test_classes_are_the_ten_fashion_mnist_names():
    assert CLASSES == ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                       "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")


@pytest.mark.parametrize("split, per_class", [("train", 800), ("test", 100)])
def test_subset_shapes_dtypes_range_and_balance(split, per_class):
    data = load_fashion_mnist(split, source="subset")
    assert data.X.shape == (10 * per_class, 1, 28, 28) and data.X.dtype == np.float32
    assert data.y.shape == (10 * per_class,) and data.y.dtype == np.int64
    assert data.X.min() == 0.0 and data.X.max() == 1.0
    assert np.bincount(data.y, minlength=10).tolist() == [per_class] * 10
    assert data.classes == CLASSES
    raw = np.frombuffer(gzip.decompress((SUBSET / fm.FILES[split][0]).read_bytes())[16:], np.uint8)
    np.testing.assert_array_equal(data.X.ravel(), raw.astype(np.float32) / 255)


def test_shipped_files_match_sha256sums_and_readme():
    lines = (DATA / "SHA256SUMS").read_text().splitlines()
    sums = {rel: digest for digest, rel in (line.split("  ") for line in lines)}
    assert sorted(sums) == sorted(f"fashion-mnist-subset/{n}" for n in NAMES)
    for rel, digest in sums.items():
        assert hashlib.sha256((DATA / rel).read_bytes()).hexdigest() == digest
    table = dict(re.findall(r"^\|\s*(fashion-mnist-subset/\S+)\s*\|.*\|\s*([0-9a-f]{64})\s*\|\s*$",
                            (DATA / "README.md").read_text(), flags=re.M))
    assert table == sums
    assert sum((DATA / rel).stat().st_size for rel in sums) <= 5_000_000


def test_recorded_subset_payload_digests_match_the_files():
    for name in NAMES:
        payload = gzip.decompress((SUBSET / name).read_bytes())
        assert fm.SHA256["subset"][name] == hashlib.sha256(payload).hexdigest()


def assert_subset_of(subset_dir: Path, full_dir: Path):
    """Every subset image occurs in the full set of the same split, with the same label, once."""
    for img, lab in (NAMES[:2], NAMES[2:]):
        full_images, full_labels = read_idx(full_dir / img, 3), read_idx(full_dir / lab, 1)
        where = {}
        for i, image in enumerate(full_images):
            where.setdefault(image.tobytes(), []).append(i)
        sub_images, sub_labels = read_idx(subset_dir / img, 3), read_idx(subset_dir / lab, 1)
        used = []
        for image, label in zip(sub_images, sub_labels):
            matches = [i for i in where[image.tobytes()] if full_labels[i] == label]
            assert matches, "a subset image with its label is not in the full set"
            used.append(matches[0])
        assert len(set(used)) == len(used) and used == sorted(used)  # distinct, original order


def test_subset_is_drawn_from_the_full_set(tmp_path, monkeypatch):
    if HAVE_DEBIAN:
        assert_subset_of(SUBSET, DEBIAN)
        full = load_fashion_mnist("test", root=DEBIAN)  # the recorded full-set digests are right
        assert full.X.shape == (10_000, 1, 28, 28)
        assert np.bincount(full.y).tolist() == [1000] * 10
    else:  # the same property for a subset built from a fake full set
        make_full_set(tmp_path / "full", monkeypatch, per_class=(801, 101))
        load_build_script().main(["--source", str(tmp_path / "full"), "--out", str(tmp_path / "out")])
        assert_subset_of(tmp_path / "out" / "fashion-mnist-subset", tmp_path / "full")


def test_build_script_is_reproducible(tmp_path, monkeypatch, capsys):
    build = load_build_script()
    source = DEBIAN if HAVE_DEBIAN else tmp_path / "full"
    if not HAVE_DEBIAN:
        make_full_set(source, monkeypatch, per_class=(801, 101))
    assert build.main(["--source", str(source), "--out", str(tmp_path / "a")]) == 0
    assert "800 train and 100 test images per class" in capsys.readouterr().out
    if HAVE_DEBIAN:  # the committed files are exactly what the script makes
        assert (tmp_path / "a" / "SHA256SUMS").read_text() == (DATA / "SHA256SUMS").read_text()
    else:
        build.main(["--source", str(source), "--out", str(tmp_path / "b")])
        assert (tmp_path / "a" / "SHA256SUMS").read_text() == (tmp_path / "b" / "SHA256SUMS").read_text()
    for name in NAMES:  # deterministic gzip: no time stamp (bytes 4-7) and no file name (flag bit 3)
        head = (tmp_path / "a" / "fashion-mnist-subset" / name).read_bytes()[:10]
        assert head[4:8] == b"\0\0\0\0" and not head[3] & 0x08


def test_build_script_shrinks_train_to_fit_the_size_limit(tmp_path, monkeypatch, capsys):
    build = load_build_script()
    make_full_set(tmp_path / "full", monkeypatch, per_class=(801, 101))
    sizes = {}
    for k in (700, 800):
        paths = build.write_subset(tmp_path / "full", tmp_path / str(k), {"train": k, "test": 100})
        sizes[k] = sum(p.stat().st_size for p in paths)
    assert sizes[700] < sizes[800]
    monkeypatch.setattr(build, "MAX_TOTAL_BYTES", sizes[700])
    build.main(["--source", str(tmp_path / "full"), "--out", str(tmp_path / "out")])
    assert "700 train and 100 test images per class" in capsys.readouterr().out
    labels = read_idx(tmp_path / "out" / "fashion-mnist-subset" / NAMES[1], 1)
    assert np.bincount(labels).tolist() == [700] * 10
    monkeypatch.setattr(build, "MAX_TOTAL_BYTES", 1000)  # not even 600 per class fits: refuse
    with pytest.raises(SystemExit, match="600"):
        build.main(["--source", str(tmp_path / "full"), "--out", str(tmp_path / "out2")])


# ---------------------------------------------------------------- damaged files

def test_flipped_byte_in_the_subset_is_a_data_error_naming_file_and_fix(subset_copy):
    path = subset_copy / "t10k-images-idx3-ubyte.gz"
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))
    with pytest.raises(DataError) as err:
        load_fashion_mnist("test", source="subset")
    message = str(err.value)
    assert str(path) in message
    assert "git checkout -- data/fashion-mnist-subset/t10k-images-idx3-ubyte.gz" in message
    assert "python data/build_subset.py" in message
    assert isinstance(err.value, ValueError)


def test_truncated_subset_file_is_a_data_error(subset_copy):
    path = subset_copy / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DataError, match="truncated") as err:
        load_fashion_mnist("test", source="subset")
    assert str(path) in str(err.value) and "build_subset.py" in str(err.value)


def test_recompressed_copy_is_accepted_but_changed_content_is_not(subset_copy):
    path = subset_copy / "t10k-labels-idx1-ubyte.gz"
    payload = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(payload, compresslevel=1))  # other gz bytes, same content
    assert np.bincount(load_fashion_mnist("test", source="subset").y).tolist() == [100] * 10
    changed = bytearray(payload)
    changed[-1] = (changed[-1] + 1) % 10  # still a valid label file, but not ours
    path.write_bytes(gzip.compress(bytes(changed)))
    with pytest.raises(DataError, match="SHA-256"):
        load_fashion_mnist("test", source="subset")


@pytest.mark.parametrize("payload, message", [
    (idx_bytes(np.zeros(5, np.uint8)), "1 dimension"),                       # labels, not images
    (b"\x00\x00\x0d\x03" + struct.pack(">3I", 1, 28, 28) + bytes(784 * 4), "magic"),  # float32 type
    (b"\x08\x00\x00\x03", "magic"),
    (idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-10], "truncated"),
    (idx_bytes(np.zeros((2, 28, 28), np.uint8)) + b"\x00", "longer"),
    (b"\x00\x00\x08\x03\x00\x00", "truncated"),                              # header cut short
    (b"", "magic"),
])
def test_read_idx_rejects_malformed_payloads(tmp_path, payload, message):
    path = tmp_path / "bad.gz"
    write_gz(path, payload)
    with pytest.raises(DataError, match=message) as err:
        read_idx(path, 3, fix="Do the fix.")
    assert str(path) in str(err.value) and "Do the fix." in str(err.value)


@pytest.mark.parametrize("raw", [b"this is not gzip at all", b"\x1f\x8b\x08\x00garbage-after-magic"])
def test_read_idx_rejects_non_gzip_files(tmp_path, raw):
    path = tmp_path / "bad.gz"
    path.write_bytes(raw)
    with pytest.raises(DataError, match="gzip"):
        read_idx(path, 1)


def test_read_idx_parses_a_hand_encoded_file(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    digest = write_gz(tmp_path / "a.gz", idx_bytes(array))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz", 3, sha256=digest), array)
    assert read_idx(tmp_path / "a.gz", 3).dtype == np.uint8


def test_labels_out_of_range_or_count_mismatch_are_data_errors(tmp_path, monkeypatch):
    root = tmp_path / "full"
    arrays = make_full_set(root, monkeypatch)
    bad = arrays[NAMES[3]].copy()
    bad[0] = 10
    monkeypatch.setitem(fm.SHA256["full"], NAMES[3], write_gz(root / NAMES[3], idx_bytes(bad)))
    with pytest.raises(DataError, match=r"label 10.*0\.\.9") as err:
        load_fashion_mnist("test", root=root)
    assert NAMES[3] in str(err.value)
    short = arrays[NAMES[3]][:-1]
    monkeypatch.setitem(fm.SHA256["full"], NAMES[3], write_gz(root / NAMES[3], idx_bytes(short)))
    with pytest.raises(DataError, match="20 images.*19 labels"):
        load_fashion_mnist("test", root=root)


def test_images_of_the_wrong_size_are_a_data_error(tmp_path, monkeypatch):
    root = tmp_path / "full"
    make_full_set(root, monkeypatch)
    narrow = np.zeros((20, 28, 27), np.uint8)
    monkeypatch.setitem(fm.SHA256["full"], NAMES[2], write_gz(root / NAMES[2], idx_bytes(narrow)))
    with pytest.raises(DataError, match=r"\(28, 27\)"):
        load_fashion_mnist("test", root=root)


def test_damaged_full_set_file_names_the_download_fix(tmp_path, monkeypatch):
    root = tmp_path / "full"
    make_full_set(root, monkeypatch)
    (root / NAMES[0]).write_bytes((root / NAMES[0]).read_bytes()[:50])
    with pytest.raises(DataError, match="download_fashion_mnist") as err:
        load_fashion_mnist("train", root=root)
    assert str(root / NAMES[0]) in str(err.value)


# ---------------------------------------------------------------- finding the full set

def test_fake_full_set_loads_through_root(tmp_path, monkeypatch):
    arrays = make_full_set(tmp_path / "full", monkeypatch)
    data = load_fashion_mnist("train", root=tmp_path / "full", source="full")
    np.testing.assert_array_equal(data.X[:, 0] * np.float32(255), arrays[NAMES[0]].astype(np.float32))
    np.testing.assert_array_equal(data.y, arrays[NAMES[1]])
    assert data.X.shape == (30, 1, 28, 28) and data.y.dtype == np.int64
    auto = load_fashion_mnist("test", root=tmp_path / "full")  # "auto" prefers the full set
    assert len(auto.y) == 20


def test_missing_explicit_root_is_an_error_not_a_fallback(tmp_path, monkeypatch):
    for source in ("auto", "full"):
        with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "nope"))):
            load_fashion_mnist("train", root=tmp_path / "nope", source=source)
    make_full_set(tmp_path / "partial", monkeypatch)
    (tmp_path / "partial" / NAMES[2]).unlink()
    assert locate_fashion_mnist(tmp_path / "partial") is None
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist("train", root=tmp_path / "partial")


def test_full_source_with_nothing_found_lists_every_place_searched(nowhere):
    assert locate_fashion_mnist() is None
    with pytest.raises(FileNotFoundError) as err:
        load_fashion_mnist("train", source="full")
    message = str(err.value)
    for place in ("$CNNLAB_DATA", str(nowhere / "home" / ".cache" / "cnnlab" / "fashion-mnist"),
                  str(nowhere / "usr-share"), "apt-get install dataset-fashion-mnist",
                  "fashion-mnist.s3-website.eu-central-1.amazonaws.com", "download=True"):
        assert place in message
    assert len(load_fashion_mnist("test").y) == 1000  # "auto" falls back to the shipped subset


def test_search_order_env_then_cache_then_system(nowhere, monkeypatch):
    for place in ("env", "home/.cache/cnnlab/fashion-mnist", "usr-share"):
        make_full_set(nowhere / place, monkeypatch)
    monkeypatch.setenv("CNNLAB_DATA", str(nowhere / "env"))
    assert locate_fashion_mnist() == nowhere / "env"
    assert locate_fashion_mnist(nowhere / "usr-share") == nowhere / "usr-share"
    monkeypatch.delenv("CNNLAB_DATA")
    assert locate_fashion_mnist() == nowhere / "home/.cache/cnnlab/fashion-mnist"
    shutil.rmtree(nowhere / "home")
    assert locate_fashion_mnist() == nowhere / "usr-share"


def test_cnnlab_data_naming_a_missing_folder_is_an_error_not_a_fallback(nowhere, monkeypatch):
    make_full_set(nowhere / "home/.cache/cnnlab/fashion-mnist", monkeypatch)  # another copy exists
    monkeypatch.setenv("CNNLAB_DATA", str(nowhere / "typo"))
    assert locate_fashion_mnist() is None  # not the cache's copy
    for source in ("auto", "full"):
        with pytest.raises(FileNotFoundError) as err:
            load_fashion_mnist("train", source=source)
        message = str(err.value)
        assert f"$CNNLAB_DATA is set to {nowhere / 'typo'}, but that folder does not exist" in message
        assert "unset CNNLAB_DATA" in message
    assert len(load_fashion_mnist("test", source="subset").y) == 1000  # asking for the subset still works


def test_cnnlab_data_naming_a_partial_folder_lists_the_missing_files(nowhere, monkeypatch):
    make_full_set(nowhere / "usr-share", monkeypatch)
    make_full_set(nowhere / "partial", monkeypatch)
    (nowhere / "partial" / NAMES[0]).unlink()
    (nowhere / "partial" / NAMES[3]).unlink()
    monkeypatch.setenv("CNNLAB_DATA", str(nowhere / "partial"))
    assert locate_fashion_mnist() is None
    with pytest.raises(FileNotFoundError) as err:
        load_fashion_mnist("test")  # even the test split, whose images are there: the set is incomplete
    assert (f"$CNNLAB_DATA is set to {nowhere / 'partial'}, but that folder lacks "
            f"['{NAMES[0]}', '{NAMES[3]}']") in str(err.value)
    monkeypatch.setenv("CNNLAB_DATA", "")  # empty: as if unset, the default places are searched
    assert locate_fashion_mnist() == nowhere / "usr-share"


def test_load_downloads_into_the_cnnlab_data_folder(nowhere, monkeypatch):
    url, arrays = serve(nowhere, monkeypatch)
    monkeypatch.setattr(fm, "URL", url)
    monkeypatch.setenv("CNNLAB_DATA", str(nowhere / "mine"))
    np.testing.assert_array_equal(load_fashion_mnist("test", download=True).y, arrays[NAMES[3]])
    assert sorted(p.name for p in (nowhere / "mine").iterdir()) == sorted(NAMES)
    assert not (nowhere / "home").exists()


@pytest.mark.parametrize("off", [{"env": "0"}, {"env": "off"}, {"kw": False}, {"env": "1", "kw": False}])
def test_the_system_copy_can_be_turned_off(nowhere, monkeypatch, off):
    make_full_set(nowhere / "usr-share", monkeypatch)
    assert locate_fashion_mnist() == nowhere / "usr-share"
    if "env" in off:
        monkeypatch.setenv("CNNLAB_SYSTEM_DATA", off["env"])
    system = off.get("kw")
    assert locate_fashion_mnist(system=system) is None
    assert len(load_fashion_mnist("test", system=system).y) == 1000  # "auto": the shipped subset
    with pytest.raises(FileNotFoundError) as err:
        load_fashion_mnist("test", source="full", system=system)
    why = "system=False" if system is not None else f"$CNNLAB_SYSTEM_DATA={off['env']}"
    assert f"  - {nowhere / 'usr-share'} (not searched: {why})" in str(err.value)
    assert locate_fashion_mnist(nowhere / "usr-share", system=system) == nowhere / "usr-share"  # root still works


def test_the_system_keyword_wins_and_bad_values_are_refused(nowhere, monkeypatch):
    make_full_set(nowhere / "usr-share", monkeypatch)
    monkeypatch.setenv("CNNLAB_SYSTEM_DATA", "0")
    assert locate_fashion_mnist(system=True) == nowhere / "usr-share"
    monkeypatch.setenv("CNNLAB_SYSTEM_DATA", "maybe")
    with pytest.raises(ValueError, match=r"\$CNNLAB_SYSTEM_DATA must be 0 .* or 1 .*, got 'maybe'"):
        locate_fashion_mnist()
    with pytest.raises(TypeError, match="system must be True, False or None"):
        locate_fashion_mnist(system="no")
    with pytest.raises(ValueError, match="system apply to the full set"):
        load_fashion_mnist(source="subset", system=False)


@pytest.mark.parametrize("kwargs, valid", [({"split": "val"}, "'train', 'test'"),
                                           ({"source": "web"}, "'auto', 'full', 'subset'")])
def test_invalid_split_or_source_lists_the_valid_values(kwargs, valid):
    with pytest.raises(ValueError, match=re.escape(valid)):
        load_fashion_mnist(**kwargs)


def test_subset_source_refuses_root_and_download(tmp_path):
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(source="subset", root=tmp_path)
    with pytest.raises(ValueError, match="subset"):
        load_fashion_mnist(source="subset", download=True)


def test_loads_return_fresh_copies_and_reuse_decoded_arrays(subset_copy, monkeypatch):
    first = load_fashion_mnist("test", source="subset")
    expected_X, expected_y = first.X.copy(), first.y.copy()
    X, y = first.X, first.y
    X -= X.mean()  # a student normalises in place ...
    y[:] = 0
    calls = []
    monkeypatch.setattr(fm, "read_idx", lambda *a, **k: calls.append(a) or pytest.fail("re-read"))
    second = load_fashion_mnist("test", source="subset")  # ... the next load is untouched
    np.testing.assert_array_equal(second.X, expected_X)
    np.testing.assert_array_equal(second.y, expected_y)
    assert second.X.flags.writeable and calls == []


# ---------------------------------------------------------------- download

def serve(tmp_path, monkeypatch) -> tuple[str, dict]:
    arrays = make_full_set(tmp_path / "server", monkeypatch)
    return (tmp_path / "server").as_uri(), arrays


def test_download_fetches_verifies_and_loads(tmp_path, monkeypatch):
    url, arrays = serve(tmp_path, monkeypatch)
    root = download_fashion_mnist(tmp_path / "cache", base_url=url)
    assert root == tmp_path / "cache" and sorted(p.name for p in root.iterdir()) == sorted(NAMES)
    np.testing.assert_array_equal(load_fashion_mnist("test", root=root).y, arrays[NAMES[3]])
    shutil.rmtree(tmp_path / "server")  # files already present and correct are not fetched again
    assert download_fashion_mnist(tmp_path / "cache", base_url=url) == root


def test_download_refuses_a_wrong_file_and_keeps_nothing(tmp_path, monkeypatch):
    url, _ = serve(tmp_path, monkeypatch)
    write_gz(tmp_path / "server" / NAMES[1], idx_bytes(np.zeros(30, np.uint8)))  # not the known content
    with pytest.raises(DataError, match="not kept") as err:
        download_fashion_mnist(tmp_path / "cache", base_url=url)
    assert NAMES[1] in str(err.value)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [NAMES[0]]  # no partial file


def test_download_network_failure_is_a_clear_error(tmp_path, monkeypatch):
    url, _ = serve(tmp_path, monkeypatch)
    (tmp_path / "server" / NAMES[2]).unlink()
    with pytest.raises(ConnectionError, match=re.escape(f"{url}/{NAMES[2]}")):
        download_fashion_mnist(tmp_path / "cache", base_url=url)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == sorted(NAMES[:2])


def test_load_downloads_only_when_asked(nowhere, monkeypatch):
    url, arrays = serve(nowhere, monkeypatch)
    monkeypatch.setattr(fm, "URL", url)
    with pytest.raises(FileNotFoundError):
        load_fashion_mnist("train", source="full")
    data = load_fashion_mnist("train", source="full", download=True)
    np.testing.assert_array_equal(data.y, arrays[NAMES[1]])
    assert locate_fashion_mnist() == nowhere / "home" / ".cache" / "cnnlab" / "fashion-mnist"
