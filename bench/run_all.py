"""Every benchmark in one command: ``python bench/run_all.py`` (what ``make bench`` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("solvers.py", "selection.py", "train.py", "book_timings.py"):
    print(f"\n=== bench/{script} ===", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
