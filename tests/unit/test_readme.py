"""The README's promises that can be checked without Docker."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
README = (ROOT / "README.md").read_text()


def test_every_row_of_the_fault_table_names_a_test_that_exists() -> None:
    """Each bad input or fault in the table is backed by a real test function."""
    section = README.split("### Bad input and faults", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and "`tests/" in line]
    assert len(rows) >= 20
    for row in rows:
        path, name = re.findall(r"`(tests/[^`:]+)::(\w+)`", row)[0]
        source = (ROOT / path).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), row
