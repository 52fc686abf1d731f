"""Run by ``torchrun --nproc-per-node 2`` in tests/test_distributed.py: each rank holds one shard.

Every rank builds ``Objective(..., distributed=True)`` on its shard of the same data and computes the
gradient, one HVP and a GIF update; rank 0 saves them to the path given as the only argument.
"""

from __future__ import annotations

import sys

import torch
import torch.distributed as dist
from torch.nn import functional as F

import gif_lite as gl


def problem() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A small tanh MLP in float64, its data (37 examples), a probe vector and the subset P."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    x = torch.randn(37, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (37,), generator=gen)
    num = sum(p.numel() for p in model.parameters())
    v = torch.randn(num, generator=gen, dtype=torch.float64)
    subset = torch.arange(0, num, 4)
    return model, x, y, v, subset


def results(obj: gl.Objective, v: torch.Tensor, subset: torch.Tensor) -> dict[str, torch.Tensor]:
    """Gradient, H v and the GIF update for g = -gradient (LSQR to a tight tolerance)."""
    grad = obj.gradient()
    gif = gl.generalized_influence(obj, -grad, subset, tol=1e-12, max_iter=500)
    return {
        "loss": torch.tensor(obj.loss()),
        "gradient": grad,
        "hvp": obj.hvp(v),
        "gif": gif.delta,
    }


def main(path: str) -> None:
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    model, x, y, v, subset = problem()
    shard = torch.arange(len(y))[rank::world]  # uneven shards: 19 and 18 examples
    obj = gl.Objective(model, F.cross_entropy, (x[shard], y[shard]), weight_decay=1e-2, distributed=True)
    out = results(obj, v, subset)
    out["num_examples"] = torch.tensor(obj.num_examples)
    if rank == 0:
        torch.save(out, path)
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
