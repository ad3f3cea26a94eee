"""Checking push sources on the host, before any container starts."""

from __future__ import annotations

import gzip
import os
import tarfile
from pathlib import Path

import pytest

from ephemeral_registry import InvalidSourceError
from ephemeral_registry._source import check


def write_tar(path: Path) -> Path:
    """A tar archive of one small file: what a source is checked for."""
    member = path.parent / "manifest.json"
    member.write_text("[]")
    with tarfile.open(path, "w") as archive:
        archive.add(member, arcname="manifest.json")
    return path


def test_a_tarball_is_a_source(tmp_path: Path) -> None:
    """A regular file; crane runs as its owner."""
    tarball = write_tar(tmp_path / "image.tar")
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
    target = write_tar(tmp_path / "image.tar")
    link = tmp_path / "link.tar"
    link.symlink_to(target)
    assert check(link).path == target


def gzipped(path: Path) -> Path:
    """A docker save | gzip: crane and the native pusher read plain tar only."""
    compressed = path.with_suffix(".tar.gz")
    compressed.write_bytes(gzip.compress(path.read_bytes()))
    return compressed


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: p / "missing.tar", "no such file"),
        (lambda p: p, "not an OCI image layout"),
        (lambda p: (p / "oci-layout").write_text("{}") and p, "not an OCI image layout"),
        (lambda p: Path("/dev/null"), "neither a regular file nor a directory"),
        (lambda p: (p / "notes.txt").write_text("hello\n") and p / "notes.txt", "not a tar"),
        (lambda p: (p / "empty.tar").write_bytes(b"") or p / "empty.tar", "not a tar"),
        (lambda p: gzipped(write_tar(p / "image.tar")), "not a tar archive"),
        (lambda p: p / ("x" * 300), "cannot be read: File name too long"),
        (lambda p: f"{p}/image\0.tar", "holds a NUL character"),
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
