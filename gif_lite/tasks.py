"""Task helpers: the right-hand side ``g`` for removing or relabelling a group of training examples.

The estimators never guess ``g``; these functions build it, together with the objective whose
Hessian the estimators should use.  Signs and scales (``n`` examples, group ``U`` of ``m``):

* removal:  the objective on the ``n - m`` retained examples and ``g = -grad L_retained(theta)``.
  At the full-data optimum this equals ``(m / (n - m)) * (grad L_U(theta) + weight_decay * theta)``.
* relabel:  the objective on the relabelled data and ``g = -grad L_new(theta)``.  At the old optimum
  this equals ``-(m / n) * (grad L_U,new(theta) - grad L_U,old(theta))``.

In both cases ``theta + delta`` (``delta = H^-1 g``) is the Newton-step prediction of retraining.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from . import checks
from .objective import Objective
from .params import keep_mask
from .types import Data, Group, LossFn

__all__ = ["InfluenceProblem", "relabel_problem", "removal_problem"]


@dataclass
class InfluenceProblem:
    """What an estimator needs: ``objective`` (its Hessian) and the target ``g``; ``group`` for reference."""

    objective: Objective
    g: torch.Tensor
    group: torch.Tensor


def _check_group(group: Group, n: int, ordered: bool = False) -> torch.Tensor:
    """Example indices (see :func:`gif_lite.checks.check_group`), never every example."""
    return checks.check_group(group, n, ordered=ordered)


def _num_classes(model: nn.Module, inputs: torch.Tensor) -> int | None:
    """The model's number of outputs (from one example, nothing changed), when its output is 2-D."""
    with checks.atomic(model) as state, torch.no_grad():
        out = checks.run_forward(model, inputs[:1].to(checks.model_device(model)), "data")
        state.restore()
    return int(out.shape[1]) if out.dim() == 2 else None


def removal_problem(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    group: Group,
    weight_decay: float = 0.0,
    at_optimum: bool = False,
    **objective_kwargs: object,
) -> InfluenceProblem:
    """Remove examples ``group`` from ``data``: retained objective and ``g = -grad L_retained(theta)``.

    With ``at_optimum=True``, ``g = (m / (n - m)) (grad L_U(theta) + weight_decay * theta)``, which needs
    only the group's gradient and equals the former when ``theta`` minimises the full objective.
    """
    checks.check_model(model)
    inputs, targets = checks.check_example_pair(data)
    n = int(inputs.shape[0])
    group = _check_group(group, n).to(inputs.device)
    keep = keep_mask(group, n, device=inputs.device)
    retained = Objective(model, loss_fn, (inputs[keep], targets[keep]), weight_decay, **objective_kwargs)  # type: ignore[arg-type]
    if at_optimum:
        m = group.numel()
        group_obj = Objective(model, loss_fn, (inputs[group], targets[group]), weight_decay)
        g = (m / (n - m)) * group_obj.gradient()
    else:
        g = -retained.gradient()
    return InfluenceProblem(retained, g, group)


def relabel_problem(
    model: nn.Module,
    loss_fn: LossFn,
    data: Data,
    group: Group,
    new_labels: torch.Tensor | int,
    weight_decay: float = 0.0,
    at_optimum: bool = False,
    **objective_kwargs: object,
) -> InfluenceProblem:
    """Give examples ``group`` the labels ``new_labels``: new objective and ``g = -grad L_new(theta)``.

    ``new_labels`` is one label for the whole group or one per entry of ``group`` (in ``group``'s order).

    With ``at_optimum=True``, ``g = -(m / n) (grad L_U,new(theta) - grad L_U,old(theta))`` (mean losses on
    the group; the weight-decay terms cancel), equal to the former at the old optimum.
    """
    checks.check_model(model)
    inputs, targets = checks.check_example_pair(data)
    n = int(inputs.shape[0])
    per_example = isinstance(new_labels, torch.Tensor | np.ndarray | list | tuple) and np.ndim(new_labels) > 0
    group = _check_group(group, n, ordered=per_example).to(targets.device)
    classes = None if targets.is_floating_point() else _num_classes(model, inputs)
    new_labels = checks.check_labels(new_labels, group.numel(), targets, "new_labels", num_classes=classes)
    relabelled = targets.clone()
    relabelled[group] = new_labels
    new_obj = Objective(model, loss_fn, (inputs, relabelled), weight_decay, **objective_kwargs)  # type: ignore[arg-type]
    if at_optimum:
        old_u = Objective(model, loss_fn, (inputs[group], targets[group])).gradient()
        new_u = Objective(model, loss_fn, (inputs[group], new_labels)).gradient()
        g = -(group.numel() / n) * (new_u - old_u)
    else:
        g = -new_obj.gradient()
    return InfluenceProblem(new_obj, g, group)
