"""The directories made on this host: their names, and how they are found and removed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ephemeral_registry import _labels, _scratch

HERE = _labels.Owner.current()


def test_a_made_directory_names_its_owner_and_is_private(tmp_path: Path) -> None:
    """Kind, session, host, pid and start time read back from the name; mode 0700."""
    path = _scratch.make("ca", session="0123456789ab", directory=str(tmp_path))
    scratch = _scratch.parse(path)
    assert scratch is not None
    assert (scratch.kind, scratch.session) == ("ca", "0123456789ab")
    assert scratch.host == _scratch.host_digest(HERE.host)
    assert (scratch.pid, scratch.started) == (HERE.pid, HERE.started)
    assert path.stat().st_mode & 0o777 == 0o700


def test_a_directory_of_no_session_says_so(tmp_path: Path) -> None:
    """An SSH connection's belongs to no session."""
    scratch = _scratch.parse(_scratch.make("ssh", session=None, directory=str(tmp_path)))
    assert scratch is not None
    assert scratch.session is None


def test_an_unknown_start_time_is_empty() -> None:
    """Where there is no /proc the start time is empty, and the name still reads."""
    scratch = _scratch.parse(Path("/tmp/ephemeral-registry-export-none-0a1b2c3d-42--x_y9"))
    assert scratch is not None
    assert (scratch.pid, scratch.started) == (42, "")


@pytest.mark.parametrize(
    "name",
    [
        "ephemeral-registry-0123456789ab-abcd1234",  # a CA directory's name before owners
        "ephemeral-registry-ssh-abcd1234",  # an SSH directory's name before owners
        "ephemeral-registry-export-x8s0",
        "ephemeral-registry-logs-none-0a1b2c3d-42-100-abcd1234",  # an unknown kind
        "ephemeral-registry-ca-none-0a1b2c3d-4x2-100-abcd1234",  # pid not a number
        "ephemeral-registry-ca-none-host-42-100-abcd1234",  # host not a digest
        "ephemeral-registry-ca-none-0a1b2c3d-42-100-abcd1234/..",
        "other-ca-none-0a1b2c3d-42-100-abcd1234",
    ],
)
def test_names_not_of_ours_are_not_parsed(name: str) -> None:
    """Anything but the exact pattern is left alone."""
    assert _scratch.parse(Path("/tmp", name)) is None


def test_made_removes_its_directory_on_every_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An error in the block removes it too."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(RuntimeError), _scratch.made("export", session="abc") as path:
        (path / "image.tar").write_bytes(b"x" * 10)
        raise RuntimeError
    assert not path.exists()


def test_find_takes_only_real_directories_of_ours(tmp_path: Path) -> None:
    """A file or a symbolic link with our name, or another name, is not found."""
    ours = _scratch.make("ca", session="abc", directory=str(tmp_path))
    name = "ephemeral-registry-ca-none-0a1b2c3d-42-100-"
    (tmp_path / f"{name}file").write_text("")
    (tmp_path / f"{name}link").symlink_to(ours)
    (tmp_path / "unrelated").mkdir()
    assert [scratch.path for scratch in _scratch.find([tmp_path])] == [ours]


def test_a_missing_place_is_skipped(tmp_path: Path) -> None:
    """A temporary directory that does not exist holds nothing."""
    assert _scratch.find([tmp_path / "missing"]) == []


def test_remove_deletes_what_is_inside_but_never_follows_a_link(tmp_path: Path) -> None:
    """Files inside go with it; a link inside is removed, not what it points at."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("keep")
    path = _scratch.make("export", session="abc", directory=str(tmp_path))
    (path / "layout").mkdir()
    (path / "layout" / "blob").write_bytes(b"x")
    (path / "escape").symlink_to(outside)
    scratch = _scratch.parse(path)
    assert scratch is not None
    assert _scratch.remove(scratch)
    assert not path.exists()
    assert (outside / "keep").read_text() == "keep"
    assert not _scratch.remove(scratch)  # already gone: nothing removed


def test_the_places_are_the_temporary_directory_and_the_fallback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where SSH sockets go when the temporary directory's path is too long."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    assert _scratch.places() == [tmp_path, Path(_scratch.FALLBACK_DIRECTORY)]
    assert os.path.isabs(_scratch.FALLBACK_DIRECTORY)
