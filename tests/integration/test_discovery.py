"""Engines reached over TCP: on this host, and on another (by name), as the docker CLI does."""

from __future__ import annotations

import socket

import pytest

from ephemeral_registry import InvalidArgumentError, RegistryNotReadyError

from . import testbed
from .engine_proxy import EngineProxy
from .helpers import get, registry_under_test, session_resources
from .test_cli import cli

pytestmark = pytest.mark.anyio


@pytest.fixture
def host_name() -> str:
    """This machine's name: to a client, the name of another host; it resolves to loopback here."""
    name = socket.gethostname()
    addresses = {info[4][0] for info in socket.getaddrinfo(name, None, socket.AF_INET)}
    assert addresses, name
    assert all(str(a).startswith("127.") for a in addresses), addresses
    return name


async def test_an_engine_over_tcp_on_loopback_is_this_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """DOCKER_HOST=tcp://127.0.0.1:PORT: published on loopback, pulled from 127.0.0.1."""
    async with EngineProxy.over_tcp() as over_tcp:
        monkeypatch.setenv("DOCKER_HOST", over_tcp.url)
        async with registry_under_test() as registry:
            endpoints = await registry.ready()
            assert endpoints.pull_endpoint.startswith("127.0.0.1:")
            assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
        assert session_resources(registry) == set()


async def test_a_remote_engine_refuses_loopback_before_anything_is_created(
    host_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its loopback is not ours: InvalidArgumentError says to pass host_ip; nothing is made."""
    async with EngineProxy.over_tcp() as over_tcp:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://{host_name}:{over_tcp.port}")
        before = testbed.labelled_by_this_run()
        with pytest.raises(InvalidArgumentError) as caught:
            async with registry_under_test():
                pytest.fail("entered the block")
        assert caught.value.argument == "host_ip"
        assert "pass host_ip=" in str(caught.value)
        assert f"tcp://{host_name}:{over_tcp.port}" in str(caught.value)
        assert testbed.labelled_by_this_run() == before


async def test_a_remote_engine_is_pulled_from_at_its_own_address(
    host_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """host_ip=0.0.0.0 on the engine's host: the pull endpoint is that host's name and port."""
    async with EngineProxy.over_tcp() as over_tcp:
        monkeypatch.setenv("DOCKER_HOST", f"tcp://{host_name}:{over_tcp.port}")
        async with registry_under_test(
            host_ip="0.0.0.0", ready_timeout=5 if testbed.is_podman() else 30
        ) as registry:
            if testbed.is_podman():
                # A known difference: Podman as root (netavark) forwards a port published
                # on 0.0.0.0 with DNAT rules that 127.0.0.1, which this host name is, misses.
                with pytest.raises(RegistryNotReadyError, match=f"http://{host_name}:"):
                    await registry.ready()
                return
            endpoints = await registry.ready()
            port = testbed.inspect("container", registry.name)["NetworkSettings"]["Ports"][
                "5000/tcp"
            ]
            assert endpoints.pull_endpoint == f"{host_name}:{port[0]['HostPort']}"
            assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
        assert session_resources(registry) == set()


async def test_the_command_line_takes_the_engine_address() -> None:
    """--docker-host wins over DOCKER_HOST, and the error names the address it tried."""
    code, _, stderr = await cli("prune", "--docker-host", "unix:///nonexistent/docker.sock")
    assert code == 1
    assert "/nonexistent/docker.sock" in stderr
