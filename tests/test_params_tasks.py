"""Flat parameter views and task helpers: layout, updates, and clear errors that leave nothing half-done."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

import gif_lite as gl


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2))
    model[0].bias.requires_grad_(False)  # frozen parameters are not part of theta
    return model


def test_layout_matches_parameters_to_vector() -> None:
    model = _model()
    layout = gl.param_layout(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert layout.num_params == sum(p.numel() for p in trainable) == 12 + 8 + 2
    assert torch.equal(gl.flat_params(model), nn.utils.parameters_to_vector(trainable))
    assert layout.names == ("0.weight", "2.weight", "2.bias")
    assert layout.locate(13) == ("2.weight", (0, 1))
    assert layout.slice_of("2.bias") == slice(20, 22)
    assert layout.counts_by_name(torch.tensor([0, 11, 12, 21])) == {"0.weight": 2, "2.weight": 1, "2.bias": 1}


def test_apply_update_on_a_subset_and_round_trip() -> None:
    model = _model()
    theta = gl.flat_params(model)
    gl.apply_update(model, torch.tensor([1.0, -2.0]), torch.tensor([3, 20]), scale=0.5)
    expected = theta.clone()
    expected[3] += 0.5
    expected[20] -= 1.0
    assert torch.equal(gl.flat_params(model), expected)
    gl.set_flat_params(model, theta)
    assert torch.equal(gl.flat_params(model), theta)


@pytest.mark.parametrize(
    ("delta", "subset", "match"),
    [
        (torch.zeros(3), None, "length 22"),
        (torch.zeros(2), torch.tensor([1, 1]), "duplicated"),
        (torch.zeros(2), torch.tensor([1, 99]), "range"),
        (torch.zeros(3), torch.tensor([1, 2]), "length 2"),
        (torch.tensor([float("nan"), 0.0]), torch.tensor([1, 2]), "NaN"),
    ],
)
def test_failed_update_leaves_the_model_unchanged(
    delta: torch.Tensor, subset: torch.Tensor | None, match: str
) -> None:
    model = _model()
    theta = gl.flat_params(model)
    with pytest.raises(ValueError, match=match):
        gl.apply_update(model, delta, subset)
    assert torch.equal(gl.flat_params(model), theta)


@pytest.mark.parametrize(
    ("group", "match"),
    [
        (torch.tensor([], dtype=torch.long), "empty"),
        (torch.tensor([0, 50]), "must lie in"),
        (torch.tensor([1, 1]), "duplicated"),
        (torch.tensor([0.0, 1.0]), "integer"),
        (torch.arange(20), "every example"),
    ],
)
def test_bad_groups_are_named(group: torch.Tensor, match: str) -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    with pytest.raises(ValueError, match=match):
        gl.removal_problem(_model(), F.cross_entropy, (x, y), group)
    with pytest.raises(ValueError, match=match):
        gl.relabel_problem(
            _model(), F.cross_entropy, (x, y), group, torch.zeros(len(group), dtype=torch.long)
        )


def test_relabel_needs_one_label_per_example() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    with pytest.raises(ValueError, match="new_labels has 1 entries for a group of 2"):
        gl.relabel_problem(_model(), F.cross_entropy, (x, y), torch.tensor([0, 1]), torch.tensor([1]))


def test_relabel_takes_one_label_for_the_whole_group() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    group = torch.tensor([0, 5, 7])
    one = gl.relabel_problem(_model(), F.cross_entropy, (x, y), group, 1)
    each = gl.relabel_problem(_model(), F.cross_entropy, (x, y), group, torch.ones(3, dtype=torch.long))
    assert torch.equal(one.g, each.g)
