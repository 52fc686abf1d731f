"""Shared pieces of Part II: scores, distances to retraining, the paper's step search, the method loop.

Used by: quickstart, class_removal, selection_study, backdoor, inside.

Class removal is scored as in the GIF paper: with ``a`` the accuracy on the removed classes and ``b``
the accuracy on the rest, ``F1 = 2 (1 - a) b / ((1 - a) + b)`` (:func:`f1`, the harmonic mean, is the one
F1 of the book; Table 3 scores relabelling with it too).  Distances between two models are measured on
their predictive distributions: the share of inputs where their argmax agrees, and the mean
``KL(p_ref || p)``.

The paper renormalises every update to a fixed norm, ``theta[P] + s * delta / ||delta||``, and picks
the step ``s`` by the best score; :func:`best_step` does that on a split the caller names (the book
uses validation, never test), and :func:`paper_step_search` walks the step as the paper's notebooks do.
:func:`removal_setup` builds one class-removal problem (a :class:`RemovalSetup`) and
:func:`compare_methods` runs IF, PIF, FIF, GIF and second-order group influence on it, one row per
(method, ratio), raw and step-picked; :func:`compare_scored` does the same against several retrained
models (:class:`RemovalScorer`), on a :class:`RememberedHVP` if asked.  :func:`gif_directions` lists
GIF's candidate directions (the paper's iteration, LSQR stopped early and converged, Tikhonov).  The
training recipes live in :mod:`gif_lite.book.configs`.
"""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import GifLiteError, GifLiteTypeError, ModelCallError, check_finite_number
from ..curvature import CurvatureOperator
from ..influence import (
    Estimators,
    default_tol,
    generalized_influence,
    influence,
    misfit,
    second_order_influence,
)
from ..objective import Objective
from ..params import apply_update, check_group, embed, flat_params, keep_mask, set_flat_params
from ..selection import select
from ..solvers import ConvergenceWarning, SolveResult, landweber, lsqr
from ..train import Recipe, TrainingWarning, evaluate, predict, train_lbfgs, train_minibatch
from ..types import Data as Split
from ..types import LossFn, MatVec
from .chapter_utils import cos
from .configs import FIT_RECIPE

__all__ = [
    "FIT_RECIPE",
    "SUBSET_METHODS",
    "Direction",
    "Estimate",
    "RememberedHVP",
    "RemovalScorer",
    "RemovalSetup",
    "apply_copy",
    "best_step",
    "compare_methods",
    "compare_scored",
    "cosine",
    "f1",
    "fit",
    "gif_directions",
    "gif_directions_block",
    "mean_kl",
    "paper_step_search",
    "prediction_agreement",
    "removal_f1",
    "removal_scores",
    "removal_setup",
    "scaled_update",
    "selection_grid",
    "tikhonov_gif",
]

SUBSET_METHODS = ("PIF", "FIF", "GIF")


# --------------------------------------------------------------------------------------------------
# scores and distances


def f1(a: float, b: float) -> float:
    """Harmonic mean ``2ab / (a + b)`` of two scores (0 when both are 0): the GIF paper's F1."""
    return 0.0 if a + b == 0 else 2.0 * a * b / (a + b)


def removal_f1(acc_removed: float, acc_rest: float) -> float:
    """The paper's class-removal F1: :func:`f1` of ``1 - acc_removed`` and ``acc_rest``."""
    for name, value in (("acc_removed", acc_removed), ("acc_rest", acc_rest)):
        if not 0.0 <= value <= 1.0:
            raise GifLiteError(f"{name} must be an accuracy in [0, 1], got {value}")
    return f1(1.0 - acc_removed, acc_rest)


def removal_scores(model: nn.Module, data: Split, removed: Sequence[int]) -> dict[str, float]:
    """Accuracy on the removed classes, on the rest, and :func:`removal_f1` of the two, on ``data``."""
    ev = evaluate(model, data)
    a, b = ev.accuracy_of(removed), ev.accuracy_without(removed)
    return {"acc_removed": a, "acc_rest": b, "f1": removal_f1(a, b)}


def _log_probs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    try:
        return F.log_softmax(predict(model, inputs).double(), dim=1)
    except RuntimeError as e:  # a shape or dtype mismatch inside the model, named
        raise ModelCallError(f"model(inputs) failed on inputs of shape {tuple(inputs.shape)} ({e})") from e


def _two(model: nn.Module, reference: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    a, b = _log_probs(model, inputs), _log_probs(reference, inputs)
    if a.shape != b.shape:
        raise GifLiteError(
            f"model and reference disagree on the outputs: {tuple(a.shape)} vs {tuple(b.shape)}"
        )
    return a, b


def prediction_agreement(model: nn.Module, reference: nn.Module, inputs: torch.Tensor) -> float:
    """Share of ``inputs`` on which the two models predict the same class (argmax)."""
    a, b = _two(model, reference, inputs)
    return float((a.argmax(dim=1) == b.argmax(dim=1)).double().mean())


def mean_kl(model: nn.Module, reference: nn.Module, inputs: torch.Tensor) -> float:
    """Mean over ``inputs`` of ``KL(p_ref || p) = sum_c p_ref(c) (log p_ref(c) - log p(c))``."""
    log_p, log_ref = _two(model, reference, inputs)
    return float((log_ref.exp() * (log_ref - log_p)).sum(dim=1).mean())


class RemovalScorer:
    """Class-removal scores of models on one split, against fixed reference (retrained) models.

    ``scorer(model)`` returns :func:`removal_scores` (``acc_removed``, ``acc_rest``, ``f1``) and, with
    ``references``, ``agreement`` and ``kl``: :func:`prediction_agreement` and :func:`mean_kl` with each
    reference, averaged over the references.  The references' predictions are computed once, so each
    call costs one forward pass of ``model`` over the split.
    """

    def __init__(self, data: Split, removed: Sequence[int], references: Sequence[nn.Module] = ()) -> None:
        self.data = data
        self.removed = tuple(int(c) for c in removed)
        targets = data[1]
        self._mask = torch.isin(targets, torch.as_tensor(self.removed, device=targets.device))
        self._refs = [_log_probs(r, data[0]) for r in references]

    def __call__(self, model: nn.Module) -> dict[str, float]:
        inputs, targets = self.data
        outputs = predict(model, inputs)
        targets = targets.to(outputs.device)
        correct = (outputs.argmax(dim=1) == targets).double()
        mask = self._mask.to(outputs.device)
        a = float(correct[mask].mean()) if mask.any() else math.nan
        b = float(correct[~mask].mean()) if (~mask).any() else math.nan
        row = {"acc_removed": a, "acc_rest": b, "f1": removal_f1(a, b)}
        if self._refs:
            log_p = F.log_softmax(outputs.double(), dim=1)
            pred = log_p.argmax(dim=1)
            agree = [float((pred == ref.argmax(dim=1)).double().mean()) for ref in self._refs]
            kl = [float((ref.exp() * (ref - log_p)).sum(dim=1).mean()) for ref in self._refs]
            row |= {"agreement": sum(agree) / len(agree), "kl": sum(kl) / len(kl)}
        return row


# --------------------------------------------------------------------------------------------------
# updates and the step searches


def scaled_update(delta: torch.Tensor, norm: float) -> torch.Tensor:
    """``norm * delta / ||delta||`` (a zero ``delta`` stays zero)."""
    check_finite_number(norm, "norm", low=0.0)
    if not isinstance(delta, torch.Tensor) or not bool(torch.isfinite(delta).all()):
        raise GifLiteError("delta must be a finite tensor")
    length = delta.norm()
    return delta.clone() if float(length) == 0.0 else delta * (norm / length)


def apply_copy(
    model: nn.Module, delta: torch.Tensor, subset: torch.Tensor | None = None, scale: float = 1.0
) -> nn.Module:
    """A deep copy of ``model`` with ``theta[P] += scale * delta``; ``model`` is untouched."""
    new = copy.deepcopy(model)
    apply_update(new, delta, subset, scale)
    return new


def best_step(
    model: nn.Module,
    delta: torch.Tensor,
    subset: torch.Tensor | None,
    steps: Sequence[float],
    score_fn: Callable[[nn.Module], float],
) -> tuple[float, float, list[dict[str, float]]]:
    """The paper's protocol: for each ``s`` in ``steps`` score ``theta[P] + s * delta / ||delta||``.

    Returns the step with the highest ``score_fn(model)`` (the first on ties), its score, and the
    table of ``{"step", "score"}``.  ``model`` is restored to its parameters afterwards, even on error.
    Score on a validation split: picking the step on test data is what the paper did and what this
    function exists to avoid.
    """
    if len(steps) == 0:
        raise GifLiteError("steps is empty")
    for s in steps:
        check_finite_number(s, "steps[i]", low=0.0)  # a length along delta / ||delta||
    theta = flat_params(model)
    table: list[dict[str, float]] = []
    try:
        for s in steps:
            apply_update(model, scaled_update(delta, float(s)), subset)
            table.append({"step": float(s), "score": float(score_fn(model))})
            set_flat_params(model, theta)
    finally:
        set_flat_params(model, theta)
    best = max(range(len(table)), key=lambda i: (table[i]["score"], -i))
    return table[best]["step"], table[best]["score"], table


def paper_step_search(
    model: nn.Module,
    delta: torch.Tensor,
    subset: torch.Tensor | None,
    scores_fn: Callable[[nn.Module], Mapping[str, float] | float],
    increment: float = 0.03,
    *,
    max_steps: int = 200,
    patience: int | None = None,
    fine_above: float | None = 0.85,
    stop_removed: float | None = 1e-4,
    stop_rest: float | None = 0.8,
    boost_after: int | None = 20,
) -> tuple[float, float, list[dict[str, float]]]:
    """The GIF paper's step search: walk along ``delta / ||delta||`` and keep the best F1 seen.

    ``scores_fn(model)`` returns the F1 itself or a dict of scores holding it under ``"f1"`` (e.g.
    :func:`removal_scores`).  Each step adds ``increment`` to the norm of the update (a third of it
    once the F1 reaches ``fine_above``; fivefold from step ``boost_after`` on if the best F1 is still
    below 0.2).  The walk stops after ``max_steps`` steps, after ``patience`` steps in a row without a
    better F1, or when the scores' ``acc_removed`` falls below ``stop_removed`` or ``acc_rest`` below
    ``stop_rest``; a setting of None turns its rule off.  The defaults are the class-removal notebooks'
    (Table 2); :data:`gif_lite.book.backdoor.paper_step_search` binds those of Table 3 (fixed
    increments, patience 10, 300 steps).  Give it a validation split (the paper scored the test set).
    Returns the best norm, its F1 and the path (one dict of scores per step, with its ``"step"``);
    ``model`` is restored, even on error.
    """
    if not callable(scores_fn):
        raise GifLiteTypeError(
            f"scores_fn must be a callable model -> F1 (or scores), got {type(scores_fn).__name__}"
        )
    if not (increment > 0 and math.isfinite(increment)) or max_steps < 1:
        raise GifLiteError(
            f"increment must be a finite number > 0 and max_steps >= 1, got {increment} and {max_steps}"
        )
    if patience is not None and patience < 1:
        raise GifLiteError(f"patience must be >= 1 (or None), got {patience}")
    if float(delta.norm()) == 0.0:
        raise GifLiteError("delta is zero: there is no direction to step along")
    theta, unit = flat_params(model), scaled_update(delta, 1.0)
    path: list[dict[str, float]] = []
    norm, best, best_norm, scale, last_f1, worse = 0.0, -math.inf, 0.0, 1.0, 0.0, 0
    try:
        for count in range(1, max_steps + 1):
            fine = fine_above is not None and last_f1 >= fine_above
            norm += increment * scale / (3.0 if fine else 1.0)
            apply_update(model, unit, subset, norm)
            found = scores_fn(model)
            s = dict(found) if isinstance(found, Mapping) else {"f1": float(found)}
            set_flat_params(model, theta)
            last_f1 = s["f1"]
            path.append({"step": norm, **s})
            if last_f1 > best:
                best, best_norm, worse = last_f1, norm, 0
            else:
                worse += 1
            if stop_removed is not None and s["acc_removed"] < stop_removed:
                break
            if stop_rest is not None and s["acc_rest"] < stop_rest:
                break
            if patience is not None and worse >= patience:
                break
            if boost_after is not None and count >= boost_after and best < 0.2:
                scale = 5.0
    finally:
        set_flat_params(model, theta)
    return best_norm, best, path


# --------------------------------------------------------------------------------------------------
# the small setting shared by the Part II chapters


def fit(
    model: nn.Module,
    data: Split,
    recipe: Recipe = FIT_RECIPE,
    *,
    epochs: int | None = None,
    weight_decay: float | None = None,
    lr: float | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    polish_iters: int = 20,
) -> nn.Module:
    """Train in place with ``recipe`` (keywords override its fields), then ``polish_iters`` L-BFGS steps.

    The polish is full-batch L-BFGS on the same objective (the recipe's weight decay); the model is
    returned in eval mode.  A paper config's ``recipe`` can be passed as it is.
    """
    recipe = recipe.but(epochs=epochs, weight_decay=weight_decay, lr=lr, batch_size=batch_size)
    train_minibatch(model, F.cross_entropy, data, recipe, seed=seed, progress=False)
    if polish_iters > 0:
        with warnings.catch_warnings():  # L-BFGS stops at polish_iters on purpose
            warnings.simplefilter("ignore", TrainingWarning)
            train_lbfgs(
                model, F.cross_entropy, data, weight_decay=recipe.weight_decay, max_iter=polish_iters, tol=0.0
            )
    return model.eval()


@dataclass
class RemovalSetup:
    """Removing class(es) ``removed`` from ``train`` at the trained ``model``: everything the methods share.

    ``group`` the removed examples' indices and ``examples`` their data (they drive the selection, with
    ``loss_fn``); ``obj`` the objective whose Hessian the estimators use and ``g`` the right-hand side;
    ``second_order`` ``(full-data objective, group objective, m / n)`` for second-order influence.
    """

    model: nn.Module
    removed: tuple[int, ...]
    group: torch.Tensor
    examples: Split
    obj: Objective
    g: torch.Tensor
    second_order: tuple[Objective, Objective, float]
    loss_fn: LossFn = F.cross_entropy


def removal_setup(
    model: nn.Module,
    train: Split,
    removed: Sequence[int],
    *,
    n_hessian: int = 300,
    weight_decay: float = 1e-3,
    batch_size: int | None = None,
) -> RemovalSetup:
    """The class-removal problem at a trained (not necessarily stationary) ``model``, with cross-entropy.

    ``g = m / (n - m) (grad L_U + weight_decay theta)`` (``removal_problem(..., at_optimum=True)``);
    ``obj`` is the retained objective on its first ``n_hessian`` examples; ``second_order`` holds the
    full-data objective on ``n_hessian`` examples, the group objective and ``m / n``.  With
    ``batch_size`` the group's objective (``g`` and second order) runs over batches of that many
    examples, the same numbers in the memory of one batch: at paper scale the removed class is about
    6,000 images, and ResNet18 keeps about 11 MB of activations per 28 x 28 image.
    """
    x, y = train
    removed = tuple(int(c) for c in removed)
    if not bool(torch.isin(y, torch.as_tensor(removed, device=y.device)).any()):
        raise GifLiteError(f"removed={list(removed)} names no class present in train's labels")
    if isinstance(n_hessian, bool) or not isinstance(n_hessian, int) or n_hessian < 1:
        raise GifLiteError(f"n_hessian must be a positive int (examples in the Hessian), got {n_hessian!r}")
    group = check_group(torch.isin(y, torch.as_tensor(removed, device=y.device)), len(y))
    keep = keep_mask(group, len(y), y.device)
    obj = Objective(model, F.cross_entropy, (x[keep][:n_hessian], y[keep][:n_hessian]), weight_decay)
    full = Objective(model, F.cross_entropy, (x[:n_hessian], y[:n_hessian]), weight_decay)
    if batch_size is not None and batch_size < 1:
        raise GifLiteError(f"batch_size must be a positive number of examples, got {batch_size}")
    m = group.numel()
    chunks = [(x[c], y[c]) for c in group.split(batch_size or m)]  # one batch unless batch_size is given
    part = Objective(model, F.cross_entropy, chunks, weight_decay)
    # removal_problem(..., at_optimum=True).g, from the group objective the second order uses too
    g = (m / (len(y) - m)) * part.gradient()
    second = (full, part, m / len(y))
    return RemovalSetup(model, removed, group, (x[group], y[group]), obj, g, second)


# --------------------------------------------------------------------------------------------------
# many seeds in a chapter's time: every Hessian-vector product remembered


class RememberedHVP(CurvatureOperator):
    """The Hessian of ``obj``, with every product remembered by the exact bytes of its input vector.

    A Krylov solver stopped after ``k`` iterations repeats, bit for bit, the first ``k`` iterations of a
    longer run of the same solver on the same system; so LSQR stopped at 1, 2, 5, ... iterations and LSQR
    to convergence, run on one ``RememberedHVP``, cost the products of the longest run only, and give the
    same answers as on ``obj``.  ``hvp_calls`` counts every product asked for (as the estimators report
    it); ``computed`` those actually computed.  Products are returned as copies.  Nothing is remembered
    beyond ``max_bytes`` (default 256 MiB); where one product and its key exceed it (a large network),
    nothing is remembered and every product is computed, as on ``obj``.  The parameters must not change
    while it is in use (``obj``'s own state cache assumes so too).
    """

    def __init__(self, obj: Objective, max_bytes: int = 256 * 2**20) -> None:
        if not isinstance(obj, Objective):
            raise GifLiteTypeError(f"RememberedHVP wraps a gif_lite.Objective, got {type(obj).__name__}")
        self._objective = obj
        self.num_params, self.dtype, self.device = obj.num_params, obj.dtype, obj.device
        self.num_examples = obj.num_examples
        self.hvp_calls = 0
        self.computed = 0
        self.max_bytes = int(max_bytes)
        self._memo: dict[bytes, torch.Tensor] = {}
        self._bytes = 0
        self._entry = 2 * obj.num_params * torch.empty((), dtype=obj.dtype).element_size()

    def _apply(self, vs: torch.Tensor) -> torch.Tensor:
        if self._entry > self.max_bytes:  # too large to remember: compute every product
            self.computed += len(vs)
            return torch.stack([self.objective.hvp(v).detach() for v in vs])
        rows = []
        for v in vs:
            key = v.detach().cpu().numpy().tobytes()
            hv = self._memo.get(key)
            if hv is None:
                hv = self.objective.hvp(v).detach()
                self.computed += 1
                if self._bytes + self._entry <= self.max_bytes:  # the product and its key
                    self._memo[key] = hv
                    self._bytes += self._entry
            rows.append(hv.clone())
        return torch.stack(rows)


# --------------------------------------------------------------------------------------------------
# the method loop: every estimator on one removal problem, scored


@dataclass
class Estimate:
    """One update: method, ratio (1.0 for all parameters), subset P (None: all), delta on P, HVPs used."""

    method: str
    ratio: float
    subset: torch.Tensor | None
    delta: torch.Tensor
    hvps: int
    info: dict[str, Any] = field(default_factory=dict)


def _estimates(
    setup: RemovalSetup,
    ratios: Sequence[float],
    selection: str,
    methods: Sequence[str],
    max_iter: int,
) -> list[Estimate]:
    """Solve every (method, ratio): IF once on all parameters (PIF slices it), FIF and GIF per subset."""
    model, obj, g, (x_u, y_u) = setup.model, setup.obj, setup.g, setup.examples
    estimators = Estimators({"max_iter": max_iter})
    out: list[Estimate] = []
    with warnings.catch_warnings():  # iteration caps are deliberate; residuals are reported instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        if "IF" in methods:
            full = estimators("IF", obj, g)
            out.append(Estimate("IF", 1.0, None, full.delta, full.hvps))
        if "gradient" in methods:  # the Hessian-free control: move all parameters along g itself
            out.append(Estimate("gradient", 1.0, None, g.clone(), 0))
        if "first-order" in methods:  # q H^-1 g_U on the full-data H: second order's first term
            r = influence(setup.second_order[0], g, max_iter=max_iter)  # not the IF cache
            out.append(Estimate("first-order", 1.0, None, r.delta, r.hvps))
        if "second-order" in methods:
            full_obj, group_obj, fraction = setup.second_order
            so = second_order_influence(full_obj, group_obj, fraction, max_iter=max_iter)
            out.append(Estimate("second-order", 1.0, None, so.delta, so.hvps))
        for ratio in ratios:
            p = select(model, selection, ratio, x_u, y_u, loss_fn=setup.loss_fn).subset
            for name in SUBSET_METHODS:
                if name in methods:
                    r = estimators(name, obj, g, p)
                    out.append(Estimate(name, ratio, r.subset, r.delta, r.hvps))
    return out


def _metrics(
    model: nn.Module, test: Split, removed: Sequence[int], reference: nn.Module | None
) -> dict[str, float]:
    row = removal_scores(model, test, removed)
    if reference is not None:
        row["agreement"] = prediction_agreement(model, reference, test[0])
        row["kl"] = mean_kl(model, reference, test[0])
    return row


def _check_methods(methods: Sequence[str]) -> None:
    unknown = set(methods) - {"IF", "gradient", "first-order", "second-order", *SUBSET_METHODS}
    if unknown:
        raise GifLiteError(
            f"unknown methods {sorted(unknown)}; valid: IF, gradient, first-order, second-order, PIF, FIF, GIF"
        )


def _scored_rows(
    setup: RemovalSetup,
    estimates: list[Estimate],
    val_f1: Callable[[nn.Module], float],
    test_scores: Callable[[nn.Module], dict[str, float]],
    steps: Sequence[float],
) -> list[dict[str, Any]]:
    """One row per estimate: its size, cost and misfit, the ``raw_*`` test scores of ``theta[P] + delta``,
    the step with the best ``val_f1`` among ``steps`` and the ``val_*`` test scores at that step."""
    obj, g = setup.obj, setup.g
    work = copy.deepcopy(setup.model)  # HVP graphs of obj stay on the model; the step search writes on `work`
    rows: list[dict[str, Any]] = []
    for est in estimates:
        row: dict[str, Any] = {
            "method": est.method,
            "ratio": est.ratio,
            "params": est.delta.numel(),
            "hvps": est.hvps,
            "residual": misfit(obj, g, est.delta, est.subset),
            "norm": float(est.delta.norm()),
        }
        row |= {f"raw_{k}": v for k, v in test_scores(apply_copy(work, est.delta, est.subset)).items()}
        step, score, _ = best_step(work, est.delta, est.subset, steps, val_f1)
        row |= {"step": step, "val_f1_at_step": score}
        picked = apply_copy(work, scaled_update(est.delta, step), est.subset)
        row |= {f"val_{k}": v for k, v in test_scores(picked).items()}
        rows.append(row)
    return rows


def compare_methods(
    setup: RemovalSetup,
    val: Split,
    test: Split,
    *,
    reference: nn.Module | None = None,
    methods: Sequence[str] = ("IF", "PIF", "FIF", "GIF"),
    ratios: Sequence[float] = (0.05, 0.1, 0.3),
    selection: str = "highest_gradients",
    steps: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    max_iter: int = 20,
) -> list[dict[str, Any]]:
    """Run the ``methods`` on the removal ``setup`` (from :func:`removal_setup`); one row per (method, ratio).

    ``methods`` are ``"IF"`` (all parameters), ``"PIF"``/``"FIF"``/``"GIF"`` at each ratio of
    ``selection`` (driven by the removed examples), ``"second-order"`` (:func:`second_order_influence`
    on ``setup.second_order``), ``"first-order"`` (``H^-1 g`` with the *full-data* Hessian of
    ``setup.second_order``: the second-order estimate's first term, so both orders use one Hessian,
    while IF uses the retained one) and ``"gradient"``, the Hessian-free control ``delta = g``; rows
    come in the order IF, gradient, first-order, second-order, then per ratio PIF, FIF, GIF.  The estimators use ``setup.obj``'s Hessian and
    ``setup.g``; solvers stop after ``max_iter`` iterations (reported, not warned).  Per row: ``raw_*``
    are test scores of ``theta[P] + delta``; ``step`` is picked by the F1 on ``val`` over ``steps``
    (norms of the renormalised update) and ``val_*`` are test scores at that step; ``*_agreement``/
    ``*_kl`` compare with ``reference`` (the retrained model) on test; ``residual = ||H delta - g|| /
    ||g||``.  PIF slices the one IF solve, so its ``hvps`` are IF's.
    """
    _check_methods(methods)
    removed = setup.removed
    estimates = _estimates(setup, ratios, selection, methods, max_iter)
    return _scored_rows(
        setup,
        estimates,
        lambda m: removal_scores(m, val, removed)["f1"],
        lambda m: _metrics(m, test, removed, reference),
        steps,
    )


def compare_scored(
    setup: RemovalSetup,
    val: RemovalScorer,
    test: RemovalScorer,
    *,
    methods: Sequence[str] = ("IF", "PIF", "FIF", "GIF"),
    ratios: Sequence[float] = (0.05, 0.1, 0.3),
    selection: str = "highest_gradients",
    steps: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    max_iter: int = 20,
) -> tuple[list[dict[str, Any]], list[Estimate]]:
    """:func:`compare_methods`, scored by :class:`RemovalScorer` s; also returns the updates.

    The same estimates, step grid and row keys as :func:`compare_methods` (``raw_*``: test scores of
    ``theta[P] + delta``; ``val_*``: test scores at the step with the best F1 on ``val``), with the
    agreement and KL of ``test`` averaged over its references (several retrained models, so one
    retraining's luck does not decide).  ``setup.obj`` may be a :class:`RememberedHVP`.
    """
    _check_methods(methods)
    estimates = _estimates(setup, ratios, selection, methods, max_iter)
    return _scored_rows(setup, estimates, lambda m: val(m)["f1"], test, steps), estimates


def selection_grid(
    setup: RemovalSetup,
    val: Split,
    test: Split,
    *,
    selections: Sequence[str],
    ratios: Sequence[float] = (0.02, 0.05, 0.1),
    steps: Sequence[float] = (0.5, 1.0, 2.0, 4.0, 8.0),
    max_iter: int = 8,
) -> list[dict[str, Any]]:
    """GIF on the subset each selection rule picks at each ratio, its step picked on ``val``.

    For every rule in ``selections`` and every ratio, ``P`` is :func:`gif_lite.select` driven by the
    removed examples (``setup.examples``) and ``delta`` is GIF on ``P`` by LSQR stopped after
    ``max_iter`` iterations.  A ratio of 1 frees every parameter, the same ``P`` for every rule: it is
    solved once and its row repeated for each rule.  One row per (ratio, rule): ``selection``,
    ``ratio``, ``params`` (``|P|``), ``hvps``, ``residual`` (the misfit ``||H[:,P] delta - g|| /
    ||g||``), ``step`` (the norm of the renormalised update with the best F1 on ``val`` among
    ``steps``, as :func:`best_step`), ``val_f1_at_step``, the test scores at that step
    (``acc_removed``, ``acc_rest``, ``f1``, as :func:`removal_scores`) and ``labels``, the updated
    model's predicted classes on ``test``, to compare with retrained models without another pass.
    """
    model, obj, g, removed = setup.model, setup.obj, setup.g, setup.removed
    x_u, y_u = setup.examples
    work = copy.deepcopy(model)  # the step search writes on `work`; obj's graphs stay on `model`
    inputs, targets = test
    mask = torch.isin(targets, torch.as_tensor(removed, device=targets.device))

    def val_f1(m: nn.Module) -> float:
        return removal_scores(m, val, removed)["f1"]

    def solve(p: torch.Tensor) -> dict[str, Any]:
        with warnings.catch_warnings():  # the iteration cap is deliberate; the misfit is reported
            warnings.simplefilter("ignore", ConvergenceWarning)
            r = generalized_influence(obj, g, p, max_iter=max_iter)
        step, score, _ = best_step(work, r.delta, p, steps, val_f1)
        labels = predict(apply_copy(work, scaled_update(r.delta, step), p), inputs).argmax(dim=1)
        correct = (labels == targets.to(labels.device)).double()
        a, b = float(correct[mask].mean()), float(correct[~mask].mean())
        return {
            "params": int(p.numel()), "hvps": r.hvps, "residual": r.misfit, "step": step,
            "val_f1_at_step": score, "acc_removed": a, "acc_rest": b, "f1": removal_f1(a, b),
            "labels": labels,
        }  # fmt: skip

    rows: list[dict[str, Any]] = []
    everything: dict[str, Any] | None = None
    for ratio in ratios:
        for rule in selections:
            if ratio >= 1.0:
                if everything is None:
                    everything = solve(torch.arange(obj.num_params, device=obj.device))
                found = everything
            else:
                found = solve(select(model, rule, ratio, x_u, y_u, loss_fn=setup.loss_fn).subset)
            rows.append({"selection": rule, "ratio": float(ratio), **found})
    return rows


# --------------------------------------------------------------------------------------------------
# GIF's direction: the paper's iteration, truncated solves and Tikhonov-regularised least squares


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """``a . b / (||a|| ||b||)`` in float64 (:func:`~gif_lite.book.chapter_utils.cos`) for two vectors
    of one shape; 0 when either is zero."""
    if a.shape != b.shape:
        raise GifLiteError(
            f"cosine needs two vectors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    return cos(a, b.to(a.device))


@dataclass
class Direction:
    """A candidate GIF update on P: ``family`` (series, landweber, lsqr, tikhonov), its knob, delta, misfit.

    ``misfit = ||H[:,P] delta - g|| / ||g||`` (the share of g the update leaves uncancelled, unscaled).
    """

    name: str
    family: str
    knob: float
    delta: torch.Tensor
    misfit: float
    hvps: int


def _quiet(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():  # iteration caps are deliberate; misfits are reported instead
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def _check_gamma(gamma: float) -> float:
    if not gamma >= 0.0:
        raise GifLiteError(f"gamma must be >= 0, got {gamma}")
    return float(gamma)


def _tikhonov(
    on_p: MatVec, rows_p: MatVec, g: torch.Tensor, size: int, gamma: float, tol: float
) -> SolveResult:
    """LSQR on ``[H[:,P]; gamma I] x = [g; 0]``, given ``on_p(x) = H[:,P] x`` and ``rows_p(y) = H[P,:] y``."""
    n = g.numel()

    def matvec(x: torch.Tensor) -> torch.Tensor:
        return torch.cat([on_p(x), gamma * x])

    def rmatvec(y: torch.Tensor) -> torch.Tensor:
        return rows_p(y[:n]) + gamma * y[n:]

    b = torch.cat([g, torch.zeros(size, dtype=g.dtype, device=g.device)])
    return _quiet(lsqr, matvec, rmatvec, b, tol=tol, max_iter=4 * size)


def tikhonov_gif(
    obj: Objective, g: torch.Tensor, subset: torch.Tensor, gamma: float, *, tol: float = 1e-6
) -> Direction:
    """``argmin_x ||H[:,P] x - g||^2 + gamma^2 ||x||^2``: LSQR on ``[H[:,P]; gamma I] x = [g; 0]``.

    ``gamma = 0`` is GIF itself (the minimum-norm least-squares solution); a larger ``gamma`` shrinks
    the directions of small singular values of ``H[:,P]``, as stopping LSQR early does.  ``misfit`` is
    :func:`gif_lite.influence.misfit` of the answer.
    """
    gamma = _check_gamma(gamma)
    g = g.detach().to(obj.device, obj.dtype)
    p = subset.to(obj.device)
    n, start = obj.num_params, obj.hvp_calls
    sol = _tikhonov(lambda x: obj.hvp(embed(x, p, n)), lambda y: obj.hvp(y)[p], g, p.numel(), gamma, tol)
    return Direction(
        f"Tikhonov {gamma:g}", "tikhonov", gamma, sol.x, misfit(obj, g, sol.x, p), obj.hvp_calls - start
    )


class _MatrixFree:
    """GIF's solves for :func:`gif_directions` on ``obj``'s HVPs (``generalized_influence``)."""

    def __init__(self, obj: Objective, g: torch.Tensor, p: torch.Tensor) -> None:
        self.obj, self.g, self.p = obj, g, p

    def series(self) -> tuple[torch.Tensor, float, int]:
        start = self.obj.hvp_calls
        first = self.obj.hvp(self.g)[self.p]
        return first, misfit(self.obj, self.g, first, self.p), self.obj.hvp_calls - start

    def gif(self, **options: Any) -> tuple[torch.Tensor, float, int]:
        r = _quiet(generalized_influence, self.obj, self.g, self.p, **options)
        return r.delta, r.misfit, r.hvps

    def tikhonov(self, gamma: float) -> tuple[torch.Tensor, float, int]:
        d = tikhonov_gif(self.obj, self.g, self.p, gamma)
        return d.delta, d.misfit, d.hvps


class _Block:
    """The same solves on the dense block ``H[:,P]`` (``|P|`` Hessian columns, formed once); ``count``
    counts products with the block, the HVPs the matrix-free solves spend on the same direction."""

    def __init__(self, obj: Objective, g: torch.Tensor, p: torch.Tensor) -> None:
        self.g, self.size = g, p.numel()
        self.block = obj.hessian_columns(p)
        self.count = 0

    def on_p(self, x: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return self.block @ x

    def rows_p(self, y: torch.Tensor) -> torch.Tensor:
        self.count += 1
        return self.block.T @ y

    def _misfit(self, x: torch.Tensor) -> float:
        return float((self.on_p(x) - self.g).norm() / self.g.norm())

    def series(self) -> tuple[torch.Tensor, float, int]:
        first = self.rows_p(self.g)
        return first, self._misfit(first), 2

    def gif(
        self, solver: str = "lsqr", tol: float | None = None, max_iter: int | None = None, **options: Any
    ) -> tuple[torch.Tensor, float, int]:
        start, tol = self.count, default_tol(self.g.dtype) if tol is None else tol
        if solver == "landweber":
            sol = _quiet(landweber, self.on_p, self.rows_p, self.g, tol=tol, max_iter=max_iter, **options)
        else:
            sol = _quiet(lsqr, self.on_p, self.rows_p, self.g, tol=tol, max_iter=max_iter)
        return sol.x, sol.misfit, self.count - start

    def tikhonov(self, gamma: float) -> tuple[torch.Tensor, float, int]:
        start = self.count
        sol = _tikhonov(self.on_p, self.rows_p, self.g, self.size, gamma, 1e-6)
        hvps = self.count - start
        return sol.x, self._misfit(sol.x), hvps + 1  # the misfit's product, as tikhonov_gif counts it


def gif_directions(
    obj: Objective,
    g: torch.Tensor,
    subset: torch.Tensor,
    *,
    landweber_iters: int = 30,
    normalizer_step: float = 3.0,
    lsqr_iters: Sequence[int] = (1, 2, 3, 5, 10),
    gammas: Sequence[float] = (),
    tol: float | None = None,
    max_iter: int | None = None,
    max_restarts: int = 100_000,
    dense_block: bool = False,
) -> list[Direction]:
    """Candidate GIF updates on ``subset``, from the first term of the series to the converged solve.

    * ``H[P,:] g``: the first term of the paper's series (its iteration's first iterate, up to scale);
    * the paper's iteration (:func:`gif_lite.solvers.landweber`) for ``landweber_iters`` steps with the
      paper's step test ``tol = 1e-9`` and normalizer increment ``normalizer_step`` (the paper's loop
      raises the normalizer without limit; ``max_restarts`` bounds it.  A barely trained network needs
      hundreds of restarts, about ``sigma_max(H[:,P]) / (sqrt(2) normalizer_step)``: 810 for the
      one-epoch smoke ResNet18, whose ``sigma_max`` is about 3,400; the solver foresees them for ten
      products, so the generous default costs nothing);
    * LSQR stopped after each of ``lsqr_iters`` iterations, and LSQR to ``tol`` (exact GIF; at most
      ``max_iter`` iterations if given, for large models: its misfit then says how far it got);
    * Tikhonov-regularised least squares for each ``gamma`` in ``gammas`` (:func:`tikhonov_gif`).

    With ``dense_block`` (:data:`gif_directions_block`) the block ``H[:,P]`` is formed once (``|P|``
    Hessian columns, ``obj.hessian_columns``, batched) and every product the solvers ask for, ``H[:,P]
    x`` and ``H[:,P]^T y = (H y)[P]``, is a product with it, so the paper's hundreds of Landweber steps
    and a converged LSQR cost no further HVPs; ``Direction.hvps`` then counts the products with the
    block, the HVPs the matrix-free solve spends on the same direction, which it equals up to rounding.
    For models whose block fits in memory (``hessian_columns`` refuses larger ones).
    """
    gammas = [_check_gamma(float(x)) for x in gammas]
    g = g.detach().to(obj.device, obj.dtype)
    p = subset.to(obj.device)
    solves = _Block(obj, g, p) if dense_block else _MatrixFree(obj, g, p)
    out = [Direction("H[P,:] g", "series", 0.0, *solves.series())]
    paper = solves.gif(
        solver="landweber", max_iter=landweber_iters, tol=1e-9, step_tol=1e-9,
        normalizer_step=normalizer_step, max_restarts=max_restarts,
    )  # fmt: skip
    out.append(Direction(f"paper ({landweber_iters} steps)", "landweber", landweber_iters, *paper))
    for k in lsqr_iters:
        out.append(Direction(f"LSQR {k}", "lsqr", float(k), *solves.gif(max_iter=int(k), tol=1e-12)))
    out.append(Direction("LSQR converged", "lsqr", math.inf, *solves.gif(tol=tol, max_iter=max_iter)))
    out.extend(Direction(f"Tikhonov {x:g}", "tikhonov", x, *solves.tikhonov(x)) for x in gammas)
    return out


#: :func:`gif_directions` on the dense block ``H[:,P]``: the same candidates, the same solvers.
gif_directions_block = partial(gif_directions, dense_block=True)
