"""Objective(distributed=True): two CPU processes (gloo) give the single-process answer to 1e-9."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

import gif_lite as gl

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "helpers"))
from distributed_worker import problem, results  # noqa: E402


@pytest.mark.skipif(not torch.distributed.is_available(), reason="this torch build has no torch.distributed")
def test_two_processes_equal_one(tmp_path: Path) -> None:
    out = tmp_path / "rank0.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(HERE.parent)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    subprocess.run([*cmd, str(HERE / "helpers" / "distributed_worker.py"), str(out)], env=env, check=True,
                   timeout=300, capture_output=True)  # fmt: skip
    shared = torch.load(out)
    model, x, y, v, subset = problem()
    single = results(gl.Objective(model, F.cross_entropy, (x, y), weight_decay=1e-2), v, subset)
    assert int(shared["num_examples"]) == len(y)
    for key, expected in single.items():
        err = float((shared[key] - expected).norm() / expected.norm())
        assert err < 1e-9, f"{key}: relative error {err:.1e} between two processes and one"


def test_distributed_needs_a_process_group() -> None:
    model, x, y, _, _ = problem()
    with pytest.raises(RuntimeError, match="init_process_group"):
        gl.Objective(model, F.cross_entropy, (x, y), distributed=True)
