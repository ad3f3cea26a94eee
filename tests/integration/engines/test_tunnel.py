"""``tunnel=True`` on engines not reached over SSH: through the engine's API (``_relay``).

On the engine under test by its socket, and over ``tcp://`` by a name (another
host, to the library: its loopback is not ours) through a TCP stand-in for
its socket. The registry is reached at ``127.0.0.1:PORT`` here, each
connection relayed by an ``nc`` run in a relay container on its network.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from ephemeral_registry import ImageNotFoundError, RegistryNotReadyError, RegistryUnreachableError
from ephemeral_registry._tls import trusting

from ..support import testbed
from ..support.engine_proxy import EngineProxy
from ..support.engine_tls import EngineTls
from ..support.helpers import (
    get,
    published_port,
    refuses_connections,
    registry_under_test,
    session_resources,
)

pytestmark = pytest.mark.anyio

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ENGINES = dict(
    pair.split("=", 1) for pair in os.environ.get("EPHEMERAL_REGISTRY_TESTBED_ENGINES", "").split()
)
"""The test bed's engines by name (scripts/test), for the one shaped like Docker Desktop's."""


@asynccontextmanager
async def engine_at(way: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """DOCKER_HOST for the engine under test: its socket, or ``tcp://NAME:PORT`` through a
    stand-in that forwards a TCP port on loopback to it (NAME: this host's, another host's
    to a client)."""
    if way == "unix socket":
        monkeypatch.setenv("DOCKER_HOST", testbed.ENGINE)
        yield testbed.ENGINE
        return
    async with EngineProxy.over_tcp() as over_tcp:
        address = f"tcp://{socket.gethostname()}:{over_tcp.port}"
        monkeypatch.setenv("DOCKER_HOST", address)
        yield address


def relays(session_id: str) -> list[dict[str, Any]]:
    """The session's relay containers, as the engine describes them."""
    found = testbed.docker(
        "ps", "-aq", "--no-trunc", "--filter", f"label={testbed.LABEL}={session_id}",
        "--filter", "label=ephemeral-registry.role=relay",
    ).split()  # fmt: skip
    return [testbed.inspect("container", ident) for ident in found]


def running_execs(container: str) -> int:
    """How many processes run in a container by exec (the relay's, one per connection), as
    the engine under test says (Podman lists ended ones too, Docker only running ones)."""
    transport = httpx.HTTPTransport(uds=testbed.ENGINE.removeprefix("unix://"))
    with httpx.Client(transport=transport, base_url="http://engine") as client:
        listed = client.get(f"/containers/{container}/json").json()["ExecIDs"] or []
        return sum(client.get(f"/exec/{ident}/json").json()["Running"] for ident in listed)


@pytest.mark.parametrize("pusher", ["crane", "native"])
@pytest.mark.parametrize("way", ["unix socket", "tcp:// by a name"])
async def test_the_registry_is_reached_through_the_engines_api(
    monkeypatch: pytest.MonkeyPatch, way: str, pusher: str
) -> None:
    """Both pushes, and the image read back through the tunnel's port here (not the port
    the engine published); the relay sits on the registry's network, labelled as the
    session's; the port closes and nothing is left once the block exits."""
    async with (
        engine_at(way, monkeypatch),
        registry_under_test(tunnel=True, pusher=pusher) as registry,
    ):
        endpoints = await registry.ready()
        host, _, port = endpoints.pull_endpoint.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) != published_port(registry.name)
        (relay,) = relays(registry.session_id)
        assert list(relay["NetworkSettings"]["Networks"]) == [registry.name]
        result = await registry.push_image(testbed.SAMPLE, "through/api:1")
        assert result.ref == f"{endpoints.pull_endpoint}/through/api:1"
        response = await get(
            endpoints.pull_endpoint, f"/v2/through/api/manifests/{result.digest}", Accept=MANIFEST
        )
        assert response.status_code == 200, response.text
        config = json.loads(response.content)["config"]["digest"]
        assert config == testbed.config_digest(testbed.SAMPLE)
    assert session_resources(registry) == set()
    assert refuses_connections(endpoints.pull_endpoint)


async def test_an_engine_over_tls_is_relayed_without_half_closes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over TLS the connection to the engine cannot be half-closed: a client's end of
    sending closes it whole. Requests that are answered before it still are."""
    tls = EngineTls.made_in(tmp_path)
    async with EngineProxy.over_tcp(tls=tls.server) as over_tls:
        monkeypatch.setenv("DOCKER_HOST", over_tls.url)  # the certificate's name: 127.0.0.1
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", str(tls.client))
        async with registry_under_test(tunnel=True, pusher="native") as registry:
            endpoints = await registry.ready()
            result = await registry.push_image(testbed.SAMPLE, "over/tls:1")
            path = f"/v2/over/tls/manifests/{result.digest}"
            response = await get(endpoints.pull_endpoint, path, Accept=MANIFEST)
            assert response.status_code == 200, response.text
            host, _, port = endpoints.pull_endpoint.rpartition(":")
            async with await anyio.connect_tcp(host, int(port)) as stream:
                await stream.send(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
                await stream.send_eof()
                with anyio.fail_after(10):
                    async for _ in stream:  # the answer, or none: ends either way
                        pass
        assert session_resources(registry) == set()


@pytest.mark.parametrize("way_out", ["an error in the block", "a cancellation"])
async def test_the_tunnel_closes_on_every_way_out(way_out: str) -> None:
    """An exception or a cancellation leaving the block, with a connection open through the
    tunnel: its port here is closed, no task of its is left, and nothing labelled is left."""
    endpoint = ""
    tasks_before = asyncio.all_tasks()
    with anyio.CancelScope() as scope:
        with pytest.raises(RuntimeError) if way_out == "an error in the block" else nullcontext():
            async with (
                registry_under_test(tunnel=True) as registry,
                httpx.AsyncClient(trust_env=False) as client,
            ):
                endpoint = (await registry.ready()).pull_endpoint
                assert (await client.get(f"http://{endpoint}/v2/")).status_code == 200
                if way_out == "a cancellation":
                    scope.cancel()
                    await anyio.sleep_forever()
                raise RuntimeError("the caller's own failure")
    assert endpoint
    assert asyncio.all_tasks() == tasks_before
    assert session_resources(registry) == set()
    assert refuses_connections(endpoint)


async def test_cancelled_anywhere_a_tunnel_leaves_nothing() -> None:
    """The bring-up, the relay's start, the listener, a native push through it: cancelled
    after increasing delays, the port is closed and nothing labelled is left."""
    sessions: list[str] = []
    endpoints: list[str] = []

    async def bring_up_and_push(*, forever: bool) -> None:
        async with registry_under_test(tunnel=True, pusher="native") as registry:
            sessions.append(registry.session_id)
            endpoints.append((await registry.ready()).pull_endpoint)
            await registry.push_image(testbed.SAMPLE, "cancel/tunnel")
            if forever:  # runs may be quicker than the measured one
                await anyio.sleep_forever()

    started = time.monotonic()
    await bring_up_and_push(forever=False)
    duration = time.monotonic() - started
    steps = 10
    for step in range(steps):
        delay = duration * step / steps
        with anyio.move_on_after(delay) as scope:
            await bring_up_and_push(forever=True)
        assert scope.cancelled_caught, f"not cancelled after {delay:.2f} s of {duration:.2f} s"
        assert testbed.labelled(f"{testbed.LABEL}={sessions[-1]}") == set()
        if len(endpoints) == len(sessions):
            assert refuses_connections(endpoints[-1])


async def test_an_end_of_sending_is_passed_on_and_a_closed_connection_ends_its_relay() -> None:
    """A client that ends its sending still reads the whole answer, then the end (``nc``
    half-closes towards the registry); connections closed here leave no ``nc`` running."""
    async with registry_under_test(tunnel=True) as registry:
        host, _, port = (await registry.ready()).pull_endpoint.rpartition(":")
        async with await anyio.connect_tcp(host, int(port)) as stream:
            await stream.send(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
            await stream.send_eof()  # keep-alive: only the end of the request ends it
            answer = b""
            with anyio.fail_after(10):
                async for data in stream:
                    answer += data
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n"), answer
        assert answer.endswith(b"\r\n\r\n{}"), answer
        opened = [await anyio.connect_tcp(host, int(port)) for _ in range(3)]
        for stream in opened:
            await stream.send(b"GET /v2/ HTTP/1.1\r\nHost: registry\r\n\r\n")
            assert (await stream.receive()).startswith(b"HTTP/1.1 200 OK")
        (relay,) = relays(registry.session_id)
        assert running_execs(relay["Id"]) == 3
        for stream in opened:
            await stream.aclose()
        with anyio.fail_after(10):
            # The engine's processes: nothing to wait on but their listing.
            while running_execs(relay["Id"]):  # noqa: ASYNC110
                await anyio.sleep(0.05)
    assert session_resources(registry) == set()


async def test_a_tls_registry_is_verified_at_the_tunnels_address() -> None:
    """Its certificate names 127.0.0.1, where the tunnel listens: a client that trusts the
    registry's CA alone verifies it there."""
    async with registry_under_test(tunnel=True, tls=True) as registry:
        endpoints = await registry.ready()
        assert endpoints.ca_certificate is not None
        assert endpoints.pull_endpoint.startswith("127.0.0.1:")
        verify = trusting(endpoints.ca_certificate)
        async with httpx.AsyncClient(trust_env=False, verify=verify) as client:
            answer = await client.get(f"https://{endpoints.pull_endpoint}/v2/")
        assert answer.status_code == 200
        result = await registry.push_image(testbed.SAMPLE, "tls/through:1", pusher="native")
        assert result.ref.startswith(endpoints.pull_endpoint)
    assert session_resources(registry) == set()


async def test_a_missing_relay_image_is_refused_before_anything_is_made() -> None:
    """pull="never": the relay's image is checked with the registry's, before the network."""
    before = testbed.labelled_by_this_run()
    with pytest.raises(ImageNotFoundError, match="no-busybox"):
        async with registry_under_test(
            tunnel=True, relay_image="ephemeral-registry-testbed/no-busybox"
        ) as registry:
            await registry.ready()
    assert testbed.labelled_by_this_run() == before


async def test_a_relay_image_that_cannot_relay_says_so_when_the_registry_is_not_reached() -> None:
    """An image without a shell and nc: the readiness poll's error carries the engine's
    refusal to run them (answered on the process's stdout, never sent on as the registry's
    bytes), not only the connections it saw closed."""
    with pytest.raises(RegistryNotReadyError) as caught:
        async with registry_under_test(
            tunnel=True, relay_image=testbed.CRANE_HANGS, ready_timeout=3.0
        ) as registry:
            await registry.ready()
    said = str(caught.value).partition("the tunnel's relay said: ")[2]
    assert "executable file not found" in said or "no such file" in said.lower(), said
    assert session_resources(registry) == set()


def labelled_at(host: str, session_id: str) -> set[str]:
    """Ids of the containers and networks labelled with a session, on the engine at ``host``."""
    label = ("--filter", f"label={testbed.LABEL}={session_id}")
    found = [
        subprocess.run(
            ["docker", "-H", host, *command, *label],
            capture_output=True, text=True, check=True, timeout=60,
        ).stdout.split()
        for command in (("ps", "-aq", "--no-trunc"), ("network", "ls", "-q", "--no-trunc"))
    ]  # fmt: skip
    return {ident for listed in found for ident in listed}


@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_an_engine_whose_published_ports_are_out_of_reach_is_reached_through_its_api(
    monkeypatch: pytest.MonkeyPatch, pusher: str
) -> None:
    """The test bed's engine shaped like Docker Desktop's without its port forwarding
    (desktop-isolated, testbed/desktop.sh): without a tunnel its registry's port is not
    reached from here; with one, pushes work and the image is read back through it."""
    host = ENGINES.get("desktop-isolated")
    if host is None:
        pytest.skip("scripts/setup names desktop-isolated in EPHEMERAL_REGISTRY_TESTBED_ENGINES")
    if ENGINES.get("docker-20.10", testbed.ENGINE) != testbed.ENGINE:
        pytest.skip("its engine is not the one under test: it runs with the default engine's")
    monkeypatch.setenv("DOCKER_HOST", host)
    with pytest.raises(RegistryUnreachableError, match="ConnectError"):
        async with registry_under_test(ready_timeout=2.0) as unreached:
            await unreached.ready()
    async with registry_under_test(tunnel=True, pusher=pusher) as registry:
        endpoints = await registry.ready()
        assert endpoints.pull_endpoint.startswith("127.0.0.1:")
        result = await registry.push_image(testbed.SAMPLE, "isolated/image:1")
        path = f"/v2/isolated/image/manifests/{result.digest}"
        response = await get(endpoints.pull_endpoint, path, Accept=MANIFEST)
        assert response.status_code == 200, response.text
        config = json.loads(response.content)["config"]["digest"]
        assert config == testbed.config_digest(testbed.SAMPLE)
    for session in (unreached.session_id, registry.session_id):
        assert labelled_at(host, session) == set()
    assert refuses_connections(endpoints.pull_endpoint)
