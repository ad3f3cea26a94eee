"""Engines reached over TCP: on this host, and on another (by name), as the docker CLI does.

Also over TLS, with certificates as ``dockerd --tlsverify`` wants them, found
through DOCKER_TLS_VERIFY/DOCKER_CERT_PATH and through a context that the real
docker CLI made.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
from pathlib import Path

import aiodocker
import anyio
import pytest

from ephemeral_registry import DockerUnavailableError, InvalidArgumentError
from ephemeral_registry._engine import DockerEngine

from ..support import testbed
from ..support.cli import ENV, cli
from ..support.engine_proxy import EngineProxy
from ..support.engine_tls import EngineTls
from ..support.helpers import get, registry_under_test, session_resources

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
        async with registry_under_test(host_ip="0.0.0.0") as registry:
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


@pytest.fixture(scope="module")
def engine_tls(tmp_path_factory: pytest.TempPathFactory) -> EngineTls:
    return EngineTls.made_in(tmp_path_factory.mktemp("tls"))


def _docker_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], env=env, capture_output=True, text=True, timeout=30)


async def _brings_up_a_registry_there() -> None:
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        assert endpoints.pull_endpoint.startswith("127.0.0.1:")
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
    assert session_resources(registry) == set()


async def test_an_engine_over_tls_as_docker_tls_verify_says(
    engine_tls: EngineTls, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DOCKER_HOST=tcp://..., DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH: the docker CLI's settings."""
    async with EngineProxy.over_tcp(tls=engine_tls.server) as over_tls:
        monkeypatch.setenv("DOCKER_HOST", over_tls.url)
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", str(engine_tls.client))
        # The docker CLI reaches the engine with these very settings.
        answer = await anyio.to_thread.run_sync(
            _docker_cli, dict(os.environ), "version", "--format", "{{.Server.APIVersion}}"
        )
        assert answer.returncode == 0, answer.stderr
        await _brings_up_a_registry_there()


async def test_a_tls_engine_refuses_a_client_without_its_certificate(
    engine_tls: EngineTls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CA alone: the engine ends the handshake, and the error names the engine."""
    (tmp_path / "ca.pem").write_bytes((engine_tls.client / "ca.pem").read_bytes())
    async with EngineProxy.over_tcp(tls=engine_tls.server) as over_tls:
        monkeypatch.setenv("DOCKER_HOST", over_tls.url)
        monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
        monkeypatch.setenv("DOCKER_CERT_PATH", str(tmp_path))
        before = testbed.labelled_by_this_run()
        with pytest.raises(DockerUnavailableError) as caught:
            async with registry_under_test() as registry:
                await registry.ready()
        assert f"127.0.0.1:{over_tls.port}" in str(caught.value)
        assert testbed.labelled_by_this_run() == before


async def test_a_tls_context_made_by_the_docker_cli(
    engine_tls: EngineTls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker context create` and `docker context use`: found as the current context."""
    async with EngineProxy.over_tcp(tls=engine_tls.server) as over_tls:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        env["DOCKER_CONFIG"] = str(tmp_path / "docker-config")
        files = {name: engine_tls.client / f"{name}.pem" for name in ("ca", "cert", "key")}
        endpoint = f"host={over_tls.url}," + ",".join(f"{k}={v}" for k, v in files.items())
        for args in (("context", "create", "tls-engine", "--docker", endpoint),
                     ("context", "use", "tls-engine"),
                     ("version", "--format", "{{.Server.APIVersion}}")):  # fmt: skip
            answer = await anyio.to_thread.run_sync(_docker_cli, env, *args)
            assert answer.returncode == 0, answer.stderr
        for name in ("DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DOCKER_CONFIG", env["DOCKER_CONFIG"])
        await _brings_up_a_registry_there()


async def test_a_rootless_engine_is_known_by_its_socket_and_over_tcp_by_its_info() -> None:
    """Which user crane runs as rests on it: the socket's owner locally; the engine's info
    (Podman's Rootless field, Docker's security options) where there is no socket."""
    expected = testbed.is_rootless()
    async with aiodocker.Docker(url=testbed.ENGINE) as client:
        assert await DockerEngine(client, request_timeout=30).rootless() is expected
    async with (
        EngineProxy.over_tcp() as over_tcp,
        aiodocker.Docker(url=over_tcp.url.replace("tcp://", "http://")) as client,
    ):
        assert await DockerEngine(client, request_timeout=30).rootless() is expected
    assert [r for r in over_tcp.requests if r.split()[1].endswith("/info")], over_tcp.requests


@pytest.mark.parametrize("fifo", ["docker config", "context meta", "ssh config"])
async def test_a_fifo_as_a_users_file_is_refused_at_once_by_the_library_and_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fifo: str
) -> None:
    """A FIFO no one writes to used to hold the event loop past every deadline (a docker
    config, a context) or keep the process from exiting (asyncssh's thread on
    ~/.ssh/config): now a DockerUnavailableError naming it, from ``ephemeral_registry()``
    and from the command, whose process exits; nothing is created."""
    home = tmp_path / "home"
    (home / ".ssh").mkdir(parents=True)
    config = tmp_path / "docker-config"
    config.mkdir()
    env = {"HOME": str(home), "DOCKER_CONFIG": str(config)}
    if fifo == "docker config":
        os.mkfifo(config / "config.json")
    elif fifo == "context meta":
        env["DOCKER_CONTEXT"] = "box"
        meta = config / "contexts" / "meta" / hashlib.sha256(b"box").hexdigest() / "meta.json"
        meta.parent.mkdir(parents=True)
        os.mkfifo(meta)
    else:
        env["DOCKER_HOST"] = "ssh://me@127.0.0.1:1"
        os.mkfifo(home / ".ssh" / "config")
    before = testbed.labelled_by_this_run()
    with monkeypatch.context() as patched:  # not for the test bed's docker CLI: it would hang
        patched.delenv("DOCKER_CONTEXT", raising=False)
        patched.delenv("DOCKER_HOST", raising=False)
        for name, value in env.items():
            patched.setenv(name, value)
        with anyio.fail_after(10), pytest.raises(DockerUnavailableError, match="a FIFO"):
            async with registry_under_test(tunnel=True):
                pass
    cli_env = {name: value for name, value in ENV.items() if name != "DOCKER_HOST"}
    cli_env.pop("DOCKER_CONTEXT", None)
    with anyio.fail_after(30):
        done = await anyio.run_process(
            [sys.executable, "-m", "ephemeral_registry", "serve", "--tunnel"],
            env={**cli_env, **env},
            check=False,
        )
    assert done.returncode == 1, done.stderr
    assert b"is not a regular file (it is a FIFO)" in done.stderr
    assert testbed.labelled_by_this_run() == before
