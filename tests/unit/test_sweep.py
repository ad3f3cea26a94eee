"""Whose leftovers a sweep may remove: the rules, without Docker; and the directories on
this host, which need no Docker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ephemeral_registry import _labels, _scratch, _sweep
from ephemeral_registry._sweep import directory_owner_is_gone, live_sessions, owner_is_gone

HERE = _labels.Owner.current()


def labels_of(owner: _labels.Owner, session: str = "s1") -> dict[str, str]:
    return _labels.labels(session, owner, "registry")


@pytest.fixture(scope="module")
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_an_owner_on_another_host_is_never_judged(dead_pid: int) -> None:
    """We cannot see another host's processes: its resources are left alone."""
    owner = _labels.Owner(host="elsewhere", pid=dead_pid, started="1")
    assert not owner_is_gone(labels_of(owner), HERE)


def test_a_dead_process_on_this_host_is_gone(dead_pid: int) -> None:
    """Its pid is no longer alive."""
    owner = _labels.Owner(host=HERE.host, pid=dead_pid, started="1")
    assert owner_is_gone(labels_of(owner), HERE)


def test_a_live_process_is_not_gone() -> None:
    """pid 1 with its own start time is alive."""
    owner = _labels.Owner(host=HERE.host, pid=1, started=_labels.process_start_time(1))
    assert not owner_is_gone(labels_of(owner), HERE)


def test_a_reused_pid_is_gone() -> None:
    """Alive, but started at another time: another process got the pid."""
    owner = _labels.Owner(host=HERE.host, pid=1, started="123456789012")
    assert owner_is_gone(labels_of(owner), HERE)


def test_this_process_owns_open_sessions_and_not_closed_ones() -> None:
    """A session of ours is gone once its block has exited."""
    live_sessions.add("open-session")
    try:
        assert not owner_is_gone(labels_of(HERE, "open-session"), HERE)
        assert owner_is_gone(labels_of(HERE, "closed-session"), HERE)
    finally:
        live_sessions.discard("open-session")


@pytest.mark.parametrize("pid", ["", "not-a-number", "-"])
def test_unreadable_owner_labels_count_as_alive(pid: str) -> None:
    """What cannot be judged is not removed."""
    labels = labels_of(HERE) | {_labels.OWNER_PID: pid}
    assert not owner_is_gone(labels, HERE)


def test_no_labels_at_all_count_as_alive() -> None:
    """A resource without our labels is not ours to judge."""
    assert not owner_is_gone({}, HERE)


def test_pid_without_start_time_is_judged_by_liveness(dead_pid: int) -> None:
    """Where /proc is missing (start time empty), liveness of the pid decides."""
    assert owner_is_gone(labels_of(_labels.Owner(HERE.host, dead_pid, "")), HERE)
    assert not owner_is_gone(labels_of(_labels.Owner(HERE.host, os.getppid(), "")), HERE)


def plant(place: Path, kind: str, owner: _labels.Owner, session: str | None = "abc") -> Path:
    """A directory named as ``owner``'s, with a file in it."""
    parts = (kind, session or "none", _scratch.host_digest(owner.host), owner.pid, owner.started)
    path = place / "-".join(("ephemeral-registry", *map(str, parts), "planted"))
    path.mkdir()
    (path / "ca.crt").write_text("certificate")
    return path


def scratch_of(path: Path) -> _scratch.Scratch:
    scratch = _scratch.parse(path)
    assert scratch is not None
    return scratch


def test_a_directory_is_judged_as_a_container(tmp_path: Path, dead_pid: int) -> None:
    """Dead or reused pid: gone. Live, another host's, or this process's in use: not gone."""

    def gone(owner: _labels.Owner, session: str | None = "abc") -> bool:
        place = tmp_path / str(len(list(tmp_path.iterdir())))  # one place each: no name clash
        place.mkdir()
        return directory_owner_is_gone(scratch_of(plant(place, "ca", owner, session)), HERE)

    assert gone(_labels.Owner(HERE.host, dead_pid, "1"))
    assert gone(_labels.Owner(HERE.host, 1, "123456789012"))
    assert not gone(_labels.Owner(HERE.host, 1, _labels.process_start_time(1)))
    assert not gone(_labels.Owner("elsewhere", dead_pid, "1"))
    assert not gone(HERE, None)  # an SSH connection of this process
    assert gone(HERE, "c105ed")  # a kept registry's CA, once its block exited
    live_sessions.add("0be4")
    try:
        assert not gone(HERE, "0be4")
    finally:
        live_sessions.discard("0be4")


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The only place a sweep looks for directories, in these tests."""
    monkeypatch.setattr(_scratch, "places", lambda: [tmp_path])
    return tmp_path


def test_sweeping_directories_removes_only_dead_owners_on_this_host(
    place: Path, dead_pid: int
) -> None:
    """Each removed one is reported, as a container is; the others stay with their files."""
    dead = plant(place, "export", _labels.Owner(HERE.host, dead_pid, "1"), "dead0")
    reused = plant(place, "ssh", _labels.Owner(HERE.host, 1, "123456789012"), None)
    live = plant(place, "ca", _labels.Owner(HERE.host, 1, _labels.process_start_time(1)))
    elsewhere = plant(place, "ca", _labels.Owner("elsewhere", dead_pid, "1"))
    mine = plant(place, "ssh", HERE, None)

    removed = _sweep._sweep_directories(all_owners=False, sessions=None)

    assert {leftover.id for leftover in removed} == {str(dead), str(reused)}
    assert {leftover.kind for leftover in removed} == {"directory"}
    by_id = {leftover.id: leftover for leftover in removed}
    assert (by_id[str(dead)].session, by_id[str(dead)].owner_pid) == ("dead0", dead_pid)
    assert by_id[str(reused)].session == ""
    assert by_id[str(dead)].owner_host == HERE.host
    assert not dead.exists()
    assert not reused.exists()
    for kept in (live, elsewhere, mine):
        assert (kept / "ca.crt").read_text() == "certificate"


def test_sweeping_directories_of_some_sessions_only(place: Path, dead_pid: int) -> None:
    """With ``sessions``, a dead owner's directory of another session (or none) stays."""
    dead = _labels.Owner(HERE.host, dead_pid, "1")
    chosen = plant(place, "ca", dead, "c0c0")
    other = plant(place, "ca", dead, "0def")
    no_session = plant(place, "ssh", dead, None)
    removed = _sweep._sweep_directories(all_owners=False, sessions=["c0c0"])
    assert [leftover.id for leftover in removed] == [str(chosen)]
    assert other.exists()
    assert no_session.exists()


def test_all_owners_spares_only_what_this_process_uses(place: Path, dead_pid: int) -> None:
    """``all_owners``: a live owner's goes too, but never this process's own SSH socket, nor
    another host's."""
    live = plant(place, "ca", _labels.Owner(HERE.host, 1, _labels.process_start_time(1)))
    elsewhere = plant(place, "ca", _labels.Owner("elsewhere", dead_pid, "1"))
    mine = plant(place, "ssh", HERE, None)
    removed = _sweep._sweep_directories(all_owners=True, sessions=None)
    assert [leftover.id for leftover in removed] == [str(live)]
    assert elsewhere.exists()
    assert mine.exists()
