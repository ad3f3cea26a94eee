"""Helpers shared by the integration tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx

from ephemeral_registry import Registry, _scratch, ephemeral_registry

from . import testbed

ROOT = Path(__file__).parents[3]
"""The checkout: where ``python -m tests.integration.support...`` runs."""


def registry_under_test(**options: Any) -> AbstractAsyncContextManager[Registry]:
    """ephemeral_registry() with the test bed's images, never pulling."""
    options = {
        "registry_image": testbed.REGISTRY3,
        "crane_image": testbed.CRANE,
        "relay_image": testbed.BUSYBOX,
        "pull": "never",
        **options,
    }
    return ephemeral_registry(**options)


def session_resources(registry: Registry) -> set[str]:
    """Ids of the containers and networks labelled with the registry's session."""
    return testbed.labelled(f"{testbed.LABEL}={registry.session_id}")


async def get(pull_endpoint: str, path: str, **headers: str) -> httpx.Response:
    """GET http://<pull_endpoint><path> from the host, with no proxy."""
    async with httpx.AsyncClient(trust_env=False) as client:
        return await client.get(f"http://{pull_endpoint}{path}", headers=headers)


async def saved(image: str, directory: Path, *images: str) -> Path:
    """``docker save -o``: a tarball of mode 0600, owned by this process's user."""
    tarball = directory / f"{image.replace('/', '_').replace(':', '_')}.tar"
    await testbed.adocker("save", "-o", str(tarball), image, *images)
    return tarball


def published_port(registry_name: str) -> int:
    """The host port the engine published the registry's port on."""
    container = testbed.inspect("container", registry_name)
    (binding,) = next(iter(container["NetworkSettings"]["Ports"].values()))
    return int(binding["HostPort"])


def refuses_connections(endpoint: str) -> bool:
    """Whether nothing listens at ``HOST:PORT`` here any more."""
    host, _, port = endpoint.rpartition(":")
    try:
        socket.create_connection((host, int(port)), timeout=2).close()
    except OSError:
        return True
    return False


@dataclass(frozen=True)
class Killed:
    """An owner process, SIGKILLed."""

    session: str
    pid: int


async def killed_owner(*args: str, env: Mapping[str, str] | None = None) -> Killed:
    """Start a process that owns a registry (``owner_process``'s ``args``: a push, TLS),
    SIGKILL it once its push runs or its registry is ready; return its session and pid.
    ``env`` is added to this process's environment."""
    process = await anyio.open_process(
        [sys.executable, "-m", "tests.integration.support.owner_process", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(60):
            line = await process.stdout.receive()
        session = str(json.loads(line)["session"])
    finally:
        process.send_signal(signal.SIGKILL)
        await process.wait()  # reaped: its pid is gone, not a zombie
        await process.aclose()
    return Killed(session, process.pid)


def directories_of(pid: int) -> dict[str, Path]:
    """The directories on this host made by process ``pid``, by kind."""
    found = [scratch for scratch in _scratch.find() if scratch.pid == pid]
    assert len({scratch.kind for scratch in found}) == len(found)  # one of each at most
    return {scratch.kind: scratch.path for scratch in found}
