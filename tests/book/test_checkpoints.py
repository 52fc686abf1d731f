"""Tests of gif_lite.book.checkpoints: round trips, stale configs, refusing pickled code, the model cache."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from torch import nn

from gif_lite.book import checkpoints as ck
from gif_lite.book.models import build_model
from gif_lite.params import flat_params


def test_checkpoint_round_trip_and_stale_config(tmp_path: Path) -> None:
    model = build_model("tinycnn", seed=1)
    config = {"model": "tinycnn", "seed": 1, "channels": (8, 16, 32)}
    path = ck.save_checkpoint(model, tmp_path / "m.pt", config)
    fresh = build_model("tinycnn", seed=2)
    ck.load_checkpoint(
        fresh, path, {"channels": [8, 16, 32], "seed": 1, "model": "tinycnn"}
    )  # same, reordered
    assert torch.equal(flat_params(fresh), flat_params(model))
    with pytest.raises(ValueError, match="stale"):
        ck.load_checkpoint(fresh, path, {**config, "seed": 2})


_EXECUTED: list[str] = []


def _mark(tag: str) -> str:
    _EXECUTED.append(tag)
    return tag


class Payload:
    """Unpickling this would call _mark: code running at load time."""

    def __reduce__(self):
        return (_mark, ("unpickled",))


def test_checkpoint_with_pickled_code_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": ck.FORMAT, "state_dict": {}, "config_json": "{}", "payload": Payload()}, path)
    with pytest.raises(pickle.UnpicklingError, match="weights-only"):
        ck.load_checkpoint(build_model("tinycnn"), path)
    assert _EXECUTED == []
    torch.save({"weight": torch.zeros(2)}, tmp_path / "plain.pt")
    with pytest.raises(ValueError, match="not a gif_lite checkpoint"):
        ck.load_checkpoint(build_model("tinycnn"), tmp_path / "plain.pt")


def test_cached_model_trains_once_per_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trained: list[int] = []

    def train(model: nn.Module) -> None:
        trained.append(1)
        with torch.no_grad():
            next(model.parameters()).add_(1.0)  # any change the cache must preserve

    build = lambda: build_model("logistic", in_features=4, num_classes=2, seed=0)  # noqa: E731
    first = ck.cached_model({"lr": 0.1}, build, train, cache_dir=tmp_path)
    second = ck.cached_model({"lr": 0.1}, build, train, cache_dir=tmp_path)
    assert len(trained) == 1 and torch.equal(flat_params(first), flat_params(second))
    assert not torch.equal(flat_params(second), flat_params(build()))
    ck.cached_model({"lr": 0.2}, build, train, cache_dir=tmp_path)
    assert len(trained) == 2 and len(list(tmp_path.glob("*.pt"))) == 2
    # a damaged cache entry is retrained, with a warning
    (tmp_path / f"{ck.config_key({'lr': 0.1})}.pt").write_bytes(b"not a checkpoint")
    with pytest.warns(UserWarning, match="retraining"):
        ck.cached_model({"lr": 0.1}, build, train, cache_dir=tmp_path)
    assert len(trained) == 3
    monkeypatch.setenv(ck.CACHE_ENV, str(tmp_path / "env"))
    assert ck.model_cache_dir() == tmp_path / "env"


def test_config_key_is_canonical_and_rejects_opaque_values() -> None:
    assert ck.config_key({"a": 1, "b": [1, 2]}) == ck.config_key({"b": (1, 2), "a": 1})
    assert ck.config_key({"a": 1}) != ck.config_key({"a": 2})
    assert ck.config_key({"dtype": torch.float64}) != ck.config_key({"dtype": torch.float32})
    with pytest.raises(TypeError, match="JSON"):
        ck.config_key({"fn": object()})
