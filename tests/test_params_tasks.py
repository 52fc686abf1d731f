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


# ---------------------------------------------------------------------------------------------- one home


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


def test_one_group_rule_accepts_masks_everywhere() -> None:
    x, y = torch.randn(20, 3), torch.randint(0, 2, (20,))
    mask = torch.zeros(20, dtype=torch.bool)
    mask[[2, 7, 11]] = True
    assert torch.equal(gl.check_group(mask, 20), torch.tensor([2, 7, 11]))
    assert torch.equal(gl.keep_mask(torch.tensor([2, 7, 11]), 20), ~mask)
    by_mask = gl.removal_problem(_model(), F.cross_entropy, (x, y), mask)
    by_index = gl.removal_problem(_model(), F.cross_entropy, (x, y), torch.tensor([2, 7, 11]))
    assert torch.equal(by_mask.g, by_index.g)
    assert torch.equal(gl.drop_examples((x, y), mask)[0], x[~mask])
    with pytest.raises(ValueError, match="boolean group mask must have shape"):
        gl.check_group(mask[:5], 20)
    assert gl.check_group(torch.tensor([], dtype=torch.long), 20, allow_empty=True).numel() == 0


@pytest.mark.parametrize("batch_size", [None, 7])
def test_objective_value_is_the_objective(batch_size: int | None) -> None:
    """Training reports, and stops on, the same L(theta) and grad L that influence differentiates."""
    model = _model().double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randint(0, 2, (30,))
    obj = gl.Objective(model, F.cross_entropy, (x, y), weight_decay=0.3)
    loss, grad_norm = gl.objective_value(
        model, F.cross_entropy, (x, y), weight_decay=0.3, batch_size=batch_size
    )
    assert loss == pytest.approx(obj.loss(), rel=1e-13)
    assert grad_norm == pytest.approx(float(obj.gradient().norm()), rel=1e-12)
    # and by hand: mean loss + wd/2 ||theta||^2, whose gradient autograd gives
    params = gl.trainable_parameters(model)
    by_hand = F.cross_entropy(model(x), y) + gl.l2_penalty(params, 0.3)
    grads = torch.autograd.grad(by_hand, params)
    assert float(by_hand) == pytest.approx(obj.loss(), rel=1e-13)
    assert torch.allclose(torch.cat([g.reshape(-1) for g in grads]), obj.gradient(), rtol=1e-12, atol=1e-14)
    assert float(gl.l2_penalty(params, 0.0)) == 0.0


def test_estimators_share_one_if_solve_between_if_and_every_pif() -> None:
    model = _model().double()
    x, y = torch.randn(30, 3, dtype=torch.float64), torch.randint(0, 2, (30,))
    problem = gl.removal_problem(model, F.cross_entropy, (x, y), torch.tensor([0, 1, 2]), weight_decay=0.1)
    obj, g = problem.objective, problem.g
    est = gl.Estimators({"solver": "minres", "tol": 1e-12})
    full = est("IF", obj, g)
    calls = obj.hvp_calls
    for p in (torch.tensor([0, 3]), torch.tensor([5, 9, 21])):
        pif = est("PIF", obj, g, p)
        assert torch.equal(pif.delta, full.delta[p]) and torch.equal(pif.subset, p)
    assert obj.hvp_calls == calls  # no new solve
    direct = gl.projected_influence(obj, g, torch.tensor([5, 9, 21]), solver="direct")
    assert torch.allclose(est("PIF", obj, g, torch.tensor([5, 9, 21])).delta, direct.delta, atol=1e-9)
    assert set(gl.ESTIMATORS) == {"IF", "FIF", "PIF", "GIF"}
    with pytest.raises(ValueError, match="needs a parameter subset"):
        est("GIF", obj, g)


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
