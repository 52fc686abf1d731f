"""environment.yml and pyproject.toml list the same dependencies; the package exposes the contract."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import gif_lite

ROOT = Path(__file__).resolve().parents[1]


def test_environment_yml_mirrors_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = set(project["dependencies"])
    for extra in ("book", "test"):
        wanted |= set(project["optional-dependencies"][extra])
    env = (ROOT / "environment.yml").read_text()
    listed = set(re.findall(r'^\s+- "([^"]+)"$', env, re.MULTILINE)) - {"-e ."}
    assert listed == wanted


def test_torch_is_bounded_not_pinned() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch_spec = next(d for d in deps if d.startswith("torch>") or d.startswith("torch="))
    assert "==" not in torch_spec and "<" in torch_spec


def test_contract_names_are_exported() -> None:
    for name in (
        "Objective",
        "influence",
        "frozen_influence",
        "projected_influence",
        "generalized_influence",
        "second_order_influence",
        "InfluenceResult",
        "select",
        "retrain_without",
        "retrain_relabelled",
        "Data",
        "LossFn",
        "removal_problem",
        "relabel_problem",
    ):
        assert name in gif_lite.__all__ and hasattr(gif_lite, name)


def test_make_hints_at_the_cpu_build_without_a_gpu(tmp_path: Path) -> None:
    """Without nvidia-smi, `make` says in one line how to get the CPU-only torch before installing it."""
    import shutil
    import subprocess

    import pytest

    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    (tmp_path / "Makefile").write_text((ROOT / "Makefile").read_text())
    (tmp_path / "pyproject.toml").write_text("")
    fake = tmp_path / ".venv" / "bin" / "python"
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\nexit 1\n")  # no torch, and pip 'fails': make stops after the hint
    fake.chmod(0o755)
    bare = tmp_path / "bin"  # a PATH with sh but without nvidia-smi
    bare.mkdir()
    for tool in ("sh", "echo"):
        found = shutil.which(tool)
        if found:
            (bare / tool).symlink_to(found)
    out = subprocess.run(
        [make, "setup"], cwd=tmp_path, env={"PATH": str(bare)}, capture_output=True, text=True, timeout=60
    )
    hint = [line for line in out.stdout.splitlines() if "No GPU found" in line]
    assert len(hint) == 1 and "TORCH_SPEC" in hint[0] and "CPU-only" in hint[0], out.stdout + out.stderr
