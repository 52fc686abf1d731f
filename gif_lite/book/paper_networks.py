"""The measurements of ``bench/paper_networks.py`` on the paper's own networks, read for the book.

Used by: gif.

The benchmark writes one CSV per part (``tinynet``, ``figure3``, ``resnet``, ``speed``) and a JSON
beside it with the command, the machine and the wall time, into ``data/paper_networks``.  The
chapter reads them with :func:`load`, tabulates TinyNet with :func:`tinynet_table` and draws every
part with :func:`plot_paper_networks`.  Nothing here computes: the numbers are the committed files.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

__all__ = [
    "PARTS",
    "extrapolate",
    "load",
    "plot_paper_networks",
    "results_dir",
    "tinynet_table",
]

PARTS = ("tinynet", "figure3", "resnet", "speed")
_FOLDER = "paper_networks"


def results_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the results: ``root``, $GIF_LITE_DATA_DIR, the checkout's data/, ./data, ../data."""
    if root is not None:
        return Path(root)
    dirs = [Path(d) for d in [os.environ.get("GIF_LITE_DATA_DIR")] if d]
    dirs += [Path(__file__).resolve().parents[2] / "data", Path.cwd() / "data", Path.cwd().parent / "data"]
    for d in dirs:
        if (d / _FOLDER / "tinynet.csv").is_file():
            return d / _FOLDER
    raise FileNotFoundError(
        f"no {_FOLDER}/tinynet.csv under {', '.join(map(str, dirs))}: run "
        "`python bench/paper_networks.py` or set GIF_LITE_DATA_DIR to the folder that holds it"
    )


def load(part: str, root: str | os.PathLike[str] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """One part's rows and its record (``command``, ``machine``, ``threads``, ``wall_seconds``)."""
    if part not in PARTS:
        raise ValueError(f"unknown part {part!r}; valid: {', '.join(PARTS)}")
    folder = results_dir(root)
    return pd.read_csv(folder / f"{part}.csv"), json.loads((folder / f"{part}.json").read_text())


def tinynet_table(df: pd.DataFrame) -> pd.DataFrame:
    """TinyNet's GIF solves, one row per ratio and method: cost, misfit, cosines, the paper's scores
    (in %), after the two reference networks."""
    cols = {
        "ratio": "ratio", "method": "method", "hvps": "HVPs", "misfit": "misfit",
        "cos_lsqr": "cos with LSQR", "cos_hpg": "cos with H[P,:]g",
        "clean": "clean", "relabel": "relabel", "corrupt": "corrupt",
    }  # fmt: skip
    out = df[list(cols)].rename(columns=cols).copy()
    out["ratio"] = [("" if pd.isna(r) else f"{float(r):.0%}") for r in df["ratio"]]
    for c in ("clean", "relabel", "corrupt"):
        out[c] = (100 * out[c]).round(1)
    for c in ("misfit", "cos with LSQR", "cos with H[P,:]g"):
        out[c] = out[c].round(2)
    out["HVPs"] = [("" if pd.isna(h) else str(int(h))) for h in out["HVPs"]]
    return out.fillna("")


def extrapolate(x: np.ndarray, y: np.ndarray, to: float) -> tuple[np.ndarray, np.ndarray]:
    """A straight line through ``(log2 x, y)`` by least squares, drawn from ``x``'s last point to ``to``:
    an extrapolation, to be labelled as one."""
    slope, intercept = np.polyfit(np.log2(x), y, 1)
    xs = np.array([float(x[-1]), float(to)])
    return xs, intercept + slope * np.log2(xs)


def plot_paper_networks(
    tiny: pd.DataFrame, fig3: pd.DataFrame, resnet: pd.DataFrame, full_width: int = 64
) -> Figure:
    """Three panels: TinyNet's cosine with the LSQR solution against Landweber steps (one line per
    ratio); ResNet18's against width, extrapolated (dashed, labelled) to ``full_width``; Figure 3's
    negative share among the largest-magnitude eigenvalues against alpha."""
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    ax = axes[0]
    lw = tiny[tiny["method"].astype(str).str.startswith("Landweber")].copy()
    lw["steps"] = lw["method"].str.split().str[-1].astype(int)
    for ratio, part in lw.groupby("ratio"):
        part = part.sort_values("steps")
        ax.plot(part["steps"], part["cos_lsqr"], "o-", label=f"|P| = {float(ratio):.0%}")
    steps = sorted(lw["steps"].unique())
    ax.set(xscale="log", xlabel="Landweber steps", ylabel="cosine with LSQR's GIF", ylim=(0, 1.02))
    ax.set_xticks(steps, [str(k) for k in steps])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("TinyNet (398,090 parameters)")
    ax.legend(fontsize=8)
    ax = axes[1]
    sol = resnet[resnet["method"].astype(str).str.startswith("Landweber")].sort_values("width")
    widths = sol["width"].to_numpy(dtype=float)
    ax.plot(widths, sol["cos_lsqr"], "o-", label="30 Landweber steps: cos with LSQR")
    ax.plot(widths, sol["cos_hpg"], "s-", label="30 Landweber steps: cos with H[P,:]g")
    if len(widths) >= 2:
        for col, style in (("cos_lsqr", "C0--"), ("cos_hpg", "C1--")):
            xs, ys = extrapolate(widths, sol[col].to_numpy(dtype=float), full_width)
            ax.plot(xs, np.clip(ys, -1, 1), style, alpha=0.6)
        ax.annotate(
            "dashed: extrapolation", (math.sqrt(widths[-1] * full_width), 0.05), ha="center", fontsize=8
        )
    ax.set(xscale="log", xlabel="ResNet18 width (64 = the paper's)", ylim=(0, 1.02))
    ax.set_xticks([*widths, full_width], [str(int(w)) for w in [*widths, full_width]])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("ResNet18, Table 2 removal, |P| = 10%")
    ax.legend(fontsize=8)
    ax = axes[2]
    for loss, part in fig3.groupby("loss"):
        means = part.groupby("alpha")["negative_top"].mean()
        ax.plot(means.index, means.to_numpy(), "o-", ms=3, label=str(loss))
    ax.set(xlabel="alpha (regulariser alpha ||theta|| / 2)", ylabel="negative share")
    ax.set_title("Figure 3 network: negatives among top 500 |mu|")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
