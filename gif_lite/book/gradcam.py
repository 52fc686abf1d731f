"""Grad-CAM and feature maps: the two pictures of the GIF paper's Figure 4, written from scratch.

Used by: inside.

Grad-CAM (Selvaraju et al. 2017) explains one class score ``y_c`` of one image through the activation
maps ``A_k`` (``k`` a channel, ``[h, w]`` each) of a convolutional layer:

    alpha_k = mean over (i, j) of d y_c / d A_k[i, j]        (the channel's weight)
    CAM     = ReLU( sum_k alpha_k A_k )                       ([h, w])

:func:`grad_cam` returns that map for each image of a batch, by default for the class the model
predicts (``argmax``, as the paper's ``src/grad_cam.py:43-45`` does), divided by its maximum and
resized bilinearly to the input's size (``src/grad_cam.py:56-59``).  :func:`feature_maps` returns the
outputs of every ReLU module, as the paper's ``src/conv_features.py:12-16`` hooks them, and
:func:`strongest_channel` the channel the paper draws from each (the largest spatial mean,
``scripts/fig4-unlearning_featuremap_cifar10_0.ipynb``, cell 1, lines 53-57).

Differences from the paper's ``GradCam``: the gradient comes from ``torch.autograd.grad`` on the
hooked output (no ``.grad`` is written, no backward hook, which the paper registers with the
deprecated ``register_backward_hook``); a batch gives one map per image, each for its own class
(the paper explains one image at a time); a map whose weighted sum is nowhere positive stays zero
(the paper divides by its maximum, of either sign).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..checks import GifLiteError, GifLiteTypeError, check_model

__all__ = ["feature_maps", "grad_cam", "strongest_channel"]


def _modules_of(model: nn.Module, layers: nn.Module | Sequence[nn.Module]) -> list[nn.Module]:
    layers = [layers] if isinstance(layers, nn.Module) else list(layers)
    if not layers:
        raise GifLiteError("grad_cam needs at least one layer")
    own = {id(m) for m in model.modules()}
    for layer in layers:
        if id(layer) not in own:
            raise GifLiteError(f"layers: {type(layer).__name__} is not a module of the model")
    return layers


def _targets(logits: torch.Tensor, target: int | torch.Tensor | None) -> torch.Tensor:
    n, k = logits.shape
    if target is None:
        return logits.argmax(dim=1)
    t = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    if t.numel() == 1:
        t = t.expand(n)
    if t.numel() != n or bool(((t < 0) | (t >= k)).any()):
        raise GifLiteError(f"target must be one class in [0, {k}) or one per image ({n}), got {target!r}")
    return t


def grad_cam(
    model: nn.Module,
    layers: nn.Module | Sequence[nn.Module],
    inputs: torch.Tensor,
    target: int | torch.Tensor | None = None,
    *,
    normalize: bool = True,
    size: tuple[int, int] | str | None = None,
) -> list[torch.Tensor]:
    """Grad-CAM maps of ``inputs`` ``[N, C, H, W]`` at each module in ``layers``: one ``[N, h, w]`` per layer.

    ``target``: the class explained, ``None`` for each image's predicted class (the paper's choice),
    an int for one class, or one class per image.  Each map is ``ReLU(sum_k alpha_k A_k)`` with
    ``alpha_k`` the spatial mean of ``d y_c / d A_k`` and ``A`` the module's output ``[N, K, h, w]``;
    with ``normalize`` it is divided by its maximum (a map that is zero everywhere stays zero), and
    resized bilinearly to ``size`` (``None``: keep ``[h, w]``; ``"input"`` is ``inputs``' ``[H, W]``).
    The images are explained in one pass, so ``model`` must treat them independently: call
    ``model.eval()`` first when it has BatchNorm or dropout.  ``model`` is left unchanged.
    """
    check_model(model, trainable=False)
    layers = _modules_of(model, layers)
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise GifLiteTypeError(f"inputs must be a floating tensor [N, C, H, W], got {type(inputs).__name__}")
    if not bool(torch.isfinite(inputs).all()):
        raise GifLiteError("inputs hold NaN or infinite values; the maps would be NaN")
    if isinstance(size, str) and size != "input":
        raise GifLiteError(f'size must be (h, w), "input" or None, got {size!r}')
    if inputs.dim() != 4:
        raise GifLiteError(f"inputs must be a batch of images [N, C, H, W], got shape {tuple(inputs.shape)}")
    acts: dict[int, torch.Tensor] = {}

    def hook(module: nn.Module, _: object, output: torch.Tensor) -> None:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise GifLiteError(f"{type(module).__name__} must output maps [N, K, h, w] for Grad-CAM")
        acts[id(module)] = output

    handles = [layer.register_forward_hook(hook) for layer in layers]
    try:
        with torch.enable_grad():
            logits = model(inputs)
            if logits.dim() != 2:
                raise GifLiteError(
                    f"the model must return logits [N, classes], got shape {tuple(logits.shape)}"
                )
            cls = _targets(logits, target)
            score = logits.gather(
                1, cls[:, None]
            ).sum()  # images are independent: d score / d A_n = d y_n / d A_n
            found = [acts[id(layer)] for layer in layers]
            grads = torch.autograd.grad(score, found, allow_unused=True)
    finally:
        for h in handles:
            h.remove()
    maps = []
    for a, g in zip(found, grads, strict=True):
        a = a.detach()
        g = torch.zeros_like(a) if g is None else g.detach()
        alpha = g.mean(dim=(2, 3), keepdim=True)  # [N, K, 1, 1]
        cam = torch.relu((alpha * a).sum(dim=1))  # [N, h, w]
        if normalize:
            peak = cam.flatten(1).amax(dim=1).clamp_min(torch.finfo(cam.dtype).tiny)
            cam = cam / peak[:, None, None]
        if size is not None:
            hw = tuple(int(d) for d in (inputs.shape[-2:] if size == "input" else size))
            cam = F.interpolate(cam[:, None], size=hw, mode="bilinear", align_corners=False)[:, 0]
        maps.append(cam)
    return maps


@torch.no_grad()
def feature_maps(
    model: nn.Module, inputs: torch.Tensor, kind: type[nn.Module] = nn.ReLU
) -> list[torch.Tensor]:
    """The outputs of every module of type ``kind`` (default ``nn.ReLU``) on ``inputs``, in call order.

    The paper's ``ConvFeatures`` (``src/conv_features.py``) records the same for ``nn.ReLU``.  A module
    called twice contributes twice.  ``model`` is left unchanged.
    """
    check_model(model, trainable=False)
    if not (isinstance(kind, type) and issubclass(kind, nn.Module)):
        raise GifLiteTypeError(f"kind must be a module class such as nn.ReLU, got {kind!r}")
    out: list[torch.Tensor] = []
    handles = [
        m.register_forward_hook(lambda _m, _i, o: out.append(o.detach().clone()))
        for m in model.modules()
        if isinstance(m, kind)
    ]
    if not handles:
        raise GifLiteError(f"the model has no {kind.__name__} module")
    try:
        model(inputs)
    finally:
        for h in handles:
            h.remove()
    return out


def strongest_channel(maps: torch.Tensor) -> torch.Tensor:
    """For maps ``[N, K, h, w]``: the channel with the largest spatial mean, per image (``[N]``).

    The paper draws that channel of each ReLU output (``torch.sort(mean)[1][-1]``; ties may differ).
    """
    if not isinstance(maps, torch.Tensor) or maps.dim() != 4:
        raise GifLiteError(
            f"maps must have shape [N, K, h, w], got {getattr(maps, 'shape', type(maps).__name__)}"
        )
    return maps.mean(dim=(2, 3)).argmax(dim=1)
