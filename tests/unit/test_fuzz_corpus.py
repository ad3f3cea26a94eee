"""Every input kept in the fuzz corpus (seeds from the test bed's engines, what fuzzing found,
and the hostile shapes of layouts and docker configurations) still ends in a result or a
promised error, within its deadline, opening nothing outside its input, and (memory traced
here) within ``watch.MEMORY_BUDGET``."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from tests.fuzz.targets import CORPUS, TARGETS

INPUTS = sorted(path for target in TARGETS for path in (CORPUS / target).iterdir())


def test_every_target_has_seeds() -> None:
    """Each target starts from real inputs, not from nothing."""
    assert {path.parent.name for path in INPUTS} == set(TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_kept_input(path: Path) -> None:
    tracemalloc.start()
    try:
        TARGETS[path.parent.name](path.read_bytes())
    finally:
        tracemalloc.stop()
