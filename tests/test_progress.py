"""Progress bars: shown when asked, on a terminal outside CI by default, never otherwise."""

from __future__ import annotations

import pytest

from gif_lite import progress


def test_progress_is_shown_when_asked_and_quiet_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    assert progress.progress_enabled(True) is True
    assert progress.progress_enabled(False) is False
    monkeypatch.setenv("CI", "1")
    assert progress.progress_enabled(None) is False
    with progress.progress_bar(3, "steps", None) as bar:
        bar.update(3)
        assert bar.disable
