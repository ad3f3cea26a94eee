"""Every input kept in the fuzz corpus (seeds from the test bed's engines, and what fuzzing
found) still ends in a result or a promised error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fuzz.targets import CORPUS, TARGETS

INPUTS = sorted(path for target in TARGETS for path in (CORPUS / target).iterdir())


def test_every_target_has_seeds() -> None:
    """Each target starts from real inputs, not from nothing."""
    assert {path.parent.name for path in INPUTS} == set(TARGETS)


@pytest.mark.parametrize("path", INPUTS, ids=lambda path: f"{path.parent.name}/{path.name}")
def test_a_kept_input(path: Path) -> None:
    TARGETS[path.parent.name](path.read_bytes())
