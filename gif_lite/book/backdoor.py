"""Backdoor poisoning for the label-change experiment (the GIF paper's Table 3).

Used by: backdoor.

A *backdoor* (BadNets-style) attack stamps a small trigger on a fraction of the training images and
sets their label to a ``target`` class.  A model trained on the poisoned set classifies clean images
well but sends any triggered image to ``target``.  Undoing the attack is a *relabelling* task: give
the poisoned examples back their true labels and ask what retraining would do, which influence
estimators predict from the trained model (:func:`gif_lite.relabel_problem`).

* :func:`add_trigger` stamps a ``size x size`` checkerboard (``value`` on the squares whose row +
  column is even, 0 on the others) into the bottom-right corner of every image.
* :func:`poison` chooses a seeded fraction of the training examples among those *not* already of
  class ``target``, stamps the trigger on them and relabels them ``target``; it returns the
  poisoned data, the chosen indices and their true labels.
* :func:`attack_success_rate` is the share of triggered test images of the other classes that the
  model classifies as ``target``; :func:`relabel_scores` gives it with the clean accuracy, their
  difference (the book's step criterion) and the accuracy on the poisoned images, in one pass.
* ``gif_lite.second_order_relabel_influence`` is the second-order (in the group's share ``p``) term of
  the Newton step for relabelling, the relabelling analogue of Basu et al.'s group influence.
* The paper-scale setting (MNIST, the paper's TinyNet) is ``gif_lite.book.configs.paper_config("mnist-tinynet")``.
* :func:`paper_scores` and :func:`paper_step_search` are the paper's own Table 3 protocol (scores on
  *training* images, a step grown in fixed increments and picked on those same images), reproduced
  so that the chapter can show it beside its own (test images, step picked on validation).  The
  paper's notebook is ``scripts/table3-backdoor_relabeling.ipynb`` of github.com/hslyu/GIF at
  c0b2c0e; cells are counted from 0 in file order.
* :func:`gif_family` and :func:`paper_gif` compute GIF directions from the dense block ``H[:,P]`` with
  the core's solvers: LSQR stopped early, Tikhonov-regularised least squares, the exact least-squares
  solution (``gif_lite.solvers.direct``), and the paper's Landweber iteration.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from .. import solvers as S
from ..checks import GifLiteError
from ..params import keep_mask
from ..train import predict
from ..types import Data
from .experiments import f1
from .experiments import paper_step_search as _paper_step_search

__all__ = [
    "add_trigger",
    "attack_success_rate",
    "f1",
    "gif_family",
    "paper_gif",
    "paper_scores",
    "paper_step_search",
    "poison",
    "relabel_scores",
    "trigger_pattern",
]


def trigger_pattern(size: int = 4, value: float = 1.0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The ``size x size`` checkerboard: ``value`` where row + column is even, 0 elsewhere."""
    if size < 1:
        raise GifLiteError(f"trigger size must be at least 1, got {size}")
    rows = torch.arange(size).unsqueeze(1)
    cols = torch.arange(size).unsqueeze(0)
    return ((rows + cols) % 2 == 0).to(dtype) * value


def add_trigger(images: torch.Tensor, size: int = 4, value: float = 1.0) -> torch.Tensor:
    """A copy of ``images`` (``... x H x W``, e.g. N x C x H x W) with the checkerboard in the bottom-right corner.

    Every channel of every image gets the same pattern; ``images`` is left unchanged.
    """
    if images.dim() < 2:
        raise GifLiteError(f"images must have at least 2 dimensions (H x W), got shape {tuple(images.shape)}")
    height, width = images.shape[-2:]
    if size > min(height, width):
        raise GifLiteError(f"a {size}x{size} trigger does not fit into {height}x{width} images")
    out = images.clone()
    out[..., height - size :, width - size :] = trigger_pattern(size, value, images.dtype)
    return out


def poison(
    data: Data,
    fraction: float,
    target: int,
    generator: torch.Generator | None = None,
    *,
    size: int = 4,
    value: float = 1.0,
) -> tuple[Data, torch.Tensor, torch.Tensor]:
    """Stamp the trigger on ``round(fraction * n)`` training examples and relabel them ``target``.

    The examples are drawn uniformly without replacement (with ``generator``, seeded 0 when None)
    among those whose label is not ``target``.  Returns ``((inputs, targets), indices, true_labels)``:
    new tensors with the poisoned examples changed, the sorted indices of those examples, and their
    original labels (``true_labels[i]`` belongs to ``indices[i]``).  ``data`` is left unchanged.
    """
    inputs, targets = data
    if isinstance(target, bool) or not isinstance(target, int) or target < 0:
        raise GifLiteError(f"target must be a class label (an int >= 0), got {target!r}")
    n = len(targets)
    if not 0.0 < fraction < 1.0:
        raise GifLiteError(f"fraction must lie in (0, 1), got {fraction}")
    candidates = (targets != target).nonzero().flatten()
    count = round(fraction * n)
    if count < 1:
        raise GifLiteError(f"fraction {fraction} of {n} examples poisons nothing")
    if count > candidates.numel():
        raise GifLiteError(
            f"cannot poison {count} examples: only {candidates.numel()} are not of class {target}"
        )
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    chosen = candidates[torch.randperm(candidates.numel(), generator=gen)[:count]]
    indices = chosen.sort().values
    true_labels = targets[indices].clone()
    new_inputs, new_targets = inputs.clone(), targets.clone()
    new_inputs[indices] = add_trigger(inputs[indices], size, value)
    new_targets[indices] = target
    return (new_inputs, new_targets), indices, true_labels


@torch.no_grad()
def attack_success_rate(
    model: nn.Module,
    clean_test: Data,
    target: int,
    *,
    size: int = 4,
    value: float = 1.0,
    batch_size: int = 2048,
) -> float:
    """Share of the test images not of class ``target`` that, with the trigger stamped, are classified ``target``.

    The model is evaluated in eval mode and its mode is restored afterwards.
    """
    inputs, targets = clean_test
    others = inputs[targets != target]
    if others.shape[0] == 0:
        raise GifLiteError(f"the test set has no image outside class {target}")
    preds = predict(model, add_trigger(others, size, value), batch_size=batch_size).argmax(dim=1)
    return float((preds == target).double().mean())


# --------------------------------------------------------------------------------------------------
# the paper's own Table 3 protocol


def paper_scores(
    model: nn.Module, train: Data, group: torch.Tensor, true_labels: torch.Tensor, target: int
) -> dict[str, float]:
    """The paper's Table 3 metrics, all on the poisoned *training* set ``train`` (cell 5, lines 128-131).

    ``clean``: accuracy on the training images outside ``group`` (never poisoned); ``relabel``:
    accuracy on the poisoned images against ``true_labels``; ``corrupt``: accuracy on the poisoned
    images against the ``target`` label (the share still sent to the target); ``f1``: the paper's
    step criterion, ``f1(relabel, clean)``.  One forward pass over ``train``; the model is evaluated
    in eval mode, its mode restored.
    """
    inputs, labels = train
    if true_labels.shape[0] != group.numel():
        raise GifLiteError(f"true_labels has {true_labels.shape[0]} entries for a group of {group.numel()}")
    preds = predict(model, inputs).argmax(dim=1)
    labels, group = labels.to(preds.device), group.to(preds.device)
    keep = keep_mask(group, len(labels), preds.device)
    clean = float((preds[keep] == labels[keep]).double().mean())
    relabel = float((preds[group] == true_labels.to(preds.device)).double().mean())
    corrupt = float((preds[group] == target).double().mean())
    return {"clean": clean, "relabel": relabel, "corrupt": corrupt, "f1": f1(relabel, clean)}


@torch.no_grad()
def relabel_scores(
    model: nn.Module,
    clean: Data,
    target: int,
    poisoned: Data | None = None,
    *,
    size: int = 4,
    value: float = 1.0,
) -> dict[str, float]:
    """The book's scores of a (corrected) model, in one forward pass.

    ``clean``: accuracy on the clean split ``clean`` (validation or test images); ``ASR``: the
    :func:`attack_success_rate` on the same split; ``score``: ``clean - ASR``, the book's step
    criterion (rewards removing the backdoor, penalises breaking the classifier); and, when
    ``poisoned = (inputs, true_labels)`` is given, ``relabel``: the accuracy on those poisoned
    images against their true labels.  The model is evaluated in eval mode, its mode restored.
    """
    inputs, labels = clean
    others = inputs[labels != target]
    if others.shape[0] == 0:
        raise GifLiteError(f"the split has no image outside class {target}")
    parts = [inputs, add_trigger(others, size, value)]
    if poisoned is not None:
        parts.append(poisoned[0])
    preds = predict(model, torch.cat(parts)).argmax(dim=1)
    n, n_others = inputs.shape[0], others.shape[0]
    acc = float((preds[:n] == labels.to(preds.device)).double().mean())
    asr = float((preds[n : n + n_others] == target).double().mean())
    out = {"clean": acc, "ASR": asr, "score": acc - asr}
    if poisoned is not None:
        out["relabel"] = float((preds[n + n_others :] == poisoned[1].to(preds.device)).double().mean())
    return out


#: The paper's step search with its Table 3 settings (cell 5, lines 116 and 147): the update, scaled to
#: norm ``increment`` (0.3 there), is added again and again until ``patience = 10`` additions bring no
#: better score or 300 are made; no finer or boosted steps and no accuracy stops.  Called as
#: ``paper_step_search(model, delta, subset, score_fn, increment)``, ``score_fn`` returning the F1
#: (:func:`paper_scores`); returns the best step length, its score and the path (one entry per model
#: scored).  One walk, :func:`gif_lite.book.experiments.paper_step_search`, with other settings.
paper_step_search = partial(
    _paper_step_search,
    max_steps=300,
    patience=10,
    fine_above=None,
    stop_removed=None,
    stop_rest=None,
    boost_after=None,
)


# --------------------------------------------------------------------------------------------------
# GIF directions from the dense block H[:, P]


def _check_block(h_p: torch.Tensor, g: torch.Tensor) -> None:
    if h_p.dim() != 2 or g.dim() != 1 or h_p.shape[0] != g.shape[0]:
        raise GifLiteError(
            f"h_p must be the k x |P| block H[:, P] and g a vector of length k; got shapes "
            f"{tuple(h_p.shape)} and {tuple(g.shape)}"
        )


def gif_family(
    h_p: torch.Tensor,
    g: torch.Tensor,
    iterations: Sequence[int] = (1, 2, 3, 5, 10, 20, 50),
    tikhonov: Sequence[float] = (),
) -> dict[str, torch.Tensor]:
    """Regularised GIF directions ``x ~ argmin ||H[:,P] x - g||`` from the dense block ``h_p = H[:,P]``.

    * ``"LSQR-k"``: LSQR stopped after ``k`` iterations (from 0; ``k = 1`` is parallel to
      ``H[P,:] g``, and ``k -> |P|`` reaches the least-squares solution);
    * ``"Tikhonov-r"``: ``argmin ||H[:,P] x - g||^2 + (r sigma_max)^2 ||x||^2``, with ``r`` relative to
      the largest singular value of ``H[:,P]``: the least-squares GIF of ``[H[:,P]; gamma I] x = [g; 0]``
      (:func:`gif_lite.book.experiments.tikhonov_gif` solves the same system matrix-free);
    * ``"exact"``: the minimum-norm least-squares solution ``pinv(H[:,P]) g``.

    Every member is a core solve on the block: :func:`gif_lite.solvers.lsqr` and, for the last two,
    the dense oracle :func:`gif_lite.solvers.direct` (least squares).
    """
    _check_block(h_p, g)
    if any(k < 1 for k in iterations) or any(not r > 0 for r in tikhonov):
        raise GifLiteError(f"iterations must be >= 1 and tikhonov > 0; got {iterations} and {tikhonov}")
    out: dict[str, torch.Tensor] = {}
    size = h_p.shape[1]
    eye, zeros = torch.eye(size, dtype=h_p.dtype, device=h_p.device), g.new_zeros(size)
    with warnings.catch_warnings():  # stopping early is the point; direct's residual is rounding
        warnings.simplefilter("ignore", S.ConvergenceWarning)
        for k in iterations:
            out[f"LSQR-{k}"] = S.lsqr(lambda x: h_p @ x, lambda y: h_p.T @ y, g, tol=1e-12, max_iter=k).x
        sigma_max = float(torch.linalg.matrix_norm(h_p, ord=2)) if tikhonov else 0.0
        for r in tikhonov:
            stacked = torch.cat([h_p, (r * sigma_max) * eye])
            out[f"Tikhonov-{r:g}"] = S.direct(stacked, torch.cat([g, zeros]), least_squares=True).x
        out["exact"] = S.direct(h_p, g, least_squares=True).x
    return out


def paper_gif(
    h_p: torch.Tensor, g: torch.Tensor, max_iter: int = 1000, tol: float = 1e-9, normalizer_step: float = 5.0
) -> S.SolveResult:
    """The paper's GIF iteration (:func:`gif_lite.solvers.landweber`) on the dense block ``h_p = H[:,P]``.

    The defaults are its Table 3 settings (cell 5, lines 2-4): 1000 steps, ``tol = 1e-9`` (its
    step-length test, ``||x_{k+1} - x_k|| <= tol sqrt(|P|)``), the normalizer raised by 5 on every
    restart.  The iteration is linear in the operator, so this is the matrix-free
    ``generalized_influence(..., solver="landweber")`` up to rounding, at the cost of ``|P|`` HVPs
    instead of ``2 max_iter``.
    """
    _check_block(h_p, g)
    with warnings.catch_warnings():  # it rarely meets a residual tolerance in 1000 steps
        warnings.simplefilter("ignore", S.ConvergenceWarning)
        return S.landweber(
            lambda x: h_p @ x, lambda y: h_p.T @ y, g, tol=tol, max_iter=max_iter, step_tol=tol,
            normalizer_step=normalizer_step,
        )  # fmt: skip
