"""Models: small ones that train in seconds on a CPU; the paper's own networks for ``SCALE = "paper"``.

Used by: quickstart, first_order, gif, hvp_solvers, selection, faithfulness, class_removal,
selection_study, backdoor, inside.

All are plain ``nn.Module``s returning logits.  The small ones hold only ``Linear``/``Conv2d`` layers with
parameters (and parameter-free ``ReLU``/``Tanh``/``Flatten``): no BatchNorm or Dropout, whose batch
dependence or randomness breaks influence's assumption of one deterministic objective.  The paper-scale
ResNet18 and VGG11 keep the paper's BatchNorm; put them in ``eval()`` mode (running statistics fixed)
before computing gradients or Hessian-vector products for influence.  :class:`TinyNet` (the paper's
Table 3) and :class:`FullyConnectedNet` (its Figure 3) are the paper's own networks, layer for layer
(the protocol ledger, ``book/paper_protocol.md``, cites their definitions).
"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..checks import GifLiteError, GifLiteTypeError, check_seed

__all__ = [
    "ACTIVATIONS",
    "MLP",
    "MODELS",
    "VGG11",
    "VGG11_LAYOUT",
    "FullyConnectedNet",
    "LogisticRegression",
    "ResNet18",
    "TinyCNN",
    "TinyNet",
    "build_model",
    "resnet18",
    "vgg11",
]

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "sigmoid": nn.Sigmoid,
    "softplus": nn.Softplus,
    "gelu": nn.GELU,
}


class LogisticRegression(nn.Module):
    """Multinomial logistic regression: logits = W flatten(x) + b."""

    def __init__(self, in_features: int, num_classes: int = 10) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear = nn.Linear(in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.flatten(x))


class MLP(nn.Module):
    """Fully connected ``sizes[0] -> ... -> sizes[-1]``; ``activation`` between layers, none after the end."""

    def __init__(self, sizes: Sequence[int] = (64, 32, 10), activation: str = "tanh") -> None:
        super().__init__()
        if len(sizes) < 2:
            raise GifLiteError(f"sizes needs an input and an output size, got {tuple(sizes)}")
        if activation not in ACTIVATIONS:
            raise GifLiteError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(fan_in, fan_out))
            if i < len(sizes) - 2:
                layers.append(ACTIVATIONS[activation]())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class TinyCNN(nn.Module):
    """A small all-convolutional net, a narrow cousin of the GIF paper's :class:`TinyNet`.

    Stride-2 3x3 convolutions with ReLU halve the image at each stage (28 -> 14 -> 7 -> 4 with the
    default three stages), then one Linear layer maps the flattened features to the logits.  With the
    default ``channels=(8, 16, 32)`` and 1 x 28 x 28 inputs it has 11,018 parameters.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        channels: Sequence[int] = (8, 16, 32),
        input_size: int = 28,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for c_in, c_out in zip([in_channels, *channels[:-1]], channels, strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.ReLU()]
        self.features = nn.Sequential(*layers, nn.Flatten())
        side = input_size
        for _ in channels:
            side = (side + 1) // 2  # (side + 2*1 - 3) // 2 + 1
        self.classifier = nn.Linear(channels[-1] * side * side, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class TinyNet(nn.Module):
    """The GIF paper's TinyNet (its Table 3; ``models/tiny.py`` of its code).

    Four 3x3 stride-2 convolutions with 32, 64, 128 and 256 channels, each followed by ReLU, then one
    Linear layer on the flattened features: 28 -> 14 -> 7 -> 4 -> 2, so 398,090 parameters on
    1 x 28 x 28 inputs.  It is :class:`TinyCNN` with ``channels=(32, 64, 128, 256)``, built here with
    the paper's layer order so that flat parameter indices match its code.  ``width`` scales the
    channels to (w, 2w, 4w, 8w); 32 is the paper's (smoke runs use 4: 7,434 parameters).
    """

    def __init__(
        self, in_channels: int = 1, num_classes: int = 10, input_size: int = 28, width: int = 32
    ) -> None:
        super().__init__()
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise GifLiteError(f"width must be a positive integer (32 is the paper's), got {width!r}")
        layers: list[nn.Module] = []
        c_in, side = in_channels, input_size
        for c_out in (width, 2 * width, 4 * width, 8 * width):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=3, stride=2, padding=1), nn.ReLU()]
            c_in, side = c_out, (side + 1) // 2
        self.layers = nn.Sequential(*layers, nn.Flatten(), nn.Linear(c_in * side * side, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FullyConnectedNet(nn.Module):
    """The GIF paper's fully connected net (its Figure 3; ``models/fcn.py`` of its code).

    ``Linear(input_size, hidden)``, then ``num_layers - 2`` blocks of ``Linear(hidden, hidden)`` and
    ReLU (a Dropout after every third block), then ``Linear(hidden, output_size)``.  Note what this
    means for the paper's ``FullyConnectedNet(784, 8, 10, 3, 0.1)``: Linear 784-8, Linear 8-8, ReLU,
    Linear 8-10, with no nonlinearity after the first layer and no Dropout at all (6,442 parameters).
    Images are flattened first (the paper's data loader flattens them instead).
    """

    def __init__(
        self,
        input_size: int = 784,
        hidden_size: int = 8,
        output_size: int = 10,
        num_layers: int = 3,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if num_layers < 2:
            raise GifLiteError(f"num_layers counts the input and output layers: at least 2, got {num_layers}")
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(input_size, hidden_size)]
        for block in range(1, num_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.ReLU()]
            if block % 3 == 0:
                layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(hidden_size, output_size))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


# --------------------------------------------------------------------------------------------------
# paper scale (CIFAR-style: 3x3 stem, no initial max-pool, so 28x28 and 32x32 inputs both work)


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv-BN) shortcut: relu(F(x) + S(x))."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images: 3x3 stem, four stages of two basic blocks (64-128-256-512), global pool.

    ``width`` scales every stage (``width``, 2, 4 and 8 times it); 64 is the paper's network, smaller
    widths keep the architecture for quick checks (the smoke runs of the paper-scale path).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        _check_width(width)
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU()
        )
        stages: list[nn.Module] = []
        c_in = width
        for factor, stride in ((1, 1), (2, 2), (4, 2), (8, 2)):
            c_out = factor * width
            stages += [_BasicBlock(c_in, c_out, stride), _BasicBlock(c_out, c_out, 1)]
            c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.stages(self.stem(x))))


VGG11_LAYOUT: tuple[int | str, ...] = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")


class VGG11(nn.Module):
    """VGG-11 (configuration A) with batch norm, CIFAR-style: eight 3x3 convs, five 2x2 max-pools, one Linear.

    Pools use ``ceil_mode`` so 28x28 inputs reach 1x1 as 32x32 ones do (28-14-7-4-2-1).  ``width``
    scales every layer (64 is the paper's network: 64-128-256-512 channels).
    """

    def __init__(self, in_channels: int = 3, num_classes: int = 10, width: int = 64) -> None:
        super().__init__()
        _check_width(width)
        layers: list[nn.Module] = []
        c_in = in_channels
        for item in VGG11_LAYOUT:
            if item == "M":
                layers.append(nn.MaxPool2d(2, ceil_mode=True))
            else:
                assert isinstance(item, int)
                c_out = item * width // 64
                layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU()]
                c_in = c_out
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(c_in, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _check_width(width: int) -> None:
    if not isinstance(width, int) or isinstance(width, bool) or width < 1 or width % 8:
        raise GifLiteError(f"width must be a positive multiple of 8 (64 is the paper's), got {width!r}")


def resnet18(in_channels: int = 3, num_classes: int = 10, width: int = 64) -> ResNet18:
    """The paper's ResNet18 (11.2M parameters at width 64), for 1-channel (MNIST) or 3-channel input."""
    return ResNet18(in_channels, num_classes, width)


def vgg11(in_channels: int = 3, num_classes: int = 10, width: int = 64) -> VGG11:
    """The paper's VGG11 with batch norm (9.2M parameters at width 64)."""
    return VGG11(in_channels, num_classes, width)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "logistic": LogisticRegression,
    "mlp": MLP,
    "tinycnn": TinyCNN,
    "tinynet": TinyNet,
    "fcn": FullyConnectedNet,
    "resnet18": resnet18,
    "vgg11": vgg11,
}
_ALIASES = {"logisticregression": "logistic", "fullyconnectednet": "fcn"}


def build_model(name: str, *, seed: int | None = None, **kwargs: object) -> nn.Module:
    """Build a registered model by name (case, ``-``, ``_`` ignored); ``seed`` fixes its initial weights."""
    if not isinstance(name, str):
        raise GifLiteTypeError(
            f"name must be a model name (str), got {type(name).__name__}; valid: {', '.join(MODELS)}"
        )
    if seed is not None:
        check_seed(seed)
    key = name.lower().replace("-", "").replace("_", "")
    key = _ALIASES.get(key, key)
    if key not in MODELS:
        raise GifLiteError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    params = inspect.signature(MODELS[key]).parameters
    unknown = sorted(set(kwargs) - set(params))
    if unknown and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        raise GifLiteTypeError(f"{name} takes no argument(s) {unknown}; it takes {sorted(params)}")
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        return MODELS[key](**kwargs)
