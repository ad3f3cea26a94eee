"""Helpers shared by the integration tests."""

from __future__ import annotations

import socket
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx

from ephemeral_registry import Registry, ephemeral_registry

from . import testbed


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
