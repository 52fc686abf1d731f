"""The paper-scale settings (``SCALE = "paper"``), one registry for every chapter of Part II.

Used by: class_removal, selection_study, backdoor, inside (their ``SCALE = "paper"`` branches).

The chapters class removal (Table 2), selection study (Table 1), backdoor (Table 3) and inside
(Figures 4-5) read it.  Each :class:`PaperConfig` holds the data set, the model, the paper's table, two training
recipes, the sizes of the experiment and, for Table 3, the backdoor attack:

* ``paper_recipe``: the recipe of the paper's code (github.com/hslyu/GIF, ``scripts/train.py`` and
  ``scripts/config.py``): SGD, lr 0.1, momentum 0.9, weight decay 5e-4, batch 512, 200 epochs, with
  ``StepLR(30, 0.1)`` (cosine annealing over 200 epochs for VGG).  Hours on a GPU.
* ``recipe``: the book's cheaper recipe (Adam, 20 epochs), what the chapters train with at paper scale.

The paper's Hessian comes from one 512-image batch (``hessian_batch``).  The device is not part of a
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

from ..train import TINYCNN_RECIPE, Recipe

__all__ = ["PAPER_CONFIGS", "PAPER_RECIPE", "SMOKE_ENV", "PaperConfig", "paper_config", "smoke_requested"]

#: The environment variable that turns every paper-scale setting into its smoke variant.
SMOKE_ENV = "GIF_BOOK_SMOKE"
#: Image shapes of the online sets, which the embedded stand-in is adapted to in smoke runs.
_SHAPES: dict[str, tuple[int, int, int]] = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32), "svhn": (3, 32, 32)}

#: The training recipe of the paper's code for ResNet18 and TinyNet (VGG11 anneals with a cosine instead).
PAPER_RECIPE = Recipe(
    epochs=200, batch_size=512, lr=0.1, optimizer="sgd", momentum=0.9, weight_decay=5e-4, schedule="step"
)
#: The book's recipe for the paper-scale CNNs: Adam, 20 epochs (minutes on a GPU).
_BOOK_RECIPE = Recipe(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", weight_decay=1e-4)


@dataclass(frozen=True)
class PaperConfig:
    """One paper-scale setting.

    ``data``/``model``/``model_kwargs`` name the data set and the model (:func:`~gif_lite.book.models.build_model`);
    ``table`` the paper's table it reproduces; ``paper_recipe`` how the paper's code trained it,
    ``recipe`` how this book trains it (cheaper; see the module docstring); ``removed_class`` and
    ``ratios`` the experiment; ``hessian_batch`` the examples in the Hessian (one 512-image batch in the
    paper); ``n_train`` the training examples used (``None``: all of them); ``data_kwargs`` extra
    arguments of :func:`~gif_lite.book.data.load_data`.  The backdoor fields (Table 3 only; ``None``/defaults elsewhere): ``fraction`` of the training
    images poisoned, relabelled to ``target``, with a ``trigger_size`` checkerboard of ``trigger_value``.
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

    def smoke_variant(self) -> PaperConfig:
        """The same setting shrunk for a CPU check (see the module docstring); idempotent."""
        if self.smoke:
            return self
        recipe = self.paper_recipe.but(epochs=1, batch_size=64)
        return dataclasses.replace(
            self,
            data="fashion-mnist-small",
            data_kwargs={"shape": _SHAPES[self.data]},
            model_kwargs={**self.model_kwargs, **({} if self.model == "tinycnn" else {"width": 8})},
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


PAPER_CONFIGS: dict[str, PaperConfig] = {
    "mnist-resnet18": PaperConfig(
        "mnist-resnet18", "mnist", "resnet18", {"in_channels": 1}, "Table 2", recipe=_BOOK_RECIPE
    ),
    "cifar10-vgg11": PaperConfig(
        "cifar10-vgg11",
        "cifar10",
        "vgg11",
        {"in_channels": 3},
        "Tables 1 and 2",
        recipe=_BOOK_RECIPE,
        paper_recipe=PAPER_RECIPE.but(schedule="cosine"),
    ),
    # The paper's TinyNet is not specified beyond its name; TinyCNN with channels (8, 16, 32) (11,018
    # parameters on 28 x 28 images) stands in for it.  Table 3: 10% poisoned, 5% of the parameters.
    "mnist-tinynet": PaperConfig(
        "mnist-tinynet",
        "mnist",
        "tinycnn",
        {"in_channels": 1, "channels": (8, 16, 32)},
        "Table 3",
        recipe=TINYCNN_RECIPE,
        ratios=(0.05,),
        fraction=0.1,
        target=0,
    ),
}


def smoke_requested() -> bool:
    """Whether ``GIF_BOOK_SMOKE`` asks for smoke runs (``1``/``true``/``yes``; unset or ``0``: no)."""
    value = os.environ.get(SMOKE_ENV, "").strip().lower()
    if value in ("", "0", "false", "no"):
        return False
    if value in ("1", "true", "yes"):
        return True
    raise ValueError(f"{SMOKE_ENV}={value!r} is not understood; use 1 (smoke runs) or 0")


def paper_config(name: str, smoke: bool | None = None) -> PaperConfig:
    """The paper-scale setting ``name`` (one of :data:`PAPER_CONFIGS`), or its smoke variant.

    ``smoke=None`` follows the environment variable :data:`SMOKE_ENV`.
    """
    if name not in PAPER_CONFIGS:
        raise ValueError(f"unknown paper config {name!r}; valid: {', '.join(PAPER_CONFIGS)}")
    cfg = PAPER_CONFIGS[name]
    return cfg.smoke_variant() if (smoke_requested() if smoke is None else smoke) else cfg
