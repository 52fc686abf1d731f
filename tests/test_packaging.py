"""Packaging: environment.yml mirrors pyproject.toml, the contract is exported, and the built wheel works."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

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


def test_the_core_depends_on_torch_numpy_scipy_tqdm_only() -> None:
    """torchvision and scikit-learn serve the book's data helpers: the book extra, not the core."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[<>=!~ ]", d)[0] for d in project["dependencies"]}
    assert names == {"torch", "numpy", "scipy", "tqdm"}
    book = {re.split(r"[<>=!~ ]", d)[0] for d in project["optional-dependencies"]["book"]}
    assert {"torchvision", "scikit-learn"} <= book


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


# ------------------------------------------------------------------------------------------ the built wheel
_BLOCKER = '''
import importlib.abc
import sys

BLOCKED = {"matplotlib", "pandas", "seaborn", "IPython", "jupyter", "jupyter_book", "nbformat", "ipywidgets",
           "torchvision", "sklearn"}


class _Blocker(importlib.abc.MetaPathFinder):
    """Only the base dependencies exist: importing a book extra fails as if it were not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: not a base dependency)")
        return None


sys.meta_path.insert(0, _Blocker())
'''

_IMPORT_ALL = """
import importlib, pathlib, pkgutil, sys
import gif_lite
where = pathlib.Path(gif_lite.__file__).resolve()
assert where.is_relative_to(pathlib.Path(sys.argv[1]).resolve()), where
names = sorted(m.name for m in pkgutil.walk_packages(gif_lite.__path__, "gif_lite."))
core_only = sys.argv[2] == "core"
for name in names:
    if core_only and name.startswith("gif_lite.book"):
        continue
    importlib.import_module(name)
extras = {"matplotlib", "pandas", "seaborn", "torchvision", "sklearn"}
loaded = sorted(m.split(".")[0] for m in sys.modules if m.split(".")[0] in extras)
assert not core_only or not loaded, loaded
print(len(names), "modules", "core" if core_only else "all")
"""


@pytest.mark.slow
def test_the_built_wheel_holds_every_module_and_the_core_needs_only_base_dependencies(tmp_path: Path) -> None:
    """Build the wheel offline from a copy of the sources, install it outside the repository, import it.

    Built by the PEP 517 backend (what ``pip wheel --no-build-isolation`` calls). Every ``.py`` of
    ``gif_lite/`` (``book/`` included) must be in the wheel; every module must import from the installed
    copy, not from the repository; and with matplotlib, pandas, seaborn, torchvision, scikit-learn and the
    Jupyter stack made unimportable, the core must import and pass the solver and parameter tests.
    """
    import shutil
    import subprocess
    import sys
    import zipfile

    src = tmp_path / "src"
    shutil.copytree(ROOT / "gif_lite", src / "gif_lite", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    wheels = tmp_path / "wheels"
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"  # PEP 517, offline
    subprocess.run(
        [sys.executable, "-c", build, str(wheels)], check=True, cwd=src, capture_output=True, timeout=300
    )
    (wheel,) = wheels.glob("gif_lite-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        inside = set(archive.namelist())
        modules = {p.relative_to(ROOT).as_posix() for p in (ROOT / "gif_lite").rglob("*.py")}
        assert modules and modules <= inside, f"missing from the wheel: {sorted(modules - inside)}"
        target = tmp_path / "site"
        archive.extractall(target)  # installing a pure-Python wheel with --target is exactly this
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(_BLOCKER)
    script = tmp_path / "import_all.py"
    script.write_text(_IMPORT_ALL)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    plain = {**env, "PYTHONPATH": str(target)}
    bare = {**env, "PYTHONPATH": os.pathsep.join([str(blocker), str(target)]), "CI": "1"}
    run = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 300}
    out = subprocess.run([sys.executable, str(script), str(target), "all"], env=plain, **run)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([sys.executable, str(script), str(target), "core"], env=bare, **run)
    assert out.returncode == 0, out.stderr
    probe = "import matplotlib"
    assert subprocess.run([sys.executable, "-c", probe], env=bare, **run).returncode != 0  # the blocker works
    tests = [str(ROOT / "tests" / name) for name in ("test_solvers.py", "test_params.py", "test_tasks.py")]
    pytest_args = [
        "-m",
        "pytest",
        "-q",
        "-x",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:nbval",
        "--rootdir",
        str(ROOT),
        *tests,
    ]
    out = subprocess.run([sys.executable, *pytest_args], env=bare, **run)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]


@pytest.mark.slow
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
