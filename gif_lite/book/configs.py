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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from ..train import TINYCNN_RECIPE, Recipe

__all__ = ["PAPER_CONFIGS", "PAPER_RECIPE", "PaperConfig", "paper_config"]

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
    paper).  The backdoor fields (Table 3 only; ``None``/defaults elsewhere): ``fraction`` of the training
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


def paper_config(name: str) -> PaperConfig:
    """The paper-scale setting ``name``: one of :data:`PAPER_CONFIGS`."""
    if name not in PAPER_CONFIGS:
        raise ValueError(f"unknown paper config {name!r}; valid: {', '.join(PAPER_CONFIGS)}")
    return PAPER_CONFIGS[name]
