"""Shared pieces of Part II: scores, distances to retraining, the paper's step search, the method loop.

Used by: quickstart, class_removal, selection_study, backdoor, inside.

Class removal is scored as in the GIF paper: with ``a`` the accuracy on the removed classes and ``b``
the accuracy on the rest, ``F1 = 2 (1 - a) b / ((1 - a) + b)``.  Distances between two models are
measured on their predictive distributions: the share of inputs where their argmax agrees, and the
mean ``KL(p_ref || p)``.

The paper renormalises every update to a fixed norm, ``theta[P] + s * delta / ||delta||``, and picks
the step ``s`` by the best score; :func:`best_step` does that on a split the caller names (the book
uses validation, never test).  :func:`removal_setup` builds one class-removal problem (a
:class:`RemovalSetup`) and :func:`compare_methods` runs IF, PIF, FIF, GIF and second-order group
influence on it, one row per (method, ratio), raw and step-picked.  Paper-scale settings live in
:mod:`gif_lite.book.configs`.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..influence import Estimators, second_order_influence
from ..objective import Objective
from ..params import apply_update, check_group, embed, flat_params, keep_mask, set_flat_params
from ..selection import select
from ..solvers import ConvergenceWarning
from ..tasks import removal_problem
from ..train import Recipe, TrainingWarning, evaluate, predict, train_lbfgs, train_minibatch
from ..types import Data as Split
from ..types import LossFn

__all__ = [
    "FIT_RECIPE",
    "SUBSET_METHODS",
    "Estimate",
    "RemovalSetup",
    "apply_copy",
    "best_step",
    "compare_methods",
    "fit",
    "mean_kl",
    "prediction_agreement",
    "removal_f1",
    "removal_scores",
    "removal_setup",
    "scaled_update",
]

SUBSET_METHODS = ("PIF", "FIF", "GIF")


# --------------------------------------------------------------------------------------------------
# scores and distances


def removal_f1(acc_removed: float, acc_rest: float) -> float:
    """The paper's class-removal F1: harmonic mean of ``1 - acc_removed`` and ``acc_rest`` (0 if both are 0)."""
    for name, value in (("acc_removed", acc_removed), ("acc_rest", acc_rest)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{name} must be an accuracy in [0, 1], got {value}")
    forget = 1.0 - acc_removed
    return 0.0 if forget + acc_rest == 0 else 2.0 * forget * acc_rest / (forget + acc_rest)


def removal_scores(model: nn.Module, data: Split, removed: Sequence[int]) -> dict[str, float]:
    """Accuracy on the removed classes, on the rest, and :func:`removal_f1` of the two, on ``data``."""
    ev = evaluate(model, data)
    a, b = ev.accuracy_of(removed), ev.accuracy_without(removed)
    return {"acc_removed": a, "acc_rest": b, "f1": removal_f1(a, b)}


def _log_probs(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    return F.log_softmax(predict(model, inputs).double(), dim=1)


def prediction_agreement(model: nn.Module, reference: nn.Module, inputs: torch.Tensor) -> float:
    """Share of ``inputs`` on which the two models predict the same class (argmax)."""
    a, b = _log_probs(model, inputs), _log_probs(reference, inputs)
    return float((a.argmax(dim=1) == b.argmax(dim=1)).double().mean())


def mean_kl(model: nn.Module, reference: nn.Module, inputs: torch.Tensor) -> float:
    """Mean over ``inputs`` of ``KL(p_ref || p) = sum_c p_ref(c) (log p_ref(c) - log p(c))``."""
    log_p, log_ref = _log_probs(model, inputs), _log_probs(reference, inputs)
    return float((log_ref.exp() * (log_ref - log_p)).sum(dim=1).mean())


# --------------------------------------------------------------------------------------------------
# updates and the step search


def scaled_update(delta: torch.Tensor, norm: float) -> torch.Tensor:
    """``norm * delta / ||delta||`` (a zero ``delta`` stays zero)."""
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
        raise ValueError("steps is empty")
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


# --------------------------------------------------------------------------------------------------
# the method loop


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


def _residual(obj: Objective, g: torch.Tensor, est: Estimate) -> float:
    """``||H delta_full - g|| / ||g||``: the share of the gradient change the update leaves uncancelled."""
    delta = est.delta.to(g)
    full = delta if est.subset is None else embed(delta, est.subset, obj.num_params)
    return float((obj.hvp(full) - g).norm() / g.norm())


def _metrics(
    model: nn.Module, test: Split, removed: Sequence[int], reference: nn.Module | None, prefix: str
) -> dict[str, float]:
    row = {f"{prefix}{k}": v for k, v in removal_scores(model, test, removed).items()}
    if reference is not None:
        row[f"{prefix}agreement"] = prediction_agreement(model, reference, test[0])
        row[f"{prefix}kl"] = mean_kl(model, reference, test[0])
    return row


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
    on ``setup.second_order``) and ``"gradient"``, the Hessian-free control ``delta = g``; rows come in
    that order whatever the order of ``methods``.  The estimators use ``setup.obj``'s Hessian and
    ``setup.g``; solvers stop after ``max_iter`` iterations (reported, not warned).  Per row: ``raw_*``
    are test scores of ``theta[P] + delta``; ``step`` is picked by the F1 on ``val`` over ``steps``
    (norms of the renormalised update) and ``val_*`` are test scores at that step; ``*_agreement``/
    ``*_kl`` compare with ``reference`` (the retrained model) on test; ``residual = ||H delta - g|| /
    ||g||``.  PIF slices the one IF solve, so its ``hvps`` are IF's.
    """
    unknown = set(methods) - {"IF", "gradient", "second-order", *SUBSET_METHODS}
    if unknown:
        raise ValueError(
            f"unknown methods {sorted(unknown)}; valid: IF, gradient, second-order, PIF, FIF, GIF"
        )
    obj, g, removed = setup.obj, setup.g, setup.removed
    work = copy.deepcopy(setup.model)  # HVP graphs of obj stay on the model; the step search writes on `work`
    rows: list[dict[str, Any]] = []
    for est in _estimates(setup, ratios, selection, methods, max_iter):
        row: dict[str, Any] = {
            "method": est.method,
            "ratio": est.ratio,
            "params": est.delta.numel(),
            "hvps": est.hvps,
            "residual": _residual(obj, g, est),
            "norm": float(est.delta.norm()),
        }
        row |= _metrics(apply_copy(work, est.delta, est.subset), test, removed, reference, "raw_")
        step, score, _ = best_step(
            work, est.delta, est.subset, steps, lambda m: removal_scores(m, val, removed)["f1"]
        )
        row |= {"step": step, "val_f1_at_step": score}
        picked = apply_copy(work, scaled_update(est.delta, step), est.subset)
        row |= _metrics(picked, test, removed, reference, "val_")
        rows.append(row)
    return rows


# --------------------------------------------------------------------------------------------------
# the small setting shared by the Part II chapters


#: The recipe :func:`fit` uses unless told otherwise: Adam, cosine schedule, 10 epochs.
FIT_RECIPE = Recipe(
    epochs=10, batch_size=128, lr=1e-2, optimizer="adam", schedule="cosine", weight_decay=1e-3
)


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
) -> RemovalSetup:
    """The class-removal problem at a trained (not necessarily stationary) ``model``, with cross-entropy.

    ``g = m / (n - m) (grad L_U + weight_decay theta)`` (``removal_problem(..., at_optimum=True)``);
    ``obj`` is the retained objective on its first ``n_hessian`` examples; ``second_order`` holds the
    full-data objective on ``n_hessian`` examples, the group objective and ``m / n``.
    """
    x, y = train
    removed = tuple(int(c) for c in removed)
    group = check_group(torch.isin(y, torch.as_tensor(removed, device=y.device)), len(y))
    g = removal_problem(model, F.cross_entropy, train, group, weight_decay=weight_decay, at_optimum=True).g
    keep = keep_mask(group, len(y), y.device)
    obj = Objective(model, F.cross_entropy, (x[keep][:n_hessian], y[keep][:n_hessian]), weight_decay)
    full = Objective(model, F.cross_entropy, (x[:n_hessian], y[:n_hessian]), weight_decay)
    part = Objective(model, F.cross_entropy, (x[group], y[group]), weight_decay)
    second = (full, part, group.numel() / len(y))
    return RemovalSetup(model, removed, group, (x[group], y[group]), obj, g, second)
