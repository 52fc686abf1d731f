"""The paper-scale settings (``SCALE = "paper"``), one registry for every chapter of Part II, and every
training recipe of the book.

The recipes (:class:`gif_lite.train.Recipe`) live here and nowhere else: :data:`PAPER_RECIPE` (the paper's
``scripts/train.py``), :data:`TABLE3_RECIPE` (its Table 3 notebook), :data:`BOOK_RECIPE` (the book's for
the paper-scale CNNs), :data:`TINYCNN_RECIPE` (TinyCNN on the embedded set) and :data:`FIT_RECIPE` (the
small chapters' :func:`gif_lite.book.experiments.fit`).

Used by: class_removal, selection_study, backdoor, inside (their ``SCALE = "paper"`` branches).

The chapters class removal (Table 2), selection study (Table 1), backdoor (Table 3) and inside
(Figures 4-5) read it.  Each :class:`PaperConfig` holds the data set, the model, the paper's table, two training
recipes, the sizes of the experiment and, for Table 3, the backdoor attack.  **Every paper setting is
read from the protocol ledger** (:mod:`gif_lite.book.ledger`, ``paper_protocol.json``, rendered as the
appendix "The paper's protocol, line by line"), which cites the paper's code line by line; a test holds
the two together.  ``protocol`` names the ledger table a configuration comes from.

* ``paper_recipe``: the recipe of the paper's code (``scripts/train.py`` and ``scripts/config.py``): SGD,
  lr 0.1, momentum 0.9, weight decay 5e-4, batch 512, at most 200 epochs with ``StepLR(30, 0.1)``
  (cosine annealing over 200 epochs for VGG); the Table 3 notebook trains TinyNet for 25 epochs with
  ``MultiStepLR`` at 50% and 75%.  Hours on a GPU.
* ``recipe``: the book's cheaper recipe (Adam, 20 epochs), what the chapters train with at paper scale.

``hessian_batch``, ``removed_examples``, ``draws``, ``landweber`` (steps, normaliser increment, tol) and
``increment`` (the norm of the renormalised update in the paper's step search) are the paper's.  What
cannot run as the paper ran it is said in ``limits`` (a chapter prints it).  The device is not part of a
setting: chapters pick it with :func:`gif_lite.book.runtime.pick_device`.

**Smoke runs.**  With the environment variable ``GIF_BOOK_SMOKE=1`` (or ``paper_config(name,
smoke=True)``) every setting shrinks to seconds of training on a CPU while keeping its code path: the same
architecture at width 8, the paper's optimiser and schedule for one epoch, the embedded Fashion-MNIST
(padded and channel-repeated to the real set's shape) in place of the download, 256 training images and
a 32-image Hessian.  CI executes each chapter's ``SCALE = "paper"`` branch this way, so an error that a
reader on a GPU would meet is caught before anyone pays for one.  A network trained for one epoch is
far from a minimum: its curvature is large (``sigma_max(H[:,P])`` about 3,400 for ResNet18 at 10%), so
the paper's Landweber iteration, whose normaliser starts at 1 and rises by 3, restarts about 800 times
before it converges.  :func:`gif_lite.solvers.landweber` foresees those restarts instead of running
them, so the smoke runs keep the paper's iteration and its restart rule unchanged (class removal's
smoke run takes about two minutes on one CPU core).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from ..checks import GifLiteError, GifLiteTypeError
from ..train import Recipe
from . import ledger

__all__ = [
    "BOOK_RECIPE",
    "FIT_RECIPE",
    "PAPER_CONFIGS",
    "PAPER_RECIPE",
    "SMOKE_ENV",
    "TABLE3_RECIPE",
    "TINYCNN_RECIPE",
    "PaperConfig",
    "paper_config",
    "smoke_requested",
]

#: The environment variable that turns every paper-scale setting into its smoke variant.
SMOKE_ENV = "GIF_BOOK_SMOKE"
#: Image shapes of the online sets, which the embedded stand-in is adapted to in smoke runs.
_SHAPES: dict[str, tuple[int, int, int]] = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}

_OPT = ledger.value("training", "optimizer")
#: The training recipe of scripts/train.py for ResNet18 (VGG11 anneals with a cosine instead), from the ledger.
PAPER_RECIPE = Recipe(
    epochs=ledger.value("training", "epochs"),
    batch_size=ledger.value("training", "batch_size"),
    lr=ledger.value("training", "lr"),
    optimizer=_OPT["name"],
    momentum=_OPT["momentum"],
    weight_decay=_OPT["weight_decay"],
    schedule=ledger.value("training", "schedule")["resnet18"],
)
_T3 = ledger.value("table3", "recipe")
#: The Table 3 notebook's recipe for TinyNet: 25 epochs, ``MultiStepLR`` at 50% and 75%, from the ledger.
TABLE3_RECIPE = Recipe(
    epochs=_T3["epochs"],
    batch_size=_T3["batch_size"],
    lr=_T3["lr"],
    optimizer=_T3["optimizer"],
    momentum=_T3["momentum"],
    weight_decay=_T3["weight_decay"],
    schedule=_T3["schedule"],
)
#: The book's recipe for the paper-scale CNNs: Adam, 20 epochs (minutes on a GPU).
BOOK_RECIPE = Recipe(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", weight_decay=1e-4)
#: TinyCNN on fashion-mnist-small: about 0.87 test accuracy in 20 epochs, seconds on 2 CPU cores.
TINYCNN_RECIPE = Recipe(
    epochs=20, batch_size=128, lr=5e-3, optimizer="adam", schedule="cosine", weight_decay=1e-4
)
#: The small chapters' recipe (:func:`gif_lite.book.experiments.fit`): Adam, cosine schedule, 10 epochs.
FIT_RECIPE = Recipe(
    epochs=10, batch_size=128, lr=1e-2, optimizer="adam", schedule="cosine", weight_decay=1e-3
)


@dataclass(frozen=True)
class PaperConfig:
    """One paper-scale setting.

    ``data``/``model``/``model_kwargs`` name the data set and the model (:func:`~gif_lite.book.models.build_model`);
    ``table`` the paper's table it reproduces; ``paper_recipe`` how the paper's code trained it,
    ``recipe`` how this book trains it (cheaper; see the module docstring); ``removed_class`` and
    ``ratios`` the experiment; ``hessian_batch`` the examples in the Hessian; ``n_train`` the training
    examples used (``None``: all of them); ``data_kwargs`` extra arguments of
    :func:`~gif_lite.book.data.load_data`.  The backdoor fields (Table 3 only; ``None``/defaults elsewhere):
    ``fraction`` of the training images poisoned, relabelled to ``target``, with a ``trigger_size``
    checkerboard of ``trigger_value``.  ``protocol`` is the ledger table, ``removed_examples``,
    ``draws``, ``landweber`` and ``increment`` the paper's sizes and step rules, ``limits`` what a
    reader cannot run as the paper did.
    """

    name: str
    data: str
    model: str
    model_kwargs: dict[str, Any]
    table: str
    recipe: Recipe
    paper_recipe: Recipe = PAPER_RECIPE
    removed_class: int = 0
    ratios: tuple[float, ...] = (0.05, 0.1, 0.3)
    hessian_batch: int = 512
    fraction: float | None = None
    target: int | None = None
    trigger_size: int = 4
    trigger_value: float = 1.0
    n_train: int | None = None
    data_kwargs: dict[str, Any] = field(default_factory=dict)
    smoke: bool = False
    protocol: str = ""
    removed_examples: int | None = None
    draws: int = 1
    landweber: dict[str, float] = field(default_factory=dict)
    increment: float | None = None
    limits: str = ""

    def smoke_variant(self) -> PaperConfig:
        """The same setting shrunk for a CPU check (see the module docstring); idempotent."""
        if self.smoke:
            return self
        recipe = self.paper_recipe.but(epochs=1, batch_size=64)
        return dataclasses.replace(
            self,
            data="fashion-mnist-small",
            data_kwargs={"shape": _SHAPES[self.data]},
            model_kwargs={
                **self.model_kwargs,
                **({"width": _SMOKE_WIDTH[self.model]} if self.model in _SMOKE_WIDTH else {}),
            },
            recipe=recipe,
            paper_recipe=recipe,
            n_train=256,
            hessian_batch=32,
            smoke=True,
        )

    def build(self, seed: int | None = None) -> nn.Module:
        """The model, freshly initialised (with ``seed`` if given), on the CPU."""
        from .models import build_model

        return build_model(self.model, seed=seed, **self.model_kwargs)


#: The width each paper network gets in a smoke run (the paper's: 64 for ResNet18 and VGG11, 32 for TinyNet).
_SMOKE_WIDTH = {"resnet18": 8, "vgg11": 8, "tinynet": 4}


def _from_ledger(
    name: str, protocol: str, data: str, table: str, recipe: Recipe, **fields: Any
) -> PaperConfig:
    """A configuration whose paper settings are the ledger rows of experiment ``protocol``."""
    model = ledger.value(protocol, "model")
    walk = ledger.value(protocol, "walk")
    return PaperConfig(
        name,
        data,
        model["name"],
        {k: v for k, v in model.items() if k != "name"},
        table,
        recipe=recipe,
        ratios=tuple(ledger.value(protocol, "ratios")),
        hessian_batch=ledger.value(protocol, "hessian_batch"),
        protocol=protocol,
        draws=ledger.value(protocol, "draws"),
        landweber=dict(ledger.value(protocol, "landweber")),
        increment=walk["increment"],
        **fields,
    )


PAPER_CONFIGS: dict[str, PaperConfig] = {
    "mnist-resnet18": _from_ledger(
        "mnist-resnet18",
        "table2-mnist",
        "mnist",
        "Table 2",
        BOOK_RECIPE,
        removed_class=ledger.value("table2-mnist", "removed_class"),
        removed_examples=ledger.value("table2-mnist", "removed_examples"),
        limits="the paper trains ResNet18 for up to 200 epochs (hours on a GPU) and removes 512 *test* "
        "images; the book trains 20 epochs of Adam and removes the class's training images",
    ),
    "cifar10-vgg11": _from_ledger(
        "cifar10-vgg11",
        "table1-cifar10",
        "cifar10",
        "Tables 1 and 2",
        BOOK_RECIPE,
        paper_recipe=PAPER_RECIPE.but(schedule=ledger.value("training", "schedule")["vgg11"]),
        removed_examples=ledger.value("table1-cifar10", "removed_examples"),
        limits="the paper trains VGG11 for up to 200 epochs (hours on a GPU) and scores 30 draws on one "
        "network; the book trains 20 epochs of Adam",
    ),
    # Table 3: the paper's TinyNet (398,090 parameters), 10% poisoned to label 4, 5% of the parameters.
    "mnist-tinynet": _from_ledger(
        "mnist-tinynet",
        "table3",
        "mnist",
        "Table 3",
        TINYCNN_RECIPE,
        paper_recipe=TABLE3_RECIPE,
        fraction=ledger.value("table3", "fraction"),
        target=ledger.value("table3", "target"),
        limits="the paper's trigger is a faint checkerboard over the whole image and its scores are on "
        "training images; the book stamps a corner checkerboard and scores held-out images.  The chapter "
        "forms H[:,P] densely: at TinyNet's 5% that is 398,090 x 19,902 entries (29.5 GiB in float32), "
        "a large GPU's memory",
    ),
}


def smoke_requested() -> bool:
    """Whether ``GIF_BOOK_SMOKE`` asks for smoke runs (``1``/``true``/``yes``; unset or ``0``: no)."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise GifLiteError(f"{SMOKE_ENV}={value!r} is not understood; use 1 (smoke runs) or 0")


def paper_config(name: str, smoke: bool | None = None) -> PaperConfig:
    """The paper-scale setting ``name`` (one of :data:`PAPER_CONFIGS`), or its smoke variant.

    ``smoke=None`` follows the environment variable :data:`SMOKE_ENV`.
    """
    if smoke is not None and not isinstance(smoke, bool):
        raise GifLiteTypeError(f"smoke must be True, False or None (follow ${SMOKE_ENV}), got {smoke!r}")
    if not isinstance(name, str) or name not in PAPER_CONFIGS:
        raise GifLiteError(f"unknown paper config {name!r}; valid: {', '.join(PAPER_CONFIGS)}")
    cfg = PAPER_CONFIGS[name]
    return cfg.smoke_variant() if (smoke_requested() if smoke is None else smoke) else cfg
