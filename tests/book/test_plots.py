"""Smoke tests of gif_lite.book.plots (matplotlib Agg): fractions per neuron and one panel per layer."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest
import torch
from torch import nn

from gif_lite.book.models import TinyCNN
from gif_lite.book.plots import neuron_fractions, plot_selection
from gif_lite.selection import select

CE = nn.CrossEntropyLoss()


@pytest.fixture
def cnn() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = TinyCNN(channels=(4, 8, 8)).eval()
    return model, torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6,))


@pytest.mark.parametrize("method", ["highest_gradients", "lowest_outputs", "exclusive_gradients", "random"])
@pytest.mark.parametrize("ratio", [0.05, 0.3])
def test_fractions_account_for_every_selected_entry(cnn, method, ratio) -> None:
    model, x, y = cnn
    sel = select(model, method, ratio, x, y, CE)
    fractions = neuron_fractions(sel)
    assert list(fractions) == [layer.name for layer in sel.layers]
    for layer in sel.layers:
        frac = fractions[layer.name]
        assert frac.shape == (layer.neurons_total,)
        assert bool(((frac >= 0) & (frac <= 1)).all())
        row = layer.params_total // layer.neurons_total
        assert round(float(frac.sum()) * row) == layer.params_chosen
        for o in layer.neurons_chosen:
            assert float(frac[o]) == 1.0
        if layer.partial_neuron is not None:
            assert float(frac[layer.partial_neuron]) == pytest.approx(layer.partial_count / row)


@pytest.mark.parametrize("method", ["highest_outputs", "random", "largest_gradient_entries"])
def test_plot_selection_draws_one_panel_per_layer(cnn, method) -> None:
    model, x, y = cnn
    sel = select(model, method, 0.2, x, y, CE)
    fig = plot_selection(sel)
    panels = [ax for ax in fig.axes if ax.get_xlabel() == "neuron"]
    assert len(panels) == len(neuron_fractions(sel)) == 4
    assert all(len(ax.patches) > 0 for ax in panels)
    plt.close(fig)


def test_plot_selection_into_given_axes_and_wrong_count(cnn) -> None:
    model, x, y = cnn
    sel = select(model, "highest_gradients", 0.1, x, y, CE)
    fig, axes = plt.subplots(1, 4)
    assert plot_selection(sel, axes=list(axes)) is fig
    with pytest.raises(ValueError, match="one axis per layer"):
        plot_selection(sel, axes=list(axes[:2]))
    plt.close("all")


def test_plot_selection_grid_one_panel_per_method_and_ratio(cnn) -> None:
    from gif_lite.book.plots import plot_selection_grid

    model, x, y = cnn
    methods, ratios = ("highest_gradients", "random"), (0.05, 0.3)
    sels = {(m, r): select(model, m, r, x, y, CE) for m in methods for r in ratios}
    fig = plot_selection_grid(sels)
    assert len(fig.axes) == 4
    neurons = sum(len(f) for f in neuron_fractions(sels[methods[0], ratios[0]]).values())
    for ax in fig.axes:
        heights = [p.get_height() for p in ax.patches]
        assert len(heights) == neurons and all(0 <= h <= 1 for h in heights)
    plt.close(fig)
    with pytest.raises(ValueError, match="lacks"):
        plot_selection_grid(sels, ratios=(0.05, 0.5))
    bare = plot_selection(sels[methods[0], ratios[0]], colorbar=False)
    assert not bare.get_suptitle() and len(bare.axes) == 4
    plt.close(bare)
