"""Load: one process, 10 registries and 40 pushes at once, three times in a row, nothing leaked."""

from __future__ import annotations

import asyncio
import gc
import os
from contextlib import AsyncExitStack
from pathlib import Path

import aiohttp
import anyio
import pytest

from ephemeral_registry import PushResult, Registry

from ..support import testbed
from ..support.helpers import get, registry_under_test

pytestmark = pytest.mark.anyio

REGISTRIES = 10
PUSHES_EACH = 4
ROUNDS = 3


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def open_aiohttp_sessions() -> int:
    return sum(
        isinstance(thing, aiohttp.ClientSession) and not thing.closed for thing in gc.get_objects()
    )


async def one_round(tarball: Path, sessions: list[str]) -> list[str]:
    """One round; returns the host ports the registries were published on."""
    results: dict[tuple[int, int], PushResult] = {}
    ports: list[str] = []
    async with AsyncExitStack() as stack:
        registries: list[Registry] = [
            await stack.enter_async_context(registry_under_test()) for _ in range(REGISTRIES)
        ]
        sessions.extend(registry.session_id for registry in registries)

        async def push(number: int, registry: Registry, index: int) -> None:
            ref = f"load/image-{index}:r{number}"
            if index % 2:
                results[number, index] = await registry.push(tarball, ref)
            else:
                results[number, index] = await registry.push_image(testbed.SAMPLE, ref)

        async with anyio.create_task_group() as tg:
            for number, registry in enumerate(registries):
                for index in range(PUSHES_EACH):
                    tg.start_soon(push, number, registry, index)

        assert len(results) == REGISTRIES * PUSHES_EACH
        for number, registry in enumerate(registries):
            endpoints = await registry.ready()
            ports.append(endpoints.pull_endpoint.rpartition(":")[2])
            catalog = (await get(endpoints.pull_endpoint, "/v2/_catalog")).json()
            assert sorted(catalog["repositories"]) == [
                f"load/image-{i}" for i in range(PUSHES_EACH)
            ]
            for index in range(PUSHES_EACH):
                assert results[number, index].ref.startswith(endpoints.pull_endpoint)
    return ports


async def test_ten_registries_and_forty_pushes_at_once_three_times(tmp_path: Path) -> None:
    """Everything lands every time; file descriptors, tasks and aiohttp sessions come back."""
    tarball = tmp_path / "sample.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.SAMPLE)
    gc.collect()
    fds, tasks, sessions = open_fds(), len(asyncio.all_tasks()), open_aiohttp_sessions()
    for _ in range(ROUNDS):
        with anyio.fail_after(120):
            registry_sessions: list[str] = []
            ports = await one_round(tarball, registry_sessions)
        gc.collect()
        for session in registry_sessions:
            assert testbed.labelled(f"{testbed.LABEL}={session}") == set()
        # Nothing forwards the registries' ports any more (a teardown that
        # overlaps removals left Podman's DNAT rules behind).
        assert [port for port in ports if testbed.forwards(port)] == []
        assert open_fds() == fds
        assert len(asyncio.all_tasks()) == tasks
        assert open_aiohttp_sessions() == sessions
