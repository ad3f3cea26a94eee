"""The command line's progress bar, drawn on a terminal."""

from __future__ import annotations

import pytest

from ephemeral_registry._cli import progress_line


def test_a_known_total_draws_a_bar_with_bytes_and_rate() -> None:
    line = progress_line(12_300_000, 45_600_000, 0.5, 79)
    assert line == "push [########----------------------] 12.3/45.6 MB 25 MB/s"


def test_an_unknown_total_shows_bytes_and_rate() -> None:
    assert progress_line(12_300_000, None, 2.0, 79) == "push 12.3 MB 6 MB/s"


@pytest.mark.parametrize("width", [10, 30, 40, 79])
def test_the_line_fits_the_terminal(width: int) -> None:
    assert len(progress_line(999_000_000, 1_000_000_000, 3.0, width)) <= width


def test_the_bar_is_full_at_the_end_and_no_time_gives_no_rate() -> None:
    assert progress_line(10, 10, 0.0, 79).startswith("push [" + "#" * 30 + "]")
    assert "MB/s" not in progress_line(10, 10, 0.0, 79)
