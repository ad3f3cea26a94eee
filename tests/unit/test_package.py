"""The wheel as a package index would show it: metadata complete, its description rendering."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import readme_renderer.markdown

import ephemeral_registry

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel hatchling builds from this checkout (as ``pip wheel`` would, offline)."""
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=120,
    )
    (built,) = out.glob("*.whl")
    return zipfile.ZipFile(built)


def _member(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [each for each in wheel.namelist() if each.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


def test_the_metadata_says_what_a_package_index_shows(wheel: zipfile.ZipFile) -> None:
    """Name, version, Python, licence, extras and a Markdown description that renders
    (what ``twine check`` checks)."""
    metadata = email.parser.Parser().parsestr(_member(wheel, "METADATA"))
    assert metadata["Name"] == "ephemeral-registry"
    assert metadata["Version"] == ephemeral_registry.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "MIT"
    assert {"auth", "tls", "ssh"} <= set(metadata.get_all("Provides-Extra") or ())
    assert metadata["Description-Content-Type"] == "text/markdown"
    description = metadata.get_payload()
    assert isinstance(description, str)
    assert description.strip() == (ROOT / "README.md").read_text().strip()
    rendered = readme_renderer.markdown.render(description)
    assert rendered is not None
    assert "<h1" in rendered


def test_the_wheel_holds_the_entry_points_and_the_typing_marker(wheel: zipfile.ZipFile) -> None:
    """The command, the pytest plugin, and ``py.typed`` for type checkers."""
    entry_points = _member(wheel, "entry_points.txt")
    assert "ephemeral-registry = ephemeral_registry._cli:entry_point" in entry_points
    assert "ephemeral_registry = ephemeral_registry.pytest_plugin" in entry_points
    assert "ephemeral_registry/py.typed" in wheel.namelist()
