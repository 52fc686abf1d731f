"""Tests of the embedded data file, its build script and gif_lite.book.data's loaders."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch

from gif_lite.book import data as gdata
from gif_lite.book.data import DataIntegrityError, load_data, stratified_split

ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = ROOT / "data"
NPZ = DATA_DIR / gdata.EMBEDDED_FILE
IDX_DIR = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(scope="module")
def fashion() -> gdata.DataSplits:
    return load_data("fashion-mnist-small")


def _build_module():
    spec = importlib.util.spec_from_file_location("build_fms", DATA_DIR / "build_fashion_mnist_small.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ---------------------------------------------------------------------------------------------- the file


def test_sha256_constant_matches_file_and_readme() -> None:
    assert hashlib.sha256(NPZ.read_bytes()).hexdigest() == gdata.EMBEDDED_SHA256
    readme = (DATA_DIR / "README.md").read_text()
    hashes = set(re.findall(r"\b[0-9a-f]{64}\b(?=\s+fashion_mnist_small\.npz)", readme))
    assert hashes == {gdata.EMBEDDED_SHA256}


def test_npz_is_a_plain_numpy_archive_with_balanced_uint8_arrays() -> None:
    with np.load(NPZ, allow_pickle=False) as z:
        assert z["x_train"].dtype == np.uint8 and z["x_train"].shape == (10_000, 28, 28)
        assert z["x_test"].dtype == np.uint8 and z["x_test"].shape == (2_000, 28, 28)
        assert np.bincount(z["y_train"], minlength=10).tolist() == [1000] * 10
        assert np.bincount(z["y_test"], minlength=10).tolist() == [200] * 10
        for split, n in (("train", 60_000), ("test", 10_000)):
            index = z[f"{split}_source_index"]
            assert np.all(np.diff(index) > 0) and index[-1] < n


@pytest.mark.skipif(not IDX_DIR.is_dir(), reason="Debian's dataset-fashion-mnist IDX files are not installed")
def test_build_script_rebuilds_the_file_bit_for_bit(tmp_path: Path) -> None:
    out = tmp_path / "rebuilt.npz"
    arrays = _build_module().build(IDX_DIR, out)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == gdata.EMBEDDED_SHA256
    # the subset really is the source images at the recorded indices
    source = _build_module().read_idx(IDX_DIR / "t10k-images-idx3-ubyte.gz")
    assert np.array_equal(source[arrays["test_source_index"]], arrays["x_test"])


def test_flipped_byte_is_caught_with_the_rebuild_command(tmp_path: Path) -> None:
    raw = bytearray(NPZ.read_bytes())
    raw[len(raw) // 2] ^= 0x01
    (tmp_path / gdata.EMBEDDED_FILE).write_bytes(bytes(raw))
    with pytest.raises(DataIntegrityError, match="corrupt") as info:
        load_data("fashion-mnist-small", root=tmp_path)
    assert "build_fashion_mnist_small.py" in str(info.value)
    assert isinstance(info.value, ValueError)


def test_missing_file_names_the_rebuild_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"build_fashion_mnist_small\.py"):
        load_data("fashion-mnist-small", root=tmp_path)


def test_intact_copy_elsewhere_loads(tmp_path: Path) -> None:
    shutil.copy(NPZ, tmp_path / gdata.EMBEDDED_FILE)
    assert load_data("fashion-mnist-small", root=tmp_path).sizes()["test"] == 2000


# ---------------------------------------------------------------------------------------------- splits


def test_fashion_split_sizes_balance_and_ranges(fashion: gdata.DataSplits) -> None:
    assert fashion.sizes() == {"train": 9000, "val": 1000, "test": 2000}
    for split, per_class in ((fashion.train, 900), (fashion.val, 100), (fashion.test, 200)):
        x, y = split
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 28, 28)
        assert torch.bincount(y, minlength=10).tolist() == [per_class] * 10
        assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert fashion.num_classes == 10 and fashion.classes[0] == "T-shirt/top"
    assert fashion.input_shape == (1, 28, 28)


def test_validation_is_disjoint_from_training_and_seeded(fashion: gdata.DataSplits) -> None:
    train_idx, val_idx = fashion.train_indices, fashion.val_indices
    assert torch.cat([train_idx, val_idx]).sort().values.equal(torch.arange(10_000))
    again = load_data("fashion-mnist-small", seed=0)
    other = load_data("fashion-mnist-small", seed=1)
    assert again.val_indices.equal(val_idx) and torch.equal(again.val[0], fashion.val[0])
    assert not other.val_indices.equal(val_idx)
    assert torch.equal(other.test[0], fashion.test[0])  # the test split never depends on the seed


def test_digits_splits_flatten_and_dtype() -> None:
    d = load_data("digits", flatten=True, dtype=torch.float64, val_fraction=0.1)
    sizes = d.sizes()
    assert sum(sizes.values()) == 1797
    assert sizes["test"] == pytest.approx(0.2 * 1797, abs=10)
    assert d.train[0].shape[1:] == (64,) and d.train[0].dtype == torch.float64
    assert float(d.train[0].max()) == 1.0 and float(d.train[0].min()) == 0.0
    test_counts = torch.bincount(d.test[1], minlength=10)
    assert int(test_counts.min()) >= 35 and int(test_counts.max()) <= 37  # stratified: about 20% of ~180
    images = load_data("digits", seed=3)
    assert images.train[0].shape[1:] == (1, 8, 8)
    assert torch.equal(images.test[0].flatten(1), d.test[0].float())


def test_stratified_split_rounds_per_class_and_rejects_bad_fractions() -> None:
    targets = torch.tensor([0] * 10 + [1] * 3)
    keep, held = stratified_split(targets, 0.2, seed=0)
    assert torch.bincount(targets[held]).tolist() == [2, 1]  # round(2.0) and max(round(0.6), 1)
    assert torch.cat([keep, held]).sort().values.equal(torch.arange(13))
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError, match="fraction"):
            stratified_split(targets, bad, seed=0)


def test_loaders_are_seeded(fashion: gdata.DataSplits) -> None:
    first = next(iter(fashion.loaders(batch_size=32, seed=5).train))[1]
    second = next(iter(fashion.loaders(batch_size=32, seed=5).train))[1]
    other = next(iter(fashion.loaders(batch_size=32, seed=6).train))[1]
    assert torch.equal(first, second) and not torch.equal(first, other)
    x_val, _ = next(iter(fashion.loaders(batch_size=32, eval_batch_size=100).val))
    assert torch.equal(x_val, fashion.val[0][:100])


def test_unknown_name_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError, match=r"fashion-mnist-small.*digits.*mnist.*cifar10.*svhn"):
        load_data("imagenet")


# ---------------------------------------------------------------------------------------------- online


def _offline(*args, **kwargs):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


@pytest.mark.parametrize("name", ["mnist", "cifar10"])
def test_offline_download_is_a_clear_error(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    with pytest.raises(RuntimeError, match="offline") as info:
        load_data(name, root=tmp_path, download=True)
    assert '"fashion-mnist-small"' in str(info.value)


def test_uncached_set_without_download_says_how_to_get_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", _offline)
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        load_data("svhn", root=tmp_path)
    assert "fashion-mnist-small" in str(info.value)


def test_online_set_loads_from_cache_as_tensors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cached torchvision set (faked here) becomes the same float/int64 splits as the embedded ones."""
    rng = np.random.default_rng(0)
    fake = {
        True: (rng.integers(0, 256, (50, 1, 28, 28), dtype=np.uint8), np.repeat(np.arange(10), 5)),
        False: (rng.integers(0, 256, (20, 1, 28, 28), dtype=np.uint8), np.repeat(np.arange(10), 2)),
    }
    monkeypatch.setitem(
        gdata.ONLINE, "mnist", (lambda root, train, download: fake[train], gdata.DIGIT_CLASSES)
    )
    d = load_data("mnist", root=tmp_path, val_fraction=0.2)
    assert d.sizes() == {"train": 40, "val": 10, "test": 20}
    assert d.train[1].dtype == torch.int64 and d.train[0].dtype == torch.float32
    assert torch.equal(d.test[0], torch.from_numpy(fake[False][0]).float() / 255)


@pytest.mark.skipif(not IDX_DIR.is_dir(), reason="Debian's dataset-fashion-mnist IDX files are not installed")
def test_online_fashion_mnist_through_torchvision_matches_the_embedded_subset(tmp_path: Path) -> None:
    """The torchvision path, fed offline from a cache holding the Debian IDX files."""
    raw = tmp_path / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in IDX_DIR.glob("*-ubyte.gz"):
        (raw / gz.stem).write_bytes(gzip.decompress(gz.read_bytes()))
    full = load_data("fashion-mnist", root=tmp_path)
    assert full.sizes() == {"train": 54_000, "val": 6_000, "test": 10_000}
    assert full.classes == gdata.FASHION_CLASSES and full.input_shape == (1, 28, 28)
    with np.load(NPZ) as z:
        index = torch.from_numpy(z["test_source_index"].astype(np.int64))
    small = load_data("fashion-mnist-small")
    assert torch.equal(full.test[0][index], small.test[0]) and torch.equal(full.test[1][index], small.test[1])
