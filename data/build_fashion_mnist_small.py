"""Rebuild ``data/fashion_mnist_small.npz`` bit-for-bit from the Fashion-MNIST IDX files.

The subset is class-balanced and seeded: 1,000 images per class from the 60,000 training images and
200 per class from the 10,000 test images.  Within each class, examples are ranked by the raw 64-bit
output of NumPy's PCG64 bit generator (a stream NumPy guarantees stable across versions) and the first
k are kept; the kept examples stay in their original order.

The archive is written without ``np.savez_compressed``, whose zip entries carry the current time:
each member is a ``.npy`` file (format 1.0, header written here) stored with DEFLATE level 9 and a
fixed timestamp, so two runs with the same zlib give identical bytes (compare the sha256 printed).

Usage (from the repository root; the IDX files come with Debian's ``dataset-fashion-mnist``)::

    python data/build_fashion_mnist_small.py
    python data/build_fashion_mnist_small.py --source DIR --out data/fashion_mnist_small.npz
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import zipfile
from pathlib import Path

import numpy as np

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
DEFAULT_OUT = Path(__file__).resolve().parent / "fashion_mnist_small.npz"
SEED = 20171025  # Fashion-MNIST's arXiv submission date; any fixed integer would do
PER_CLASS = {"train": 1000, "test": 200}
SOURCES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
IDX_DTYPES = {0x08: np.dtype(np.uint8)}  # Fashion-MNIST only uses unsigned bytes


def read_idx(path: Path) -> np.ndarray:
    """Parse a (gzipped) IDX file: 2 zero bytes, a dtype code, ndim, ndim big-endian uint32 sizes, data."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an unsigned-byte IDX file (magic {raw[:4].hex()})")
    ndim = raw[3]
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    offset = 4 + 4 * ndim
    count = int(np.prod(shape))
    if len(raw) != offset + count:
        raise ValueError(f"{path}: header says {shape} ({count} bytes) but {len(raw) - offset} bytes follow")
    return np.frombuffer(raw, dtype=IDX_DTYPES[raw[2]], offset=offset).reshape(shape).copy()


def balanced_subset(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """Sorted indices of ``per_class`` examples of each class, chosen by a seeded random ranking."""
    keys = np.random.PCG64(seed).random_raw(labels.size)  # one stable 64-bit key per example
    chosen = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        if members.size < per_class:
            raise ValueError(f"class {c} has only {members.size} examples, {per_class} requested")
        ranked = members[np.argsort(keys[members], kind="stable")]
        chosen.append(ranked[:per_class])
    return np.sort(np.concatenate(chosen))


def npy_bytes(array: np.ndarray) -> bytes:
    """An array in NPY format 1.0 with a header written here (stable across NumPy versions)."""
    array = np.ascontiguousarray(array)
    if array.dtype.byteorder == ">" or array.dtype.kind not in "ui":
        raise ValueError(f"only little-endian integer arrays are stored, got {array.dtype}")
    descr = array.dtype.str  # e.g. '|u1', '<i4'
    header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple(array.shape)!r}, }}"
    preamble = 10  # magic (6) + version (2) + header length (2)
    pad = -(preamble + len(header) + 1) % 64
    header_bytes = (header + " " * pad + "\n").encode("latin1")
    return b"\x93NUMPY\x01\x00" + len(header_bytes).to_bytes(2, "little") + header_bytes + array.tobytes()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """A reproducible ``.npz``: members in the given order, fixed dates and permissions, DEFLATE level 9."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the building platform
            info.external_attr = 0o644 << 16
            zf.writestr(info, npy_bytes(array), compresslevel=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(buffer.getvalue())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(source: Path, out: Path, seed: int = SEED) -> dict[str, np.ndarray]:
    """Read the IDX files under ``source``, take the balanced subsets, write ``out``; return the arrays."""
    arrays: dict[str, np.ndarray] = {}
    for split, (images_file, labels_file) in SOURCES.items():
        images = read_idx(source / images_file)
        labels = read_idx(source / labels_file)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise ValueError(f"{split}: images {images.shape} do not match labels {labels.shape}")
        index = balanced_subset(labels, PER_CLASS[split], seed)
        arrays[f"x_{split}"] = images[index]
        arrays[f"y_{split}"] = labels[index]
        arrays[f"{split}_source_index"] = index.astype("<i4")
    write_npz(out, arrays)
    return arrays


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--source", type=Path, default=DEFAULT_SOURCE, help="folder with the four IDX .gz files"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the .npz to write")
    parser.add_argument("--seed", type=int, default=SEED, help="seed of the subset (changes the sha256)")
    args = parser.parse_args(argv)
    missing = [f for pair in SOURCES.values() for f in pair if not (args.source / f).exists()]
    if missing:
        parser.error(
            f"missing {missing} in {args.source}; install Debian's dataset-fashion-mnist "
            "(sudo apt-get install dataset-fashion-mnist) or download them from "
            "https://github.com/zalandoresearch/fashion-mnist and pass --source"
        )
    for f in (f for pair in SOURCES.values() for f in pair):
        print(f"source  {sha256(args.source / f)}  {f}")
    arrays = build(args.source, args.out, args.seed)
    for name, array in arrays.items():
        print(f"array   {name:20s} {array.dtype!s:6s} {array.shape}")
    print(f"wrote   {args.out} ({args.out.stat().st_size:,} bytes)")
    print(f"sha256  {sha256(args.out)}")


if __name__ == "__main__":
    main()
