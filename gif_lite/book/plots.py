"""Figures for the book: which neurons a parameter selection picked, layer by layer.

Used by: selection.

:func:`neuron_fractions` turns a :class:`~gif_lite.selection.Selection` into, per layer, the
fraction of each neuron's row (its fan-in weights plus its bias) that the subset ``P`` contains:
1 for a neuron taken whole, between 0 and 1 for the partial row (or for ``random``'s scattered
entries), 0 for a neuron left fixed.  :func:`plot_selection` draws one panel per layer: a bar per
neuron, its height the neuron's score (or, for methods without scores, the fraction chosen), its
colour the fraction chosen.  :func:`plot_selection_grid` draws small multiples, one compact panel per
(method, ratio): every neuron of every layer side by side, its bar the fraction of its row in ``P``; it
is the static stand-in for the selection chapter's interactive explorer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.axes import Axes
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..selection import LayerSelection, Selection

__all__ = ["neuron_fractions", "plot_selection", "plot_selection_grid"]


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
    colorbar: bool = True,
) -> Figure:
    """One bar chart per layer: a bar per neuron (height: score, or fraction chosen when the method has
    no scores), coloured by the fraction of the neuron's row in ``P`` (dark: none, bright: all).

    Pass ``axes`` (one per layer with neurons) to draw into an existing figure; ``colorbar=False`` leaves
    out the colour bar and the figure title (for several selections in one figure).
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
    if not colorbar:
        return fig_out
    mappable = plt.cm.ScalarMappable(norm=norm, cmap=colour)
    fig_out.colorbar(mappable, ax=axes, label="fraction of row in P", shrink=0.9)
    fig_out.suptitle(title or f"{selection.method}, ratio {selection.ratio:g}: |P| = {len(selection)}")
    return fig_out


def plot_selection_grid(
    selections: Mapping[tuple[str, float], Selection],
    methods: Sequence[str] | None = None,
    ratios: Sequence[float] | None = None,
    cmap: str = "viridis",
) -> Figure:
    """Small multiples: a row per method, a column per ratio, one panel per ``(method, ratio)``.

    A panel shows every neuron of every layer left to right (layers separated by dotted lines and named
    in the top row), each bar the fraction of the neuron's row in ``P`` (height and colour, 0 to 1).
    ``methods`` and ``ratios`` fix the order (default: order of first appearance in ``selections``).
    """
    if not selections:
        raise ValueError("selections is empty: pass {(method, ratio): Selection}")
    methods = list(methods) if methods is not None else list(dict.fromkeys(m for m, _ in selections))
    ratios = list(ratios) if ratios is not None else list(dict.fromkeys(r for _, r in selections))
    missing = [(m, r) for m in methods for r in ratios if (m, r) not in selections]
    if missing:
        raise ValueError(f"selections lacks {missing[:3]}: need one Selection per (method, ratio)")
    fig, grid = plt.subplots(
        len(methods), len(ratios), figsize=(2.9 * len(ratios) + 1.2, 1.25 * len(methods) + 0.8),
        squeeze=False, sharex=True, sharey=True, layout="constrained",
    )  # fmt: skip
    colour = plt.get_cmap(cmap)
    for i, method in enumerate(methods):
        for j, ratio in enumerate(ratios):
            ax = grid[i][j]
            fractions = neuron_fractions(selections[(method, ratio)])
            values = torch.cat(list(fractions.values())).numpy()
            ax.bar(range(len(values)), values, width=1.0, color=colour(values), edgecolor="none")
            start = 0
            for name, frac in fractions.items():
                if start > 0:
                    ax.axvline(start - 0.5, color="gray", lw=0.6, ls=":")
                if i == 0:
                    ax.text(start + len(frac) / 2 - 0.5, 1.08, name, ha="center", fontsize=6)
                start += len(frac)
            ax.set_ylim(0, 1.2)
            ax.set_yticks([0, 1])
            ax.tick_params(labelsize=7)
            if i == 0:
                ax.set_title(f"ratio {ratio:g}", fontsize=9, pad=12)
            if j == 0:
                ax.set_ylabel(method.replace("_", "\n"), fontsize=8)
            if i == len(methods) - 1:
                ax.set_xlabel("neuron (all layers)", fontsize=8)
    return fig
