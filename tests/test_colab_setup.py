"""The chapters' set-up cell, run where gif_lite is missing: it installs from the repository, then works.

Simulates Colab: a fresh virtual environment that sees the already installed torch & co. (as Colab's
preinstalled packages) but not gif_lite, with the repository URL replaced by this checkout's path.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a fresh venv

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.ipynb"))


def _setup_source(path: Path) -> str:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
    return "".join(cells[0]["source"])


def test_all_chapters_share_one_setup_cell() -> None:
    sources = {_setup_source(p) for p in CHAPTERS}
    assert len(sources) == 1, "the set-up cells differ between chapters"


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="needs a git checkout to clone from")
def test_setup_cell_installs_gif_lite_in_a_fresh_environment(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    # A plain path line: the outer environment's packages become importable, but its .pth files (the
    # editable install of gif_lite among them) are not processed, so gif_lite stays missing.
    Path(site, "preinstalled.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    missing = subprocess.run([python, "-c", "import gif_lite"], cwd=tmp_path, capture_output=True, text=True)
    assert missing.returncode != 0, "gif_lite must be missing before the set-up cell runs"

    url = re.search(r"https://github\.com/[\w.-]+/[\w.-]+", _setup_source(CHAPTERS[0]))
    assert url is not None
    cell = _setup_source(CHAPTERS[0]).replace(url.group(0), str(ROOT))
    check = (
        "\nimport gif_lite, torch\n"
        "from gif_lite.book.data import load_data\n"
        "assert 'gif-book' in gif_lite.__file__, gif_lite.__file__\n"
        "print(load_data('fashion-mnist-small').sizes())\n"
    )
    run = subprocess.run(
        [python, "-c", cell + check], cwd=tmp_path, capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert "'train': 9000" in run.stdout
