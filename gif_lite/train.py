"""Training to a stationary point, evaluation per class, and retraining without / with relabelled groups.

Every trainer minimises the contract's objective on ``data = (inputs, targets)``:

    L(theta) = mean_i loss_fn(model(x_i), y_i) + weight_decay / 2 * ||theta||^2

with the penalty added to the loss explicitly (never through an optimiser's ``weight_decay``, which for
Adam is a different objective), so a trained model is a stationary point of exactly the objective that
influence differentiates.  ``loss_fn`` must be mean-reduced, e.g. ``nn.CrossEntropyLoss()``.

* :func:`train_lbfgs`: full-batch L-BFGS (strong Wolfe line search) until ``||grad L|| < tol``; for
  convex models and small MLPs, where influence needs the gradient to really vanish.
* :func:`train_minibatch`: mini-batch Adam or SGD with a seeded shuffle; for CNNs.
* :func:`retrain_without` / :func:`retrain_relabelled`: the ground truth of every chapter, one call each.

On a CPU all of them are bit-for-bit reproducible for a given seed, initial model and thread count.
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, overload

import torch
from torch import nn
from torch.nn import functional as F

from . import checks
from . import solvers as S
from .objective import Objective, l2_penalty
from .params import (
    check_group,
    flat_params,
    keep_mask,
    reset_parameters,
    set_flat_params,
    trainable_parameters,
)
from .progress import progress_bar as _bar
from .progress import progress_enabled
from .types import Data, Group, LossFn

__all__ = [
    "Evaluation",
    "Recipe",
    "TrainResult",
    "Trainer",
    "TrainingWarning",
    "drop_examples",
    "evaluate",
    "newton_polish",
    "objective_value",
    "predict",
    "progress_enabled",
    "relabel_examples",
    "retrain_relabelled",
    "retrain_without",
    "train_lbfgs",
    "train_minibatch",
]

Trainer = Literal["lbfgs", "minibatch"] | Callable[..., "TrainResult"]


@dataclass(frozen=True)
class Recipe:
    """A mini-batch training recipe for :func:`train_minibatch`: optimiser, step size, schedule, budget.

    ``schedule`` is ``"constant"``, ``"cosine"`` (lr * (1 + cos(pi t / T)) / 2 at step t of T), ``"step"``
    (lr * 0.1 ** (epoch // 30), PyTorch's ``StepLR(step_size=30, gamma=0.1)``, the GIF paper's code) or
    ``"multistep"`` (lr * 0.1 after int(epochs/2) epochs and 0.01 after int(3 epochs/4): ``MultiStepLR``
    with those milestones, the paper's Table 3 notebook).
    ``weight_decay`` is the L2 term of the objective, added to the loss (never given to the optimiser).
    """

    epochs: int
    batch_size: int
    lr: float
    optimizer: Literal["adam", "sgd"] = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: Literal["constant", "cosine", "step", "multistep"] = "constant"

    def __post_init__(self) -> None:  # a bad field is named here, not found by a failing step
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise checks.GifLiteError(f"{name} must be a positive int, got {value!r}")
        checks.check_finite_number(self.lr, "lr", low=0.0, low_open=True)
        checks.check_finite_number(self.momentum, "momentum", low=0.0)
        checks.check_finite_number(self.weight_decay, "weight_decay", low=0.0)
        if self.optimizer not in ("adam", "sgd"):
            raise checks.GifLiteError(f"unknown optimizer {self.optimizer!r}; valid: 'adam', 'sgd'")

    def but(self, **changes: Any) -> Recipe:
        """A copy with the given fields changed; fields given as None keep this recipe's value."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


class TrainingWarning(UserWarning):
    """Training stopped before reaching the requested gradient-norm tolerance."""


@dataclass
class TrainResult:
    """How training ended.

    ``loss`` and ``grad_norm`` are the objective L and ||grad L||_2 on the whole training data at the
    final parameters; ``converged`` says whether ``grad_norm < tol`` (None when no tolerance was asked);
    ``iterations`` counts L-BFGS iterations or optimiser steps; ``history`` holds the objective after each
    L-BFGS iteration or the mean mini-batch objective of each epoch.
    """

    iterations: int
    loss: float
    grad_norm: float
    converged: bool | None
    history: list[float] = field(default_factory=list, repr=False)
    seconds: float = field(default=0.0, repr=False)


# --------------------------------------------------------------------------------------------------
# the objective


def _check_data(data: Data) -> Data:
    """One ``(inputs, targets)`` pair (see :func:`gif_lite.checks.check_data_pair`)."""
    return checks.check_data_pair(data, finite=False)


def objective_value(
    model: nn.Module, loss_fn: LossFn, data: Data, *, weight_decay: float = 0.0, batch_size: int | None = None
) -> tuple[float, float]:
    """(L(theta), ||grad L(theta)||_2) on all of ``data``, evaluated in chunks of ``batch_size`` examples.

    This is :class:`~gif_lite.Objective`'s ``loss()`` and ``gradient()`` on those chunks (chunk means weighted
    by chunk size, so the result equals the full-batch value): training reports the same L that influence
    differentiates.
    """
    inputs, targets = _check_data(data)
    step = batch_size or len(targets)
    chunks = [(inputs[i : i + step], targets[i : i + step]) for i in range(0, len(targets), step)]
    obj = Objective(model, loss_fn, chunks, weight_decay)
    return obj.loss(), float(obj.gradient().norm())


# --------------------------------------------------------------------------------------------------
# L-BFGS


class _CachedObjective:
    """The closure for ``torch.optim.LBFGS``: L(theta) and its gradient, remembered for the last theta.

    L-BFGS evaluates the objective at the start of each ``step`` at the point its line search has just
    evaluated; the cache makes that evaluation free, so stepping one iteration at a time costs nothing.
    """

    def __init__(self, model: nn.Module, loss_fn: LossFn, data: Data, weight_decay: float) -> None:
        self.model, self.loss_fn, self.weight_decay = model, loss_fn, weight_decay
        device = checks.model_device(model)  # full batch: moved where the model lives once
        self.inputs, self.targets = data[0].to(device), data[1].to(device)
        self.params = trainable_parameters(model)
        self.theta: torch.Tensor | None = None
        self.loss = torch.tensor(0.0)
        self.grads: list[torch.Tensor] = []
        self.evaluations = 0

    def flat(self) -> torch.Tensor:
        return flat_params(self.model)

    @torch.enable_grad()
    def __call__(self) -> torch.Tensor:
        theta = self.flat()
        if self.theta is not None and torch.equal(theta, self.theta):
            for p, g in zip(self.params, self.grads, strict=True):
                p.grad = g.clone()
            return self.loss.clone()
        for p in self.params:
            p.grad = None
        loss = self.loss_fn(self.model(self.inputs), self.targets) + l2_penalty(
            self.params, self.weight_decay
        )
        loss.backward()
        self.evaluations += 1
        self.theta, self.loss = theta, loss.detach()
        self.grads = [
            p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in self.params
        ]
        return loss.detach()

    def grad_norm(self) -> float:
        self()
        return math.sqrt(sum(float(g.pow(2).sum()) for g in self.grads))


def train_lbfgs(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    weight_decay: float = 0.0,
    tol: float = 1e-6,
    max_iter: int = 500,
    history_size: int = 100,
    progress: bool | None = None,
) -> TrainResult:
    """Minimise L(theta) on the full batch with L-BFGS (strong Wolfe line search) until ||grad L||_2 < tol.

    Trains ``model`` in place.  Warns with :class:`TrainingWarning` if ``max_iter`` iterations pass, or
    the line search stalls, before the tolerance is reached (float32 rarely gets below about 1e-5).
    """
    start_time = time.perf_counter()
    data = checks.check_data_pair(data)  # finite: L-BFGS would stall on NaN data and report nothing
    checks.check_class_targets(model, *data)
    checks.check_finite_number(tol, "tol", low=0.0)
    checks.check_max_iter(max_iter)
    data = _check_data(data)
    objective = _CachedObjective(model, loss_fn, data, weight_decay)
    optimizer = torch.optim.LBFGS(
        objective.params,
        lr=1.0,
        max_iter=1,  # one iteration per step(), so the gradient norm is checked after each
        max_eval=26,  # the first evaluation (cached) plus up to 25 in the line search
        tolerance_grad=0.0,  # stopping is decided here, on the 2-norm
        tolerance_change=0.0,
        history_size=history_size,
        line_search_fn="strong_wolfe",
    )
    history: list[float] = []
    grad_norm = objective.grad_norm()
    iterations, stalled = 0, False
    with _bar(max_iter, "L-BFGS", progress) as bar:
        while grad_norm >= tol and iterations < max_iter:
            before = objective.flat()
            optimizer.step(objective)
            iterations += 1
            grad_norm = objective.grad_norm()
            history.append(float(objective.loss))
            bar.update()
            bar.set_postfix(loss=f"{history[-1]:.6g}", grad=f"{grad_norm:.2e}")
            if torch.equal(before, objective.flat()):
                stalled = True
                break
    for p in objective.params:
        p.grad = None  # leave no stale gradients on the model
    converged = grad_norm < tol
    if not converged:
        why = "the line search made no progress" if stalled else f"max_iter={max_iter} iterations passed"
        warnings.warn(
            f"L-BFGS stopped at ||grad|| = {grad_norm:.3g} > tol = {tol:g}: {why}. Influence assumes a "
            "stationary point; raise max_iter, train in float64, or add weight decay.",
            TrainingWarning,
            stacklevel=2,
        )
    return TrainResult(
        iterations=iterations,
        loss=float(objective.loss),
        grad_norm=grad_norm,
        converged=converged,
        history=history,
        seconds=time.perf_counter() - start_time,
    )


# --------------------------------------------------------------------------------------------------
# mini-batch


def newton_polish(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    *,
    weight_decay: float,
    tol: float = 1e-10,
    max_steps: int = 20,
) -> float:
    """Newton steps ``theta <- theta - H^-1 grad L`` on ``model`` in place until ``||grad L|| < tol``;
    returns the final gradient norm.

    Each step solves ``H step = -grad L`` by conjugate gradients on Hessian-vector products to a
    relative residual of 1e-12, so it needs no dense Hessian.  Meant for a convex objective (positive
    definite ``H``) that L-BFGS has already brought near its optimum, where Newton converges
    quadratically: a few steps reach a gradient norm near float64 rounding whatever the CPU's kernels,
    where L-BFGS's last digits vary with them.  Stops early when a step no longer lowers the gradient
    norm (rounding has taken over).  Warns with :class:`TrainingWarning` if ``tol`` is not reached.
    """
    norm = math.inf
    for _ in range(max_steps):
        obj = Objective(model, loss_fn, data, weight_decay)
        grad = obj.gradient()
        previous, norm = norm, float(grad.norm())
        if norm < tol or norm >= previous:  # converged, or rounding has taken over
            break
        step = S.cg(obj.hvp, -grad.detach(), tol=1e-12, max_iter=10 * obj.num_params).x
        set_flat_params(model, flat_params(model) + step)
    else:
        norm = float(Objective(model, loss_fn, data, weight_decay).gradient().norm())
    if norm >= tol:
        warnings.warn(
            f"Newton stopped at ||grad|| = {norm:.3g} > tol = {tol:g}", TrainingWarning, stacklevel=2
        )
    return norm


def _optimizer(name: str, params: list[nn.Parameter], lr: float, momentum: float) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=momentum)
    raise checks.GifLiteError(f"unknown optimizer {name!r}; valid: 'adam', 'sgd'")


def _scheduled_lr(schedule: str, lr: float, step: int, total_steps: int, epoch: int, epochs: int) -> float:
    if schedule == "cosine":
        return lr * 0.5 * (1.0 + math.cos(math.pi * step / total_steps))
    if schedule == "multistep":  # MultiStepLR(milestones=[int(.5 E), int(.75 E)], gamma=0.1)
        return lr * 0.1 ** sum(epoch >= m for m in (int(0.5 * epochs), int(0.75 * epochs)))
    return lr * 0.1 ** (epoch // 30)  # "step": StepLR(step_size=30, gamma=0.1)


def train_minibatch(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    recipe: Recipe | None = None,
    *,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    optimizer: Literal["adam", "sgd"] | None = None,
    momentum: float | None = None,
    weight_decay: float | None = None,
    schedule: Literal["constant", "cosine", "step", "multistep"] | None = None,
    seed: int = 0,
    tol: float | None = None,
    measure_final: bool = True,
    progress: bool | None = None,
) -> TrainResult:
    """Minimise L(theta) with mini-batch Adam or SGD, in place, shuffling with a generator seeded by ``seed``.

    The settings come from ``recipe`` (a :class:`Recipe`, e.g. one of :mod:`gif_lite.book.configs`),
    and each keyword given (``epochs``, ``lr``, ...) overrides the recipe's field; without a recipe,
    ``epochs``, ``batch_size`` and ``lr`` are required.  Each step uses the batch objective mean loss_fn +
    weight_decay/2 ||theta||^2 with the recipe's schedule (see :class:`Recipe`; ``"cosine"`` also ends
    closer to a stationary point).  At the end (unless ``measure_final`` is False, then they are NaN),
    L and ||grad L|| are measured on the whole of ``data`` in eval mode; ``converged`` compares the
    latter with ``tol``.
    """
    changes: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "optimizer": optimizer}
    changes |= {"momentum": momentum, "weight_decay": weight_decay, "schedule": schedule}
    if recipe is None:
        missing = [k for k in ("epochs", "batch_size", "lr") if changes[k] is None]
        if missing:
            raise checks.GifLiteTypeError(
                f"train_minibatch needs {', '.join(missing)}: pass them, or a recipe=Recipe(...)"
            )
        recipe = Recipe(**{k: v for k, v in changes.items() if v is not None})
    else:
        recipe = recipe.but(**changes)
    x, y = checks.check_data_pair(data)  # non-finite data is refused before the first step, not at the end
    checks.check_class_targets(model, x, y)  # so is a label out of range in a late batch
    with checks.atomic(model):  # a step that fails (a bad label in a late batch) leaves the model as it was
        return _train_minibatch(model, loss_fn, data, recipe, seed, tol, measure_final, progress)


def _train_minibatch(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    recipe: Recipe,
    seed: int,
    tol: float | None,
    measure_final: bool,
    progress: bool | None,
) -> TrainResult:
    epochs, batch_size, lr, optimizer = recipe.epochs, recipe.batch_size, recipe.lr, recipe.optimizer
    momentum, weight_decay, schedule = recipe.momentum, recipe.weight_decay, recipe.schedule
    start_time = time.perf_counter()
    data = inputs, targets = _check_data(data)
    params = trainable_parameters(model)
    opt = _optimizer(optimizer, params, lr, momentum)
    if schedule not in ("constant", "cosine", "step", "multistep"):
        raise checks.GifLiteError(
            f"unknown schedule {schedule!r}; valid: 'constant', 'cosine', 'step', 'multistep'"
        )
    generator = torch.Generator().manual_seed(seed)
    device = checks.model_device(model)
    n = len(targets)
    steps_per_epoch = math.ceil(n / batch_size)
    total_steps, step = epochs * steps_per_epoch, 0
    history: list[float] = []
    was_training = model.training
    model.train()
    with _bar(total_steps, f"{optimizer} training", progress) as bar:
        for epoch in range(epochs):
            # drawn on the CPU (the same order on every device), moved once per epoch to the data
            order = torch.randperm(n, generator=generator).to(inputs.device)
            total = 0.0
            for start in range(0, n, batch_size):
                index = order[start : start + batch_size]
                if schedule != "constant":
                    for group in opt.param_groups:
                        group["lr"] = _scheduled_lr(schedule, lr, step, total_steps, epoch, epochs)
                step += 1
                opt.zero_grad(set_to_none=True)
                xb, yb = inputs[index].to(device), targets[index].to(device)
                loss = loss_fn(model(xb), yb) + l2_penalty(params, weight_decay)
                loss.backward()
                opt.step()
                total += float(loss.detach()) * len(index)
                bar.update()
            history.append(total / n)
            bar.set_postfix(epoch=epoch + 1, loss=f"{history[-1]:.4f}")
    opt.zero_grad(set_to_none=True)
    model.eval()  # the objective influence uses: no batch statistics, no running-statistics updates
    loss_value, grad_norm = math.nan, math.nan
    if measure_final:
        loss_value, grad_norm = objective_value(
            model, loss_fn, data, weight_decay=weight_decay, batch_size=1024
        )
    model.train(was_training)
    return TrainResult(
        iterations=total_steps,
        loss=loss_value,
        grad_norm=grad_norm,
        converged=None if tol is None else grad_norm < tol,
        history=history,
        seconds=time.perf_counter() - start_time,
    )


# --------------------------------------------------------------------------------------------------
# evaluation


@dataclass
class Evaluation:
    """Accuracy and mean loss on one split, overall and per class (NaN for a class with no examples)."""

    accuracy: float
    loss: float
    per_class_accuracy: torch.Tensor
    per_class_loss: torch.Tensor
    per_class_count: torch.Tensor

    def accuracy_of(self, classes: Sequence[int]) -> float:
        """Accuracy on the examples whose label is in ``classes`` (count-weighted)."""
        index = torch.as_tensor(list(classes), dtype=torch.long)
        counts = self.per_class_count[index].double()
        correct = (self.per_class_accuracy[index].double().nan_to_num() * counts).sum()
        return float(correct / counts.sum()) if counts.sum() > 0 else math.nan

    def accuracy_without(self, classes: Sequence[int]) -> float:
        """Accuracy on the examples whose label is not in ``classes``."""
        drop = set(int(c) for c in classes)
        return self.accuracy_of([c for c in range(len(self.per_class_count)) if c not in drop])


def _per_example_losses(loss_fn: LossFn | None, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """loss_fn on each example separately (cross-entropy when ``loss_fn`` is None)."""
    if loss_fn is None:
        return F.cross_entropy(outputs, targets, reduction="none")
    if isinstance(loss_fn, nn.modules.loss._Loss) and hasattr(loss_fn, "reduction"):
        unreduced = copy.copy(loss_fn)
        unreduced.reduction = "none"
        losses = unreduced(outputs, targets)
        return losses.reshape(len(targets), -1).mean(dim=1)
    return torch.stack([loss_fn(outputs[i : i + 1], targets[i : i + 1]) for i in range(len(targets))])


@torch.no_grad()
def predict(model: nn.Module, inputs: torch.Tensor, *, batch_size: int = 2048) -> torch.Tensor:
    """``model(inputs)`` in eval mode, without autograd, in chunks of ``batch_size`` moved to the model's
    device; every module's own mode is restored afterwards (also a child whose mode differs from the root's)."""
    modes = [(m, m.training) for m in model.modules()]
    device = checks.model_device(model)
    model.eval()
    try:
        return torch.cat(
            [model(inputs[i : i + batch_size].to(device)) for i in range(0, len(inputs), batch_size)]
        )
    finally:
        for m, mode in modes:
            m.training = mode


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Data,
    loss_fn: LossFn | None = None,
    num_classes: int | None = None,
    *,
    batch_size: int = 2048,
) -> Evaluation:
    """Accuracy (argmax of the outputs) and mean loss (cross-entropy by default), overall and per class.

    The model is put in eval mode for the evaluation and restored to its previous mode afterwards.
    """
    checks.check_model(model, trainable=False)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise checks.GifLiteError(f"batch_size must be a positive int, got {batch_size!r}")
    inputs, targets = _check_data(data)
    outputs = predict(model, inputs, batch_size=batch_size)
    targets = targets.to(outputs.device)
    k = num_classes or outputs.shape[1]
    correct = (outputs.argmax(dim=1) == targets).double()
    losses = _per_example_losses(loss_fn, outputs, targets).double()
    counts = torch.bincount(targets, minlength=k)
    with torch.no_grad():
        per_acc = torch.bincount(targets, weights=correct, minlength=k) / counts
        per_loss = torch.bincount(targets, weights=losses, minlength=k) / counts
    return Evaluation(
        accuracy=float(correct.mean()),
        loss=float(losses.mean()),
        per_class_accuracy=per_acc,
        per_class_loss=per_loss,
        per_class_count=counts,
    )


# --------------------------------------------------------------------------------------------------
# retraining: the ground truth


def drop_examples(data: Data, group: Group) -> Data:
    """``data`` without the examples in ``group`` (order of the rest preserved; an empty group drops nothing)."""
    inputs, targets = _check_data(data)
    keep = keep_mask(check_group(group, len(targets), allow_empty=True), len(targets), targets.device)
    if not keep.any():
        raise checks.GifLiteError("the group holds every example; nothing would be left to train on")
    return inputs[keep.to(inputs.device)], targets[keep]


def relabel_examples(data: Data, group: Group, new_labels: torch.Tensor | int) -> Data:
    """``data`` with ``targets[group] = new_labels`` (one int, or one label per entry of ``group``)."""
    inputs, targets = _check_data(data)
    per_example = (
        isinstance(new_labels, torch.Tensor | list | tuple) and torch.as_tensor(new_labels).dim() > 0
    )
    index = checks.check_group(group, len(targets), allow_all=True, ordered=per_example, allow_empty=True).to(
        targets.device
    )
    labels = checks.check_labels(new_labels, index.numel(), targets, "new_labels")
    relabelled = targets.clone()
    relabelled[index] = labels  # the caller's order: labels[i] goes to example group[i]
    return inputs, relabelled


def _run_trainer(
    model: nn.Module,
    data: Data,
    *,
    warm_start: bool,
    seed: int,
    trainer: Trainer,
    loss_fn: LossFn,
    train_kwargs: dict[str, Any],
) -> tuple[nn.Module, TrainResult]:
    new = copy.deepcopy(model)
    if not warm_start:
        reset_parameters(new, seed)
    if trainer == "lbfgs":
        result = train_lbfgs(new, loss_fn, data, **train_kwargs)
    elif trainer == "minibatch":
        result = train_minibatch(new, loss_fn, data, **{"seed": seed, **train_kwargs})
    elif callable(trainer):
        result = trainer(new, loss_fn, data, **train_kwargs)
    else:
        raise checks.GifLiteError(f"unknown trainer {trainer!r}; valid: 'lbfgs', 'minibatch', or a callable")
    return new, result


@overload
def retrain_without(
    model: nn.Module, loss_fn: LossFn, data: Data, group: Group, *, return_result: Literal[False] = ...,
    warm_start: bool = ..., seed: int = ..., trainer: Trainer = ..., **train_kwargs: Any,
) -> nn.Module: ...  # fmt: skip
@overload
def retrain_without(
    model: nn.Module, loss_fn: LossFn, data: Data, group: Group, *, return_result: Literal[True],
    warm_start: bool = ..., seed: int = ..., trainer: Trainer = ..., **train_kwargs: Any,
) -> tuple[nn.Module, TrainResult]: ...  # fmt: skip
def retrain_without(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    group: Group,
    *,
    return_result: bool = False,
    warm_start: bool = True,
    seed: int = 0,
    trainer: Trainer = "lbfgs",
    **train_kwargs: Any,
) -> nn.Module | tuple[nn.Module, TrainResult]:
    """A new model trained on ``data`` with the examples ``group`` removed; ``model`` is left untouched.

    The arguments come in the order of :func:`gif_lite.removal_problem`, whose prediction this checks.
    Warm start: training starts from ``model``'s weights; otherwise from a fresh initialisation drawn
    with ``seed``.  ``trainer`` is ``"lbfgs"`` (:func:`train_lbfgs`), ``"minibatch"``
    (:func:`train_minibatch`, whose shuffle seed defaults to ``seed``) or a callable
    ``trainer(model, loss_fn, data, **train_kwargs) -> TrainResult``; ``train_kwargs`` go to it
    (e.g. ``weight_decay``, ``tol``, ``epochs``, or ``recipe=`` for ``"minibatch"``).
    """
    new, result = _run_trainer(
        model, drop_examples(data, group), warm_start=warm_start, seed=seed, trainer=trainer,
        loss_fn=loss_fn, train_kwargs=train_kwargs,
    )  # fmt: skip
    return (new, result) if return_result else new


@overload
def retrain_relabelled(
    model: nn.Module, loss_fn: LossFn, data: Data, group: Group, new_labels: torch.Tensor | int, *,
    return_result: Literal[False] = ..., warm_start: bool = ..., seed: int = ..., trainer: Trainer = ...,
    **train_kwargs: Any,
) -> nn.Module: ...  # fmt: skip
@overload
def retrain_relabelled(
    model: nn.Module, loss_fn: LossFn, data: Data, group: Group, new_labels: torch.Tensor | int, *,
    return_result: Literal[True], warm_start: bool = ..., seed: int = ..., trainer: Trainer = ...,
    **train_kwargs: Any,
) -> tuple[nn.Module, TrainResult]: ...  # fmt: skip
def retrain_relabelled(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    group: Group,
    new_labels: torch.Tensor | int,
    *,
    return_result: bool = False,
    warm_start: bool = True,
    seed: int = 0,
    trainer: Trainer = "lbfgs",
    **train_kwargs: Any,
) -> nn.Module | tuple[nn.Module, TrainResult]:
    """A new model trained on ``data`` with ``targets[group] = new_labels``; ``model`` is left untouched.

    The arguments come in the order of :func:`gif_lite.relabel_problem`.  ``new_labels`` is one int for
    the whole group or a tensor with one label per entry of ``group``.  The keywords are those of
    :func:`retrain_without`.
    """
    new, result = _run_trainer(
        model, relabel_examples(data, group, new_labels), warm_start=warm_start, seed=seed, trainer=trainer,
        loss_fn=loss_fn, train_kwargs=train_kwargs,
    )  # fmt: skip
    return (new, result) if return_result else new
