"""Data sets as tensors: the embedded Fashion-MNIST subset, scikit-learn's digits, and torchvision's sets.

Used by: quickstart, first_order, gif, hvp_solvers, selection, faithfulness, class_removal,
selection_study, backdoor, inside.

``load_data(name)`` returns a :class:`DataSplits` with ``train``, ``val`` and ``test``, each a tuple
``(inputs, targets)``: inputs are floats in [0, 1] shaped N x C x H x W (N x D with ``flatten=True``),
targets are int64 class indices.  The validation split is carved from the training set, stratified by
class and seeded by ``seed``; the test split never depends on ``seed``.  Experiments choose
hyper-parameters on ``val``, never on ``test``.

Embedded, offline: ``"fashion-mnist-small"`` (10,000 + 2,000 real Fashion-MNIST images in ``data/``,
sha256-checked on every load) and ``"digits"`` (scikit-learn's 1,797 8x8 digits).  Online, through
torchvision into a cache folder: ``"mnist"``, ``"fashion-mnist"``, ``"cifar10"``, ``"svhn"``.
"""

from __future__ import annotations

import hashlib
import io
import os
import urllib.error
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from ..checks import GifLiteError, check_seed
from ..params import keep_mask
from ..types import Data as Split

__all__ = [
    "CIFAR10_CLASSES",
    "DATA_NAMES",
    "DEFAULT_CACHE",
    "DIGITS_TEST_FRACTION",
    "DIGITS_TEST_SEED",
    "DIGIT_CLASSES",
    "EMBEDDED",
    "EMBEDDED_FILE",
    "EMBEDDED_SHA256",
    "FASHION_CLASSES",
    "ONLINE",
    "REBUILD_COMMAND",
    "DataIntegrityError",
    "DataSplits",
    "SplitLoaders",
    "load_data",
    "stratified_split",
]


class _Raw(NamedTuple):
    """A data set before the validation carve: training and test inputs and targets, class names."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: tuple[str, ...]


#: The one place in code that states the embedded file's sha256 (data/README.md repeats it; a test compares).
EMBEDDED_SHA256 = "3b3b576857f34c43428e5099131eaf849d189f3d029c73c1bcb023abe5335747"
EMBEDDED_FILE = "fashion_mnist_small.npz"
REBUILD_COMMAND = "python data/build_fashion_mnist_small.py  (from the repository root; see data/README.md)"
DEFAULT_CACHE = Path("~/.cache/gif_lite")
DIGITS_TEST_FRACTION = 0.2
DIGITS_TEST_SEED = 0  # the digits test split is fixed, like the official test sets of the other names

FASHION_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip
DIGIT_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


class DataIntegrityError(ValueError):
    """The embedded data file exists but its sha256 is not the recorded one."""


class SplitLoaders(NamedTuple):
    train: DataLoader
    val: DataLoader
    test: DataLoader


@dataclass(eq=False)
class DataSplits:
    """Train / validation / test tensors of one data set, with its class names and input shape.

    ``train_indices`` and ``val_indices`` locate each split inside the source training set.
    """

    name: str
    train: Split
    val: Split
    test: Split
    classes: tuple[str, ...]
    input_shape: tuple[int, ...]
    train_indices: torch.Tensor = field(repr=False)
    val_indices: torch.Tensor = field(repr=False)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def sizes(self) -> dict[str, int]:
        """Number of examples in each split."""
        return {"train": len(self.train[1]), "val": len(self.val[1]), "test": len(self.test[1])}

    def to(self, device: torch.device | str) -> DataSplits:
        """A copy with every tensor moved to ``device``."""

        def move(split: Split) -> Split:
            return split[0].to(device), split[1].to(device)

        return DataSplits(
            self.name, move(self.train), move(self.val), move(self.test),
            self.classes, self.input_shape, self.train_indices, self.val_indices,
        )  # fmt: skip

    def loaders(
        self,
        batch_size: int = 128,
        *,
        shuffle_train: bool = True,
        seed: int = 0,
        eval_batch_size: int | None = None,
    ) -> SplitLoaders:
        """DataLoaders over the three splits; the training order comes from a generator seeded by ``seed``."""
        generator = torch.Generator().manual_seed(seed)
        eval_bs = eval_batch_size or batch_size
        return SplitLoaders(
            train=DataLoader(
                TensorDataset(*self.train), batch_size, shuffle=shuffle_train, generator=generator
            ),
            val=DataLoader(TensorDataset(*self.val), eval_bs, shuffle=False),
            test=DataLoader(TensorDataset(*self.test), eval_bs, shuffle=False),
        )

    def __str__(self) -> str:
        sizes = ", ".join(f"{k} {v:,}" for k, v in self.sizes().items())
        return f"{self.name}: {sizes}; {self.num_classes} classes; inputs {self.input_shape}"


# --------------------------------------------------------------------------------------------------
# splitting


def stratified_split(targets: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Split ``range(len(targets))`` into (kept, held out), holding out ``round(fraction * n_c)`` of class c.

    Every class keeps at least one example on each side; both index tensors are sorted.
    """
    if not isinstance(targets, torch.Tensor) or targets.dim() != 1 or targets.is_floating_point():
        raise GifLiteError(
            f"targets must be a 1-D tensor of integer class labels, got {getattr(targets, 'dtype', targets)}"
        )
    check_seed(seed)
    if not 0.0 < fraction < 1.0:
        raise GifLiteError(f"the held-out fraction must lie in (0, 1), got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    held = []
    for c in torch.unique(targets):
        members = (targets == c).nonzero().flatten()
        if members.numel() < 2:
            raise GifLiteError(f"class {int(c)} has {members.numel()} example(s); cannot split it")
        k = min(max(round(fraction * members.numel()), 1), members.numel() - 1)
        held.append(members[torch.randperm(members.numel(), generator=generator)[:k]])
    held_out = torch.cat(held).sort().values
    return keep_mask(held_out, targets.numel()).nonzero().flatten(), held_out


def _to_inputs(
    images: torch.Tensor | np.ndarray, scale: float, dtype: torch.dtype, flatten: bool
) -> torch.Tensor:
    """uint8 / integer images (N x C x H x W) to floats in [0, 1], optionally flattened to N x D."""
    x = torch.as_tensor(np.asarray(images)).to(dtype) / scale
    return x.reshape(x.shape[0], -1) if flatten else x


def _assemble(name: str, raw: _Raw, *, val_fraction: float, seed: int) -> DataSplits:
    """Carve the stratified validation split out of the training set and wrap everything."""
    keep, held = stratified_split(raw.y_train, val_fraction, seed)
    return DataSplits(
        name=name,
        train=(raw.x_train[keep], raw.y_train[keep]),
        val=(raw.x_train[held], raw.y_train[held]),
        test=(raw.x_test, raw.y_test),
        classes=raw.classes,
        input_shape=tuple(raw.x_train.shape[1:]),
        train_indices=keep,
        val_indices=held,
    )


# --------------------------------------------------------------------------------------------------
# embedded sets


def _embedded_candidates(root: str | os.PathLike[str] | None) -> list[Path]:
    """Where the embedded file may be: ``root``, $GIF_LITE_DATA_DIR, the checkout's data/, ./data, ../data."""
    if root is not None:
        return [Path(root).expanduser() / EMBEDDED_FILE]
    dirs = [Path(d) for d in [os.environ.get("GIF_LITE_DATA_DIR")] if d]
    dirs += [Path(__file__).resolve().parents[2] / "data", Path.cwd() / "data", Path.cwd().parent / "data"]
    return [d / EMBEDDED_FILE for d in dirs]


def _embedded_path(root: str | os.PathLike[str] | None) -> Path:
    candidates = _embedded_candidates(root)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise FileNotFoundError(
        f"the embedded data set {EMBEDDED_FILE} was not found (looked in: {looked}). "
        f"Rebuild it with: {REBUILD_COMMAND}, or set GIF_LITE_DATA_DIR to the folder that holds it."
    )


def _verified_bytes(path: Path) -> bytes:
    """The file's bytes, after checking their sha256 against :data:`EMBEDDED_SHA256`."""
    raw = path.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()
    if digest != EMBEDDED_SHA256:
        raise DataIntegrityError(
            f"{path} is corrupt or not the expected version: its sha256 is {digest}, expected "
            f"{EMBEDDED_SHA256}. Rebuild it bit-for-bit with: {REBUILD_COMMAND}"
        )
    return raw


def _load_fashion_small(root: str | os.PathLike[str] | None, dtype: torch.dtype, flatten: bool) -> _Raw:
    path = _embedded_path(root)
    with np.load(io.BytesIO(_verified_bytes(path)), allow_pickle=False) as z:
        arrays = {k: z[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    return _Raw(
        _to_inputs(arrays["x_train"][:, None], 255.0, dtype, flatten),
        torch.from_numpy(arrays["y_train"].astype(np.int64)),
        _to_inputs(arrays["x_test"][:, None], 255.0, dtype, flatten),
        torch.from_numpy(arrays["y_test"].astype(np.int64)),
        FASHION_CLASSES,
    )


def _load_digits(dtype: torch.dtype, flatten: bool) -> _Raw:
    """scikit-learn digits: 8x8 images, values 0..16 scaled by 1/16; a fixed stratified 20% test split."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    images = _to_inputs(bunch.images[:, None], 16.0, dtype, flatten)
    targets = torch.from_numpy(bunch.target.astype(np.int64))
    rest, test = stratified_split(targets, DIGITS_TEST_FRACTION, DIGITS_TEST_SEED)
    return _Raw(images[rest], targets[rest], images[test], targets[test], DIGIT_CLASSES)


# --------------------------------------------------------------------------------------------------
# online sets (torchvision)


def _tv_mnist_like(cls_name: str) -> Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]]:
    def fetch(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
        import torchvision.datasets as tvd

        ds = getattr(tvd, cls_name)(str(root), train=train, download=download)
        return ds.data.numpy()[:, None], ds.targets.numpy()  # N x 1 x 28 x 28

    return fetch


def _tv_cifar10(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision.datasets as tvd

    ds = tvd.CIFAR10(str(root), train=train, download=download)
    return ds.data.transpose(0, 3, 1, 2), np.asarray(ds.targets)  # N x 32 x 32 x 3 -> N x 3 x 32 x 32


def _tv_svhn(root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    import torchvision.datasets as tvd

    ds = tvd.SVHN(str(root / "svhn"), split="train" if train else "test", download=download)
    return ds.data, ds.labels  # N x 3 x 32 x 32, labels 0..9 (torchvision maps '10' to 0)


ONLINE: dict[str, tuple[Callable[[Path, bool, bool], tuple[np.ndarray, np.ndarray]], tuple[str, ...]]] = {
    "mnist": (_tv_mnist_like("MNIST"), DIGIT_CLASSES),
    "fashion-mnist": (_tv_mnist_like("FashionMNIST"), FASHION_CLASSES),
    "cifar10": (_tv_cifar10, CIFAR10_CLASSES),
    "svhn": (_tv_svhn, DIGIT_CLASSES),
}
EMBEDDED = ("fashion-mnist-small", "digits")
DATA_NAMES = EMBEDDED + tuple(ONLINE)


def _fetch_online(name: str, root: Path, train: bool, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Call torchvision, turning its missing-file and network failures into errors that say what to do."""
    fetch = ONLINE[name][0]
    alternative = 'use the embedded data set load_data("fashion-mnist-small"), which needs no network'
    if not download:
        try:
            return fetch(root, train, False)
        except RuntimeError as e:  # torchvision: "Dataset not found ... use download=True"
            raise FileNotFoundError(
                f"{name!r} is not in the cache {root}. Pass download=True to fetch it (needs internet), "
                f"or {alternative}."
            ) from e
    try:
        return fetch(root, train, True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise RuntimeError(
            f"downloading {name!r} into {root} failed ({type(e).__name__}: {e}). The machine seems to be "
            f"offline or the server unreachable; retry when online, or {alternative}."
        ) from e


def _load_online(
    name: str, root: str | os.PathLike[str] | None, download: bool, dtype: torch.dtype, flatten: bool
) -> _Raw:
    cache = Path(root if root is not None else DEFAULT_CACHE).expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    x_train, y_train = _fetch_online(name, cache, True, download)
    x_test, y_test = _fetch_online(name, cache, False, download)
    return _Raw(
        _to_inputs(x_train, 255.0, dtype, flatten),
        torch.as_tensor(np.asarray(y_train, dtype=np.int64)),
        _to_inputs(x_test, 255.0, dtype, flatten),
        torch.as_tensor(np.asarray(y_test, dtype=np.int64)),
        ONLINE[name][1],
    )


# --------------------------------------------------------------------------------------------------
# the one entry point


def load_data(
    name: str = "fashion-mnist-small",
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    flatten: bool = False,
    dtype: torch.dtype = torch.float32,
    shape: tuple[int, int, int] | None = None,
) -> DataSplits:
    """Load a data set as train / validation / test tensors.

    Args:
        name: one of :data:`DATA_NAMES`.
        val_fraction: share of each class of the training set held out for validation.
        seed: seed of the validation carve (the test split never depends on it).
        root: folder of the embedded file (default: found automatically) or of the download cache
            (default ``~/.cache/gif_lite``).
        download: allow torchvision to download an online set that is not cached.
        flatten: return inputs as N x D instead of N x C x H x W.
        dtype: floating dtype of the inputs (e.g. ``torch.float64`` for exact Hessians).
        shape: ``(channels, height, width)`` to adapt images to another set's shape: zero-padded
            (centred) to the size and a single channel repeated (how the smoke runs of the paper-scale
            path let the embedded Fashion-MNIST stand in for CIFAR-10).  Not with ``flatten``.
    """
    if not dtype.is_floating_point:
        raise GifLiteError(f"dtype must be a floating dtype, got {dtype}")
    if name == "fashion-mnist-small":
        raw = _load_fashion_small(root, dtype, flatten)
    elif name == "digits":
        raw = _load_digits(dtype, flatten)
    elif name in ONLINE:
        raw = _load_online(name, root, download, dtype, flatten)
    else:
        raise GifLiteError(f"unknown data set {name!r}; valid names: {', '.join(DATA_NAMES)}")
    if shape is not None:
        if flatten:
            raise GifLiteError("shape adapts images and cannot be combined with flatten=True")
        raw = _Raw(
            _adapt(raw.x_train, shape), raw.y_train, _adapt(raw.x_test, shape), raw.y_test, raw.classes
        )
    return _assemble(name, raw, val_fraction=val_fraction, seed=seed)


def _adapt(images: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """Zero-pad N x C x H x W images (centred) to ``shape[1:]`` and repeat one channel to ``shape[0]``."""
    if len(shape) != 3 or any(not isinstance(d, int) or d < 1 for d in shape):
        raise GifLiteError(f"shape must be (channels, height, width) of positive ints, got {shape!r}")
    c, h, w = shape
    _, c0, h0, w0 = images.shape
    if h < h0 or w < w0:
        raise GifLiteError(
            f"shape {shape} is smaller than the images ({c0}, {h0}, {w0}); only padding is done"
        )
    if c != c0 and c0 != 1:
        raise GifLiteError(f"cannot turn {c0}-channel images into {c} channels (only 1 -> c)")
    top, left = (h - h0) // 2, (w - w0) // 2
    images = torch.nn.functional.pad(images, (left, w - w0 - left, top, h - h0 - top))
    return images.expand(-1, c, -1, -1).contiguous()
