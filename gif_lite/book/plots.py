"""Figures for the book: which neurons a parameter selection picked, layer by layer.

Used by: selection.

:func:`neuron_fractions` turns a :class:`~gif_lite.selection.Selection` into, per layer, the
fraction of each neuron's row (its fan-in weights plus its bias) that the subset ``P`` contains:
1 for a neuron taken whole, between 0 and 1 for the partial row (or for ``random``'s scattered
entries), 0 for a neuron left fixed.  :func:`plot_selection` draws one panel per layer: a bar per
neuron, its height the neuron's score (or, for methods without scores, the fraction chosen), its
colour the fraction chosen.
"""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..selection import LayerSelection, Selection

__all__ = ["neuron_fractions", "plot_selection"]


def _layer_fractions(layer: LayerSelection, chosen: torch.Tensor) -> torch.Tensor:
    """Fraction of each neuron's row (fan-in weights + bias) that lies in the subset."""
    neurons = layer.neurons_total
    if neurons == 0:
        return torch.zeros(0, dtype=torch.float64)
    w0, w1 = layer.weight_range
    fan_in = (w1 - w0) // neurons
    counts = chosen[w0:w1].reshape(neurons, fan_in).sum(dim=1).double()
    row = fan_in
    if layer.bias_range is not None:
        b0, b1 = layer.bias_range
        if b1 - b0 == neurons:
            counts += chosen[b0:b1].double()
            row += 1
    return counts / row


def neuron_fractions(selection: Selection) -> dict[str, torch.Tensor]:
    """Per layer (name -> tensor of length ``neurons_total``): the fraction of each neuron's row in ``P``.

    Layers without neurons (e.g. modules other than Linear/Conv2d in ``largest_gradient_entries``'
    breakdown) are left out.
    """
    chosen = torch.zeros(selection.num_params, dtype=torch.bool)
    chosen[selection.subset] = True
    return {
        layer.name: _layer_fractions(layer, chosen) for layer in selection.layers if layer.neurons_total > 0
    }


def plot_selection(
    selection: Selection,
    axes: list[Axes] | None = None,
    cmap: str = "viridis",
    title: str | None = None,
) -> Figure:
    """One bar chart per layer: a bar per neuron (height: score, or fraction chosen when the method has
    no scores), coloured by the fraction of the neuron's row in ``P`` (dark: none, bright: all).

    Pass ``axes`` (one per layer with neurons) to draw into an existing figure.
    """
    fractions = neuron_fractions(selection)
    layers = [layer for layer in selection.layers if layer.name in fractions]
    if axes is None:
        _, made = plt.subplots(
            1, len(layers), figsize=(2.8 * len(layers) + 1.0, 3.0), squeeze=False, layout="constrained"
        )
        axes = list(made[0])
    elif len(axes) != len(layers):
        raise ValueError(f"need one axis per layer with neurons ({len(layers)}), got {len(axes)}")
    colour = plt.get_cmap(cmap)
    norm = Normalize(0.0, 1.0)
    for ax, layer in zip(axes, layers, strict=True):
        frac = fractions[layer.name]
        has_scores = layer.scores is not None
        heights: Any = (layer.scores if has_scores else frac).detach().double().numpy()  # type: ignore[union-attr]
        ax.bar(
            range(len(heights)), heights, color=colour(norm(frac.numpy())), edgecolor="black", linewidth=0.3
        )
        detail = f"{layer.params_chosen}/{layer.params_total} entries"
        if has_scores:
            detail += f": {len(layer.neurons_chosen)} whole rows"
            if layer.partial_neuron is not None:
                detail += f" + {layer.partial_count} w."
        ax.set_title(f"{layer.name} ({layer.kind})\n{detail}", fontsize=9)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("neuron")
        ax.set_ylabel("score" if has_scores else "fraction of row in P")
    fig_out = axes[0].figure
    assert isinstance(fig_out, Figure)
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colour)
    fig_out.colorbar(mappable, ax=axes, label="fraction of row in P", shrink=0.9)
    fig_out.suptitle(title or f"{selection.method}, ratio {selection.ratio:g}: |P| = {len(selection)}")
    return fig_out
