"""Owner identity and labels."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ephemeral_registry import _labels


def test_the_current_owner_is_this_process() -> None:
    """Host name, pid and a start time that tells this process from a later one with its pid."""
    owner = _labels.Owner.current()
    assert owner.pid == os.getpid()
    assert owner.host == os.uname().nodename
    assert owner.started.isdigit()
    assert owner.started == _labels.process_start_time(os.getpid())


def test_start_time_survives_a_command_name_with_spaces_and_parentheses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command name in /proc/PID/stat may hold ') ' itself."""
    stat = "4242 (evil) (name x) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21"
    real_read_text = Path.read_text

    def read_text(path: Path, *args: object, **kwargs: object) -> str:
        if str(path) == "/proc/4242/stat":
            return stat
        return real_read_text(path)

    monkeypatch.setattr(Path, "read_text", read_text)
    assert _labels.process_start_time(4242) == "987654"


def test_start_time_of_a_missing_process_is_empty() -> None:
    """No /proc entry, no start time."""
    assert _labels.process_start_time(2**22 + 1) == ""


def test_labels_name_session_role_and_owner() -> None:
    """Every resource carries the session label, its role and its owner."""
    owner = _labels.Owner(host="h", pid=12, started="345")
    assert _labels.labels("abc", owner, "registry") == {
        "ephemeral-registry.session": "abc",
        "ephemeral-registry.role": "registry",
        "ephemeral-registry.owner.host": "h",
        "ephemeral-registry.owner.pid": "12",
        "ephemeral-registry.owner.started": "345",
    }


def test_session_ids_differ() -> None:
    """Random ids, so registries in one process never collide."""
    assert len({_labels.new_session_id() for _ in range(1000)}) == 1000
