"""Engines shaped like Docker Desktop's (testbed/desktop.sh): their networks are not this
host's, so a push must never go to a container's own address, and an endpoint that does
not reach this host must fail fast and say what to do.

The container addresses of these engines are routed to this host's loopback, so a
listener of the test's own can stand where a stranger on the user's network would.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiodocker
import anyio
import anyio.abc
import httpx
import pytest

from ephemeral_registry import Endpoints, RegistryUnreachableError
from ephemeral_registry._pushers import native

from ..support import testbed
from ..support.helpers import registry_under_test

pytestmark = pytest.mark.anyio

FORWARDED, ISOLATED = "desktop-forwarded", "desktop-isolated"


def engine(name: str) -> str:
    if name not in testbed.ENGINES:
        pytest.skip(f"scripts/setup names {name} in EPHEMERAL_REGISTRY_TESTBED_ENGINES")
    return testbed.ENGINES[name]


class Stranger:
    """A server at the registry container's address and port that answers as a registry
    would (200, or 401 with a challenge), and records every byte it is sent."""

    def __init__(self, *, challenge: bool) -> None:
        self.challenge = challenge
        self.connections = 0
        self.received = bytearray()

    async def serve(self, client: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with client:
            with anyio.move_on_after(5):
                while b"\r\n\r\n" not in self.received:
                    self.received += await client.receive()
            status = "401 Unauthorized" if self.challenge else "200 OK"
            await client.send(
                f"HTTP/1.1 {status}\r\nContent-Length: 2\r\n"
                'Www-Authenticate: Basic realm="stranger"\r\n'
                "Docker-Distribution-Api-Version: registry/2.0\r\n\r\n{}".encode()
            )
            with anyio.move_on_after(1):
                async for chunk in client:
                    self.received += chunk


@asynccontextmanager
async def stranger_at(address: str, *, challenge: bool) -> AsyncIterator[Stranger]:
    stranger = Stranger(challenge=challenge)
    listener = await anyio.create_tcp_listener(local_host=address, local_port=5000)
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, stranger.serve)
        yield stranger
        tg.cancel_scope.cancel()


@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
async def test_a_native_push_sends_nothing_to_the_container_address(auth: bool) -> None:
    """Desktop's networks are not this host's: a stranger at the registry container's own
    address gets no request, not even the probe, and the image lands in the block's own
    registry, read back from the pull endpoint."""
    stranger = await push_beside_a_stranger(auth=auth)
    assert stranger.connections == 0, bytes(stranger.received[:500])


@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
async def test_a_stranger_without_the_registrys_token_gets_only_the_probe(
    auth: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Were the network taken for this host's, the one GET /v2/ (without credentials) that
    asks whether the container's address is the registry is all a stranger there gets: its
    answer lacks the registry's token, and the push goes through the published port."""
    monkeypatch.setattr(native, "is_interface_address", lambda address: True)
    stranger = await push_beside_a_stranger(auth=auth)
    assert stranger.connections == 1
    request = bytes(stranger.received)
    assert request.startswith(b"GET /v2/ HTTP/1.1\r\n"), request
    assert b"authorization" not in request.lower(), request
    assert request.endswith(b"\r\n\r\n"), request  # and nothing after it


async def push_beside_a_stranger(*, auth: bool) -> Stranger:
    """Push the sample natively to the forwarded engine's registry while a stranger listens
    at its container's address; check the image landed in the registry and nothing is left."""
    host = engine(FORWARDED)
    async with aiodocker.Docker(url=host) as client:
        async with registry_under_test(docker=client, pusher="native", auth=auth) as registry:
            endpoints = await registry.ready()
            info = await client.containers.container(registry.name).show()
            address = info["NetworkSettings"]["Networks"][endpoints.network]["IPAddress"]
            lines: list[str] = []
            async with stranger_at(address, challenge=auth) as stranger:
                result = await registry.push_image(
                    testbed.SAMPLE, "desktop/sample:v1", on_log=lambda line: lines.append(line)
                )
            assert f"sending to {endpoints.scheme}://{endpoints.pull_endpoint}" in lines
            manifest = await read_manifest(endpoints, result.digest)
            assert manifest["config"]["digest"] == testbed.config_digest(testbed.SAMPLE)
        label = f"{testbed.LABEL}={registry.session_id}"
        assert await client.containers.list(all=True, filters={"label": [label]}) == []
        assert await client.networks.list(filters={"label": [label]}) == []
    return stranger


async def read_manifest(endpoints: Endpoints, digest: str) -> dict[str, Any]:
    """The manifest pushed, read back from the pull endpoint (with the block's credentials)."""
    auth = None
    if endpoints.credentials is not None:
        auth = (endpoints.credentials.username, endpoints.credentials.password)
    async with httpx.AsyncClient(trust_env=False, auth=auth) as http:
        answer = await http.get(
            f"http://{endpoints.pull_endpoint}/v2/desktop/sample/manifests/{digest}",
            headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        )
    answer.raise_for_status()
    manifest: dict[str, Any] = answer.json()
    return manifest


async def test_an_endpoint_that_does_not_reach_here_fails_fast_and_says_tunnel() -> None:
    """Desktop without port forwarding: ready() fails within seconds, not ready_timeout,
    with a RegistryUnreachableError naming the address and tunnel=True; nothing is left."""
    host = engine(ISOLATED)
    async with aiodocker.Docker(url=host) as client:
        started = time.monotonic()
        async with registry_under_test(docker=client, ready_timeout=60) as registry:
            with pytest.raises(RegistryUnreachableError) as caught:
                await registry.ready()
        elapsed = time.monotonic() - started
        error = caught.value
        assert elapsed < 10, elapsed
        assert error.endpoint.startswith("127.0.0.1:")
        assert error.endpoint in str(error)
        assert "tunnel=True" in str(error)
        assert any("listening on" in line for line in error.logs)
        label = f"{testbed.LABEL}={registry.session_id}"
        assert await client.containers.list(all=True, filters={"label": [label]}) == []
        assert await client.networks.list(filters={"label": [label]}) == []
