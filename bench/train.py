"""Benchmark of data loading and training on the embedded data sets; prints a table.

Rows: time to the first batch of ``fashion-mnist-small``; TinyCNN trained with Adam on it (test
accuracy, wall time); an MLP 64-32-10 (tanh, weight decay 1e-3) trained with float64 L-BFGS on digits
(test accuracy, final gradient norm, wall time).  Targets from the issue: TinyCNN test accuracy >= 0.85
in <= 60 s on 2 CPU cores; MLP test accuracy >= 0.95; first batch < 1 s.

Usage (from the repository root)::

    python bench/train.py                 # torch's default thread count
    python bench/train.py --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gif_lite.book.configs import TINYCNN_RECIPE
from gif_lite.book.data import DataSplits, load_data
from gif_lite.book.models import build_model
from gif_lite.params import count_parameters
from gif_lite.train import TrainResult, evaluate, train_lbfgs, train_minibatch

MLP: dict[str, Any] = {
    "sizes": (64, 32, 10),
    "activation": "tanh",
    "weight_decay": 1e-3,
    "tol": 1e-6,
    "max_iter": 5000,
}


def bench_loader() -> dict[str, object]:
    start = time.perf_counter()
    splits = load_data("fashion-mnist-small")
    x, _ = next(iter(splits.loaders(batch_size=128).train))
    return {
        "row": "loader fashion-mnist-small",
        "first_batch_s": time.perf_counter() - start,
        "batch": tuple(x.shape),
    }


def _row(
    name: str, model: nn.Module, splits: DataSplits, seconds: float, result: TrainResult
) -> dict[str, object]:
    """One table row: size, training time, accuracies and the final gradient norm of a trained model."""
    return {
        "row": name,
        "params": count_parameters(model),
        "train_s": seconds,
        "val_acc": evaluate(model, splits.val).accuracy,
        "test_acc": evaluate(model, splits.test).accuracy,
        "grad_norm": result.grad_norm,
        "steps": result.iterations,
    }


def bench_tinycnn() -> dict[str, object]:
    splits = load_data("fashion-mnist-small")
    model = build_model("tinycnn", seed=0)
    start = time.perf_counter()
    result = train_minibatch(
        model, nn.CrossEntropyLoss(), splits.train, TINYCNN_RECIPE, seed=0, progress=False
    )
    return _row(
        "TinyCNN fashion-mnist-small (Adam, cosine)", model, splits, time.perf_counter() - start, result
    )


def bench_mlp() -> dict[str, object]:
    splits = load_data("digits", dtype=torch.float64)
    model = build_model("mlp", sizes=MLP["sizes"], activation=MLP["activation"], seed=0).double()
    start = time.perf_counter()
    result = train_lbfgs(
        model, nn.CrossEntropyLoss(), splits.train, weight_decay=MLP["weight_decay"], tol=MLP["tol"],
        max_iter=MLP["max_iter"], progress=False,
    )  # fmt: skip
    return _row(
        "MLP 64-32-10 tanh digits (L-BFGS, float64)", model, splits, time.perf_counter() - start, result
    )


def _fmt(value: object, kind: str) -> str:
    if value is None:
        return ""
    if kind == "s":
        return f"{value:.2f}"
    if kind == "acc":
        return f"{value:.4f}"
    if kind == "g":
        return f"{value:.2e}"
    return str(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows as JSON here")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = [bench_loader(), bench_tinycnn(), bench_mlp()]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
        f"{platform.processor() or platform.machine()}, load average {os.getloadavg()[0]:.1f}"
    )
    cols = [("params", "params", ""), ("steps", "steps", ""), ("train_s", "time s", "s"),
            ("first_batch_s", "1st batch s", "s"), ("val_acc", "val acc", "acc"),
            ("test_acc", "test acc", "acc"), ("grad_norm", "grad norm", "g")]  # fmt: skip
    print("| " + " | ".join(["run"] + [c[1] for c in cols]) + " |")
    print("|" + "---|" * (len(cols) + 1))
    for row in rows:
        print("| " + " | ".join([str(row["row"])] + [_fmt(row.get(k), kind) for k, _, kind in cols]) + " |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
