"""How faithful is each estimator? Predicted against actual effects of removing groups, and their correlations.

Used by: faithfulness.

For every group ``U`` of training examples, :func:`estimate_group_effects` builds the removal problem
(:func:`gif_lite.removal_problem`), asks each estimator (IF, FIF, PIF, GIF) for an update ``delta`` at each
ratio ``|P| / k``, and records

* ``predicted``: the change of the test loss when ``theta + delta`` replaces ``theta`` (the model itself is
  left untouched),
* ``linear``: its first-order version ``grad L_test(theta) . delta``,
* ``actual``: the change of the test loss that retraining without ``U`` makes, measured against the
  original model or, when training is not run to a stationary point, against a *control* model trained
  from ``theta`` for the same budget with nothing removed (so that the change is the removal's, not that
  of further training).

An estimator is a callable ``(problem, subset) -> delta`` returning a full-length update (zeros outside
``subset``; ``subset`` is None for IF).  :func:`matrix_free_estimators` wraps gif_lite's estimators;
:func:`dense_estimators` does the same linear algebra with one dense Hessian shared by all groups, which is
far faster for small models; :func:`dense_curvature` lets gif_lite's own (matrix-free, possibly capped)
solvers run on a dense matrix formed once.  :func:`correlation_table` summarises rows per estimator and
ratio with Pearson and Spearman correlations, the share of groups where the predicted sign is right, the
least-squares slope of predicted on actual, and the mean error in units of the mean actual change.

The ground truth has a noise floor: :func:`actual_changes` with a second ``retrain`` (e.g. warm-started from
:func:`perturbed`, a copy of the model moved by a tiny random step) measures how far two equally valid
retrainings disagree.  :func:`chapter_config` holds the chapter's settings at each scale.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import torch
from scipy import stats
from torch import nn

from ..checks import GifLiteError, check_indices
from ..curvature import CurvatureOperator, DenseOperator
from ..influence import ESTIMATORS as _REGISTRY
from ..influence import Estimators
from ..influence import misfit as misfit_of
from ..objective import Objective
from ..params import flat_params, set_flat_params
from ..selection import select
from ..tasks import InfluenceProblem, removal_problem
from ..types import Data, LossFn

__all__ = [
    "ESTIMATORS",
    "ChapterConfig",
    "DenseCurvature",
    "EffectRow",
    "EffectSetup",
    "Estimator",
    "Group",
    "actual_changes",
    "chapter_config",
    "closer_share",
    "correlation_table",
    "dense_curvature",
    "dense_estimators",
    "estimate_group_effects",
    "make_groups",
    "matrix_free_estimators",
    "pearson",
    "percentile_interval",
    "perturbed",
    "retained_hessians",
    "slope_samples",
    "spearman",
]

Estimator = Callable[[InfluenceProblem, "torch.Tensor | None"], torch.Tensor]
ESTIMATORS = tuple(_REGISTRY)  # ("IF", "FIF", "PIF", "GIF")


@dataclass(frozen=True)
class Group:
    """A group of training examples to remove: ``kind`` ("random" or "same-class") and its ``indices``."""

    kind: str
    indices: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.indices.numel())


@dataclass(frozen=True)
class EffectRow:
    """One group, one estimator, one ratio: predicted and actual change of the test loss.

    ``ratio`` is 1.0 for IF (every parameter moves); ``subset_size`` is ``|P|``; ``misfit`` is
    ``rho(P) = ||H delta - g|| / ||g||`` on the retained objective (nan unless asked for).
    """

    group: int
    kind: str
    size: int
    estimator: str
    ratio: float
    subset_size: int
    predicted: float
    linear: float
    actual: float
    misfit: float = math.nan


def make_groups(
    targets: torch.Tensor,
    n_random: int,
    n_same_class: int,
    sizes: tuple[int, int] = (10, 40),
    seed: int = 0,
) -> list[Group]:
    """``n_random`` uniformly random groups and ``n_same_class`` groups drawn within one class each.

    Sizes are uniform integers in ``[sizes[0], sizes[1]]``; the classes of the same-class groups cycle
    through the classes present in ``targets`` (a class smaller than the drawn size gives a smaller group).
    Deterministic for a given ``seed``; random and same-class groups alternate.
    """
    lo, hi = sizes
    if not 1 <= lo <= hi:
        raise GifLiteError(f"sizes must satisfy 1 <= low <= high, got {sizes}")
    targets = torch.as_tensor(targets)
    n = int(targets.shape[0])
    if hi >= n:
        raise GifLiteError(f"groups of up to {hi} examples cannot be removed from {n}")
    gen = torch.Generator().manual_seed(seed)
    classes = torch.unique(targets).tolist()
    kinds = []
    for i in range(max(n_random, n_same_class)):
        kinds += (["random"] if i < n_random else []) + (["same-class"] if i < n_same_class else [])
    groups: list[Group] = []
    n_class = 0
    for kind in kinds:
        size = int(torch.randint(lo, hi + 1, (1,), generator=gen))
        if kind == "random":
            pool = torch.arange(n)
        else:
            pool = (targets == classes[n_class % len(classes)]).nonzero().flatten()
            n_class += 1
        idx = pool[torch.randperm(pool.numel(), generator=gen)[:size]]
        groups.append(Group(kind, idx.sort().values))
    return groups


# ------------------------------------------------------------------------------------------ estimators
def retained_hessians(
    model: nn.Module, loss_fn: LossFn, data: Data, weight_decay: float = 0.0, chunk: int = 128
) -> Callable[[InfluenceProblem], torch.Tensor]:
    """A function giving each removal problem the dense Hessian of its retained objective, cheaply.

    The mean data-loss Hessian ``H_D`` on all ``n`` examples is formed once; for a group ``U`` of ``m``
    the retained Hessian is ``(n H_D - m H_U) / (n - m) + weight_decay I`` with ``H_U`` the Hessian of the
    group's mean loss, which costs a dense Hessian on ``m`` examples only.  Small models only.  ``chunk``
    Hessian columns per backward pass: on a few dozen examples, large blocks are the cheaper ones.
    """
    inputs, targets = data
    n = int(inputs.shape[0])
    h_data = Objective(model, loss_fn, data).hessian(chunk=chunk)
    eye = torch.eye(h_data.shape[0], dtype=h_data.dtype, device=h_data.device)

    def hessian_of(problem: InfluenceProblem) -> torch.Tensor:
        idx = problem.group
        m = int(idx.numel())
        h_u = Objective(model, loss_fn, (inputs[idx], targets[idx])).hessian(chunk=chunk)
        return (n * h_data - m * h_u) / (n - m) + weight_decay * eye

    return hessian_of


def dense_estimators(
    hessian: torch.Tensor | Callable[[InfluenceProblem], torch.Tensor],
) -> dict[str, Estimator]:
    """gif_lite's IF, FIF, PIF and GIF with ``solver="direct"`` on a dense ``H``, using ``problem.g``.

    ``hessian`` is one matrix shared by every problem (e.g. the full-data Hessian), or a function giving
    each problem its own (e.g. :func:`retained_hessians`; it is called once per problem, and the IF solve
    is shared by IF and every PIF).  IF ``H^-1 g``; FIF ``H[P,P]^-1 g[P]``; PIF ``(H^-1 g)[P]``; GIF
    ``pinv(H[:,P]) g`` (least squares), each returned as a full-length vector.  The estimators are the
    core's (:data:`gif_lite.influence.ESTIMATOR_SPECS`), run on a :class:`DenseCurvature`.
    """
    fixed = None if callable(hessian) else DenseCurvature(hessian)
    memo: dict[str, Any] = {"problem": None, "op": None}

    def operator(problem: InfluenceProblem) -> DenseCurvature:
        if fixed is not None:
            return fixed
        if memo["problem"] is not problem:
            assert callable(hessian)
            memo.update(problem=problem, op=DenseCurvature(hessian(problem)))
        return cast(DenseCurvature, memo["op"])

    return _estimators(operator, Estimators({"solver": "direct"}))


class DenseCurvature(DenseOperator):
    """A dense Hessian, symmetrised, as a curvature operator (:class:`gif_lite.DenseOperator`): gif_lite's
    solvers, their iterations and caps unchanged, with each Hessian-vector product a matrix product, and
    its columns (``solver="direct"``) read from the matrix.  ``objective`` is the objective it stands for
    (kept for reference)."""

    def __init__(self, h: torch.Tensor, objective: Objective | None = None) -> None:
        if h.dim() != 2 or h.shape[0] != h.shape[1]:
            raise GifLiteError(f"h must be a square matrix, got shape {tuple(h.shape)}")
        super().__init__(0.5 * (h + h.T), objective)

    @property
    def h(self) -> torch.Tensor:
        """The symmetrised matrix."""
        return self.matrix

    def hessian_columns(self, columns: torch.Tensor, chunk: int = 256) -> torch.Tensor:
        """``H[:, columns]``, read from the matrix (the products it stands for are counted)."""
        columns = check_indices(columns, self.num_params, "columns", unique=False, device=self.device)
        self.hvp_calls += int(columns.numel())
        return self.matrix[:, columns]

    def hessian(self, chunk: int = 256) -> torch.Tensor:
        """The symmetrised matrix itself (a copy)."""
        self.hvp_calls += self.num_params
        return self.matrix.clone()


def dense_curvature(objective: Objective, chunk: int = 128) -> DenseCurvature:
    """``objective``'s Hessian formed once (``objective.hessian``, small models only) as a
    :class:`DenseCurvature`: a fixed Hessian shared by many solves costs one Hessian, not one set of HVPs
    per solve.  The solvers see the same matrix up to rounding."""
    return DenseCurvature(objective.hessian(chunk=chunk), objective)


def matrix_free_estimators(
    objective: Objective | CurvatureOperator | None = None,
    influence_kwargs: Mapping[str, Any] | None = None,
    gif_kwargs: Mapping[str, Any] | None = None,
) -> dict[str, Estimator]:
    """gif_lite's IF, FIF, PIF and GIF, on ``objective`` (or, when None, each problem's retained objective).

    ``objective`` may be any curvature operator gif_lite's estimators accept (e.g. :func:`dense_curvature`).

    ``influence_kwargs`` go to :func:`~gif_lite.influence`, :func:`~gif_lite.frozen_influence` and
    :func:`~gif_lite.projected_influence` (e.g. ``solver``, ``max_iter``, ``damping``); ``gif_kwargs`` to
    :func:`~gif_lite.generalized_influence`.  PIF reuses the IF solution of the same problem (it is
    ``(H^-1 g)[P]`` by definition), so a problem costs one IF solve however many ratios are asked.
    """
    # any curvature operator stands in for the Objective (the estimators' documented contract)
    return _estimators(
        lambda problem: cast(Objective, objective if objective is not None else problem.objective),
        Estimators(influence_kwargs, gif_kwargs or {}),
    )


def _estimators(
    operator: Callable[[InfluenceProblem], Objective | CurvatureOperator], estimators: Estimators
) -> dict[str, Estimator]:
    """IF, FIF, PIF and GIF by name, each solved by ``estimators`` on ``operator(problem)``."""

    def estimator(name: str) -> Estimator:
        def estimate(problem: InfluenceProblem, subset: torch.Tensor | None) -> torch.Tensor:
            op = cast(Objective, operator(problem))
            return estimators(name, op, problem.g, subset).full(op.num_params)

        return estimate

    return {name: estimator(name) for name in ESTIMATORS}


# ------------------------------------------------------------------------------------------ the loop
def _loss(model: nn.Module, loss_fn: LossFn, data: Data) -> float:
    with torch.no_grad():
        return float(loss_fn(model(data[0]), data[1]))


def _loss_at(model: nn.Module, theta: torch.Tensor, loss_fn: LossFn, data: Data) -> float:
    """Loss of a copy of ``model`` whose flat parameters are ``theta``.

    A copy, not set-and-restore: writing into the model's parameters, even to restore them, bumps their
    autograd versions and breaks any :class:`Objective` that keeps a gradient graph on them.
    """
    moved = copy.deepcopy(model)
    set_flat_params(moved, theta)
    return _loss(moved, loss_fn, data)


@dataclass(frozen=True)
class EffectSetup:
    """What every group of a faithfulness study shares.

    The trained ``model`` with its ``loss_fn``, ``train`` and ``test`` data; ``retrain(indices)``, a model
    retrained without those training examples (e.g. a :func:`~gif_lite.train.retrain_without` closure);
    how ``g`` is built (:func:`~gif_lite.removal_problem` with ``weight_decay`` and ``at_optimum``:
    ``True`` takes the removal's part only, for models not at a stationary point); how ``P`` is chosen
    (``selection``, driven by the group's examples); and ``control``, the same training budget from
    ``theta`` on all the data, when training does not reach a stationary point.
    """

    model: nn.Module
    loss_fn: LossFn
    train: Data
    test: Data
    retrain: Callable[[torch.Tensor], nn.Module]
    weight_decay: float = 0.0
    selection: str = "highest_gradients"
    at_optimum: bool = False
    control: nn.Module | None = None


def actual_changes(setup: EffectSetup, groups: Sequence[Group]) -> list[float]:
    """The actual change of the test loss for each group: ``L_test(setup.retrain(U))`` minus that of
    ``setup.control`` (or of ``setup.model`` when there is no control).

    With a second ``retrain`` (and control) in a copy of the setup, e.g. warm-started from
    :func:`perturbed`, the two lists' difference is the ground truth's own noise.
    """
    test = setup.test
    reference = setup.model if setup.control is None else setup.control
    base = _loss(reference, setup.loss_fn, test)
    return [_loss(setup.retrain(g.indices), setup.loss_fn, test) - base for g in groups]


def perturbed(model: nn.Module, scale: float, seed: int = 0) -> nn.Module:
    """A copy of ``model`` at ``theta + eps``: ``eps`` a Gaussian direction drawn with ``seed``, scaled to
    ``||eps|| = scale * ||theta||``.  ``model`` is left untouched."""
    if not (scale >= 0 and math.isfinite(scale)):
        raise GifLiteError(f"scale must be a finite number >= 0, got {scale}")
    theta = flat_params(model)
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn(theta.shape, generator=gen, dtype=torch.float64).to(theta)
    moved = copy.deepcopy(model)
    set_flat_params(moved, theta + eps * (scale * theta.norm() / eps.norm()))
    return moved


def estimate_group_effects(
    setup: EffectSetup,
    groups: Sequence[Group],
    estimators: Mapping[str, Estimator],
    ratios: Iterable[float] = (0.05, 0.2),
    *,
    misfit: bool = False,
) -> list[EffectRow]:
    """Predicted and actual changes of the test loss for every group, estimator and ratio.

    ``estimators`` maps names to estimators (:func:`dense_estimators`, :func:`matrix_free_estimators`);
    "IF" runs once per group with ratio 1.0, the others once per ratio on
    ``P = select(model, selection, ratio, x_U, y_U, loss_fn).subset`` (one selection per group and ratio,
    shared by the estimators).  The actual change is :func:`actual_changes`'.
    ``misfit=True`` also records ``rho(P) = ||H delta - g|| / ||g||`` with ``H`` the Hessian of the
    retained objective (one HVP on it per row).  ``setup.model`` is left untouched.
    """
    model, loss_fn, train, test = setup.model, setup.loss_fn, setup.train, setup.test
    ratios = tuple(float(r) for r in ratios)
    theta = flat_params(model)
    base = _loss(model, loss_fn, test)
    test_grad = Objective(model, loss_fn, test).gradient().to(theta)
    x_train, y_train = train
    rows: list[EffectRow] = []
    for k, group in enumerate(groups):
        idx = group.indices
        problem = removal_problem(
            model, loss_fn, train, idx, weight_decay=setup.weight_decay, at_optimum=setup.at_optimum
        )
        (actual,) = actual_changes(setup, [group])
        subsets = {r: select(model, setup.selection, r, x_train[idx], y_train[idx], loss_fn).subset
                   for r in ratios} if any(name != "IF" for name in estimators) else {}  # fmt: skip
        for name, estimator in estimators.items():
            for ratio in (1.0,) if name == "IF" else ratios:
                subset = None if name == "IF" else subsets[ratio]
                delta = estimator(problem, subset).to(theta)
                rho = misfit_of(problem.objective, problem.g.to(theta), delta) if misfit else math.nan
                rows.append(
                    EffectRow(
                        group=k,
                        kind=group.kind,
                        size=group.size,
                        estimator=name,
                        ratio=ratio,
                        subset_size=theta.numel() if subset is None else int(subset.numel()),
                        predicted=_loss_at(model, theta + delta, loss_fn, test) - base,
                        linear=float(test_grad @ delta),
                        actual=actual,
                        misfit=rho,
                    )
                )
    return rows


# ------------------------------------------------------------------------------------------ statistics
def _correlation(name: str, x: Sequence[float], y: Sequence[float]) -> float:
    """``scipy.stats.pearsonr`` or ``spearmanr`` of two equal 1-D sequences; nan when either is constant."""
    a, b = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size < 2:
        raise GifLiteError(f"{name} needs two 1-D sequences of the same length >= 2")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    test = stats.pearsonr if name == "pearson" else stats.spearmanr
    return float(test(a, b).statistic)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson's correlation of two equally long sequences (``scipy.stats.pearsonr``; nan when either is constant)."""
    return _correlation("pearson", x, y)


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation (``scipy.stats.spearmanr``: Pearson's on average ranks; nan when constant)."""
    return _correlation("spearman", x, y)


def correlation_table(
    rows: Iterable[EffectRow], use: str = "predicted", by_kind: bool = False
) -> list[dict[str, Any]]:
    """One record per estimator and ratio (and group kind with ``by_kind``), in order of first appearance.

    Fields: ``estimator``, ``ratio``, (``kind``), ``groups``, ``pearson``, ``spearman``, ``sign`` (share of
    groups whose predicted change has the sign of the actual one), ``slope`` (least-squares slope of
    predicted on actual through the origin: 1 when the sizes are right, below 1 when the estimator
    undershoots) and ``error`` (mean ``|predicted - actual|`` over mean ``|actual|``: 0 is exact, 1 is no
    better than predicting no change).  ``use`` picks the prediction: "predicted" (test loss at ``theta + delta``) or "linear".
    """
    if use not in ("predicted", "linear"):
        raise GifLiteError(f"use must be 'predicted' or 'linear', got {use!r}")
    cells: dict[tuple[Any, ...], list[tuple[float, float]]] = {}
    for r in rows:
        key: tuple[Any, ...] = (r.estimator, r.ratio, r.kind) if by_kind else (r.estimator, r.ratio)
        cells.setdefault(key, []).append((getattr(r, use), r.actual))
    table = []
    for key, pairs in cells.items():
        pred = torch.tensor([p for p, _ in pairs], dtype=torch.float64)
        act = torch.tensor([a for _, a in pairs], dtype=torch.float64)
        record: dict[str, Any] = {"estimator": key[0], "ratio": key[1]}
        if by_kind:
            record["kind"] = key[2]
        record.update(
            groups=len(pairs),
            pearson=pearson(pred.tolist(), act.tolist()) if len(pairs) > 1 else math.nan,
            spearman=spearman(pred.tolist(), act.tolist()) if len(pairs) > 1 else math.nan,
            sign=float((torch.sign(pred) == torch.sign(act)).double().mean()),
            slope=float(pred @ act / (act @ act)) if float(act @ act) > 0 else math.nan,
            error=_relative_error(pred, act),
        )
        table.append(record)
    return table


def _relative_error(pred: torch.Tensor, act: torch.Tensor) -> float:
    scale = float(act.abs().mean())
    return float((pred - act).abs().mean()) / scale if scale > 0 else math.nan


def closer_share(
    rows: Iterable[EffectRow], estimator: str, other: str, use: str = "linear"
) -> dict[float, float]:
    """Per ratio, the share of groups whose ``use`` prediction by ``estimator`` is strictly closer to the
    actual change than ``other``'s (both at that ratio)."""
    if use not in ("predicted", "linear"):
        raise GifLiteError(f"use must be 'predicted' or 'linear', got {use!r}")
    err: dict[tuple[str, float, int], float] = {}
    for r in rows:
        if r.estimator in (estimator, other):
            err[r.estimator, r.ratio, r.group] = abs(getattr(r, use) - r.actual)
    out: dict[float, float] = {}
    for ratio in sorted({key[1] for key in err}):
        groups = sorted(g for e, q, g in err if e == estimator and q == ratio)
        others = sorted(g for e, q, g in err if e == other and q == ratio)
        if not groups or groups != others:
            raise GifLiteError(f"{estimator} and {other} must cover the same groups at ratio {ratio}")
        wins = [err[estimator, ratio, g] < err[other, ratio, g] for g in groups]
        out[ratio] = sum(wins) / len(wins)
    return out


def slope_samples(
    rows: Iterable[EffectRow], use: str = "linear", n_boot: int = 2000, seed: int = 0
) -> dict[tuple[str, float], torch.Tensor]:
    """Bootstrap over groups of each estimator's slope (predicted on actual, through the origin).

    Returns ``{(estimator, ratio): tensor of n_boot slopes}``.  Every cell is resampled with the *same*
    draws of groups, so differences between cells (e.g. GIF's slope against PIF's) are paired.  The
    slope of a resample is ``sum_i p_i a_i / sum_i a_i^2`` over the drawn groups ``i``.
    """
    if use not in ("predicted", "linear"):
        raise GifLiteError(f"use must be 'predicted' or 'linear', got {use!r}")
    if n_boot < 1:
        raise GifLiteError(f"n_boot must be a positive number of resamples, got {n_boot}")
    cells: dict[tuple[str, float], dict[int, tuple[float, float]]] = {}
    for r in rows:
        cells.setdefault((r.estimator, r.ratio), {})[r.group] = (getattr(r, use), r.actual)
    if not cells:
        raise GifLiteError("rows is empty: nothing to bootstrap")
    groups = sorted(next(iter(cells.values())))
    for key, cell in cells.items():
        if sorted(cell) != groups:
            raise GifLiteError(
                f"cell {key} covers groups {sorted(cell)}, others cover {groups}: rows must be complete"
            )
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randint(0, len(groups), (n_boot, len(groups)), generator=gen)
    out = {}
    for key, cell in cells.items():
        pred = torch.tensor([cell[k][0] for k in groups], dtype=torch.float64)[draws]
        act = torch.tensor([cell[k][1] for k in groups], dtype=torch.float64)[draws]
        out[key] = (pred * act).sum(dim=1) / (act * act).sum(dim=1)
    return out


def percentile_interval(samples: torch.Tensor, level: float = 0.9) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap ``samples`` (nan samples ignored)."""
    if not 0 < level < 1:
        raise GifLiteError(f"level must lie strictly between 0 and 1, got {level}")
    s = samples[~torch.isnan(samples)].double()
    if s.numel() == 0:
        return (math.nan, math.nan)
    q = torch.tensor([(1 - level) / 2, (1 + level) / 2], dtype=torch.float64)
    low, high = torch.quantile(s, q).tolist()
    return (low, high)


# ------------------------------------------------------------------------------------------ settings
@dataclass(frozen=True)
class ChapterConfig:
    """The faithfulness chapter's settings at one scale (see :func:`chapter_config`).

    The MLP on scikit-learn's digits (float64, dense estimators) and the TinyCNN on Fashion-MNIST (float32,
    gif_lite's solvers capped at ``solver_iters``, on the Hessian of ``n_hessian`` retained images, formed
    densely when ``dense_cnn_hessian``).  ``*_groups`` random groups and as many same-class groups per
    seed; ``cnn_side`` is the image side the CNN sees (14: Fashion-MNIST average-pooled 2 x 2).
    """

    mlp_sizes: tuple[int, ...] = (64, 8, 10)
    mlp_wd: float = 1e-2
    mlp_tol: float = 1e-7
    retrain_tol: float = 1e-6
    mlp_groups: int = 6
    group_sizes: tuple[int, int] = (10, 40)
    cnn_channels: tuple[int, ...] = (4, 8, 8)
    cnn_side: int = 14
    cnn_train: int = 1000
    cnn_epochs: int = 8
    cnn_wd: float = 1e-3
    cnn_groups: int = 4
    cnn_group_sizes: tuple[int, int] = (15, 30)
    cnn_ratios: tuple[float, ...] = (0.05, 0.2)
    cnn_budget: int = 12
    n_hessian: int = 100
    solver_iters: int = 15
    dense_cnn_hessian: bool = True

    def describe(self) -> str:
        """One line naming both networks and what they are trained on (for a printed, checked cell)."""
        mlp = "-".join(map(str, self.mlp_sizes))
        cnn = "-".join(map(str, self.cnn_channels))
        return (
            f"MLP {mlp} (tanh, float64, weight decay {self.mlp_wd:g}) on digits; "
            f"TinyCNN {cnn} on {self.cnn_train} Fashion-MNIST images at "
            f"{self.cnn_side}x{self.cnn_side}; every model trained afresh, none loaded from a cache"
        )


def chapter_config(scale: str = "small", smoke: bool = False) -> ChapterConfig:
    """The chapter's settings: ``"small"`` (the default, on a CPU within its time budget) or ``"paper"``
    (more groups, the full-size TinyCNN on 9,000 images at 28 x 28, a GPU advised).  ``smoke`` shrinks the
    paper scale to a CI smoke run of the same code.  The paper has no such study: "paper" is the book's
    study at a larger scale, not the paper's protocol."""
    if scale == "small":
        return ChapterConfig()
    if scale != "paper":
        raise GifLiteError(f"scale must be 'small' or 'paper', got {scale!r}")
    if smoke:
        return ChapterConfig(
            mlp_groups=1, cnn_channels=(8, 16, 32), cnn_side=28, cnn_train=400, cnn_groups=1,
            cnn_ratios=(0.05, 0.1, 0.2), cnn_budget=3, n_hessian=50, solver_iters=5,
            dense_cnn_hessian=False,
        )  # fmt: skip
    return ChapterConfig(
        mlp_sizes=(64, 16, 10), mlp_groups=12, cnn_channels=(8, 16, 32), cnn_side=28, cnn_train=9000,
        cnn_groups=8, cnn_group_sizes=(135, 270), cnn_ratios=(0.05, 0.1, 0.2), cnn_budget=15, n_hessian=1000, solver_iters=20,
        dense_cnn_hessian=False,
    )  # fmt: skip
