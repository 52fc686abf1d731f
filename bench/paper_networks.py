"""The paper's own networks on a CPU: how far its Landweber iteration is from the least-squares GIF.

The book's verdict on the GIF paper (Lyu et al., arXiv 2312.05586) was measured on stand-ins of
2,000-11,000 parameters.  This script measures it on the paper's networks, with the paper's
settings from the protocol ledger (``gif_lite/book/paper_protocol.json``), on the full
Fashion-MNIST (Debian's ``dataset-fashion-mnist``, MNIST's file format: ``--data-dir`` takes MNIST's
own files too).  Four parts, each writing one CSV (and a JSON of the command, the machine and the
wall time) into ``--out`` (default ``data/paper_networks``, which the gif chapter reads):

* ``tinynet``: TinyNet (398,090 parameters) and Table 3's backdoor.  Trained at the paper's recipe
  on 60,000 images, 10% of them (outside the target class) stamped with the paper's faint
  checkerboard and relabelled 4; GIF at each ``--ratios`` with the paper's selection (highest
  outputs), solved by LSQR (to ``--lsqr-tol``) and by the paper's Landweber at each
  ``--landweber`` step count.  For each solve: HVPs, the misfit ``||H[:,P] x - g|| / ||g||``, the
  cosine with the LSQR solution and with ``H[P,:] g``, and the paper's scores (clean / relabel /
  corrupt accuracy on training images, the step grown by 0.3 and picked by their F1); per ratio,
  ``sigma_max`` and a Lanczos upper estimate of ``sigma_min`` of ``H[:,P]``.  One network retrained
  with the true labels gives the scores to aim for.
* ``figure3``: Figure 3's network (``FullyConnectedNet(784, 8, 10, 3)``, 6,442 parameters) at each
  alpha of the paper's grid, cross entropy and MSE, with the paper's regulariser
  ``alpha ||theta|| / 2``: the share of negative eigenvalues (< -1e-8) among the 500 of largest
  magnitude (the paper's Lanczos count; here exact, from the dense float64 Hessian) and in the
  whole spectrum.
* ``resnet``: ResNet18 at ``--widths`` on Table 2's class removal (the embedded Fashion-MNIST,
  2,048 images, as ``bench/paper_scale.py``), with the same measurements (the paper's 30 steps).
* ``speed``: GIF by LSQR on TinyNet with P = 10% from the Hessian of the paper's batch (2,048
  images) to a residual of 1e-4, beside the paper's Landweber on the same machine.

``--smoke`` runs every part at tiny sizes on the embedded data (seconds; the tests run it).  The
full run, about two hours on two cores::

    python bench/paper_networks.py --part all
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl
from gif_lite.book import backdoor, configs
from gif_lite.book import experiments as ex
from gif_lite.book.chapter_utils import cos
from gif_lite.book.data import load_data
from gif_lite.book.ledger import experiment as ledger_experiment
from gif_lite.book.models import FullyConnectedNet, build_model
from gif_lite.book.runtime import pick_device
from gif_lite.influence import misfit
from gif_lite.spectrum import lanczos
from gif_lite.train import Recipe, predict

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "data"))  # the IDX reader of the embedded set's build script
from build_fashion_mnist_small import read_idx  # noqa: E402

DEBIAN_DIR = "/usr/share/datasets/fashion-mnist"
PARTS = ("figure3", "tinynet", "resnet", "speed")
Row = dict[str, Any]


# ------------------------------------------------------------------------------------------- data
def _find(folder: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(
        f"{stem}(.gz) is not in {folder}: install Debian's dataset-fashion-mnist "
        "(apt-get install dataset-fashion-mnist) or pass --data-dir with MNIST-format files"
    )


def mnist_format(folder: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """The 60,000 + 10,000 images of an MNIST-format folder as uint8 N x 1 x 28 x 28, and labels."""
    d = Path(folder)
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        images = read_idx(_find(d, f"{stem}-images-idx3-ubyte"))
        labels = read_idx(_find(d, f"{stem}-labels-idx1-ubyte"))
        out[f"x_{split}"] = torch.from_numpy(images).unsqueeze(1)
        out[f"y_{split}"] = torch.from_numpy(labels.astype(np.int64))
    return out


def embedded_as_uint8(n_train: int, n_test: int) -> dict[str, torch.Tensor]:
    """The smoke runs' stand-in: the embedded Fashion-MNIST subset, back in 0..255."""
    s = load_data("fashion-mnist-small")
    to8 = lambda x: (x * 255).round().clamp(0, 255).to(torch.uint8)  # noqa: E731
    return {
        "x_train": to8(s.train[0][:n_train]), "y_train": s.train[1][:n_train],
        "x_test": to8(s.test[0][:n_test]), "y_test": s.test[1][:n_test],
    }  # fmt: skip


def normalise(raw: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, float, float]:
    """Float images ``(x / 255 - mean) / std`` with the training set's mean and std."""
    x = raw["x_train"].float() / 255
    mean, std = float(x.mean()), float(x.std())
    return (x - mean) / std, (raw["x_test"].float() / 255 - mean) / std, mean, std


# ------------------------------------------------------------------------- one GIF, measured
@dataclasses.dataclass
class Solve:
    name: str
    result: gl.InfluenceResult
    seconds: float


def _quiet(fn: Callable[[], gl.InfluenceResult]) -> tuple[gl.InfluenceResult, float]:
    start = time.perf_counter()
    with warnings.catch_warnings():  # caps are the protocol's; residuals are reported instead
        warnings.simplefilter("ignore", gl.ConvergenceWarning)
        res = fn()
    return res, time.perf_counter() - start


def gif_solves(
    obj: gl.Objective,
    g: torch.Tensor,
    subset: torch.Tensor,
    *,
    lsqr_tol: float,
    lsqr_max_iter: int,
    landweber_steps: Sequence[int],
    normalizer_step: float,
) -> list[Solve]:
    """GIF on ``P = subset`` by LSQR to ``lsqr_tol`` and by the paper's Landweber at each step count."""
    out = []
    res, sec = _quiet(lambda: gl.generalized_influence(obj, g, subset, tol=lsqr_tol, max_iter=lsqr_max_iter))
    out.append(Solve("LSQR", res, sec))
    for k in landweber_steps:
        res, sec = _quiet(
            lambda k=k: gl.generalized_influence(
                obj,
                g,
                subset,
                solver="landweber",
                tol=1e-9,
                step_tol=1e-9,
                max_iter=k,
                normalizer_step=normalizer_step,
                max_restarts=100_000,
            )
        )
        out.append(Solve(f"Landweber {k}", res, sec))
    return out


def singular_values(
    obj: gl.Objective, subset: torch.Tensor, steps: int, seed: int = 0
) -> tuple[float, float]:
    """``sigma_max`` of ``H[:,P]`` and an upper estimate of ``sigma_min`` (``steps`` Lanczos steps on
    ``H[P,:] H[:,P]``, two HVPs each: the extreme Ritz values' square roots)."""
    n = obj.num_params

    def normal(v: torch.Tensor) -> torch.Tensor:
        full = torch.zeros(n, dtype=obj.dtype, device=obj.device)
        full[subset] = v.to(obj.dtype)
        return obj.hvp(obj.hvp(full))[subset].to(v.dtype)

    ritz = lanczos(normal, subset.numel(), steps, seed, dtype=obj.dtype, device=obj.device).ritz_values
    return math.sqrt(max(float(ritz.max()), 0.0)), math.sqrt(max(float(ritz.min()), 0.0))


def measure(obj: gl.Objective, g: torch.Tensor, solves: Sequence[Solve]) -> list[Row]:
    """Misfit, HVPs and cosines with LSQR's solution and with ``H[P,:] g`` of each solve."""
    reference = solves[0].result.delta
    subset = solves[0].result.subset
    assert subset is not None
    hpg = obj.hvp(g)[subset]
    rows = []
    for s in solves:
        rows.append({
            "method": s.name, "hvps": s.result.hvps, "seconds": round(s.seconds, 1),
            "iterations": s.result.iterations, "residual": s.result.residual,
            "converged": s.result.converged,
            "misfit": misfit(obj, g, s.result.delta, subset),
            "cos_lsqr": cos(s.result.delta, reference), "cos_hpg": cos(s.result.delta, hpg),
        })  # fmt: skip
    return rows


# ----------------------------------------------------------------------------- TinyNet, Table 3
def paper_trigger(images: torch.Tensor) -> torch.Tensor:
    """The paper's trigger on uint8 images: +16 on a checkerboard over the whole image, clamped at
    255 (its Table 3 notebook, cell 3, lines 15-21)."""
    pattern = torch.zeros(images.shape[-2:], dtype=torch.int32)
    pattern[::2, 1::2] = 16
    pattern[1::2, ::2] = 16
    return (images.to(torch.int32) + pattern).clamp(max=255).to(torch.uint8)


#: Where trained networks are kept between runs (``--cache``; None: not kept).
CACHE: Path | None = None


def _train(net: nn.Module, data: gl.Data, recipe: Recipe, seed: int, key: str = "") -> nn.Module:
    """Train ``net`` by ``recipe``, or load the state a run with the same ``key`` left in ``CACHE``."""
    path = CACHE / f"{key}-{seed}-{recipe.epochs}.pt" if CACHE is not None and key else None
    if path is not None and path.is_file():
        net.load_state_dict(torch.load(path))
        return net.eval()
    gl.train_minibatch(net, F.cross_entropy, data, recipe, seed=seed, progress=False)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    return net.eval()


@dataclasses.dataclass
class Table3:
    """Table 3's backdoor on the chosen data: the poisoned training set, the network trained on it,
    the poisoned group with its true labels, the clean and triggered test images."""

    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    group: torch.Tensor
    true_labels: torch.Tensor
    x_test: torch.Tensor
    x_test_trig: torch.Tensor
    y_test: torch.Tensor
    recipe: Recipe
    width: int
    gen: torch.Generator

    def build(self, seed: int) -> nn.Module:
        return build_model("tinynet", seed=seed, in_channels=1, width=self.width)

    def hessian(self, n: int) -> gl.Objective:
        """The poisoned training objective on ``n`` images drawn with the run's generator."""
        idx = torch.randperm(len(self.y_train), generator=self.gen)[:n].to(self.y_train.device)
        data = (self.x_train[idx], self.y_train[idx])
        wd = self.recipe.weight_decay
        return gl.Objective(self.model, F.cross_entropy, data, weight_decay=wd, hvp_method="reuse")

    def g(self) -> torch.Tensor:
        """``p (grad L_U,new - grad L_U,old)``: giving the poisoned images their true labels."""
        data, group = (self.x_train, self.y_train), self.group.to(self.y_train.device)
        labels = self.true_labels.to(self.y_train.device)
        return gl.relabel_problem(self.model, F.cross_entropy, data, group, labels, at_optimum=True).g


def table3_setup(args: argparse.Namespace, device: torch.device) -> Table3:
    """Poison 10% of the training images outside the target class with the paper's trigger and
    train TinyNet on them at the paper's recipe (or load it from ``--cache``)."""
    cfg = configs.paper_config("mnist-tinynet", smoke=False)
    recipe = cfg.paper_recipe.but(epochs=args.epochs)
    raw = embedded_as_uint8(512, 256) if args.smoke else mnist_format(args.data_dir)
    gen = torch.Generator().manual_seed(args.seed)
    candidates = (raw["y_train"] != cfg.target).nonzero().flatten()
    count = round(cfg.fraction * len(raw["y_train"]))
    group = candidates[torch.randperm(candidates.numel(), generator=gen)[:count]].sort().values
    true_labels = raw["y_train"][group].clone()
    poisoned = dict(raw)
    poisoned["x_train"] = raw["x_train"].clone()
    poisoned["x_train"][group] = paper_trigger(raw["x_train"][group])
    poisoned["y_train"] = raw["y_train"].clone()
    poisoned["y_train"][group] = cfg.target
    x_train, x_test, mean, std = normalise(poisoned)
    x_test_trig = (paper_trigger(raw["x_test"]).float() / 255 - mean) / std
    width = 4 if args.smoke else 32
    y_train = poisoned["y_train"].to(device)
    print(f"# TinyNet width {width}: {len(y_train):,} training images, {count:,} poisoned, {recipe}")
    model = build_model("tinynet", seed=args.seed, in_channels=1, width=width).to(device)
    model = _train(model, (x_train.to(device), y_train), recipe, args.seed, f"tinynet{width}-poisoned")
    return Table3(
        model, x_train.to(device), y_train, group, true_labels, x_test.to(device),
        x_test_trig.to(device), raw["y_test"].to(device), recipe, width, gen,
    )  # fmt: skip


def tinynet(args: argparse.Namespace, device: torch.device) -> list[Row]:
    cfg = configs.paper_config("mnist-tinynet", smoke=False)
    t3 = table3_setup(args, device)
    model, x_train, y_train, group, true_labels = t3.model, t3.x_train, t3.y_train, t3.group, t3.true_labels
    x_test, x_test_trig, y_test, target = t3.x_test, t3.x_test_trig, t3.y_test, cfg.target
    fixed_y = y_train.clone()
    fixed_y[group] = true_labels.to(device)
    key = f"tinynet{t3.width}-true"
    retrained = _train(t3.build(args.seed).to(device), (x_train, fixed_y), t3.recipe, args.seed, key)
    gen = t3.gen

    # the paper's scores on training images: all poisoned ones, a fixed sample of the clean ones
    clean = torch.ones(len(y_train), dtype=torch.bool)
    clean[group] = False
    clean_idx = clean.nonzero().flatten()
    clean_idx = clean_idx[torch.randperm(clean_idx.numel(), generator=gen)[: args.eval_clean]]
    eval_idx = torch.cat([group, clean_idx]).to(device)
    eval_data = (x_train[eval_idx], y_train[eval_idx])
    eval_group = torch.arange(group.numel(), device=device)

    def scores(net: nn.Module) -> dict[str, float]:
        s = backdoor.paper_scores(net, eval_data, eval_group, true_labels, target)
        pred = predict(net, torch.cat([x_test, x_test_trig])).argmax(1)
        n = len(y_test)
        s["test_clean"] = float((pred[:n] == y_test).double().mean())
        s["test_asr"] = float((pred[n:][y_test != target] == target).double().mean())
        return s

    # the Hessian: the poisoned objective on a random sample; g: the relabelling's gradient change
    obj, g = t3.hessian(args.hessian_batch), t3.g()
    sample = group[torch.randperm(group.numel(), generator=gen)[: args.selection_batch]].to(device)
    rows: list[Row] = []
    base = {"network": "TinyNet", "params": gl.count_parameters(model), "hessian_batch": args.hessian_batch}
    for name, net in (("trained", model), ("retrained with true labels", retrained)):
        rows.append({**base, "ratio": "", "method": name, **scores(net)})
    for ratio in args.ratios:
        subset = gl.select(model, "highest_outputs", ratio, x_train[sample]).subset
        solves = gif_solves(
            obj, g, subset, lsqr_tol=args.lsqr_tol, lsqr_max_iter=args.lsqr_max_iter,
            landweber_steps=args.landweber, normalizer_step=cfg.landweber["normalizer_step"],
        )  # fmt: skip
        smax, smin = singular_values(obj, subset, args.lanczos_steps)
        for row, s in zip(measure(obj, g, solves), solves, strict=True):
            step, _, path = backdoor.paper_step_search(
                model, s.result.delta, subset,
                lambda m: backdoor.paper_scores(m, eval_data, eval_group, true_labels, target),
                increment=args.walk_increment,
            )  # fmt: skip
            moved = ex.apply_copy(model, ex.scaled_update(s.result.delta, step), subset)
            rows.append({
                **base, "ratio": ratio, "P": subset.numel(), **row, "sigma_max": smax,
                "sigma_min_upper": smin, "step": step, "walk_evaluations": len(path),
                **scores(moved),
            })  # fmt: skip
            _print_row(rows[-1], rows)
    return rows


# ------------------------------------------------------------------------- the Figure 3 network
def _flat(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.reshape(-1) for p in net.parameters()])


def _mse(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(out, F.one_hot(y, 10).to(out.dtype))


def norm_penalty_hessian(theta: torch.Tensor, alpha: float) -> torch.Tensor:
    """Hessian of the paper's regulariser ``alpha ||theta|| / 2``:
    ``alpha / 2 (I / ||theta|| - theta theta^T / ||theta||^3)``."""
    r = theta.norm()
    eye = torch.eye(len(theta), dtype=theta.dtype, device=theta.device)
    return alpha / 2 * (eye / r - torch.outer(theta, theta) / r**3)


def figure3(args: argparse.Namespace, device: torch.device) -> list[Row]:
    """Train each network with ``loss + alpha ||theta|| / 2`` (the paper's RegularizedLoss) and count
    the negative eigenvalues of the Hessian of that objective on a fixed batch."""
    ledger = {r.get("key"): r.get("value") for r in ledger_experiment("figure3")["rows"]}
    alphas = args.alphas if args.alphas else ledger["alphas"]
    k = ledger["num_eigval"] if not args.smoke else 50
    raw = embedded_as_uint8(1024, 64) if args.smoke else mnist_format(args.data_dir)
    x_train, _, _, _ = normalise(raw)
    x_train, y_train = x_train.reshape(len(x_train), -1).to(device), raw["y_train"].to(device)
    hx, hy = x_train[: ledger["hessian_batch"]].double(), y_train[: ledger["hessian_batch"]]
    losses: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
        "cross entropy": F.cross_entropy, "MSE": _mse,
    }  # fmt: skip
    rows = []
    for loss_name, loss_fn in losses.items():
        for alpha in alphas:
            for net_seed in range(args.networks):
                torch.manual_seed(1000 * net_seed + round(alpha * 100))
                net = FullyConnectedNet(hidden_size=args.fc_hidden).to(device)
                opt = torch.optim.SGD(net.parameters(), lr=args.fc_lr, momentum=0.9)
                gen = torch.Generator().manual_seed(net_seed)
                start = time.perf_counter()
                for _ in range(args.fc_epochs):
                    perm = torch.randperm(len(y_train), generator=gen).to(device)
                    for i in range(0, len(perm), args.fc_batch):
                        b = perm[i : i + args.fc_batch]
                        opt.zero_grad()
                        loss = loss_fn(net(x_train[b]), y_train[b]) + alpha * _flat(net).norm() / 2
                        loss.backward()
                        last = float(loss.detach())
                        opt.step()
                net64 = net.double().eval()
                h = gl.Objective(net64, loss_fn, (hx, hy)).hessian()
                h += norm_penalty_hessian(_flat(net64).detach(), alpha)
                ev = torch.linalg.eigvalsh((h + h.T) / 2)
                top = ev[ev.abs().argsort(descending=True)[:k]]
                rows.append({
                    "network": "FullyConnectedNet", "loss": loss_name, "alpha": alpha, "seed": net_seed,
                    "epochs": args.fc_epochs, "train_loss": last, "num_eigval": k,
                    "negative_top": float((top < -1e-8).double().mean()),
                    "negative_all": float((ev < -1e-8).double().mean()),
                    "lambda_min": float(ev[0]), "lambda_max": float(ev[-1]),
                    "seconds": round(time.perf_counter() - start, 1),
                })  # fmt: skip
                _print_row(rows[-1], rows)
    return rows


# ---------------------------------------------------------------------- ResNet18 at three widths
def resnet(args: argparse.Namespace, device: torch.device) -> list[Row]:
    cfg = configs.paper_config("mnist-resnet18", smoke=False)
    splits = load_data("fashion-mnist-small").to(device)
    n_train = 256 if args.smoke else 2048
    train = (splits.train[0][:n_train], splits.train[1][:n_train])
    recipe = cfg.paper_recipe.but(
        epochs=1 if args.smoke else 6, batch_size=64, lr=cfg.paper_recipe.lr * 64 / 512
    )
    removed = (cfg.removed_class,)
    n_hessian = 16 if args.smoke else 32
    rows: list[Row] = []
    for width in args.widths:
        net = build_model("resnet18", seed=args.seed, in_channels=1, width=width).to(device)
        start = time.perf_counter()
        model = _train(net, train, recipe, args.seed, f"resnet{width}-trained")
        setup = ex.removal_setup(
            model, train, removed, n_hessian=n_hessian, weight_decay=recipe.weight_decay, batch_size=256
        )
        x_u = setup.examples[0][:n_hessian]
        subset = gl.select(model, "highest_outputs", 0.1, x_u).subset
        solves = gif_solves(
            setup.obj, setup.g, subset, lsqr_tol=args.lsqr_tol, lsqr_max_iter=args.resnet_lsqr_max_iter,
            landweber_steps=[5] if args.smoke else [30], normalizer_step=3.0,
        )  # fmt: skip
        smax, smin = singular_values(setup.obj, subset, args.lanczos_steps)
        keep = torch.ones(len(train[1]), dtype=torch.bool, device=device)
        keep[setup.group] = False
        scratch = _train(
            build_model("resnet18", seed=args.seed + 1, in_channels=1, width=width).to(device),
            (train[0][keep], train[1][keep]), recipe, args.seed + 1, f"resnet{width}-without",
        )  # fmt: skip
        base = {
            "network": "ResNet18",
            "width": width,
            "params": gl.count_parameters(model),
            "P": subset.numel(),
        }
        for name, net_ in (("trained", model), ("retrained without the class", scratch)):
            rows.append({**base, "method": name, **ex.removal_scores(net_, splits.test, removed)})
        steps = [0.03 * j for j in range(1, (4 if args.smoke else 31))]
        for row, s in zip(measure(setup.obj, setup.g, solves), solves, strict=True):
            step, _, _ = ex.best_step(
                model,
                s.result.delta,
                subset,
                steps,
                lambda m: ex.removal_scores(m, splits.val, removed)["f1"],
            )
            moved = ex.apply_copy(model, ex.scaled_update(s.result.delta, step), subset)
            rows.append({
                **base, **row, "sigma_max": smax, "sigma_min_upper": smin, "step": step,
                **ex.removal_scores(moved, splits.test, removed),
                "width_seconds": round(time.perf_counter() - start, 1),
            })  # fmt: skip
            _print_row(rows[-1], rows)
    return rows


# -------------------------------------------------------------------------- speed, paper's batch
def speed(args: argparse.Namespace, device: torch.device) -> list[Row]:
    """LSQR to 1e-4 at P = 10% on Table 3's TinyNet from the paper's 2,048-image Hessian, and the
    paper's Landweber for ``--speed-landweber`` steps, on the same machine."""
    cfg = configs.paper_config("mnist-tinynet", smoke=False)
    t3 = table3_setup(args, device)
    n_h = 64 if args.smoke else cfg.hessian_batch
    obj, g = t3.hessian(n_h), t3.g()
    sample = t3.group[torch.randperm(t3.group.numel(), generator=t3.gen)[: args.selection_batch]]
    subset = gl.select(t3.model, "highest_outputs", 0.1, t3.x_train[sample.to(device)]).subset
    solves = gif_solves(
        obj, g, subset, lsqr_tol=1e-4, lsqr_max_iter=args.lsqr_max_iter,
        landweber_steps=[args.speed_landweber], normalizer_step=cfg.landweber["normalizer_step"],
    )  # fmt: skip
    rows: list[Row] = []
    for row, s in zip(measure(obj, g, solves), solves, strict=True):
        rows.append({
            "network": "TinyNet", "params": obj.num_params, "P": subset.numel(), "hessian_batch": n_h,
            **row, "minutes": round(s.seconds / 60, 2),
            "seconds_per_hvp": round(s.seconds / max(s.result.hvps, 1), 3),
            "threads": torch.get_num_threads(),
        })  # fmt: skip
        _print_row(rows[-1], rows)
    return rows


# ------------------------------------------------------------------------------------ driver
#: Called with the rows so far after each new one (the driver writes them, so a long part that is
#: stopped leaves what it measured).
PROGRESS: Callable[[list[Row]], None] | None = None


def _print_row(row: Row, rows: list[Row] | None = None) -> None:
    if PROGRESS is not None and rows is not None:
        PROGRESS(rows)
    print(
        " | ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()), flush=True
    )


def machine() -> str:
    model = ""
    if Path("/proc/cpuinfo").is_file():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model or platform.processor()}, {os.cpu_count()} cores, torch {torch.__version__}"


def write(
    out: Path, part: str, rows: list[Row], wall: float, argv: Sequence[str], complete: bool = True
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    fields: list[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]
    with open(out / f"{part}.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    hidden = ("--out", "--cache")
    shown = [a for i, a in enumerate(argv) if a not in hidden and (i == 0 or argv[i - 1] not in hidden)]
    meta = {
        "command": " ".join(["python bench/paper_networks.py", *shown]),
        "machine": machine(),
        "threads": torch.get_num_threads(),
        "wall_seconds": round(wall),
        "complete": complete,
        "date": time.strftime("%Y-%m-%d"),
    }
    (out / f"{part}.json").write_text(json.dumps(meta, indent=1) + "\n")


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--part", choices=(*PARTS, "all"), default="all")
    p.add_argument("--smoke", action="store_true", help="tiny sizes, embedded data: the code path in seconds")
    p.add_argument("--out", type=Path, help="folder of the CSV files (default data/paper_networks)")
    p.add_argument("--data-dir", default=DEBIAN_DIR, help="MNIST-format files (default: Debian's)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    p.add_argument("--cache", type=Path, help="keep trained networks here between runs")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ratios", type=float, nargs="+", default=[0.05, 0.1, 0.3, 0.5])
    p.add_argument("--landweber", type=int, nargs="+", default=[30, 200, 1000])
    p.add_argument("--lsqr-tol", type=float, default=1e-6)
    p.add_argument("--lsqr-max-iter", type=int, default=1000)
    p.add_argument("--resnet-lsqr-max-iter", type=int, default=300)
    p.add_argument("--lanczos-steps", type=int, default=40)
    p.add_argument("--epochs", type=int, help="TinyNet epochs (default the paper's 25)")
    p.add_argument("--hessian-batch", type=int, help="TinyNet Hessian images (default the paper's 2,048)")
    p.add_argument("--selection-batch", type=int, default=512, help="poisoned images the selection sees")
    p.add_argument("--eval-clean", type=int, default=5000, help="clean training images scored")
    p.add_argument("--walk-increment", type=float, help="the step walk's increment (default the paper's 0.3)")
    p.add_argument("--alphas", type=float, nargs="+", help="Figure 3 grid (default the paper's 0-0.25)")
    p.add_argument("--networks", type=int, default=2, help="Figure 3 networks per alpha (paper: 100)")
    p.add_argument("--fc-epochs", type=int, default=10)
    p.add_argument("--fc-batch", type=int, default=128)
    p.add_argument("--fc-lr", type=float, default=0.01)
    p.add_argument("--fc-hidden", type=int, default=8, help="Figure 3 hidden width (the paper's 8)")
    p.add_argument("--widths", type=int, nargs="+", default=[8, 16, 32])
    p.add_argument("--speed-landweber", type=int, default=1000)
    args = p.parse_args(argv)
    cfg = configs.paper_config("mnist-tinynet", smoke=False)
    if args.smoke:
        args.ratios, args.landweber, args.widths = [0.05, 0.3], [5, 10], [8]
        args.lsqr_max_iter, args.resnet_lsqr_max_iter, args.lanczos_steps = 20, 10, 8
        args.epochs, args.hessian_batch, args.eval_clean = 1, 64, 128
        args.alphas, args.networks, args.fc_epochs = args.alphas or [0.0, 0.1], 1, 1
        args.fc_hidden = 2
        args.selection_batch, args.speed_landweber = 32, 5
    args.epochs = args.epochs or cfg.paper_recipe.epochs
    args.walk_increment = args.walk_increment or cfg.increment
    args.hessian_batch = args.hessian_batch or cfg.hessian_batch
    if args.out is None:
        args.out = ROOT / "data" / "paper_networks" if not args.smoke else Path(tempfile.mkdtemp())
    return args


PART_FUNCTIONS: dict[str, Callable[[argparse.Namespace, torch.device], list[Row]]] = {
    "figure3": figure3, "tinynet": tinynet, "resnet": resnet, "speed": speed,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> dict[str, list[Row]]:
    """Run the asked parts; write one CSV + JSON each; return their rows (the tests read them)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse(argv)
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    results = {}
    global CACHE, PROGRESS
    CACHE = args.cache
    for part in PARTS if args.part == "all" else (args.part,):
        start = time.perf_counter()
        print(f"## {part}", flush=True)
        PROGRESS = lambda rows, part=part, start=start: write(  # noqa: E731
            args.out, part, rows, time.perf_counter() - start, argv, complete=False
        )
        results[part] = PART_FUNCTIONS[part](args, device)
        write(args.out, part, results[part], time.perf_counter() - start, argv)
    return results


if __name__ == "__main__":
    main()
