"""Progress bars: one rule for when they show, shared by training and attribution."""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["progress_bar", "progress_enabled"]


def progress_enabled(progress: bool | None) -> bool:
    """Whether to show a progress bar: ``progress`` if given, else only on a terminal outside CI."""
    if progress is not None:
        return bool(progress)
    return not os.environ.get("CI") and sys.stderr.isatty()


def progress_bar(
    total: int, desc: str, progress: bool | None
) -> Any:  # a tqdm bar, imported when first needed
    """A progress bar over ``total`` steps, quiet unless :func:`progress_enabled`."""
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not progress_enabled(progress), leave=False)
