"""Cheap attribution baselines and ground truths: gradient similarity, TracIn, representer points, LDS.

Used by: attribution.

Scores follow :func:`gif_lite.removal_effects`: ``[n_test, n_train]``, larger means that training
example ``i`` helped test example ``j`` more (removing it would raise ``j``'s loss).

* :func:`gradient_similarity`: ``t_j . grad l_i``, influence with the Hessian replaced by ``I``.
* :func:`train_with_checkpoints` and :func:`tracin`: TracIn (Pruthi et al. 2020), the sum over
  checkpoints ``c`` of ``lr_c * t_j(theta_c) . grad l_i(theta_c)`` along a gradient-descent run.
* :func:`representer_values`: representer points (Yeh et al. 2018) of an L2-regularised linear
  classifier: at its optimum ``W = -(1 / (wd n)) sum_i (p_i - y_i) [x_i; 1]^T``, so test logits split
  exactly into one term per training example.
* ``newton_polish`` (:func:`gif_lite.train.newton_polish`, re-exported here for the chapters): Newton
  steps that take a convex model from where L-BFGS left it to a gradient norm every CPU kernel family
  reaches in float64.
* :func:`leave_one_out`: the actual change of the mean test loss after retraining without each example.
* :func:`lds` and :func:`lds_rows`: the linear datamodeling score (Park et al. 2023) of a score matrix,
  from models trained on random subsets (its mean over test examples, and its value per test example).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..attribution import example_gradients
from ..checks import GifLiteError
from ..objective import Data, LossFn, Objective
from ..params import flat_params, keep_mask, set_flat_params
from ..train import newton_polish, train_lbfgs

__all__ = [
    "gradient_similarity",
    "lds",
    "lds_rows",
    "leave_one_out",
    "newton_polish",
    "representer_values",
    "spearman_rows",
    "subset_losses",
    "tracin",
    "train_with_checkpoints",
]


def _grads(obj: Objective, data: Data | None = None) -> torch.Tensor:
    return torch.cat([g for _, g in example_gradients(obj, data)])


def gradient_similarity(obj: Objective, test: Data) -> torch.Tensor:
    """``[n_test, n_train]`` dot products ``t_j . grad l_i`` at the current parameters."""
    return _grads(obj, test) @ _grads(obj).T


def train_with_checkpoints(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    weight_decay: float,
    lr: float,
    epochs: int,
    every: int,
    batch_size: int = 64,
    seed: int = 0,
) -> list[tuple[torch.Tensor, float]]:
    """Mini-batch SGD on ``model`` in place; ``(theta, lr)`` after every ``every`` epochs (TracIn's checkpoints)."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.SGD(model.parameters(), lr=lr, weight_decay=weight_decay)
    x, y = data
    checkpoints = []
    for epoch in range(1, epochs + 1):
        for idx in torch.randperm(len(y), generator=gen).split(batch_size):
            opt.zero_grad()
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        if epoch % every == 0:
            checkpoints.append((flat_params(model), lr))
    return checkpoints


def tracin(
    model: nn.Module,
    loss_fn: LossFn,
    train: Data,
    test: Data,
    checkpoints: Sequence[tuple[torch.Tensor, float]],
) -> torch.Tensor:
    """TracIn-CP: ``sum_c lr_c * t_j(theta_c) . grad l_i(theta_c)`` (``[n_test, n_train]``)."""
    if not checkpoints:
        raise GifLiteError("checkpoints is empty: pass at least one (theta, lr) pair")
    work = copy.deepcopy(model)
    total = torch.zeros(len(test[1]), len(train[1]), dtype=flat_params(model).dtype)
    for theta, lr in checkpoints:
        set_flat_params(work, theta)
        obj = Objective(work, loss_fn, train)
        total += lr * (_grads(obj, test) @ _grads(obj).T)
    return total


def representer_values(linear: nn.Linear, train: Data, test: Data, weight_decay: float) -> torch.Tensor:
    """``[n_test, n_train]`` representer values of an L2-regularised softmax regression for each test
    point's true class: ``alpha_i[c_j] * ([x_i; 1] . [x_j; 1])`` with ``alpha_i = -(p_i - y_i) / (wd n)``.

    At the optimum of ``mean CE + wd/2 ||(W, b)||^2`` the rows of a test point sum to its logit ``c_j``.
    """
    (x, y), (xt, yt) = train, test
    x, xt = x.flatten(1), xt.flatten(1)
    with torch.no_grad():
        p = F.softmax(linear(x), dim=1)
    alpha = -(p - F.one_hot(y, p.shape[1]).to(p.dtype)) / (weight_decay * len(y))  # n_train x classes
    kernel = xt @ x.T + 1.0  # [x_j; 1] . [x_i; 1]
    return alpha.T[yt] * kernel


def leave_one_out(
    model: nn.Module,
    loss_fn: LossFn,
    train: Data,
    test: Data,
    indices: Sequence[int],
    *,
    weight_decay: float,
    tol: float = 1e-8,
    max_iter: int = 500,
    newton_tol: float | None = None,
) -> torch.Tensor:
    """Actual change of the mean test loss when each example in ``indices`` is removed and the model
    retrained by L-BFGS from the trained weights (warm start) to ``||grad|| < tol``, then, if
    ``newton_tol`` is given (convex models), by :func:`newton_polish` to ``||grad|| < newton_tol``."""
    x, y = train

    def test_loss(m: nn.Module) -> float:
        with torch.no_grad():
            return float(loss_fn(m(test[0]), test[1]))

    base = test_loss(model)
    out = []
    for i in indices:
        keep = keep_mask(torch.tensor([int(i)]), len(y))
        new = copy.deepcopy(model)
        train_lbfgs(
            new,
            loss_fn,
            (x[keep], y[keep]),
            weight_decay=weight_decay,
            tol=tol,
            max_iter=max_iter,
            progress=False,
        )
        if newton_tol is not None:
            newton_polish(new, loss_fn, (x[keep], y[keep]), weight_decay=weight_decay, tol=newton_tol)
        out.append(test_loss(new) - base)
    return torch.tensor(out, dtype=torch.float64)


def subset_losses(
    make_model: Callable[[], nn.Module],
    loss_fn: LossFn,
    train: Data,
    test: Data,
    masks: torch.Tensor,
    *,
    weight_decay: float,
    tol: float = 1e-6,
    max_iter: int = 300,
) -> torch.Tensor:
    """``[M, n_test]`` per-example test losses of models trained (L-BFGS, from ``make_model()``) on each
    subset ``masks[m]`` (a boolean row over the training examples)."""
    x, y = train
    rows = []
    for mask in masks:
        model = make_model()
        train_lbfgs(
            model,
            loss_fn,
            (x[mask], y[mask]),
            weight_decay=weight_decay,
            tol=tol,
            max_iter=max_iter,
            progress=False,
        )
        with torch.no_grad():
            rows.append(F.cross_entropy(model(test[0]), test[1], reduction="none"))
    return torch.stack(rows)


def spearman_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman correlation of each row of ``a`` with the same row of ``b`` (no ties expected)."""
    if a.dim() != 2 or a.shape != b.shape:
        raise GifLiteError(f"a and b must be 2-D of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    ra = a.argsort(dim=1).argsort(dim=1).double()
    rb = b.argsort(dim=1).argsort(dim=1).double()
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    return (ra * rb).sum(1) / (ra.norm(dim=1) * rb.norm(dim=1))


def lds_rows(scores: torch.Tensor, masks: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
    """``[n_test]``: for each test point, the Spearman correlation, across subsets, of the predicted test
    loss (the removal effects of the examples left out, summed) with the actual one.

    ``scores`` ``[n_test, n_train]`` removal effects, ``masks`` ``[M, n_train]`` (True = trained on),
    ``losses`` ``[M, n_test]`` actual test losses of the models trained on those subsets.
    """
    if scores.dim() != 2 or masks.dim() != 2 or losses.dim() != 2:
        raise GifLiteError(
            "scores, masks and losses must be 2-D: [n_test, n_train], [M, n_train], [M, n_test]"
        )
    if masks.shape[1] != scores.shape[1] or losses.shape != (masks.shape[0], scores.shape[0]):
        raise GifLiteError(
            f"scores {tuple(scores.shape)}, masks {tuple(masks.shape)} and losses {tuple(losses.shape)} "
            "disagree: they must be [n_test, n_train], [M, n_train] and [M, n_test]"
        )
    predicted = scores @ (~masks).T.to(scores.dtype)  # n_test x M
    return spearman_rows(predicted, losses.T.to(predicted.dtype))


def lds(scores: torch.Tensor, masks: torch.Tensor, losses: torch.Tensor) -> float:
    """Linear datamodeling score: the mean over test points of :func:`lds_rows`."""
    return float(lds_rows(scores, masks, losses).mean())
