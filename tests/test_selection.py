"""Tests of gif_lite.selection: budgets, neuron-wise ranking, gradient scores, hook safety."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from torch import nn

from gif_lite.params import check_subset, param_layout
from gif_lite.selection import SELECTION_METHODS, select, select_parameters

NEURONWISE = (
    "highest_outputs",
    "lowest_outputs",
    "exclusive_outputs",
    "highest_gradients",
    "lowest_gradients",
    "exclusive_gradients",
)
CE = nn.CrossEntropyLoss()


class MixedNet(nn.Module):
    """Conv with/without bias, Linear without/with bias, a BatchNorm, and in-place ReLUs."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 5, 2, bias=False)
        self.fc1 = nn.Linear(5 * 3 * 3, 7, bias=False)
        self.fc2 = nn.Linear(7, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu_(self.bn(self.conv1(x)))
        x = torch.relu_(self.conv2(x)).flatten(1)
        return self.fc2(torch.tanh(self.fc1(x)))


def _mixed(dtype: torch.dtype = torch.float32) -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = MixedNet().to(dtype)
    x = torch.randn(6, 2, 6, 6, dtype=dtype)
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    return model, x, y


def _layer_ranges(model: nn.Module, name: str) -> list[tuple[int, int]]:
    layout = param_layout(model)
    return [
        (layout.slice_of(n).start, layout.slice_of(n).stop)
        for n in layout.names
        if n.rsplit(".", 1)[0] == name
    ]


# --------------------------------------------------------------------------------------------- budget


@pytest.mark.parametrize("method", [*NEURONWISE, "random"])
@pytest.mark.parametrize("ratio", [0.05, 0.3, 0.5, 0.77, 1.0])
def test_budget_is_floor_of_ratio_times_layer_size(method: str, ratio: float) -> None:
    """Rule: each Linear/Conv2d layer gets exactly int(ratio * (weight.numel() + bias.numel())) entries."""
    if method.startswith("exclusive") and ratio > 0.5:
        pytest.skip("exclusive needs ratio <= 0.5")
    model, x, y = _mixed()
    sel = select(model, method, ratio, x, y, CE)
    assert torch.equal(check_subset(sel.subset, sel.num_params), sel.subset)
    assert sel.subset.dtype == torch.int64
    sizes = {"conv1": 4 * 18 + 4, "conv2": 5 * 16, "fc1": 7 * 45, "fc2": 3 * 7 + 3}
    assert [r.name for r in sel.layers] == list(sizes)
    for rec in sel.layers:
        assert rec.params_total == sizes[rec.name]
        assert rec.params_chosen == int(ratio * sizes[rec.name])
        inside = sum(
            int(((sel.subset >= a) & (sel.subset < b)).sum()) for a, b in _layer_ranges(model, rec.name)
        )
        assert inside == rec.params_chosen
    assert sum(row["params_chosen"] for row in sel.table()) == len(sel) == sel.subset.numel()
    # BatchNorm parameters are never chosen by the per-layer methods.
    bn = _layer_ranges(model, "bn")
    assert not any(((sel.subset >= a) & (sel.subset < b)).any() for a, b in bn)


def test_budget_floor_example_and_zero_budget_layers() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(24, 10), nn.Linear(10, 1))  # sizes 250 and 11
    sel = select(model, "highest_outputs", 0.05, torch.randn(4, 24))
    assert [r.params_chosen for r in sel.layers] == [12, 0]  # int(12.5) = 12, int(0.55) = 0
    assert len(sel) == 12


def test_largest_gradient_entries_is_global_top_k() -> None:
    model, x, y = _mixed(torch.float64)
    ref = copy.deepcopy(model)
    CE(ref(x), y).backward()
    g = torch.cat([p.grad.reshape(-1) for p in ref.parameters()]).abs()
    sel = select(model, "largest_gradient_entries", 0.1, x, y, CE)
    k = int(0.1 * g.numel())
    assert len(sel) == k
    assert torch.equal(sel.subset, torch.sort(torch.topk(g, k).indices).values)
    assert sum(r.params_chosen for r in sel.layers) == k  # includes the BatchNorm record
    assert "bn" in [r.name for r in sel.layers]


# --------------------------------------------------------------------------------------- neuron-wise


class HandNet(nn.Module):
    """An own root parameter (first in flat order), a frozen layer, then a hand-set Linear(2, 4).

    The paper's leaf-module walk would place ``fc`` at offset 0; its true offset is 3.
    """

    def __init__(self) -> None:
        super().__init__()
        self.temperature = nn.Parameter(torch.ones(3))
        self.frozen = nn.Linear(2, 2)
        self.frozen.requires_grad_(False)
        self.fc = nn.Linear(2, 4)
        with torch.no_grad():
            self.frozen.weight.copy_(torch.eye(2))
            self.frozen.bias.zero_()
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]))
            self.fc.bias.copy_(torch.tensor([0.5, -3.0, 0.0, 0.1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.frozen(x)) * self.temperature.sum()


# inputs with mean (2, 3): fc's mean output is (2.5, 0, 5, 0.1); rows are 3 entries (2 weights + bias).
HAND_X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
W0, B0 = 3, 3 + 8  # flat offsets of fc.weight and fc.bias


def _rows(*neurons: int) -> set[int]:
    return {W0 + 2 * o + j for o in neurons for j in range(2)} | {B0 + o for o in neurons}


def test_hand_built_scores_and_offsets() -> None:
    sel = select(HandNet(), "highest_outputs", 0.5, HAND_X)
    (rec,) = sel.layers
    assert rec.name == "fc" and rec.weight_range == (W0, W0 + 8) and rec.bias_range == (B0, B0 + 4)
    assert rec.scores is not None
    assert torch.allclose(rec.scores, torch.tensor([2.5, 0.0, 5.0, 0.1], dtype=torch.float64))


@pytest.mark.parametrize(
    ("method", "ratio", "whole", "partial", "extra"),
    [
        ("highest_outputs", 0.5, (2, 0), None, set()),  # budget 6 = 2 rows
        ("lowest_outputs", 0.5, (1, 3), None, set()),
        ("highest_outputs", 0.75, (2, 0, 3), None, set()),  # budget 9 = 3 rows
        ("lowest_outputs", 0.75, (1, 3, 0), None, set()),
        ("highest_outputs", 0.6, (2, 0), 3, {W0 + 2 * 3}),  # budget 7: partial row = 1st weight of neuron 3
        ("lowest_outputs", 0.6, (1, 3), 0, {W0 + 0}),
        ("highest_outputs", 0.2, (), 2, {W0 + 4, W0 + 5}),  # budget 2 < one row: first two weights
        ("highest_outputs", 1.0, (2, 0, 3, 1), None, set()),
    ],
)
def test_highest_lowest_pick_expected_rows(
    method: str, ratio: float, whole: tuple[int, ...], partial: int | None, extra: set[int]
) -> None:
    model = HandNet()
    sel = select(model, method, ratio, HAND_X)
    (rec,) = sel.layers
    assert rec.neurons_chosen == whole
    assert rec.partial_neuron == partial
    assert set(sel.subset.tolist()) == _rows(*whole) | extra
    layout = param_layout(model)
    assert {layout.locate(i)[0] for i in sel.subset.tolist()} <= {"fc.weight", "fc.bias"}


def test_ties_rank_lower_index_first() -> None:
    model = nn.Linear(3, 4)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 2.0, 2.0, 1.0]))
    x = torch.ones(2, 3)
    assert select(model, "highest_outputs", 0.5, x).layers[0].neurons_chosen == (1, 2)
    assert select(model, "lowest_outputs", 0.25, x).layers[0].neurons_chosen == (0,)


def test_reused_layer_scores_average_over_all_calls() -> None:
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(3, 3)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(torch.tanh(self.fc(x)))

    torch.manual_seed(0)
    model, x = Twice(), torch.randn(5, 3)
    with torch.no_grad():
        h1 = model.fc(x)
        h2 = model.fc(torch.tanh(h1))
    (rec,) = select(model, "highest_outputs", 0.5, x).layers
    assert rec.scores is not None
    assert torch.allclose(rec.scores.float(), torch.cat([h1, h2]).mean(0).abs())


def test_exclusive_skips_top_rows() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 40), nn.Tanh(), nn.Linear(40, 10))
    x = torch.randn(8, 4)
    top = select(model, "highest_outputs", 0.3, x)
    exc = select(model, "exclusive_outputs", 0.3, x, generator=torch.Generator().manual_seed(3))
    for t, e in zip(top.layers, exc.layers, strict=True):
        assert len(e.neurons_chosen) == len(t.neurons_chosen)
        excluded = set(t.neurons_chosen)
        assert not excluded & set(e.neurons_chosen)
        assert e.partial_neuron is None or e.partial_neuron not in excluded
        assert e.params_chosen == t.params_chosen


# ------------------------------------------------------------------------------------- gradient scores


def _brute_force_output_grads(model: MixedNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """|mean dL/dy_o| for each layer, by retain_grad on a copy written out without in-place ops."""
    m = copy.deepcopy(model)
    h1 = m.conv1(x)
    h2 = m.conv2(torch.relu(m.bn(h1)))
    h3 = m.fc1(torch.relu(h2).flatten(1))
    h4 = m.fc2(torch.tanh(h3))
    for h in (h1, h2, h3, h4):
        h.retain_grad()
    CE(h4, y).backward()
    return {
        "conv1": h1.grad.mean((0, 2, 3)).abs(),
        "conv2": h2.grad.mean((0, 2, 3)).abs(),
        "fc1": h3.grad.mean(0).abs(),
        "fc2": h4.grad.mean(0).abs(),
    }


def test_gradient_scores_match_brute_force() -> None:
    model, x, y = _mixed(torch.float64)
    expected = _brute_force_output_grads(model, x, y)
    for method in ("highest_gradients", "lowest_gradients"):
        sel = select(model, method, 0.3, x, y, CE)
        for rec in sel.layers:
            assert rec.scores is not None
            assert torch.allclose(rec.scores, expected[rec.name], rtol=1e-10, atol=1e-14)
            order = torch.sort(
                expected[rec.name], descending=method.startswith("highest"), stable=True
            ).indices
            k = len(rec.neurons_chosen)
            assert rec.neurons_chosen == tuple(order[:k].tolist())


# ---------------------------------------------------------------------------------------- safety


def _no_hooks(model: nn.Module) -> bool:
    return all(
        not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks for m in model.modules()
    )


@pytest.mark.parametrize("training", [True, False])
def test_model_state_untouched(training: bool) -> None:
    model, x, y = _mixed()
    model.train(training)
    CE(model(x), y).backward()  # .grad set beforehand
    if training:
        model(x)  # move BatchNorm statistics away from their initial values
    params = [p.detach().clone() for p in model.parameters()]
    grads = [p.grad.clone() for p in model.parameters()]
    buffers = [b.clone() for b in model.buffers()]
    for method in SELECTION_METHODS:
        select(model, method, 0.2, x, y, CE)
        assert _no_hooks(model)
        assert all(m.training == training for m in model.modules())
        assert all(torch.equal(p, q) for p, q in zip(model.parameters(), params, strict=True))
        assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), grads, strict=True))
        assert all(torch.equal(b, c) for b, c in zip(model.buffers(), buffers, strict=True))
        assert all(p.requires_grad for p in model.parameters())


class Exploding(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.fc1(x)
        raise RuntimeError("boom after the hooked layer")


@pytest.mark.parametrize("method", [m for m in SELECTION_METHODS if m != "random"])
def test_no_hook_survives_an_exception(method: str) -> None:
    model = Exploding()
    model.train()
    with pytest.raises(RuntimeError, match="boom"):
        select(model, method, 0.5, torch.randn(2, 3), torch.tensor([0, 1]), CE)
    assert _no_hooks(model)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_dropout_in_training_mode_warns() -> None:
    model = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Linear(4, 2))
    with pytest.warns(UserWarning, match="dropout"):
        select(model, "highest_outputs", 0.5, torch.randn(2, 3))
    model.eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        select(model, "highest_outputs", 0.5, torch.randn(2, 3))


# ----------------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("method", ["random", "exclusive_outputs", "exclusive_gradients"])
def test_seeded_generator_is_deterministic_and_seeds_differ(method: str) -> None:
    model, x, y = _mixed()

    def run(seed: int | None) -> torch.Tensor:
        gen = None if seed is None else torch.Generator().manual_seed(seed)
        return select(model, method, 0.3, x, y, CE, generator=gen).subset

    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))
    assert torch.equal(run(None), run(0))  # None means a fresh generator seeded 0


def test_select_parameters_is_the_subset() -> None:
    model, x, y = _mixed()
    with pytest.warns(DeprecationWarning, match="select"):
        sub = select_parameters(model, "highest_gradients", 0.2, x, y, CE)
    assert torch.equal(sub, select(model, "highest_gradients", 0.2, x, y, CE).subset)
    assert torch.equal(sub, torch.unique(sub)) and sub.dtype == torch.int64


# ---------------------------------------------------------------------------------------- layers=


def test_layers_filter_by_name_type_and_container() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU()), nn.Flatten(), nn.Linear(3 * 4 * 4, 5), nn.Linear(5, 2)
    )
    x = torch.randn(4, 1, 6, 6)
    assert [r.name for r in select(model, "highest_outputs", 0.5, x, layers=["2"]).layers] == ["2"]
    assert [r.name for r in select(model, "highest_outputs", 0.5, x, layers=nn.Linear).layers] == ["2", "3"]
    assert [r.name for r in select(model, "random", 0.5, x, layers=["0", "3"]).layers] == ["0.0", "3"]
    sel = select(model, "largest_gradient_entries", 0.5, x, torch.tensor([0, 1, 0, 1]), CE, layers=["3"])
    a, b = param_layout(model).slice_of("3.weight").start, param_layout(model).slice_of("3.bias").stop
    assert len(sel) == 6 and bool(((sel.subset >= a) & (sel.subset < b)).all())
    with pytest.raises(ValueError, match=r"matches no Linear/Conv2d.*available: \['0.0', '2', '3'\]"):
        select(model, "highest_outputs", 0.5, x, layers=["fc9"])


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("ratio", [0, 0.0, -0.1, 1.5, float("nan"), True])
def test_bad_ratio(ratio: float) -> None:
    with pytest.raises(ValueError, match=r"ratio must be"):
        select(nn.Linear(2, 2), "highest_outputs", ratio, torch.randn(2, 2))


def test_error_messages() -> None:
    lin, x, y = nn.Linear(2, 2), torch.randn(3, 2), torch.tensor([0, 1, 0])
    with pytest.raises(ValueError, match=r"unknown method 'foo'; valid: highest_outputs, .*random"):
        select(lin, "foo", 0.5, x)
    for method in ("highest_gradients", "exclusive_gradients", "largest_gradient_entries"):
        with pytest.raises(ValueError, match=f"'{method}' needs targets and loss_fn"):
            select(lin, method, 0.5, x, targets=y)
    with pytest.raises(ValueError, match="no Linear or Conv2d layer with trainable weights"):
        select(nn.Sequential(nn.ReLU()), "highest_outputs", 0.5, x)
    with pytest.raises(ValueError, match="no Linear or Conv2d layer with trainable weights"):
        select(nn.Linear(2, 2).requires_grad_(False), "random", 0.5, x)
    with pytest.raises(ValueError, match="inputs is empty"):
        select(lin, "highest_outputs", 0.5, torch.empty(0, 2))
    with pytest.raises(ValueError, match="loss_fn must return a scalar"):
        select(lin, "highest_gradients", 0.5, x, y, nn.CrossEntropyLoss(reduction="none"))
    with pytest.raises(ValueError, match=r"use ratio <= 0\.5"):
        select(nn.Linear(2, 4), "exclusive_outputs", 0.9, x)
    with pytest.raises(ValueError, match="selects no parameter"):
        select(lin, "highest_outputs", 0.1, x)


def test_uncalled_and_tied_layers_are_refused() -> None:
    class Unused(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc, self.spare = nn.Linear(2, 2), nn.Linear(2, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(x)

    x = torch.randn(3, 2)
    with pytest.raises(ValueError, match=r"\['spare'\] were not called"):
        select(Unused(), "highest_outputs", 0.5, x)
    assert len(select(Unused(), "highest_outputs", 0.5, x, layers=["fc"])) == 3
    a, b = nn.Linear(2, 2), nn.Linear(2, 2)
    b.weight = a.weight
    with pytest.raises(ValueError, match="share a parameter"):
        select(nn.Sequential(a, b), "highest_outputs", 0.5, x)
