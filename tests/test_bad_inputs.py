"""Bad inputs across the public API: each gets the library's error (or warning) naming the problem, and the
model is left exactly as it was (parameters, buffers, modes, requires_grad flags, .grad and hooks).

Every case is one row of a table: the call, the exception or warning class, a fragment of its message.
Property-based tests (hypothesis) check subsets, groups and vectors against dense references.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

import gif_lite as gl
from gif_lite import checks, solvers
from gif_lite.book import attribution_baselines as ab
from gif_lite.book import backdoor as bd
from gif_lite.book import chapter_utils, configs, gradcam, models, runtime, toy
from gif_lite.book import data as bdata
from gif_lite.book import experiments as ex
from gif_lite.book import faithfulness as fa
from gif_lite.book.checkpoints import config_key, load_checkpoint, save_checkpoint
from gif_lite.checks import GifLiteError, GifLiteTypeError, GifLiteWarning, ModelCallError, ModelState
from gif_lite.train import drop_examples

CE = F.cross_entropy
N, D, K = 24, 4, 3


def _data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return torch.randn(N, D, generator=gen, dtype=torch.float64), torch.arange(N) % K


X, Y = _data()


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 5), nn.Tanh(), nn.Linear(5, K)).double().eval()


def _bn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(D, 5), nn.BatchNorm1d(5), nn.Tanh(), nn.Linear(5, K)).double().eval()


def _obj(model: nn.Module) -> gl.Objective:
    return gl.Objective(model, CE, (X, Y), weight_decay=0.1)


def _v(n: int = 43) -> torch.Tensor:
    return torch.linspace(-1, 1, n, dtype=torch.float64)


NP = 43  # parameters of _mlp: 4*5+5 + 5*3+3


class _Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc, self.spare = nn.Linear(D, K), nn.Linear(D, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class _Pairs(Dataset):
    def __len__(self) -> int:
        return N

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return X[i], Y[i]


def _endless():
    while True:
        yield X[:4], Y[:4]


def _frozen_after(model: nn.Module) -> None:
    obj = _obj(model)
    model[0].weight.requires_grad_(False)
    try:
        obj.gradient()
    finally:
        model[0].weight.requires_grad_(True)


def _train_after(model: nn.Module) -> None:
    obj = _obj(model)
    model[1].train()  # a child switched to training mode after the objective was built
    try:
        obj.gradient()
    finally:
        model[1].eval()


def _nan_weights(model: nn.Module) -> None:
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")


def _nan_grad_select(model: nn.Module) -> None:
    # a NaN output gradient ranked by the plain baseline
    gl.select(
        model, "largest_gradient_entries", 0.5, X, Y, lambda o, t: CE(o, t) * torch.tensor(float("nan"))
    )


def _other_model_group(model: nn.Module) -> None:
    group = gl.Objective(_mlp(), CE, (X[:6], Y[:6]), weight_decay=0.1)
    gl.second_order_influence(_obj(model), group, 0.25)


def _fraction_mismatch(model: nn.Module) -> None:
    group = gl.Objective(model, CE, (X[:6], Y[:6]), weight_decay=0.1)
    gl.second_order_influence(_obj(model), group, 0.3)


def _relabel_sizes(model: nn.Module) -> None:
    old = gl.Objective(model, CE, (X[:6], Y[:6]))
    new = gl.Objective(model, CE, (X[:5], Y[:5]))
    gl.second_order_relabel_influence(_obj(model), old, new, 0.25, _v())


def _ckpt(tmp: Path, model: nn.Module) -> Path:
    return save_checkpoint(model, tmp / "m.pt", {"seed": 0})


def _load_other_arch(model: nn.Module, tmp: Path) -> None:
    other = nn.Sequential(nn.Linear(D, 7), nn.Tanh(), nn.Linear(7, K)).double()
    load_checkpoint(model, _ckpt(tmp, other))


def _load_missing_fields(model: nn.Module, tmp: Path) -> None:
    path = _ckpt(tmp, model)
    payload = torch.load(path, weights_only=True)
    del payload["config_json"]
    torch.save(payload, path)
    load_checkpoint(model, path)


def _load_extra_key(model: nn.Module, tmp: Path) -> None:
    bigger = nn.Sequential(nn.Linear(D, 5), nn.Tanh(), nn.Linear(5, K), nn.Linear(K, K)).double()
    load_checkpoint(model, _ckpt(tmp, bigger))


@dataclass
class Case:
    id: str
    call: Callable[..., object]
    exc: type[BaseException]
    match: str
    model: Callable[[], nn.Module] = _mlp
    #: what is wrong (for the counts table): type, shape, range, non-finite, empty, lengths, dtype/device,
    #: state; blank for the first round's cases, whose kind is read from their id
    kind: str = ""


def _sub(*idx: int) -> torch.Tensor:
    return torch.tensor(idx)


def _lbl(*v: object) -> torch.Tensor:
    return torch.tensor(v)


G = _sub(0, 1, 2, 3, 4, 5)  # a group of 6 examples

CASES = [
    # ---------------------------------------------------------------- data
    Case("data-dict", lambda m: gl.Objective(m, CE, {"x": X, "y": Y}), GifLiteTypeError, "dict"),
    Case("data-dict-batches", lambda m: gl.Objective(m, CE, [{"x": X, "y": Y}]), GifLiteTypeError, "dict"),
    Case("data-map-dataset", lambda m: gl.Objective(m, CE, _Pairs()), GifLiteTypeError, "DataLoader"),
    Case(
        "data-targets-list",
        lambda m: gl.Objective(m, CE, (X, Y.tolist())),
        GifLiteTypeError,
        "targets must be",
    ),
    Case("data-targets-short", lambda m: gl.Objective(m, CE, (X, Y[:-1])), GifLiteError, "batch size"),
    Case("data-empty", lambda m: gl.Objective(m, CE, (X[:0], Y[:0])), GifLiteError, "empty"),
    Case("data-nan-inputs", lambda m: gl.Objective(m, CE, (X * float("nan"), Y)), GifLiteError, "NaN"),
    Case(
        "data-inf-targets",
        lambda m: gl.Objective(m, F.mse_loss, (X, torch.full((N, K), float("inf"), dtype=torch.float64))),
        GifLiteError,
        "infinite",
    ),
    Case(
        "data-cycle", lambda m: gl.Objective(m, CE, itertools.cycle([(X, Y)])), GifLiteError, "without ending"
    ),
    Case("data-endless-generator", lambda m: gl.Objective(m, CE, _endless()), GifLiteError, "without ending"),
    Case(
        "data-shuffled-drop-last",
        lambda m: gl.Objective(m, CE, DataLoader(TensorDataset(X, Y), 5, shuffle=True, drop_last=True)),
        GifLiteError,
        "drop_last",
    ),
    Case(
        "data-replacement-sampler",
        lambda m: gl.Objective(
            m,
            CE,
            DataLoader(TensorDataset(X, Y), 5, sampler=torch.utils.data.RandomSampler(X, replacement=True)),
        ),
        GifLiteError,
        "replacement",
    ),
    Case("data-tensor", lambda m: gl.Objective(m, CE, X), GifLiteTypeError, "pair"),
    Case("data-string", lambda m: gl.Objective(m, CE, "train.csv"), GifLiteTypeError, "pair"),
    Case("data-triple", lambda m: gl.Objective(m, CE, [(X, Y, Y)]), GifLiteTypeError, "pair"),
    Case(
        "data-0d", lambda m: gl.Objective(m, CE, (X[0, 0], Y[0])), GifLiteError, "leading example dimension"
    ),
    Case("data-int-inputs", lambda m: gl.Objective(m, CE, (X.long(), Y)), ModelCallError, "convert them"),
    Case(
        "data-wrong-width",
        lambda m: gl.Objective(m, CE, (X[:, :3], Y)),
        ModelCallError,
        "shapes cannot be multiplied",
    ),
    Case("data-no-batches", lambda m: gl.Objective(m, CE, []), GifLiteError, "no batches"),
    Case(
        "data-bad-second-batch",
        lambda m: gl.Objective(m, CE, [(X, Y), (X, Y[:3])]),
        GifLiteError,
        r"data\[1\]",
    ),
    Case(
        "data-tensordataset-3",
        lambda m: gl.Objective(m, CE, TensorDataset(X, Y, Y)),
        GifLiteError,
        "3 tensors",
    ),
    # ---------------------------------------------------------------- losses
    Case(
        "loss-float",
        lambda m: gl.Objective(m, lambda o, t: CE(o, t).item(), (X, Y)),
        GifLiteTypeError,
        "not a tensor",
    ),
    Case(
        "loss-detached",
        lambda m: gl.Objective(m, lambda o, t: CE(o, t).detach(), (X, Y)),
        GifLiteError,
        "not attached",
    ),
    Case(
        "loss-module-none",
        lambda m: gl.Objective(m, nn.CrossEntropyLoss(reduction="none"), (X, Y)),
        GifLiteError,
        "reduction",
    ),
    Case(
        "loss-module-sum",
        lambda m: gl.Objective(m, nn.CrossEntropyLoss(reduction="sum"), (X, Y)),
        GifLiteError,
        "reduction",
    ),
    Case(
        "loss-functional-sum",
        lambda m: gl.Objective(m, lambda o, t: F.cross_entropy(o, t, reduction="sum"), (X, Y)),
        GifLiteError,
        "sums over the batch",
    ),
    Case(
        "loss-vector",
        lambda m: gl.Objective(m, lambda o, t: F.cross_entropy(o, t, reduction="none"), (X, Y)),
        GifLiteError,
        "scalar",
    ),
    Case(
        "loss-integer",
        lambda m: gl.Objective(m, lambda o, t: (o.argmax(1) == t).sum(), (X, Y)),
        GifLiteError,
        "floating",
    ),
    Case(
        "loss-not-callable", lambda m: gl.Objective(m, "cross_entropy", (X, Y)), GifLiteTypeError, "callable"
    ),
    Case(
        "loss-unused-parameter",
        lambda m: gl.Objective(m, CE, (X.float(), Y)),
        GifLiteError,
        r"\['spare.weight', 'spare.bias'\]",
        model=lambda: _Unused().eval(),
    ),
    Case(
        "loss-not-a-mean-warns",
        lambda m: gl.Objective(m, lambda o, t: F.cross_entropy(o, t, reduction="sum").sqrt(), (X, Y)),
        GifLiteWarning,
        "not a batch mean",
    ),
    # ---------------------------------------------------------------- modes
    Case(
        "mode-child-dropout",
        lambda m: _obj(m),
        GifLiteError,
        r"'1' \(Dropout\)",
        model=lambda: (
            nn.Sequential(nn.Linear(D, K), nn.Dropout(0.5))
            .double()
            .eval()
            .apply(lambda c: c.train() if isinstance(c, nn.Dropout) else None)
        ),
    ),
    Case(
        "mode-root-train-dropout",
        lambda m: _obj(m),
        GifLiteError,
        r"\.eval\(\)",
        model=lambda: nn.Sequential(nn.Linear(D, K), nn.Dropout(0.5)).double(),
    ),
    Case(
        "mode-child-batchnorm",
        lambda m: _obj(m),
        GifLiteError,
        r"'1' \(BatchNorm1d\)",
        model=lambda: _bn().apply(lambda c: c.train() if isinstance(c, nn.BatchNorm1d) else None),
    ),
    Case(
        "mode-untracked-batchnorm",
        lambda m: _obj(m),
        GifLiteError,
        "track_running_stats",
        model=lambda: (
            nn.Sequential(nn.Linear(D, 5), nn.BatchNorm1d(5, track_running_stats=False), nn.Linear(5, K))
            .double()
            .eval()
        ),
    ),
    Case("mode-changed-after-build", _train_after, GifLiteError, "BatchNorm1d", model=_bn),
    Case("params-frozen-after-build", _frozen_after, GifLiteError, "changed since this Objective was built"),
    Case(
        "model-not-module",
        lambda m: gl.Objective(lambda x: x, CE, (X, Y)),
        GifLiteTypeError,
        "torch.nn.Module",
    ),
    Case(
        "model-nothing-trainable",
        lambda m: gl.Objective(m.requires_grad_(False), CE, (X, Y)),
        GifLiteError,
        "no trainable parameters",
    ),
    # ---------------------------------------------------------------- subsets
    Case(
        "update-unsorted-subset",
        lambda m: gl.apply_update(m, _v(2), _sub(5, 1)),
        GifLiteError,
        "sorted ascending",
    ),
    Case("update-out-of-range", lambda m: gl.apply_update(m, _v(2), _sub(1, NP)), GifLiteError, r"\[0, 43\)"),
    Case(
        "update-negative", lambda m: gl.apply_update(m, _v(2), _sub(-1, 3)), GifLiteError, "negative indices"
    ),
    Case("update-duplicates", lambda m: gl.apply_update(m, _v(2), _sub(3, 3)), GifLiteError, "duplicated"),
    Case(
        "update-float-subset",
        lambda m: gl.apply_update(m, _v(2), torch.tensor([1.0, 2.0])),
        GifLiteError,
        "integer",
    ),
    Case("update-2d-subset", lambda m: gl.apply_update(m, _v(2), _sub(1, 2)[None]), GifLiteError, "1-D"),
    Case("update-empty-subset", lambda m: gl.apply_update(m, _v(0), _sub()), GifLiteError, "empty"),
    Case(
        "update-short-mask",
        lambda m: gl.apply_update(m, _v(1), torch.tensor([True, False])),
        GifLiteError,
        "mask",
    ),
    Case("update-float-list", lambda m: gl.apply_update(m, _v(1), [0.5]), GifLiteTypeError, "integer"),
    Case(
        "update-string-subset",
        lambda m: gl.apply_update(m, _v(1), "0"),
        GifLiteTypeError,
        "tensor of integer",
    ),
    Case("update-delta-length", lambda m: gl.apply_update(m, _v(3), _sub(1, 2)), GifLiteError, "length 2"),
    Case(
        "update-delta-nan",
        lambda m: gl.apply_update(m, _v(2) * float("nan"), _sub(1, 2)),
        GifLiteError,
        "NaN",
    ),
    Case(
        "update-delta-int",
        lambda m: gl.apply_update(m, _sub(1, 2), _sub(1, 2)),
        GifLiteError,
        "floating-point",
    ),
    Case("update-delta-column", lambda m: gl.apply_update(m, _v()[:, None]), GifLiteError, "reshape"),
    Case("update-scale-nan", lambda m: gl.apply_update(m, _v(), scale=float("nan")), GifLiteError, "scale"),
    Case("update-scale-string", lambda m: gl.apply_update(m, _v(), scale="1"), GifLiteTypeError, "scale"),
    Case(
        "update-overflow", lambda m: gl.apply_update(m, _v() * 1e300, scale=1e300), GifLiteError, "overflows"
    ),
    Case("set-theta-length", lambda m: gl.set_flat_params(m, _v(5)), GifLiteError, "length 43"),
    Case(
        "set-theta-nan", lambda m: gl.set_flat_params(m, _v() * float("inf")), GifLiteError, "NaN or infinite"
    ),
    Case(
        "set-theta-frozen",
        lambda m: gl.set_flat_params(m.requires_grad_(False), _v()),
        GifLiteError,
        "no trainable",
    ),
    Case(
        "flat-params-frozen", lambda m: gl.flat_params(m.requires_grad_(False)), GifLiteError, "no trainable"
    ),
    Case("fif-unsorted", lambda m: gl.frozen_influence(_obj(m), _v(), _sub(4, 2)), GifLiteError, "sorted"),
    Case(
        "gif-out-of-range",
        lambda m: gl.generalized_influence(_obj(m), _v(), _sub(2, 99)),
        GifLiteError,
        r"\[0, 43\)",
    ),
    Case(
        "pif-duplicates",
        lambda m: gl.projected_influence(_obj(m), _v(), _sub(2, 2)),
        GifLiteError,
        "duplicated",
    ),
    Case(
        "check-subset-bool-short",
        lambda m: gl.check_subset(torch.ones(3, dtype=torch.bool), NP),
        GifLiteError,
        "mask",
    ),
    Case("columns-float", lambda m: _obj(m).hessian_columns(torch.tensor([0.0])), GifLiteError, "integer"),
    Case("columns-range", lambda m: _obj(m).hessian_columns([0, 50]), GifLiteError, "columns must lie"),
    # ---------------------------------------------------------------- vectors
    Case("g-length", lambda m: gl.influence(_obj(m), _v(5)), GifLiteError, "length 43"),
    Case(
        "g-int",
        lambda m: gl.influence(_obj(m), torch.zeros(NP, dtype=torch.long)),
        GifLiteError,
        "floating-point",
    ),
    Case("g-nan", lambda m: gl.influence(_obj(m), _v() * float("nan")), GifLiteError, "NaN"),
    Case("g-column", lambda m: gl.influence(_obj(m), _v()[:, None]), GifLiteError, "reshape"),
    Case("g-list", lambda m: gl.influence(_obj(m), _v().tolist()), GifLiteTypeError, "tensor"),
    Case("hvp-length", lambda m: _obj(m).hvp(_v(3)), GifLiteError, "v must be a flat vector"),
    Case("obj-not-objective", lambda m: gl.influence(m, _v()), GifLiteTypeError, "gif_lite.Objective"),
    # ---------------------------------------------------------------- solver options
    Case(
        "solver-unknown",
        lambda m: gl.influence(_obj(m), _v(), solver="newton"),
        GifLiteError,
        "unknown solver",
    ),
    Case(
        "solver-gif-cg",
        lambda m: gl.generalized_influence(_obj(m), _v(), _sub(1), solver="cg"),
        GifLiteError,
        "unknown solver",
    ),
    Case(
        "direct-options",
        lambda m: gl.influence(_obj(m), _v(), solver="direct", scael=2.0),
        GifLiteError,
        "takes no options",
    ),
    Case(
        "cg-misspelled",
        lambda m: gl.influence(_obj(m), _v(), solver="cg", tolerance=1e-3),
        GifLiteError,
        "unknown option",
    ),
    Case(
        "lsqr-scale",
        lambda m: gl.generalized_influence(_obj(m), _v(), _sub(1), scale=2.0),
        GifLiteError,
        "reorthogonalize",
    ),
    Case(
        "lissa-reorth",
        lambda m: gl.influence(_obj(m), _v(), solver="lissa", reorthogonalize=True),
        GifLiteError,
        "scale",
    ),
    Case("max-iter-zero", lambda m: gl.influence(_obj(m), _v(), max_iter=0), GifLiteError, "no iteration"),
    Case(
        "max-iter-zero-landweber",
        lambda m: gl.generalized_influence(_obj(m), _v(), _sub(1), solver="landweber", max_iter=0),
        GifLiteError,
        "no iteration",
    ),
    Case(
        "max-iter-negative",
        lambda m: gl.frozen_influence(_obj(m), _v(), _sub(1), max_iter=-1),
        GifLiteError,
        "no iteration",
    ),
    Case(
        "max-iter-float",
        lambda m: gl.influence(_obj(m), _v(), max_iter=2.5),
        GifLiteTypeError,
        "positive int",
    ),
    Case(
        "max-iter-bool",
        lambda m: gl.influence(_obj(m), _v(), max_iter=True),
        GifLiteTypeError,
        "positive int",
    ),
    Case("tol-zero", lambda m: gl.influence(_obj(m), _v(), tol=0.0), GifLiteError, "tol must be >"),
    Case(
        "tol-nan",
        lambda m: gl.influence(_obj(m), _v(), tol=float("nan")),
        GifLiteError,
        "tol must be a finite",
    ),
    Case("damping-negative", lambda m: gl.influence(_obj(m), _v(), damping=-1.0), GifLiteError, "damping"),
    Case("damping-inf", lambda m: gl.influence(_obj(m), _v(), damping=float("inf")), GifLiteError, "damping"),
    Case(
        "solver-fn-max-iter-zero",
        lambda m: solvers.cg(lambda v: v, _v(), max_iter=0),
        GifLiteError,
        "no iteration",
    ),
    Case(
        "landweber-normalizer-nan",
        lambda m: solvers.landweber(lambda v: v, lambda v: v, _v(), normalizer=float("nan")),
        GifLiteError,
        "normalizer",
    ),
    Case(
        "weight-decay-huge",
        lambda m: gl.Objective(m, CE, (X, Y), weight_decay=1e300),
        GifLiteError,
        "overflows",
    ),
    Case(
        "weight-decay-nan",
        lambda m: gl.Objective(m, CE, (X, Y), weight_decay=float("nan")),
        GifLiteError,
        "weight_decay",
    ),
    Case(
        "weight-decay-negative",
        lambda m: gl.Objective(m, CE, (X, Y), weight_decay=-0.1),
        GifLiteError,
        "weight_decay",
    ),
    # ---------------------------------------------------------------- groups
    Case(
        "group-out-of-range",
        lambda m: gl.removal_problem(m, CE, (X, Y), _sub(0, N)),
        GifLiteError,
        r"\[0, 24\)",
    ),
    Case("group-negative", lambda m: gl.removal_problem(m, CE, (X, Y), _sub(-1)), GifLiteError, "negative"),
    Case(
        "group-duplicates",
        lambda m: gl.removal_problem(m, CE, (X, Y), _sub(1, 1)),
        GifLiteError,
        "duplicated",
    ),
    Case(
        "group-float",
        lambda m: gl.removal_problem(m, CE, (X, Y), torch.tensor([1.0])),
        GifLiteError,
        "integer",
    ),
    Case("group-empty", lambda m: gl.removal_problem(m, CE, (X, Y), []), GifLiteError, "empty"),
    Case(
        "group-everything",
        lambda m: gl.removal_problem(m, CE, (X, Y), torch.arange(N)),
        GifLiteError,
        "nothing would remain",
    ),
    Case(
        "group-mask-length",
        lambda m: gl.removal_problem(m, CE, (X, Y), torch.ones(5, dtype=torch.bool)),
        GifLiteError,
        "mask",
    ),
    Case("group-2d", lambda m: gl.removal_problem(m, CE, (X, Y), _sub(1, 2)[None]), GifLiteError, "1-D"),
    Case("group-strings", lambda m: gl.removal_problem(m, CE, (X, Y), ["a"]), GifLiteTypeError, "integer"),
    Case(
        "group-drop-examples",
        lambda m: drop_examples((X, Y), _sub(0, 99)),
        GifLiteError,
        r"\[0, 24\)",
    ),
    Case("data-dict-removal", lambda m: gl.removal_problem(m, CE, {"x": X}, G), GifLiteTypeError, "dict"),
    # ---------------------------------------------------------------- labels
    Case(
        "labels-fractional",
        lambda m: gl.relabel_problem(m, CE, (X, Y), G, torch.full((6,), 1.5)),
        GifLiteError,
        "integer class labels",
    ),
    Case(
        "labels-column",
        lambda m: gl.relabel_problem(m, CE, (X, Y), G, torch.zeros(6, 1, dtype=torch.long)),
        GifLiteError,
        "reshape",
    ),
    Case(
        "labels-length",
        lambda m: gl.relabel_problem(m, CE, (X, Y), G, torch.zeros(4, dtype=torch.long)),
        GifLiteError,
        r"shape \(6,\)",
    ),
    Case("labels-negative", lambda m: gl.relabel_problem(m, CE, (X, Y), G, -1), GifLiteError, ">= 0"),
    Case("labels-out-of-range", lambda m: gl.relabel_problem(m, CE, (X, Y), G, K), GifLiteError, r"\[0, 3\)"),
    Case("labels-bool", lambda m: gl.relabel_problem(m, CE, (X, Y), G, True), GifLiteTypeError, "booleans"),
    Case(
        "labels-set-group",
        lambda m: gl.relabel_problem(m, CE, (X, Y), {3, 1}, _lbl(0, 2)),
        GifLiteTypeError,
        "set",
    ),
    Case(
        "labels-string", lambda m: gl.relabel_problem(m, CE, (X, Y), G, "cat"), GifLiteTypeError, "new_labels"
    ),
    # ---------------------------------------------------------------- second order
    Case("second-order-other-model", _other_model_group, GifLiteError, "same model"),
    Case("second-order-fraction", _fraction_mismatch, GifLiteError, "m / n = 0.25"),
    Case(
        "second-order-fraction-zero",
        lambda m: gl.second_order_influence(_obj(m), _obj(m), 0.0),
        GifLiteError,
        "fraction",
    ),
    Case(
        "second-order-fraction-nan",
        lambda m: gl.second_order_influence(_obj(m), _obj(m), float("nan")),
        GifLiteError,
        "finite",
    ),
    Case("second-order-relabel-sizes", _relabel_sizes, GifLiteError, "same relabelled group"),
    # ---------------------------------------------------------------- selection
    Case(
        "select-generator-string",
        lambda m: gl.select(m, "random", 0.5, None, generator="0"),
        GifLiteTypeError,
        "Generator",
    ),
    Case(
        "select-wrong-shape",
        lambda m: gl.select(m, "highest_outputs", 0.5, X[:, :2]),
        ModelCallError,
        "shape",
    ),
    Case(
        "select-nan-inputs",
        lambda m: gl.select(m, "highest_outputs", 0.5, X * float("nan")),
        GifLiteError,
        "NaN",
    ),
    Case("select-nan-gradients", _nan_grad_select, GifLiteError, "NaN"),
    Case(
        "select-nan-weights",
        lambda m: (_nan_weights(m), gl.select(m, "highest_gradients", 0.5, X, Y, CE)),
        GifLiteError,
        "NaN",
        model=lambda: nn.Sequential(nn.Linear(D, 5), nn.Linear(5, K)).double(),
    ),
    Case(
        "select-sum-loss",
        lambda m: gl.select(m, "highest_gradients", 0.5, X, Y, nn.CrossEntropyLoss(reduction="sum")),
        GifLiteError,
        "reduction",
    ),
    Case("select-method", lambda m: gl.select(m, "biggest", 0.5, X), GifLiteError, "unknown method"),
    # ---------------------------------------------------------------- training, evaluation, retraining
    Case(
        "retrain-without-bad-group",
        lambda m: gl.retrain_without(m, CE, (X, Y), _sub(99)),
        GifLiteError,
        r"\[0, 24\)",
    ),
    Case(
        "retrain-without-everything",
        lambda m: gl.retrain_without(m, CE, (X, Y), torch.arange(N)),
        GifLiteError,
        "nothing would be left",
    ),
    Case(
        "retrain-relabelled-fractional",
        lambda m: gl.retrain_relabelled(m, CE, (X, Y), G, torch.full((6,), 0.5)),
        GifLiteError,
        "integer class labels",
    ),
    Case(
        "relabel-examples-column",
        lambda m: gl.relabel_examples((X, Y), G, torch.zeros(6, 1, dtype=torch.long)),
        GifLiteError,
        "reshape",
    ),
    Case("evaluate-dict", lambda m: gl.evaluate(m, {"x": X, "y": Y}), GifLiteTypeError, "dict"),
    Case(
        "train-lbfgs-short-targets", lambda m: gl.train_lbfgs(m, CE, (X, Y[:-2])), GifLiteError, "batch size"
    ),
    Case(
        "objective-value-list-targets",
        lambda m: gl.objective_value(m, CE, (X, Y.tolist())),
        GifLiteTypeError,
        "targets must be",
    ),
]


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, K)).double().eval()


IMG = torch.rand(4, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
NAN = float("nan")
I = lambda v: v  # noqa: E731  (the identity map for the solvers)


def _spd_map() -> Callable[[torch.Tensor], torch.Tensor]:
    a = torch.diag(torch.linspace(1.0, 2.0, NP, dtype=torch.float64))
    return lambda v: a @ v


def _kfac(m: nn.Module) -> gl.KFAC:
    return gl.KFAC(_obj(m))


def _train(m: nn.Module, data: object = None, **kw: object) -> object:
    args: dict[str, object] = {"epochs": 1, "batch_size": 8, "lr": 0.1, "progress": False}
    args.update(kw)
    return gl.train_minibatch(m, CE, (X, Y) if data is None else data, **args)


def _bn_train_kfac(m: nn.Module) -> None:
    m[1].requires_grad_(False)
    try:
        gl.KFAC(m.train(), (X, Y))
    finally:
        m.eval()
        m[1].requires_grad_(True)


# issue 24: every surface added since the first round (attribution, curvature, solvers, training, the book)
CASES_24 = [
    # ---------------------------------------------------------------- attribution: removal_effects
    Case(
        "re-test-dict",
        lambda m: gl.removal_effects(_obj(m), {"x": X}),
        GifLiteTypeError,
        "test is a dict",
        kind="type",
    ),
    Case(
        "re-test-tensor",
        lambda m: gl.removal_effects(_obj(m), X),
        GifLiteTypeError,
        "test must be an",
        kind="type",
    ),
    Case(
        "re-test-width",
        lambda m: gl.removal_effects(_obj(m), (X[:, :3], Y)),
        ModelCallError,
        "test's inputs",
        kind="shape",
    ),
    Case(
        "re-test-nan",
        lambda m: gl.removal_effects(_obj(m), (X * NAN, Y)),
        GifLiteError,
        "test's inputs hold NaN",
        kind="non-finite",
    ),
    Case(
        "re-test-empty",
        lambda m: gl.removal_effects(_obj(m), (X[:0], Y[:0])),
        GifLiteError,
        "test is empty",
        kind="empty",
    ),
    Case(
        "re-test-lengths",
        lambda m: gl.removal_effects(_obj(m), (X, Y[:5])),
        GifLiteError,
        "test's inputs and targets disagree",
        kind="lengths",
    ),
    Case(
        "re-test-labels",
        lambda m: gl.removal_effects(_obj(m), (X, Y + K)),
        GifLiteError,
        r"test's targets must be class labels in \[0, 3\)",
        kind="range",
    ),
    Case(
        "re-test-tensordataset-3",
        lambda m: gl.removal_effects(_obj(m), TensorDataset(X, Y, Y)),
        GifLiteError,
        "test is a TensorDataset of 3",
        kind="shape",
    ),
    Case(
        "re-estimator",
        lambda m: gl.removal_effects(_obj(m), (X, Y), estimator="TracIn"),
        GifLiteError,
        "estimator 'TracIn'",
        kind="range",
    ),
    Case(
        "re-if-subset",
        lambda m: gl.removal_effects(_obj(m), (X, Y), subset=[1, 2]),
        GifLiteError,
        "drop subset",
        kind="range",
    ),
    Case(
        "re-gif-no-subset",
        lambda m: gl.removal_effects(_obj(m), (X, Y), estimator="GIF"),
        GifLiteError,
        "needs a subset",
        kind="empty",
    ),
    Case(
        "re-solver",
        lambda m: gl.removal_effects(_obj(m), (X, Y), solver="lissa"),
        GifLiteError,
        "unknown solver 'lissa'",
        kind="range",
    ),
    Case(
        "re-batch-size-zero",
        lambda m: gl.removal_effects(_obj(m), (X, Y), batch_size=0),
        GifLiteError,
        "batch_size",
        kind="range",
    ),
    Case(
        "re-batch-size-float",
        lambda m: gl.removal_effects(_obj(m), (X, Y), batch_size=2.5),
        GifLiteError,
        "batch_size",
        kind="type",
    ),
    Case(
        "re-damping-negative",
        lambda m: gl.removal_effects(_obj(m), (X, Y), damping=-1.0),
        GifLiteError,
        "damping",
        kind="range",
    ),
    Case(
        "re-tol-negative",
        lambda m: gl.removal_effects(_obj(m), (X, Y), tol=-1.0),
        GifLiteError,
        "tol",
        kind="range",
    ),
    Case(
        "re-max-iter-zero",
        lambda m: gl.removal_effects(_obj(m), (X, Y), solver="cg", max_iter=0),
        GifLiteError,
        "max_iter",
        kind="range",
    ),
    Case(
        "re-subset-out-of-range",
        lambda m: gl.removal_effects(_obj(m), (X, Y), [1, 99], "GIF"),
        GifLiteError,
        r"subset must lie in \[0, 43\)",
        kind="range",
    ),
    Case(
        "re-subset-unsorted",
        lambda m: gl.removal_effects(_obj(m), (X, Y), [5, 1], "FIF"),
        GifLiteError,
        "subset must be sorted",
        kind="range",
    ),
    Case(
        "re-obj-model", lambda m: gl.removal_effects(m, (X, Y)), GifLiteTypeError, "obj must be", kind="type"
    ),
    Case(
        "si-estimator-int",
        lambda m: gl.self_influence(_obj(m), estimator=3),
        GifLiteError,
        "estimator 3",
        kind="type",
    ),
    Case(
        "si-subset-float",
        lambda m: gl.self_influence(_obj(m), torch.tensor([1.0, 2.0]), "PIF"),
        GifLiteError,
        "subset must hold integer",
        kind="dtype/device",
    ),
    Case(
        "si-one-example",
        lambda m: gl.self_influence(gl.Objective(m, CE, (X[:1], Y[:1]))),
        GifLiteError,
        "at least 2 training examples",
        kind="empty",
    ),
    Case(
        "eg-data-tensor",
        lambda m: list(gl.example_gradients(_obj(m), X)),
        GifLiteTypeError,
        "data must be an",
        kind="type",
    ),
    Case(
        "eg-batch-negative",
        lambda m: list(gl.example_gradients(_obj(m), None, -1)),
        GifLiteError,
        "batch_size",
        kind="range",
    ),
    Case(
        "eg-obj-model",
        lambda m: list(gl.example_gradients(m)),
        GifLiteTypeError,
        "obj must be a gif_lite.Objective",
        kind="type",
    ),
    # ---------------------------------------------------------------- curvature operators
    Case("kfac-obj-string", lambda m: gl.KFAC("model"), GifLiteTypeError, "obj must be", kind="type"),
    Case(
        "kfac-hvp-length",
        lambda m: _kfac(m).hvp(_v(5)),
        GifLiteError,
        "v must be a flat vector of length 43",
        kind="lengths",
    ),
    Case("kfac-hvp-nan", lambda m: _kfac(m).hvp(_v() * NAN), GifLiteError, "v holds NaN", kind="non-finite"),
    Case(
        "kfac-inverse-damping-nan",
        lambda m: _kfac(m).inverse_hvp(_v(), NAN),
        GifLiteError,
        "damping must be a finite",
        kind="non-finite",
    ),
    Case(
        "kfac-unknown-loss",
        lambda m: gl.KFAC(gl.Objective(m, lambda o, t: CE(o, t) ** 2, (X, Y))),
        GifLiteError,
        "K-FAC knows",
        kind="range",
    ),
    Case("kfac-batchnorm-train", _bn_train_kfac, GifLiteError, r"eval\(\)", model=_bn, kind="state"),
    Case("ekfac-obj-none", lambda m: gl.EKFAC(None), GifLiteTypeError, "obj must be", kind="type"),
    Case(
        "lowrank-rank-string",
        lambda m: gl.LowRank(_obj(m), "5"),
        GifLiteError,
        "rank must be an int",
        kind="type",
    ),
    Case(
        "lowrank-rank-too-big",
        lambda m: gl.LowRank(_obj(m), 100),
        GifLiteError,
        r"rank must be an int in \[1, num_params=43\]",
        kind="range",
    ),
    Case("lowrank-rank-float", lambda m: gl.LowRank(_obj(m), 2.5), GifLiteError, "rank", kind="type"),
    Case(
        "lowrank-seed-string",
        lambda m: gl.LowRank(_obj(m), 2, seed="a"),
        GifLiteTypeError,
        "seed must be an int",
        kind="type",
    ),
    Case(
        "lowrank-damping-negative",
        lambda m: gl.LowRank(_obj(m), 2).inverse_hvp(_v(), -1.0),
        GifLiteError,
        "damping",
        kind="range",
    ),
    Case(
        "stochastic-batch-too-big",
        lambda m: gl.StochasticHessian(_obj(m), 1000),
        GifLiteError,
        r"batch_size must be an int in \[1, n=24\]",
        kind="range",
    ),
    Case(
        "stochastic-batch-float",
        lambda m: gl.StochasticHessian(_obj(m), 2.5),
        GifLiteError,
        "batch_size",
        kind="type",
    ),
    Case(
        "stochastic-seed-string",
        lambda m: gl.StochasticHessian(_obj(m), 4, "fixed", "x"),
        GifLiteTypeError,
        "seed",
        kind="type",
    ),
    Case(
        "stochastic-per-call-minres",
        lambda m: gl.influence(gl.StochasticHessian(_obj(m), 8), _v()),
        GifLiteError,
        "resample='fixed'",
        kind="state",
    ),
    Case(
        "dense-not-square",
        lambda m: gl.DenseOperator(torch.zeros(NP, NP - 1, dtype=torch.float64)),
        GifLiteTypeError,
        "hessian must be a square",
        kind="shape",
    ),
    Case(
        "dense-asymmetric",
        lambda m: gl.DenseOperator(torch.triu(torch.ones(NP, NP, dtype=torch.float64))),
        GifLiteError,
        "hessian is not symmetric",
        kind="range",
    ),
    Case(
        "dense-nan",
        lambda m: gl.DenseOperator(torch.full((NP, NP), NAN, dtype=torch.float64)),
        GifLiteError,
        "hessian must be a finite",
        kind="non-finite",
    ),
    Case("dense-list", lambda m: gl.DenseOperator([[1.0]]), GifLiteTypeError, "hessian must be", kind="type"),
    Case(
        "dense-wrong-size",
        lambda m: gl.DenseOperator(torch.eye(5, dtype=torch.float64), objective=_obj(m)),
        GifLiteError,
        "hessian is 5 x 5 but the objective has 43",
        kind="lengths",
    ),
    Case(
        "dense-integer",
        lambda m: gl.DenseOperator(torch.eye(5, dtype=torch.long)),
        GifLiteError,
        "hessian must be a finite floating",
        kind="dtype/device",
    ),
    Case(
        "operator-columns-range",
        lambda m: _kfac(m).hessian_columns(torch.tensor([99])),
        GifLiteError,
        r"columns must lie in \[0, 43\)",
        kind="range",
    ),
    Case(
        "hvp-batch-nan",
        lambda m: _obj(m).hvp_batch(torch.full((2, NP), NAN, dtype=torch.float64)),
        GifLiteError,
        "vs must be",
        kind="non-finite",
    ),
    Case(
        "hvp-batch-shape",
        lambda m: _obj(m).hvp_batch(_v()),
        GifLiteError,
        r"vs must be a 2-D tensor of shape \(s, 43\)",
        kind="shape",
    ),
    Case(
        "hessian-chunk-zero",
        lambda m: _obj(m).hessian(chunk=0),
        GifLiteError,
        "chunk must be a positive int",
        kind="range",
    ),
    # ---------------------------------------------------------------- solvers (called directly)
    Case(
        "cg-matvec-none",
        lambda m: solvers.cg(None, _v()),
        GifLiteTypeError,
        "products with A must be callables",
        kind="type",
    ),
    Case(
        "cg-b-list",
        lambda m: solvers.cg(I, [1.0, 2.0]),
        GifLiteTypeError,
        "b must be a 1-D tensor",
        kind="type",
    ),
    Case("cg-b-nan", lambda m: solvers.cg(I, _v() * NAN), GifLiteError, "b holds NaN", kind="non-finite"),
    Case(
        "cg-b-column",
        lambda m: solvers.cg(I, _v()[:, None]),
        GifLiteError,
        "b must be a 1-D vector",
        kind="shape",
    ),
    Case(
        "cg-b-integer",
        lambda m: solvers.cg(I, torch.ones(3, dtype=torch.long)),
        GifLiteTypeError,
        "b must be a floating",
        kind="dtype/device",
    ),
    Case(
        "minres-matvec-shape",
        lambda m: solvers.minres(lambda v: v[:3], _v()),
        GifLiteError,
        r"matvec returned \(3,\)",
        kind="shape",
    ),
    Case(
        "minres-tol-nan",
        lambda m: solvers.minres(I, _v(), tol=NAN),
        GifLiteError,
        "tol must be a finite",
        kind="non-finite",
    ),
    Case(
        "lissa-scale-negative",
        lambda m: solvers.lissa(I, _v(), scale=-1.0),
        GifLiteError,
        "scale must be > 0",
        kind="range",
    ),
    Case(
        "lissa-scale-string",
        lambda m: solvers.lissa(I, _v(), scale="1"),
        GifLiteTypeError,
        "scale must be a real number",
        kind="type",
    ),
    Case(
        "lissa-max-iter-float",
        lambda m: solvers.lissa(I, _v(), max_iter=1.5),
        GifLiteTypeError,
        "max_iter",
        kind="type",
    ),
    Case(
        "lsqr-tol-string",
        lambda m: solvers.lsqr(I, I, _v(), tol="1e-3"),
        GifLiteTypeError,
        "tol must be a real number",
        kind="type",
    ),
    Case(
        "lsqr-reorthogonalize-string",
        lambda m: solvers.lsqr(I, I, _v(), reorthogonalize="yes"),
        GifLiteTypeError,
        "reorthogonalize",
        kind="type",
    ),
    Case(
        "lsqr-rmatvec-shape",
        lambda m: solvers.lsqr(I, lambda u: u[None], _v()),
        GifLiteError,
        "rmatvec returned",
        kind="shape",
    ),
    Case(
        "landweber-step-tol-negative",
        lambda m: solvers.landweber(I, I, _v(), step_tol=-1.0),
        GifLiteError,
        "step_tol",
        kind="range",
    ),
    Case(
        "landweber-max-restarts-negative",
        lambda m: solvers.landweber(I, I, _v(), max_restarts=-1),
        GifLiteError,
        "max_restarts",
        kind="range",
    ),
    Case(
        "direct-lengths",
        lambda m: solvers.direct(torch.eye(3, dtype=torch.float64), _v()),
        GifLiteError,
        "b has 43 entries but a has 3 rows",
        kind="lengths",
    ),
    Case(
        "direct-a-list",
        lambda m: solvers.direct([[1.0]], _v()),
        GifLiteTypeError,
        "a must be a floating 2-D tensor",
        kind="type",
    ),
    Case(
        "direct-a-nan",
        lambda m: solvers.direct(torch.full((NP, NP), NAN, dtype=torch.float64), _v()),
        GifLiteError,
        "a holds NaN",
        kind="non-finite",
    ),
    Case(
        "direct-tol-zero",
        lambda m: solvers.direct(torch.eye(NP, dtype=torch.float64), _v(), tol=0.0),
        GifLiteError,
        "tol must be >",
        kind="range",
    ),
    Case(
        "relative-residual-x-shape",
        lambda m: solvers.relative_residual(_spd_map(), _v(), _v(3)),
        GifLiteError,
        "x must have b's shape",
        kind="shape",
    ),
    Case(
        "block-cg-b-vector",
        lambda m: solvers.block_cg(I, _v()),
        GifLiteError,
        "b must be a 2-D block",
        kind="shape",
    ),
    Case(
        "batched-lsqr-reorthogonalize",
        lambda m: solvers.batched_lsqr(I, I, _v()[:, None], reorthogonalize=1),
        GifLiteTypeError,
        "reorthogonalize",
        kind="type",
    ),
    # ---------------------------------------------------------------- selection, params, spectrum
    Case(
        "select-ratio-zero",
        lambda m: gl.select(m, "random", 0.0, None),
        GifLiteError,
        r"ratio must be in \(0, 1\]",
        kind="range",
    ),
    Case(
        "select-ratio-two", lambda m: gl.select(m, "random", 2.0, None), GifLiteError, "ratio", kind="range"
    ),
    Case(
        "select-ratio-nan",
        lambda m: gl.select(m, "random", NAN, None),
        GifLiteError,
        "ratio",
        kind="non-finite",
    ),
    Case(
        "select-ratio-string",
        lambda m: gl.select(m, "random", "0.5", None),
        GifLiteTypeError,
        "ratio must be a number",
        kind="type",
    ),
    Case(
        "select-model-string",
        lambda m: gl.select("m", "random", 0.5, None),
        GifLiteTypeError,
        "model must be a torch.nn.Module",
        kind="type",
    ),
    Case(
        "select-no-targets",
        lambda m: gl.select(m, "highest_gradients", 0.5, X),
        GifLiteError,
        "needs targets and loss_fn",
        kind="empty",
    ),
    Case(
        "select-empty-inputs",
        lambda m: gl.select(m, "highest_outputs", 0.5, X[:0]),
        GifLiteError,
        "inputs is empty",
        kind="empty",
    ),
    Case(
        "select-targets-length",
        lambda m: gl.select(m, "highest_gradients", 0.5, X, Y[:3], CE),
        GifLiteError,
        "targets has 3 entries",
        kind="lengths",
    ),
    Case(
        "embed-out-of-range",
        lambda m: gl.embed(_v(2), _sub(1, 2), 1),
        GifLiteError,
        "subset must lie",
        kind="range",
    ),
    Case(
        "embed-lengths",
        lambda m: gl.embed(_v(3), _sub(0, 1), 5),
        GifLiteError,
        "one delta entry per index",
        kind="lengths",
    ),
    Case(
        "keep-mask-out-of-range",
        lambda m: gl.keep_mask([99], N),
        GifLiteError,
        r"group must lie in \[0, 24\)",
        kind="range",
    ),
    Case("flat-params-string", lambda m: gl.flat_params("m"), GifLiteTypeError, "model must be", kind="type"),
    Case(
        "check-group-string",
        lambda m: gl.check_group("abc", N),
        GifLiteTypeError,
        "group must be",
        kind="type",
    ),
    Case(
        "lanczos-steps-zero",
        lambda m: gl.spectrum.lanczos(I, NP, 0),
        GifLiteError,
        "steps must be >= 1",
        kind="range",
    ),
    # ---------------------------------------------------------------- training and evaluation
    Case(
        "train-nan-data",
        lambda m: _train(m, (X * NAN, Y)),
        GifLiteError,
        "data's inputs hold NaN",
        kind="state",
    ),
    Case(
        "train-weight-decay-negative",
        lambda m: _train(m, weight_decay=-1.0),
        GifLiteError,
        "weight_decay",
        kind="range",
    ),
    Case(
        "evaluate-lengths",
        lambda m: gl.evaluate(m, (X, Y[:3])),
        GifLiteError,
        "data's inputs and targets disagree",
        kind="lengths",
    ),
    Case(
        "objective-value-weight-decay-nan",
        lambda m: gl.objective_value(m, CE, (X, Y), weight_decay=NAN),
        GifLiteError,
        "weight_decay",
        kind="non-finite",
    ),
    Case(
        "retrain-group-string",
        lambda m: gl.retrain_without(m, CE, (X, Y), "1"),
        GifLiteTypeError,
        "group must be",
        kind="type",
    ),
    Case(
        "relabel-examples-range",
        lambda m: gl.relabel_examples((X, Y), [1, 99], 0),
        GifLiteError,
        r"group must lie in \[0, 24\)",
        kind="range",
    ),
    Case(
        "drop-examples-range",
        lambda m: drop_examples((X, Y), [99]),
        GifLiteError,
        "group must lie",
        kind="range",
    ),
    # ---------------------------------------------------------------- the book's helpers
    Case(
        "build-model-unknown",
        lambda m: models.build_model("nope"),
        GifLiteError,
        "unknown model 'nope'",
        kind="range",
    ),
    Case(
        "build-model-keyword",
        lambda m: models.build_model("mlp", wrong=1),
        GifLiteTypeError,
        r"\['wrong'\]",
        kind="type",
    ),
    Case(
        "build-model-seed-string",
        lambda m: models.build_model("tinycnn", seed="1"),
        GifLiteTypeError,
        "seed must be an int",
        kind="type",
    ),
    Case(
        "build-model-name-int",
        lambda m: models.build_model(3),
        GifLiteTypeError,
        "name must be a model name",
        kind="type",
    ),
    Case(
        "rel-shapes",
        lambda m: chapter_utils.rel(_v(), _v(3)),
        GifLiteError,
        "rel: a and b must have the same size",
        kind="lengths",
    ),
    Case(
        "cos-list",
        lambda m: chapter_utils.cos([1.0], _v()),
        GifLiteTypeError,
        "cos: a must be a tensor",
        kind="type",
    ),
    Case(
        "mean-ci-empty",
        lambda m: chapter_utils.mean_ci([]),
        GifLiteError,
        "mean_ci needs at least one",
        kind="empty",
    ),
    Case(
        "mean-ci-level",
        lambda m: chapter_utils.mean_ci([1.0, 2.0], level=1.5),
        GifLiteError,
        "level must lie",
        kind="range",
    ),
    Case(
        "paired-ci-lengths",
        lambda m: chapter_utils.paired_ci([1.0, 2.0], [1.0]),
        GifLiteError,
        "equal lengths",
        kind="lengths",
    ),
    Case(
        "verdict-tuple",
        lambda m: chapter_utils.verdict((0, 1)),
        GifLiteTypeError,
        "diff must be an Interval",
        kind="type",
    ),
    Case(
        "glue-table-list",
        lambda m: chapter_utils.glue_table("k", [1, 2]),
        GifLiteTypeError,
        "df must be a pandas DataFrame",
        kind="type",
    ),
    Case(
        "save-checkpoint-string",
        lambda m: save_checkpoint("m", "unused.pt"),
        GifLiteTypeError,
        "model must be",
        kind="type",
    ),
    Case(
        "load-checkpoint-missing",
        lambda m: load_checkpoint(m, "no-such-file.pt"),
        GifLiteError,
        "path 'no-such-file.pt' is not a file",
        kind="empty",
    ),
    Case(
        "config-key-object",
        lambda m: config_key({"a": object()}),
        GifLiteTypeError,
        "config values must be JSON",
        kind="type",
    ),
    Case(
        "config-key-list",
        lambda m: config_key([1]),
        GifLiteTypeError,
        "config must be a mapping",
        kind="type",
    ),
    Case(
        "toy-n-zero",
        lambda m: toy.correlated_regression(0, 3),
        GifLiteError,
        "n must be a positive int",
        kind="range",
    ),
    Case(
        "toy-rho",
        lambda m: toy.correlated_regression(10, 3, rho=1.5),
        GifLiteError,
        "rho must lie",
        kind="range",
    ),
    Case(
        "toy-theta-length",
        lambda m: toy.correlated_regression(10, 3, theta_true=torch.zeros(5)),
        GifLiteError,
        "theta_true must be a tensor of shape",
        kind="lengths",
    ),
    Case(
        "ridge-fit-lengths",
        lambda m: toy.ridge_fit(X, X[:3, 0]),
        GifLiteError,
        r"y must be a tensor of shape \(24,\)",
        kind="lengths",
    ),
    Case(
        "ridge-fit-weight-decay",
        lambda m: toy.ridge_fit(X, X[:, 0], -1.0),
        GifLiteError,
        "weight_decay",
        kind="range",
    ),
    Case(
        "linear-model-matrix",
        lambda m: toy.linear_model(X),
        GifLiteError,
        "theta must be a floating 1-D",
        kind="shape",
    ),
    Case(
        "grad-cam-layer-string",
        lambda m: gradcam.grad_cam(m, "layer", IMG),
        GifLiteError,
        "layers",
        model=_cnn,
        kind="type",
    ),
    Case(
        "grad-cam-target",
        lambda m: gradcam.grad_cam(m, m[0], IMG, target=9),
        GifLiteError,
        r"target must be one class in \[0, 3\)",
        model=_cnn,
        kind="range",
    ),
    Case(
        "grad-cam-size",
        lambda m: gradcam.grad_cam(m, m[0], IMG, size="big"),
        GifLiteError,
        "size must be",
        model=_cnn,
        kind="type",
    ),
    Case(
        "grad-cam-nan",
        lambda m: gradcam.grad_cam(m, m[0], IMG * NAN),
        GifLiteError,
        "inputs hold NaN",
        model=_cnn,
        kind="non-finite",
    ),
    Case(
        "grad-cam-flat-inputs",
        lambda m: gradcam.grad_cam(m, m[0], IMG.flatten(1)),
        GifLiteError,
        r"inputs must be a batch of images",
        model=_cnn,
        kind="shape",
    ),
    Case(
        "feature-maps-kind",
        lambda m: gradcam.feature_maps(m, IMG, kind="relu"),
        GifLiteTypeError,
        "kind must be a module class",
        model=_cnn,
        kind="type",
    ),
    Case(
        "strongest-channel-vector",
        lambda m: gradcam.strongest_channel(torch.zeros(3)),
        GifLiteError,
        "maps must have shape",
        kind="shape",
    ),
    Case(
        "set-threads-zero",
        lambda m: runtime.set_threads(0),
        GifLiteError,
        "threads must be a positive",
        kind="range",
    ),
    Case("set-threads-string", lambda m: runtime.set_threads("2"), GifLiteError, "threads", kind="type"),
    Case(
        "pick-device-unknown",
        lambda m: runtime.pick_device("tpu"),
        GifLiteError,
        "device must be",
        kind="range",
    ),
    Case(
        "train-label-out-of-range",
        lambda m: _train(m, (X, Y.clone().index_fill_(0, _sub(N - 1), 9))),
        GifLiteError,
        r"targets must be class labels in \[0, 3\)",
        kind="state",
    ),
    Case("train-lr-negative", lambda m: _train(m, lr=-0.1), GifLiteError, "lr must be > 0", kind="range"),
    Case("train-lr-nan", lambda m: _train(m, lr=NAN), GifLiteError, "lr must be a finite", kind="non-finite"),
    Case(
        "train-epochs-zero",
        lambda m: _train(m, epochs=0),
        GifLiteError,
        "epochs must be a positive int",
        kind="range",
    ),
    Case(
        "train-batch-size-zero",
        lambda m: _train(m, batch_size=0),
        GifLiteError,
        "batch_size must be a positive int",
        kind="range",
    ),
    Case(
        "train-optimizer-unknown",
        lambda m: _train(m, optimizer="rmsprop"),
        GifLiteError,
        "unknown optimizer 'rmsprop'",
        kind="range",
    ),
    Case(
        "recipe-momentum-negative",
        lambda m: gl.Recipe(epochs=1, batch_size=8, lr=0.1, momentum=-1.0),
        GifLiteError,
        "momentum",
        kind="range",
    ),
    Case(
        "lbfgs-tol-negative",
        lambda m: gl.train_lbfgs(m, CE, (X, Y), tol=-1.0, progress=False),
        GifLiteError,
        "tol must be >= 0",
        kind="state",
    ),
    Case(
        "lbfgs-max-iter-zero",
        lambda m: gl.train_lbfgs(m, CE, (X, Y), max_iter=0, progress=False),
        GifLiteError,
        "max_iter=0",
        kind="range",
    ),
    Case(
        "lbfgs-inf-data",
        lambda m: gl.train_lbfgs(m, CE, (X * float("inf"), Y), progress=False),
        GifLiteError,
        "data's inputs hold NaN or infinite",
        kind="state",
    ),
    Case(
        "lbfgs-label-out-of-range",
        lambda m: gl.train_lbfgs(m, CE, (X, Y - 1), progress=False),
        GifLiteError,
        "targets must be class labels",
        kind="state",
    ),
    Case(
        "evaluate-batch-size-zero",
        lambda m: gl.evaluate(m, (X, Y), batch_size=0),
        GifLiteError,
        "batch_size must be a positive int",
        kind="range",
    ),
    Case(
        "evaluate-model-string",
        lambda m: gl.evaluate("m", (X, Y)),
        GifLiteTypeError,
        "model must be",
        kind="type",
    ),
    Case(
        "load-data-unknown",
        lambda m: bdata.load_data("nope"),
        GifLiteError,
        "unknown data set 'nope'",
        kind="range",
    ),
    Case(
        "load-data-val-fraction",
        lambda m: bdata.load_data("digits", val_fraction=1.5),
        GifLiteError,
        "fraction must lie in",
        kind="range",
    ),
    Case(
        "load-data-dtype",
        lambda m: bdata.load_data("digits", dtype=torch.long),
        GifLiteError,
        "dtype must be a floating",
        kind="dtype/device",
    ),
    Case(
        "load-data-seed-string",
        lambda m: bdata.load_data("digits", seed="0"),
        GifLiteTypeError,
        "seed must be an int",
        kind="type",
    ),
    Case(
        "load-data-shape",
        lambda m: bdata.load_data("digits", shape=(1, 2)),
        GifLiteError,
        "shape must be",
        kind="shape",
    ),
    Case(
        "stratified-split-float-targets",
        lambda m: bdata.stratified_split(X[:, 0], 0.5, 0),
        GifLiteError,
        "targets must be a 1-D tensor of integer",
        kind="dtype/device",
    ),
    Case(
        "stratified-split-fraction",
        lambda m: bdata.stratified_split(Y, NAN, 0),
        GifLiteError,
        "fraction",
        kind="non-finite",
    ),
    Case(
        "paper-config-unknown",
        lambda m: configs.paper_config("nope"),
        GifLiteError,
        "unknown paper config 'nope'",
        kind="range",
    ),
    Case(
        "paper-config-int",
        lambda m: configs.paper_config(3),
        GifLiteError,
        "unknown paper config 3",
        kind="type",
    ),
    Case(
        "paper-config-smoke-string",
        lambda m: configs.paper_config("mnist-tinynet", smoke="yes"),
        GifLiteTypeError,
        "smoke must be",
        kind="type",
    ),
    Case(
        "lds-shapes",
        lambda m: ab.lds(torch.zeros(3, 4), torch.zeros(5, 4, dtype=torch.bool), torch.zeros(5, 2)),
        GifLiteError,
        "disagree",
        kind="lengths",
    ),
    Case(
        "spearman-rows-shapes",
        lambda m: ab.spearman_rows(torch.zeros(3, 4), torch.zeros(3, 5)),
        GifLiteError,
        "a and b must be 2-D of one shape",
        kind="lengths",
    ),
    Case(
        "tracin-no-checkpoints",
        lambda m: ab.tracin(m, CE, (X, Y), (X, Y), []),
        GifLiteError,
        "checkpoints is empty",
        kind="empty",
    ),
    Case(
        "make-groups-sizes",
        lambda m: fa.make_groups(Y, 1, 1, sizes=(40, 10)),
        GifLiteError,
        "sizes must satisfy",
        kind="range",
    ),
    Case(
        "pearson-lengths",
        lambda m: fa.pearson([1.0, 2.0], [1.0]),
        GifLiteError,
        "same length",
        kind="lengths",
    ),
    Case(
        "percentile-interval-level",
        lambda m: fa.percentile_interval(torch.zeros(5), 2.0),
        GifLiteError,
        "level must lie",
        kind="range",
    ),
    Case(
        "chapter-config-scale",
        lambda m: fa.chapter_config("huge"),
        GifLiteError,
        "scale must be 'small' or 'paper'",
        kind="range",
    ),
    Case(
        "trigger-size-zero",
        lambda m: bd.trigger_pattern(0),
        GifLiteError,
        "trigger size must be at least 1",
        kind="range",
    ),
    Case(
        "trigger-too-big", lambda m: bd.add_trigger(IMG, size=20), GifLiteError, "does not fit", kind="shape"
    ),
    Case(
        "poison-fraction",
        lambda m: bd.poison((IMG, torch.arange(4) % 3), 1.5, 0),
        GifLiteError,
        "fraction must lie",
        kind="range",
    ),
    Case(
        "cosine-shapes",
        lambda m: ex.cosine(_v(), _v(3)),
        GifLiteError,
        "cosine needs two vectors of one shape",
        kind="lengths",
    ),
    Case(
        "tikhonov-gamma-negative",
        lambda m: ex.tikhonov_gif(_obj(m), _v(), _sub(1, 2), -1.0),
        GifLiteError,
        "gamma must be >= 0",
        kind="range",
    ),
    Case(
        "removal-f1-range",
        lambda m: ex.removal_f1(1.5, 0.5),
        GifLiteError,
        "acc_removed must be an accuracy",
        kind="range",
    ),
    Case(
        "step-search-increment",
        lambda m: ex.paper_step_search(m, _v(), None, lambda mm: 0.5, increment=-1.0),
        GifLiteError,
        "increment must be",
        kind="range",
    ),
    Case(
        "best-step-empty",
        lambda m: ex.best_step(m, _v(), None, [], lambda mm: 0.5),
        GifLiteError,
        "steps is empty",
        kind="empty",
    ),
    Case(
        "mean-kl-wrong-width",
        lambda m: ex.mean_kl(m, _mlp(), X[:, :2]),
        ModelCallError,
        "model.inputs. failed",
        kind="shape",
    ),
    Case(
        "agreement-other-outputs",
        lambda m: ex.prediction_agreement(m, nn.Linear(D, 7).double(), X),
        GifLiteError,
        "model and reference disagree",
        kind="lengths",
    ),
    Case(
        "scaled-update-negative-norm",
        lambda m: ex.scaled_update(_v(), -1.0),
        GifLiteError,
        "norm must be >= 0",
        kind="range",
    ),
    Case(
        "scaled-update-nan",
        lambda m: ex.scaled_update(_v() * NAN, 1.0),
        GifLiteError,
        "delta must be a finite",
        kind="non-finite",
    ),
    Case(
        "removal-setup-absent-class",
        lambda m: ex.removal_setup(m, (X, Y), [99]),
        GifLiteError,
        r"removed=\[99\] names no class",
        kind="range",
    ),
    Case(
        "removal-setup-n-hessian",
        lambda m: ex.removal_setup(m, (X, Y), [1], n_hessian=0),
        GifLiteError,
        "n_hessian must be a positive int",
        kind="range",
    ),
    Case(
        "step-search-scores-fn",
        lambda m: ex.paper_step_search(m, _v(), None, "f1"),
        GifLiteTypeError,
        "scores_fn must be a callable",
        kind="type",
    ),
    Case(
        "poison-target-negative",
        lambda m: bd.poison((IMG, torch.arange(4) % 3), 0.5, -1),
        GifLiteError,
        "target must be a class label",
        kind="range",
    ),
    Case(
        "apply-copy-length",
        lambda m: ex.apply_copy(m, _v(3)),
        GifLiteError,
        "delta must be a flat vector of length 43",
        kind="lengths",
    ),
    Case(
        "step-search-delta-length",
        lambda m: ex.paper_step_search(m, _v(3), None, lambda mm: 0.5),
        GifLiteError,
        "delta",
        kind="lengths",
    ),
    Case(
        "best-step-nan",
        lambda m: ex.best_step(m, _v(), None, [NAN], lambda mm: 0.5),
        GifLiteError,
        "steps\\[i\\] must be a finite",
        kind="non-finite",
    ),
]


@pytest.mark.parametrize("case", CASES_24, ids=[c.id for c in CASES_24])
def test_issue_24_surfaces_name_bad_input_and_leave_the_model_untouched(
    case: Case, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # checkpoint cases write and read relative paths here
    model = case.model()
    before = ModelState(model)
    _raises(case, model)
    assert ModelState(model).same_as(before), f"{case.id} changed the model"
    assert issubclass(case.exc, GifLiteError)  # every case is the library's error, never torch's


def _raises(case: Case, model: nn.Module, *extra: object) -> None:
    if issubclass(case.exc, Warning):
        with pytest.warns(case.exc, match=case.match):
            case.call(model, *extra)
    else:
        with pytest.raises(case.exc, match=case.match):
            case.call(model, *extra)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_named_and_leaves_the_model_untouched(case: Case) -> None:
    model = case.model()
    before = ModelState(model)
    if case.id == "select-nan-weights":  # the NaN weight is part of the set-up, not of the call
        _nan_weights(model)
        before = ModelState(model)
        case = Case(case.id, lambda m: gl.select(m, "highest_gradients", 0.5, X, Y, CE), case.exc, case.match)
    _raises(case, model)
    if case.id in ("model-nothing-trainable", "set-theta-frozen", "flat-params-frozen"):
        model.requires_grad_(True)  # the case itself froze the model before the call
    assert ModelState(model).same_as(before), f"{case.id} changed the model"


CHECKPOINT_CASES = [
    Case("checkpoint-other-architecture", _load_other_arch, GifLiteError, "another architecture"),
    Case(
        "checkpoint-missing-fields", _load_missing_fields, GifLiteError, r"lacks the fields \['config_json'\]"
    ),
    Case("checkpoint-extra-layer", _load_extra_key, GifLiteError, "unexpected"),
]


@pytest.mark.parametrize("case", CHECKPOINT_CASES, ids=[c.id for c in CHECKPOINT_CASES])
def test_bad_checkpoint_leaves_the_model_untouched(case: Case, tmp_path: Path) -> None:
    model = case.model()
    before = ModelState(model)
    _raises(case, model, tmp_path)
    assert ModelState(model).same_as(before)


def test_a_load_failing_half_way_is_rolled_back(tmp_path: Path) -> None:
    class Refuses(nn.Linear):
        def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
            raise RuntimeError("refused")

    model = nn.Sequential(nn.Linear(D, 5), Refuses(5, K)).double()
    path = save_checkpoint(nn.Sequential(nn.Linear(D, 5), nn.Linear(5, K)).double(), tmp_path / "c.pt")
    before = ModelState(model)
    with pytest.raises(RuntimeError, match="refused"):
        load_checkpoint(model, path)
    assert ModelState(model).same_as(before)  # the first layer, already copied, was restored


def test_atomic_restores_everything() -> None:
    model = _bn()
    model[0].weight.grad = torch.ones_like(model[0].weight)
    before = ModelState(model)
    with pytest.raises(KeyError), checks.atomic(model):
        with torch.no_grad():
            model[0].weight.add_(1.0)
        model[1].running_mean.add_(1.0)
        model.train()
        model[3].bias.requires_grad_(False)
        model[0].weight.grad = None
        model[2].register_forward_hook(lambda *a: None)
        raise KeyError("fail")
    assert ModelState(model).same_as(before)


def test_selection_leaves_a_training_mode_batchnorm_model_as_it_was() -> None:
    model = _bn().train()
    before = ModelState(model)
    for method in ("highest_outputs", "highest_gradients", "largest_gradient_entries"):
        gl.select(model, method, 0.3, X, Y, CE)  # runs forwards in training mode: statistics restored
        assert ModelState(model).same_as(before), method
    with pytest.raises(ModelCallError):
        gl.select(model, "highest_gradients", 0.3, X[:, :2], Y, CE)
    assert ModelState(model).same_as(before)


def test_gradient_never_rewrites_batchnorm_statistics() -> None:
    model = _bn()
    stats = model[1].running_mean.clone()
    obj = _obj(model)
    obj.gradient()
    obj.hvp(_v(obj.num_params))
    assert torch.equal(model[1].running_mean, stats)


def test_an_endless_reiterable_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    class Endless:
        def __iter__(self):
            return itertools.cycle([(X[:4], Y[:4])])

    monkeypatch.setattr(checks, "MAX_UNSIZED_BATCHES", 50)
    model = _mlp()
    before = ModelState(model)
    with pytest.raises(GifLiteError, match="more than 50 batches in one pass"):
        gl.Objective(model, CE, Endless())
    assert ModelState(model).same_as(before)


# ------------------------------------------------------------------------------------- documented acceptances
def test_accepted_forms_give_the_same_objective() -> None:
    model = _mlp()
    ref = _obj(model).gradient()
    forms = [
        (X.numpy(), Y.numpy()),  # numpy pair
        TensorDataset(X, Y),
        [(X[:10], Y[:10]), (X[10:], Y[10:])],
        iter([(X[:10], Y[:10]), (X[10:], Y[10:])]),  # one-shot, finite
        DataLoader(TensorDataset(X, Y), batch_size=5, shuffle=True),  # shuffled without drop_last: fine
    ]
    for data in forms:
        g = gl.Objective(model, CE, data, weight_decay=0.1).gradient()
        assert torch.allclose(g, ref, atol=1e-12), type(data).__name__


def test_accepted_groups_labels_and_generators() -> None:
    model = _mlp()
    a = gl.removal_problem(model, CE, (X, Y), {5, 1, 3})
    b = gl.removal_problem(model, CE, (X, Y), torch.tensor([1, 3, 5]))
    mask = torch.zeros(N, dtype=torch.bool)
    mask[[1, 3, 5]] = True
    c = gl.removal_problem(model, CE, (X, Y), mask)
    assert torch.equal(a.g, b.g) and torch.equal(b.g, c.g)
    one = gl.relabel_problem(model, CE, (X, Y), G, 2)
    many = gl.relabel_problem(model, CE, (X, Y), G, torch.full((6,), 2.0))  # integer-valued floats
    assert torch.equal(one.g, many.g)
    s1 = gl.select(model, "random", 0.5, None, generator=3)
    s2 = gl.select(model, "random", 0.5, None, generator=torch.Generator().manual_seed(3))
    assert torch.equal(s1.subset, s2.subset)
    obj = _obj(model)
    assert torch.equal(obj.hessian_columns([0, 2]), obj.hessian_columns(torch.tensor([0, 2])))
    # dropout with p=0 in training mode is deterministic: accepted
    gl.Objective(nn.Sequential(nn.Linear(D, K), nn.Dropout(0.0)).double(), CE, (X, Y))


def test_unsorted_subset_would_have_misassigned() -> None:
    """The sorted pairing the error asks for puts each delta entry on its own parameter."""
    model = _mlp()
    theta = gl.flat_params(model)
    subset, delta = torch.tensor([5, 1]), torch.tensor([10.0, 20.0], dtype=torch.float64)
    order = subset.argsort()
    gl.apply_update(model, delta[order], subset[order])
    assert gl.flat_params(model)[5] == theta[5] + 10.0 and gl.flat_params(model)[1] == theta[1] + 20.0


# ------------------------------------------------------------------------------------- devices
def test_a_tensor_on_another_device_is_named() -> None:
    with pytest.raises(
        GifLiteError, match=r"g is on cpu but the model is on cuda:0; move it with g.to\('cuda:0'\)"
    ):
        checks.check_device(torch.zeros(3), torch.device("cuda", 0), "g")
    with pytest.raises(GifLiteError, match="delta is on cpu"):
        checks.check_vector(torch.zeros(3), 3, "delta", device="cuda")
    checks.check_device(torch.zeros(3), "cpu", "g")  # same device: fine


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_model_runs_on_cuda_and_refuses_cpu_vectors() -> None:
    model = _mlp().cuda()
    obj = gl.Objective(model, CE, (X, Y), weight_decay=0.1)  # CPU batches are moved per batch
    g = obj.gradient()
    assert g.device.type == "cuda"
    res = gl.generalized_influence(obj, g, torch.tensor([0, 3, 7]))
    assert res.delta.device.type == "cuda"
    assert obj.hessian().device.type == "cuda"
    with pytest.raises(GifLiteError, match="move it"):
        gl.influence(obj, g.cpu())
    # training and evaluation move CPU batches to the model's device
    gl.train_minibatch(model, CE, (X, Y), epochs=1, batch_size=8, lr=1e-2, progress=False)
    assert gl.evaluate(model, (X, Y)).accuracy >= 0.0
    assert gl.objective_value(model, CE, (X, Y))[1] >= 0.0


# ------------------------------------------------------------------------------------- properties (hypothesis)
SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(
    st.integers(1, 30).flatmap(lambda n: st.tuples(st.just(n), st.sets(st.integers(0, n - 1), min_size=1)))
)
def test_valid_subsets_match_a_dense_scatter(case: tuple[int, set[int]]) -> None:
    n, chosen = case
    idx = sorted(chosen)
    p = gl.check_subset(torch.tensor(idx), n)
    delta = torch.arange(1.0, len(idx) + 1, dtype=torch.float64)
    model = nn.Linear(n, 1, bias=False).double()
    with torch.no_grad():
        model.weight.zero_()
    gl.apply_update(model, delta, p)
    dense = np.zeros(n)
    for i, j in enumerate(idx):
        dense[j] = delta[i].item()
    assert np.array_equal(gl.flat_params(model).numpy(), dense)
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    assert torch.equal(gl.check_subset(mask, n), p)


@SETTINGS
@given(st.integers(2, 20), st.lists(st.integers(-25, 25), min_size=0, max_size=8))
def test_subsets_are_valid_or_refused_with_the_library_error(n: int, idx: list[int]) -> None:
    valid = bool(idx) and all(0 <= i < n for i in idx) and all(a < b for a, b in itertools.pairwise(idx))
    if valid:
        assert gl.check_subset(torch.tensor(idx), n).tolist() == idx
    else:
        with pytest.raises(GifLiteError):
            gl.check_subset(torch.tensor(idx, dtype=torch.long), n)


@SETTINGS
@given(
    st.integers(3, 20).flatmap(
        lambda n: st.tuples(st.just(n), st.lists(st.integers(-3, n + 2), max_size=n + 2))
    )
)
def test_groups_match_a_dense_mask(case: tuple[int, list[int]]) -> None:
    n, idx = case
    valid = bool(idx) and all(0 <= i < n for i in idx) and len(set(idx)) == len(idx) and len(idx) < n
    data = (torch.arange(n, dtype=torch.float64)[:, None], torch.arange(n))
    if valid:
        kept_x, _ = drop_examples(data, idx)
        assert kept_x.flatten().tolist() == [float(i) for i in range(n) if i not in set(idx)]
        assert checks.check_group(idx, n).tolist() == idx  # the caller's order is kept
    else:
        with pytest.raises(GifLiteError):
            checks.check_group(idx, n)


@SETTINGS
@given(
    st.integers(1, 12),
    st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), min_size=0, max_size=14),
)
def test_vectors_are_valid_or_refused_with_the_library_error(n: int, values: list[float]) -> None:
    v = torch.tensor(values, dtype=torch.float64)
    valid = len(values) == n and all(np.isfinite(values))
    if valid:
        assert checks.check_vector(v, n, "v") is v
    else:
        with pytest.raises(GifLiteError):
            checks.check_vector(v, n, "v")


def test_there_are_at_least_150_cases() -> None:
    assert len(CASES) + len(CHECKPOINT_CASES) + len(CASES_24) >= 150
    ids = [c.id for c in CASES + CHECKPOINT_CASES + CASES_24]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------------------- every documented form
# The README accepts these forms as they are; each must give the canonical form's answer, in example order.
def _loader(shuffle: bool = True) -> DataLoader:
    gen = torch.Generator().manual_seed(1)
    return DataLoader(TensorDataset(X, Y), batch_size=5, shuffle=shuffle, generator=gen)


DATA_FORMS: dict[str, Callable[[], object]] = {
    "numpy-pair": lambda: (X.numpy(), Y.numpy()),
    "tensordataset": lambda: TensorDataset(X, Y),
    "list-of-batches": lambda: [(X[:10], Y[:10]), (X[10:], Y[10:])],
    "shuffled-loader": _loader,
}
TEST = (X[:5], Y[:5])


def _ref_obj(data: object = None) -> gl.Objective:
    return gl.Objective(_mlp(), CE, (X, Y) if data is None else data, weight_decay=0.1)


def _quiet_self_influence(o: gl.Objective) -> torch.Tensor:
    return gl.self_influence(o, progress=False)


DATA_FUNCTIONS: dict[str, Callable[[object], torch.Tensor]] = {
    "Objective.gradient": lambda d: _ref_obj(d).gradient(),
    "Objective.hvp": lambda d: _ref_obj(d).hvp(_v()),
    "Objective.hessian": lambda d: _ref_obj(d).hessian(),
    "influence": lambda d: gl.influence(_ref_obj(d), _v(), solver="direct").delta,
    "generalized_influence": lambda d: gl.generalized_influence(_ref_obj(d), _v(), _sub(0, 5, 9)).delta,
    "removal_effects (training data)": lambda d: gl.removal_effects(_ref_obj(d), TEST, progress=False),
    "removal_effects (test data)": lambda d: gl.removal_effects(_ref_obj(), d, progress=False),
    "self_influence": lambda d: _quiet_self_influence(_ref_obj(d)),
    "example_gradients": lambda d: torch.cat(
        [g for _, g in gl.example_gradients(_ref_obj(d), progress=False)]
    ),
    "example_gradients (data)": lambda d: torch.cat(
        [g for _, g in gl.example_gradients(_ref_obj(), d, progress=False)]
    ),
    "removal_problem": lambda d: gl.removal_problem(_mlp(), CE, d, [1, 3, 5], 0.1).g,
    "relabel_problem": lambda d: gl.relabel_problem(_mlp(), CE, d, [1, 3, 5], _lbl(0, 0, 1), 0.1).g,
    "KFAC": lambda d: gl.KFAC(_ref_obj(d)).hessian(),
    "EKFAC": lambda d: gl.EKFAC(_ref_obj(d)).hessian(),
    "LowRank": lambda d: gl.LowRank(_ref_obj(d), 4, 8).hessian(),
    "StochasticHessian (fixed)": lambda d: gl.StochasticHessian(_ref_obj(d), 8, "fixed", 0).hessian(),
}


@pytest.mark.parametrize("form", list(DATA_FORMS))
@pytest.mark.parametrize("function", list(DATA_FUNCTIONS))
def test_every_data_form_gives_the_canonical_answer(function: str, form: str) -> None:
    want = DATA_FUNCTIONS[function]((X, Y))
    got = DATA_FUNCTIONS[function](DATA_FORMS[form]())
    assert got.shape == want.shape and torch.allclose(got, want, rtol=1e-10, atol=1e-12), (function, form)


def test_numpy_inputs_give_the_canonical_answer_where_one_pair_is_taken() -> None:
    model = _mlp()
    for method in ("highest_outputs", "highest_gradients", "largest_gradient_entries"):
        a = gl.select(model, method, 0.3, X, Y, CE).subset
        b = gl.select(model, method, 0.3, X.numpy(), Y.numpy(), CE).subset
        assert torch.equal(a, b), method
    assert gl.objective_value(model, CE, (X.numpy(), Y.numpy())) == gl.objective_value(model, CE, (X, Y))
    ev_np, ev = gl.evaluate(model, (X.numpy(), Y.numpy())), gl.evaluate(model, (X, Y))
    assert (ev_np.accuracy, ev_np.loss) == (ev.accuracy, ev.loss)
    kept_np, kept = drop_examples((X.numpy(), Y.numpy()), [2, 7]), drop_examples((X, Y), [2, 7])
    assert all(torch.equal(a, b) for a, b in zip(kept_np, kept, strict=True))


def _mask(n: int, idx: list[int]) -> torch.Tensor:
    m = torch.zeros(n, dtype=torch.bool)
    m[idx] = True
    return m


#: a group of examples {1, 3, 5} in each accepted form (the canonical one: a sorted int64 tensor)
GROUP_FORMS: dict[str, Callable[[], object]] = {
    "list": lambda: [1, 3, 5],
    "set": lambda: {5, 1, 3},
    "numpy": lambda: np.array([1, 3, 5]),
    "range": lambda: range(1, 6, 2),
    "bool-mask": lambda: _mask(N, [1, 3, 5]),
    "int32-tensor": lambda: torch.tensor([1, 3, 5], dtype=torch.int32),
}
GROUP_FUNCTIONS: dict[str, Callable[[object], torch.Tensor]] = {
    "check_group": lambda g: gl.check_group(g, N),
    "keep_mask": lambda g: gl.keep_mask(g, N),
    "removal_problem": lambda g: gl.removal_problem(_mlp(), CE, (X, Y), g, 0.1).g,
    "removal_problem (at optimum)": lambda g: gl.removal_problem(_mlp(), CE, (X, Y), g, 0.1, True).g,
    "relabel_problem (one label)": lambda g: gl.relabel_problem(_mlp(), CE, (X, Y), g, 2, 0.1).g,
    "drop_examples": lambda g: drop_examples((X, Y), g)[0],
    "relabel_examples": lambda g: gl.relabel_examples((X, Y), g, 2)[1],
}


@pytest.mark.parametrize("form", list(GROUP_FORMS))
@pytest.mark.parametrize("function", list(GROUP_FUNCTIONS))
def test_every_group_form_gives_the_canonical_answer(function: str, form: str) -> None:
    want = GROUP_FUNCTIONS[function](torch.tensor([1, 3, 5]))
    got = GROUP_FUNCTIONS[function](GROUP_FORMS[form]())
    assert torch.equal(got.to(want.dtype), want), (function, form)


#: a parameter subset {0, 4, 9, 20} in each accepted form
SUBSET_FORMS: dict[str, Callable[[], object]] = {
    "list": lambda: [0, 4, 9, 20],
    "numpy": lambda: np.array([0, 4, 9, 20]),
    "bool-mask": lambda: _mask(NP, [0, 4, 9, 20]),
    "selection": lambda: dataclasses.replace(
        gl.select(_mlp(), "random", 0.1, None, generator=0), subset=torch.tensor([0, 4, 9, 20])
    ),
}
SUBSET_FUNCTIONS: dict[str, Callable[[object], torch.Tensor]] = {
    "check_subset": lambda p: gl.check_subset(p, NP),
    "frozen_influence": lambda p: gl.frozen_influence(_ref_obj(), _v(), p, solver="direct").delta,
    "projected_influence": lambda p: gl.projected_influence(_ref_obj(), _v(), p, solver="direct").delta,
    "generalized_influence": lambda p: gl.generalized_influence(_ref_obj(), _v(), p, solver="direct").delta,
    "removal_effects (GIF)": lambda p: gl.removal_effects(_ref_obj(), TEST, p, "GIF", progress=False),
    "self_influence (FIF)": lambda p: gl.self_influence(_ref_obj(), p, "FIF", progress=False),
    "hessian_columns": lambda p: _ref_obj().hessian_columns(gl.check_subset(p, NP)),
    "apply_update": lambda p: _updated(p),
}


def _updated(p: object) -> torch.Tensor:
    model = _mlp()
    gl.apply_update(model, _v(4), p)
    return gl.flat_params(model)


@pytest.mark.parametrize("form", list(SUBSET_FORMS))
@pytest.mark.parametrize("function", list(SUBSET_FUNCTIONS))
def test_every_subset_form_gives_the_canonical_answer(function: str, form: str) -> None:
    want = SUBSET_FUNCTIONS[function](torch.tensor([0, 4, 9, 20]))
    got = SUBSET_FUNCTIONS[function](SUBSET_FORMS[form]())
    assert torch.allclose(got.to(want.dtype), want, rtol=1e-12, atol=0), (function, form)


def test_int_seeds_give_the_seeded_generators_answer() -> None:
    model = _mlp()
    for method in ("random",):
        a = gl.select(model, method, 0.3, X, generator=7).subset
        b = gl.select(model, method, 0.3, X, generator=torch.Generator().manual_seed(7)).subset
        assert torch.equal(a, b), method
    g = checks.check_generator(5)
    assert g is not None and torch.equal(
        torch.rand(3, generator=g), torch.rand(3, generator=torch.Generator().manual_seed(5))
    )
