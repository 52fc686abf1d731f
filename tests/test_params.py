"""Flat parameter views: layout, offsets, updates, and clear errors that leave nothing half-done."""

from __future__ import annotations

import pytest
import torch
from torch import nn

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


def test_embed_is_the_one_scatter_used_by_results_and_updates() -> None:
    model = _model()
    subset = torch.tensor([1, 5, 20])
    delta = torch.tensor([1.0, -2.0, 3.0])
    full = gl.embed(delta, subset, 22)
    assert full.shape == (22,) and torch.equal(full[subset], delta) and int((full != 0).sum()) == 3
    result = gl.InfluenceResult(delta, 1, 0.0, True, "direct", 0, subset=subset)
    assert torch.equal(result.full(22), full)
    theta = gl.flat_params(model)
    gl.apply_update(model, delta, subset, scale=2.0)
    assert torch.equal(gl.flat_params(model), theta + 2.0 * full)


def test_flat_offsets_and_weight_layers_are_the_one_layer_map() -> None:
    """``flat_offsets`` places each trainable tensor by identity; ``weight_layers`` lists the Linear/Conv2d
    layers with a trainable weight (a frozen layer and a shared module appear as the model has them)."""
    shared = nn.Linear(3, 3)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2, 3), shared, nn.Tanh(), shared)
    model[2].requires_grad_(False)
    offsets = gl.flat_offsets(model)
    layout = gl.param_layout(model)
    assert list(offsets.values()) == list(layout.offsets)
    assert offsets[id(shared.weight)] == layout.slice_of("3.weight").start
    assert [name for name, _ in gl.weight_layers(model)] == ["0", "3"]
