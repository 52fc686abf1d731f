"""Per-chapter set-up: threads and device, chosen once in every chapter's first code cells.

Used by: every chapter (its set-up cell).

torch's OpenMP threads busy-wait when another process holds a core, so on a
shared CPU one thread is both the fastest and the reproducible choice for the book's small models.
"""

from __future__ import annotations

import torch

from ..checks import GifLiteError

__all__ = ["pick_device", "set_threads"]


def set_threads(threads: int = 1) -> int:
    """Run torch's intra-op work on ``threads`` threads (>= 1); return the number set."""
    if not isinstance(threads, int) or isinstance(threads, bool) or threads < 1:
        raise GifLiteError(f"threads must be a positive integer, got {threads!r}")
    torch.set_num_threads(threads)
    return threads


def pick_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; any other value is passed to ``torch.device``."""
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise GifLiteError(f"device must be 'auto', 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from e
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} asked for, but torch sees no CUDA device")
    return resolved
