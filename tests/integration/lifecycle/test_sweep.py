"""Sweeping what dead processes left, against the real engine."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from ephemeral_registry import _labels, sweep

from ..support import testbed
from ..support.helpers import (
    directories_of,
    get,
    killed_owner,
    registry_under_test,
    session_resources,
)

pytestmark = pytest.mark.anyio


async def test_a_killed_owners_registry_is_swept_and_a_live_one_keeps_working(
    tarball: Path,
) -> None:
    """SIGKILL during a push leaves a registry, a network and a crane container; sweep removes
    them, and only them."""
    async with registry_under_test(sweep_leftovers=False) as live:
        endpoints = await live.ready()
        dead = (await killed_owner("--tarball", str(tarball))).session
        left = testbed.labelled(f"{testbed.LABEL}={dead}")
        assert len(left) == 3  # registry, crane container, network

        removed = await sweep(sessions=[dead, live.session_id])

        assert {leftover.id for leftover in removed} == left
        assert {leftover.session for leftover in removed} == {dead}
        assert testbed.labelled(f"{testbed.LABEL}={dead}") == set()
        assert len(session_resources(live)) == 2
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
        pushed = await live.push(tarball, "still/works")
        assert pushed.ref.startswith(endpoints.pull_endpoint)


async def test_a_killed_owners_directories_are_swept_and_a_live_ones_kept() -> None:
    """SIGKILL while a TLS registry's crane push runs leaves its CA's directory and crane's
    export here; sweep removes them, reports them, and keeps a live TLS registry's CA."""
    async with registry_under_test(tls=True, sweep_leftovers=False) as live:
        endpoints = await live.ready()
        assert endpoints.ca_file is not None
        killed = await killed_owner("--tls", "--image", testbed.REGISTRY3)
        left = directories_of(killed.pid)
        assert set(left) == {"ca", "export"}
        assert (left["ca"] / "ca.crt").is_file()
        assert any(left["export"].iterdir())  # the export crane was pushing from

        removed = await sweep(sessions=[killed.session, live.session_id])

        swept = {leftover.id for leftover in removed if leftover.kind == "directory"}
        assert swept == {str(path) for path in left.values()}
        assert {leftover.session for leftover in removed} == {killed.session}
        assert {leftover.owner_pid for leftover in removed} == {killed.pid}
        assert directories_of(killed.pid) == {}
        assert testbed.labelled(f"{testbed.LABEL}={killed.session}") == set()
        assert endpoints.ca_file.read_bytes() == endpoints.ca_certificate
        pushed = await live.push_image(testbed.SAMPLE, "still/works", pusher="native")
        assert pushed.ref.startswith(endpoints.pull_endpoint)
    assert not endpoints.ca_file.exists()  # its own block removed it


async def test_a_killed_owners_ca_is_swept_without_a_push() -> None:
    """SIGKILL while a TLS registry is merely up: its CA's directory is the only file."""
    killed = await killed_owner("--tls")
    assert set(directories_of(killed.pid)) == {"ca"}
    removed = await sweep(sessions=[killed.session])
    assert {leftover.kind for leftover in removed} == {"container", "network", "directory"}
    assert directories_of(killed.pid) == {}


PLANTED = ("dead-owner", "reused-pid", "live-owner", "other-host")
PLANTED_SESSIONS = [f"planted-{name}" for name in PLANTED]
"""Sweeps and prunes here look at these sessions only: never at a developer's own."""


@pytest.fixture
def planted() -> Iterator[dict[str, str]]:
    """Created (never started) containers with hand-made owner labels, removed afterwards."""
    here = _labels.Owner.current()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    owners = {
        "dead-owner": _labels.Owner(here.host, dead.pid, "1"),
        "reused-pid": _labels.Owner(here.host, 1, "999999999999"),
        "live-owner": _labels.Owner(here.host, 1, _labels.process_start_time(1)),
        "other-host": _labels.Owner("another-host", dead.pid, "1"),
    }
    ids = {}
    for name, owner in owners.items():
        labels = _labels.labels(f"planted-{name}", owner, "registry")
        flags = [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]
        ids[name] = testbed.docker("create", *flags, testbed.REGISTRY2).strip()
    ids["unlabelled"] = testbed.docker("create", testbed.REGISTRY2).strip()
    yield ids
    testbed.remove(list(ids.values()))


async def test_sweep_removes_only_dead_owners_on_this_host(planted: dict[str, str]) -> None:
    """A dead pid or a reused pid: removed. A live owner, another host, no labels: untouched."""
    removed = {leftover.id for leftover in await sweep(sessions=PLANTED_SESSIONS)}
    assert removed == {planted["dead-owner"], planted["reused-pid"]}
    remaining = set(testbed.docker("ps", "-aq", "--no-trunc").split())
    assert {planted["live-owner"], planted["other-host"], planted["unlabelled"]} <= remaining


async def test_entering_sweeps_in_the_background(planted: dict[str, str]) -> None:
    """A dead owner's leftover is gone by the time the block ends; live ones stay."""
    async with registry_under_test() as registry:
        await registry.ready()
        with anyio.fail_after(10):
            # The engine has no event to wait on here: poll it.
            while planted["dead-owner"] in testbed.docker("ps", "-aq", "--no-trunc"):  # noqa: ASYNC110
                await anyio.sleep(0.05)
    remaining = set(testbed.docker("ps", "-aq", "--no-trunc").split())
    assert planted["reused-pid"] not in remaining
    assert planted["live-owner"] in remaining


async def test_prune_removes_dead_owners_leftovers(planted: dict[str, str]) -> None:
    """`ephemeral-registry prune --json` prints one line per removed resource."""
    sessions = (arg for session in PLANTED_SESSIONS for arg in ("--session", session))
    done = await anyio.run_process(
        [sys.executable, "-m", "ephemeral_registry", "prune", "--json", *sessions], check=False
    )
    assert done.returncode == 0, done.stderr
    printed = [json.loads(line) for line in done.stdout.decode().splitlines()]
    assert {entry["id"] for entry in printed} == {planted["dead-owner"], planted["reused-pid"]}
    assert planted["live-owner"] in testbed.docker("ps", "-aq", "--no-trunc")


async def test_prune_all_says_what_it_removes_then_removes_everything_labelled(
    planted: dict[str, str],
) -> None:
    """--all lists every labelled resource first, whoever owns it, then removes them."""
    done = await anyio.run_process(
        [
            *(sys.executable, "-m", "ephemeral_registry", "prune", "--all", "--json"),
            *(arg for session in PLANTED_SESSIONS for arg in ("--session", session)),
        ],
        check=False,
    )
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode()
    assert "will remove every resource labelled by ephemeral-registry (4)" in err
    listed = [line.split()[1] for line in err.splitlines() if line.startswith("  container ")]
    removed = [json.loads(line)["id"] for line in done.stdout.decode().splitlines()]
    labelled = {planted[name] for name in ("dead-owner", "reused-pid", "live-owner", "other-host")}
    assert len(listed) == 4  # each one named on stderr before it goes
    assert set(removed) == labelled  # then exactly those removed, reported on stdout
    remaining = set(testbed.docker("ps", "-aq", "--no-trunc").split())
    assert (
        remaining & {planted[name] for name in ("dead-owner", "live-owner", "other-host")} == set()
    )
    assert planted["unlabelled"] in remaining


async def test_the_leak_check_counts_only_what_this_run_made(planted: dict[str, str]) -> None:
    """conftest.no_leftovers removes what a test left: never what others own.

    Another live process's resources, another host's, or those of a process
    that ended before this run began are not this run's; a registry of this
    process is.
    """
    assert set(planted.values()) & testbed.labelled_by_this_run() == set()
    async with registry_under_test() as registry:
        await registry.ready()
        assert session_resources(registry) <= testbed.labelled_by_this_run()
        assert len(session_resources(registry)) == 2
