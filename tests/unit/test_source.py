"""Checking push sources on the host, before any container starts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ephemeral_registry import InvalidSourceError
from ephemeral_registry._source import check


def test_a_tarball_is_a_source(tmp_path: Path) -> None:
    """A regular file; crane runs as its owner."""
    tarball = tmp_path / "image.tar"
    tarball.write_bytes(b"tar")
    tarball.chmod(0o600)
    source = check(str(tarball))
    assert source.path == tarball.resolve()
    assert not source.is_layout
    assert source.user == f"{os.getuid()}:{os.getgid()}"


def test_an_oci_layout_is_a_source(tmp_path: Path) -> None:
    """A directory holding oci-layout and index.json."""
    (tmp_path / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    (tmp_path / "index.json").write_text("{}")
    assert check(tmp_path).is_layout


def test_a_symlink_is_resolved(tmp_path: Path) -> None:
    """The engine must mount the real file, not a link into nowhere."""
    target = tmp_path / "image.tar"
    target.write_bytes(b"tar")
    link = tmp_path / "link.tar"
    link.symlink_to(target)
    assert check(link).path == target


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p / "missing.tar", "no such file"),
        (lambda p: p, "not an OCI image layout"),
        (lambda p: (p / "oci-layout").write_text("{}") and p, "not an OCI image layout"),
        (lambda p: Path("/dev/null"), "neither a regular file nor a directory"),
    ],
)
def test_bad_sources_are_refused(tmp_path: Path, make: object, problem: str) -> None:
    """Each is an InvalidSourceError that names the source and what is wrong."""
    path = make(tmp_path)  # type: ignore[operator]
    with pytest.raises(InvalidSourceError) as caught:
        check(path)
    assert problem in str(caught.value)
    assert caught.value.argument == "source"


def test_a_source_must_be_a_path() -> None:
    """Not bytes, not a number."""
    with pytest.raises(InvalidSourceError, match="must be a path"):
        check(42)  # type: ignore[arg-type]
