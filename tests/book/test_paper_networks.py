"""bench/paper_networks.py (its smoke run, on the same code path as the full one) and the book's reader
of its committed results (gif_lite.book.paper_networks)."""

from __future__ import annotations

import functools
import gzip
import importlib.util
import sys
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pytest
import torch

from gif_lite.book import paper_networks as pn

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parents[2]


@functools.cache
def _bench() -> Any:
    name = "bench_paper_networks"
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "paper_networks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_smoke_run_writes_every_part(tmp_path: Path) -> None:
    rows = _bench().main(["--smoke", "--threads", "1", "--out", str(tmp_path)])
    assert set(rows) == set(pn.PARTS)
    for part in pn.PARTS:
        df, meta = pn.load(part, tmp_path)
        assert len(df) == len(rows[part]) > 0
        assert meta["command"].startswith("python bench/paper_networks.py --smoke")
        assert str(tmp_path) not in meta["command"]  # no machine path in the record
    tiny, _ = pn.load("tinynet", tmp_path)
    solves = tiny[tiny["method"].str.match(r"LSQR|Landweber")]
    for _, part in solves.groupby("ratio"):
        lsqr = part[part["method"] == "LSQR"].iloc[0]
        assert lsqr["cos_lsqr"] == pytest.approx(1.0)
        # LSQR's k-th iterate minimises the misfit over the Krylov space that holds Landweber's
        # first k iterates: with more LSQR iterations than Landweber steps it cannot be worse
        landweber = part[part["method"].str.startswith("Landweber")]
        assert (landweber["misfit"] >= lsqr["misfit"] - 1e-6).all()
        assert (part["sigma_max"] >= part["sigma_min_upper"]).all()
    fig3, _ = pn.load("figure3", tmp_path)
    assert fig3["negative_top"].between(0, 1).all() and fig3["negative_all"].between(0, 1).all()


def test_norm_penalty_hessian_is_the_autograd_hessian() -> None:
    theta = torch.randn(7, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    exact = torch.autograd.functional.hessian(lambda t: 0.3 * t.norm() / 2, theta)
    assert torch.allclose(_bench().norm_penalty_hessian(theta, 0.3), exact, atol=1e-12)


def test_paper_trigger_adds_16_on_a_checkerboard_and_clamps() -> None:
    images = torch.tensor([[[[0, 250], [100, 255]]]], dtype=torch.uint8)
    out = _bench().paper_trigger(images)
    assert out.tolist() == [[[[0, 255], [116, 255]]]]


def test_mnist_format_reads_idx_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for stem, n in (("train", 3), ("t10k", 2)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        head = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
        with gzip.open(tmp_path / f"{stem}-images-idx3-ubyte.gz", "wb") as f:
            f.write(head + images.tobytes())
        labels = np.arange(n, dtype=np.uint8)
        (tmp_path / f"{stem}-labels-idx1-ubyte").write_bytes(
            bytes([0, 0, 8, 1]) + n.to_bytes(4, "big") + labels.tobytes()
        )
        if stem == "train":
            first = images
    data = _bench().mnist_format(tmp_path)
    assert data["x_train"].shape == (3, 1, 28, 28) and data["y_test"].tolist() == [0, 1]
    assert torch.equal(data["x_train"][:, 0], torch.from_numpy(first))
    with pytest.raises(FileNotFoundError, match="dataset-fashion-mnist"):
        _bench().mnist_format(tmp_path / "missing")


def test_extrapolate_continues_a_line_in_log_width() -> None:
    xs, ys = pn.extrapolate(np.array([8.0, 16.0, 32.0]), np.array([0.1, 0.2, 0.3]), 64)
    assert xs.tolist() == [32.0, 64.0] and np.allclose(ys, [0.3, 0.4])


def test_committed_results_load_and_draw() -> None:
    for part in ("tinynet", "figure3", "resnet"):  # the full runs the gif chapter reads
        _, meta = pn.load(part)
        assert {"command", "machine", "wall_seconds"} <= set(meta) and "--smoke" not in meta["command"]
        assert meta["complete"], f"{part}: the committed run stopped before its end"
    tiny, _ = pn.load("tinynet")
    table = pn.tinynet_table(tiny)
    assert len(table) == len(tiny) and "cos with LSQR" in table
    fig = pn.plot_paper_networks(tiny, pn.load("figure3")[0], pn.load("resnet")[0])
    assert len(fig.axes) == 3
    with pytest.raises(ValueError, match="unknown part"):
        pn.load("vgg")
