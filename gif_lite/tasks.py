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

import torch
from torch import nn

from .objective import Objective
from .params import check_group, keep_mask
from .types import Data, Group, LossFn

__all__ = ["InfluenceProblem", "relabel_problem", "removal_problem"]


@dataclass
class InfluenceProblem:
    """What an estimator needs: ``objective`` (its Hessian) and the target ``g``; ``group`` for reference."""

    objective: Objective
    g: torch.Tensor
    group: torch.Tensor


def _check_group(group: Group, n: int) -> torch.Tensor:
    """:func:`~gif_lite.params.check_group` (the one rule for groups), and something must remain."""
    group = check_group(group, n)
    if group.numel() >= n:
        raise ValueError("group covers every example; nothing would remain to train on")
    return group


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
    inputs, targets = data
    n = int(inputs.shape[0])
    group = _check_group(group, n)
    keep = keep_mask(group, n)
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
    inputs, targets = data
    n = int(inputs.shape[0])
    group = _check_group(group, n)
    new_labels = torch.as_tensor(new_labels).to(device=targets.device, dtype=targets.dtype)
    if new_labels.dim() == 0:
        new_labels = new_labels.expand(group.numel())
    if new_labels.shape[0] != group.numel():
        raise ValueError(f"new_labels has {new_labels.shape[0]} entries for a group of {group.numel()}")
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
