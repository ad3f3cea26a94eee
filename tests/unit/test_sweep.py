"""Whose leftovers a sweep may remove: the rules, without Docker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ephemeral_registry import _labels
from ephemeral_registry._sweep import live_sessions, owner_is_gone

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
