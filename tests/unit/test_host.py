"""Whether the engine sees this host's files: each check, on fakes and on this process."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from ephemeral_registry import _host

pytestmark = pytest.mark.anyio

THIS_HOST = {"OperatingSystem": "Debian GNU/Linux 12 (bookworm)", "Name": socket.gethostname()}


@pytest.mark.parametrize(
    ("address", "platform", "path"),
    [
        ("unix:///var/run/docker.sock", "linux", "/var/run/docker.sock"),
        ("unix:///var/run/docker.sock", "darwin", None),
        ("unix:///var/run/docker.sock", "win32", None),
        ("unix://", "linux", None),
        ("tcp://127.0.0.1:2375", "linux", None),
        ("ssh://me@box", "linux", None),
        ("npipe:////./pipe/docker_engine", "win32", None),
    ],
)
def test_only_a_unix_socket_on_linux_is_looked_at(
    address: str, platform: str, path: str | None
) -> None:
    """A tcp:// or ssh:// engine is another host's; elsewhere than Linux, a VM's."""
    assert _host.socket_path(address, platform) == path


@pytest.mark.parametrize(
    ("info", "names"),
    [
        (THIS_HOST, True),
        ({**THIS_HOST, "OperatingSystem": "Docker Desktop"}, False),
        ({**THIS_HOST, "Name": "colima"}, False),
        ({**THIS_HOST, "Name": "docker-desktop", "OperatingSystem": "Docker Desktop"}, False),
        ({"OperatingSystem": THIS_HOST["OperatingSystem"]}, False),
        ({"Name": THIS_HOST["Name"]}, False),
        ({**THIS_HOST, "Name": 7}, False),
    ],
)
def test_the_engine_must_say_it_runs_on_this_host(info: Mapping[str, object], names: bool) -> None:
    """Not Docker Desktop, and under this host's name; a missing field is no answer."""
    assert _host.names_this_host(info, socket.gethostname()) is names


def fake_proc(root: Path, pid: int, *, same_namespace: bool, same_root: bool) -> Path:
    """A /proc with ``self`` and ``pid``, whose ns/mnt and root are or are not the same files."""
    proc = root / "proc"
    for name in ("self", str(pid)):
        (proc / name / "ns").mkdir(parents=True)
    (proc / "self" / "ns" / "mnt").write_text("mnt")
    if same_namespace:
        os.link(proc / "self" / "ns" / "mnt", proc / str(pid) / "ns" / "mnt")
    else:
        (proc / str(pid) / "ns" / "mnt").write_text("mnt")
    (root / "root").mkdir()
    (root / "other-root").mkdir()
    (proc / "self" / "root").symlink_to(root / "root")
    (proc / str(pid) / "root").symlink_to(root / ("root" if same_root else "other-root"))
    return proc


@pytest.mark.parametrize(
    ("same_namespace", "same_root", "same"),
    [(True, True, True), (False, True, False), (True, False, False), (False, False, False)],
)
def test_the_peer_must_have_this_mount_namespace_and_root(
    tmp_path: Path, same_namespace: bool, same_root: bool, same: bool
) -> None:
    """Compared as files (device and inode), the way namespaces are told apart."""
    proc = fake_proc(tmp_path, 42, same_namespace=same_namespace, same_root=same_root)
    assert _host.same_mounts(42, proc) is same


def test_a_peer_that_is_gone_does_not_share(tmp_path: Path) -> None:
    """Its /proc entry cannot be read: no answer, so no."""
    proc = fake_proc(tmp_path, 42, same_namespace=True, same_root=True)
    assert _host.same_mounts(43, proc) is False


@pytest.fixture
def no_right_to_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a member of the docker group sees root's engine: its ns/mnt cannot be read."""

    def refused(one: Path, other: Path) -> bool:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_host, "_same_file", refused)


def mount_tables(proc: Path, pid: int, ours: bytes, theirs: bytes) -> None:
    (proc / "self").mkdir(parents=True, exist_ok=True)
    (proc / str(pid)).mkdir(parents=True, exist_ok=True)
    (proc / "self" / "mountinfo").write_bytes(ours)
    (proc / str(pid) / "mountinfo").write_bytes(theirs)


MOUNTS = b"22 1 8:1 / / rw - ext4 /dev/sda1 rw\n23 22 0:5 / /tmp rw - tmpfs tmpfs rw\n"


@pytest.mark.usefixtures("no_right_to_trace")
@pytest.mark.parametrize(
    ("theirs", "same"),
    [
        (MOUNTS, True),
        # A copy of the namespace: the same mounts under new ids.
        (MOUNTS.replace(b"22 ", b"301 ").replace(b"23 301", b"302 301"), False),
        # The same namespace from another root: other paths, fewer mounts.
        (b"22 1 8:1 /srv/root / rw - ext4 /dev/sda1 rw\n", False),
    ],
)
def test_without_the_right_to_trace_the_mount_tables_are_compared(
    tmp_path: Path, theirs: bytes, same: bool
) -> None:
    """/proc/PID/mountinfo is readable by all; mount ids are unique across namespaces."""
    mount_tables(tmp_path, 42, MOUNTS, theirs)
    assert _host.same_mounts(42, tmp_path) is same


def test_a_mount_made_between_the_two_reads_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine mounts for each container it starts: the tables may differ for a moment."""
    reads: Iterator[bytes] = iter([MOUNTS + b"24 22 0:6 / /x rw - tmpfs t rw\n", MOUNTS] * 2)
    tables = {"42": lambda: next(reads), "self": lambda: MOUNTS}
    monkeypatch.setattr(_host, "_mount_table", lambda process: tables[process.name]())
    assert _host.same_mount_table(42, tmp_path) is True


def test_mount_tables_that_keep_differing_do_not_match(tmp_path: Path) -> None:
    """Read a bounded number of times, then no."""
    mount_tables(tmp_path, 42, MOUNTS, MOUNTS + b"24 22 0:6 / /x rw - tmpfs t rw\n")
    assert _host.same_mount_table(42, tmp_path, reads=3) is False


def test_this_process_has_its_own_mounts() -> None:
    """The real /proc: this process's namespace and root are its own, by either comparison."""
    assert _host.same_mounts(os.getpid())
    assert _host.same_mount_table(os.getpid())


@pytest.mark.skipif(
    sys.platform != "linux" or os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="making a mount namespace needs root and unshare(1) on Linux",
)
def test_a_process_in_a_mount_namespace_of_its_own_does_not_share() -> None:
    """A real process in a new mount namespace (unshare --mount): not this one's."""
    with subprocess.Popen(["unshare", "--mount", "sleep", "30"]) as child:
        try:
            namespace = Path(f"/proc/{child.pid}/ns/mnt")
            for _ in range(200):  # until unshare has made it, and become sleep
                if namespace.exists() and os.readlink(namespace) != os.readlink(
                    "/proc/self/ns/mnt"
                ):
                    break
                time.sleep(0.01)
            assert _host.same_mounts(child.pid) is False
            assert _host.same_mount_table(child.pid) is False
        finally:
            child.kill()


@pytest.fixture
def listening(tmp_path: Path) -> Iterator[str]:
    """A unix socket this process listens on: its peer is this process."""
    path = str(tmp_path / "engine.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        server.listen()
        yield path


def test_the_peer_of_a_socket_is_the_process_that_listens(listening: str) -> None:
    """SO_PEERCRED on a connection: the listener's pid."""
    assert _host.peer_pid(listening, timeout=5) == os.getpid()


@pytest.mark.parametrize(
    ("info", "shares"),
    [(THIS_HOST, True), ({**THIS_HOST, "OperatingSystem": "Docker Desktop"}, False), (None, False)],
)
async def test_a_local_socket_shares_files_when_the_engine_says_it_is_this_host(
    listening: str, info: Mapping[str, object] | None, shares: bool
) -> None:
    """Every check passes only with the info of this host (a refused info is no answer)."""

    async def answer() -> Mapping[str, object] | None:
        return info

    assert await _host.shares_files(f"unix://{listening}", answer, timeout=5) is shares


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:2375", "ssh://me@box", "unix:///nowhere"])
async def test_other_engines_do_not_share_files_and_are_not_asked(address: str) -> None:
    """Decided before the engine's info is asked: nothing is sent to it."""

    async def answer() -> Mapping[str, object]:
        raise AssertionError("info was asked")

    assert await _host.shares_files(address, answer, timeout=5) is False
