"""Checkpoints that hold tensors only, and a model cache keyed by the configuration that produced it.

Used by: class_removal, selection_study.

A checkpoint is ``{"format", "state_dict", "config_json", "config_key", "gif_lite_version"}`` written
with ``torch.save`` and read with ``torch.load(weights_only=True)``: a file that holds pickled code or
arbitrary objects is refused instead of executed.  :func:`cached_model` trains a model once per
configuration and reloads it afterwards; the key is the sha256 of the canonical JSON of the
configuration and the gif_lite version, so a changed configuration (or library) never loads a stale model.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checks import GifLiteError, GifLiteTypeError, atomic, check_model

__all__ = [
    "CACHE_ENV",
    "FORMAT",
    "cached_model",
    "canonical_json",
    "config_key",
    "load_checkpoint",
    "model_cache_dir",
    "save_checkpoint",
]

FORMAT = "gif_lite.checkpoint/1"
_FIELDS = ("format", "state_dict", "config_json", "config_key", "gif_lite_version")
CACHE_ENV = "GIF_LITE_CACHE"


def _version() -> str:
    try:
        return metadata.version("gif_lite")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _json_default(value: object) -> object:
    """JSON for the few non-JSON values a config commonly holds (dtypes, devices, paths)."""
    if isinstance(value, torch.dtype | torch.device | Path):
        return str(value)
    raise GifLiteTypeError(
        f"config values must be JSON-serialisable (numbers, strings, lists, dicts); got "
        f"{type(value).__name__} {value!r}. Convert it to a string or number that identifies it."
    )


def canonical_json(config: Mapping[str, Any]) -> str:
    """The configuration as JSON with sorted keys and no spaces: equal configs give equal strings."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default, allow_nan=True)


def _check_config(config: object, name: str = "config") -> None:
    if not isinstance(config, Mapping):
        raise GifLiteTypeError(f"{name} must be a mapping (a dict of settings), got {type(config).__name__}")


def config_key(config: Mapping[str, Any]) -> str:
    """sha256 (hex) of the canonical JSON of ``config`` together with the gif_lite version."""
    _check_config(config)
    payload = canonical_json({"config": config, "gif_lite_version": _version()})
    return hashlib.sha256(payload.encode()).hexdigest()


def save_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> Path:
    """Write ``model.state_dict()`` and ``config`` to ``path`` atomically (temporary file, then rename)."""
    check_model(model, trainable=False)
    if config is not None:
        _check_config(config)
    path = Path(path)
    config = dict(config or {})
    payload = {
        "format": FORMAT,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config_json": canonical_json(config),
        "config_key": config_key(config),
        "gif_lite_version": _version(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _read(path: Path) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; refuse pickled code and foreign files clearly."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise pickle.UnpicklingError(
            f"{path} holds pickled objects or code that a weights-only load refuses to run; gif_lite "
            f"checkpoints hold tensors and plain values only. Do not load files you do not trust. ({e})"
        ) from e
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise GifLiteError(f"{path} is not a gif_lite checkpoint (expected format {FORMAT!r})")
    missing = [k for k in _FIELDS if k not in payload]
    if missing:
        raise GifLiteError(
            f"{path} is a damaged gif_lite checkpoint: it lacks the fields {missing}; save it again with "
            "save_checkpoint"
        )
    return payload


def _check_fits(model: nn.Module, state: Mapping[str, torch.Tensor], path: Path) -> None:
    """Refuse, before anything is copied, a state dict whose keys or shapes differ from the model's."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [
        f"{k}: {tuple(state[k].shape)} vs {tuple(own[k].shape)}"
        for k in own
        if k in state and isinstance(state[k], torch.Tensor) and state[k].shape != own[k].shape
    ]
    if missing or unexpected or shapes:
        parts = [
            f"missing {missing[:5]}" if missing else "",
            f"unexpected {unexpected[:5]}" if unexpected else "",
            f"shape mismatches (file vs model) {shapes[:5]}" if shapes else "",
        ]
        raise GifLiteError(
            f"{path} holds another architecture than model ({'; '.join(p for p in parts if p)}); the model was "
            "left unchanged. Build the model the checkpoint was saved from"
        )


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], config: Mapping[str, Any] | None = None
) -> nn.Module:
    """Load the weights in ``path`` into ``model`` (in place, strict) and return it.

    With ``config``, refuse (``ValueError``) a checkpoint saved under a different configuration.
    The checkpoint is checked against ``model`` (keys and shapes) before anything is copied, and a failed
    load leaves ``model`` exactly as it was.
    """
    check_model(model, trainable=False)
    path = Path(path)
    if not path.is_file():
        raise GifLiteError(f"path {str(path)!r} is not a file; save one with save_checkpoint first")
    payload = _read(path)
    if config is not None and payload["config_json"] != canonical_json(dict(config)):
        raise GifLiteError(
            f"{path} was saved with config {payload['config_json']}, not the requested "
            f"{canonical_json(dict(config))}; it is stale for this configuration"
        )
    _check_fits(model, payload["state_dict"], path)
    with atomic(model):  # all or nothing, even if a copy fails half-way
        model.load_state_dict(payload["state_dict"], strict=True)
    return model


def model_cache_dir(path: str | os.PathLike[str] | None = None) -> Path:
    """Where cached models live: ``path``, else $GIF_LITE_CACHE, else ``.cache/models`` in the repository.

    The repository is the nearest folder at or above the current one holding ``pyproject.toml`` and
    ``gif_lite/``; outside a checkout it is the current folder.
    """
    if path is not None:
        return Path(path).expanduser()
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]).expanduser()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "pyproject.toml").is_file() and (folder / "gif_lite").is_dir():
            return folder / ".cache" / "models"
    return here / ".cache" / "models"


def cached_model(
    config: Mapping[str, Any],
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], object],
    cache_dir: str | os.PathLike[str] | None = None,
) -> nn.Module:
    """The model ``build()`` trained by ``train(model)``, trained once per ``config`` and cached.

    ``config`` must describe everything that determines the trained weights (data, model, seed,
    hyper-parameters): it is the cache key.  An unreadable cached file is retrained and replaced.
    """
    folder = model_cache_dir(cache_dir)
    path = folder / f"{config_key(config)}.pt"
    model = build()
    if path.is_file():
        try:
            return load_checkpoint(model, path, config)
        except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError) as e:
            warnings.warn(f"ignoring unreadable cached model {path} ({e}); retraining", stacklevel=2)
            model = build()
    train(model)
    save_checkpoint(model, path, config)
    return model
