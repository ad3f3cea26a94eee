"""Engines reached over SSH (``ssh://``), through the test bed's real sshd (testbed/sshd.sh).

The engine under test is reached through sshd on 127.0.0.1:2222, as a remote
engine would be: by a host name that only ``~/.ssh/config`` knows
(``engine-box``), with the key and known hosts of a home of the test's own, or
with a key held by a real ``ssh-agent``. A name is another host to the
library, so its loopback is not ours: the registry is reached through the
tunnel over the same connection.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from urllib.parse import urlsplit

import anyio
import pytest

from ephemeral_registry import DockerUnavailableError, InvalidArgumentError, find_leftovers, sweep

from ..support import testbed
from ..support.helpers import (
    directories_of,
    get,
    killed_owner,
    published_port,
    refuses_connections,
    registry_under_test,
    session_resources,
)

pytestmark = pytest.mark.anyio

SSHD = Path("/run/ephemeral-registry-testbed/sshd")
PORT = 2222
ALIAS = "engine-box"
"""A host name that only the SSH configuration knows: another host, to the library."""


def engine_socket() -> str:
    """The engine under test's socket, which sshd forwards to."""
    parts = urlsplit(testbed.ENGINE)
    assert parts.scheme == "unix", testbed.ENGINE
    return parts.path


def engine_url(host: str = ALIAS) -> str:
    """``ssh://HOST/SOCKET``; the default socket is left out, as the docker CLI writes it."""
    path = engine_socket()
    return f"ssh://{host}" if path == "/var/run/docker.sock" else f"ssh://{host}{path}"


def key() -> Path:
    path = SSHD / "client" / getpass.getuser() / "id_ed25519"
    assert path.exists(), f"{path}: testbed/sshd.sh (scripts/setup) makes it"
    return path


class Home:
    """A home of the test's own: ``~/.ssh/config``, ``known_hosts``; HOME points at it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ssh = path / ".ssh"
        self.ssh.mkdir(mode=0o700)
        shutil.copy(SSHD / "known_hosts", self.ssh / "known_hosts")
        self.configure()

    def configure(self, *, identity: Path | None = None, port: int = PORT) -> None:
        lines = [
            f"Host {ALIAS}",
            "  HostName 127.0.0.1",
            "Host *",
            f"  Port {port}",
            f"  User {getpass.getuser()}",
            "  IdentitiesOnly yes" if identity is not None else "",
            f"  IdentityFile {identity}" if identity is not None else "",
        ]
        (self.ssh / "config").write_text("\n".join(lines) + "\n")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Home]:
    """HOME with an SSH configuration naming the test bed's sshd and this user's key; no
    agent; the engine reached at ``ssh://engine-box``. Checks that no forwarded socket of
    this test's is left behind."""
    made = tmp_path / "home"
    made.mkdir()
    monkeypatch.setenv("HOME", str(made))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    monkeypatch.setenv("DOCKER_HOST", engine_url())
    scratch = Path(tempfile.mkdtemp(prefix="ert-ssh-", dir="/tmp"))  # short: a socket's path
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the forwarded socket goes
    home = Home(made)
    home.configure(identity=key())
    try:
        yield home
        assert list(scratch.iterdir()) == [], "a forwarded socket's directory was left"
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@pytest.mark.parametrize("pusher", ["native", "crane"])
async def test_an_engine_over_ssh_is_reached_and_its_registry_through_a_tunnel(
    home: Home, pusher: str
) -> None:
    """Bring-up, both pushes, the teardown: all over one SSH connection; the pull
    endpoint is a port here (not the one published there), closed with the block."""
    async with registry_under_test(tunnel=True, pusher=pusher) as registry:
        endpoints = await registry.ready()
        host, _, port = endpoints.pull_endpoint.rpartition(":")
        assert host == "127.0.0.1"
        assert int(port) != published_port(registry.name)
        result = await registry.push_image(testbed.SAMPLE, "over/ssh:1")
        assert result.ref == f"{endpoints.pull_endpoint}/over/ssh:1"
        response = await get(
            endpoints.pull_endpoint,
            f"/v2/over/ssh/manifests/{result.digest}",
            Accept="application/vnd.oci.image.manifest.v1+json",
        )
        assert response.status_code == 200, response.text
        config = json.loads(response.content)["config"]["digest"]
        assert config == testbed.config_digest(testbed.SAMPLE)
    assert session_resources(registry) == set()
    assert refuses_connections(endpoints.pull_endpoint)


@pytest.mark.parametrize("way_out", ["an error in the block", "a cancellation"])
async def test_the_tunnel_closes_on_every_way_out(home: Home, way_out: str) -> None:
    """An exception or a cancellation leaving the block: the tunnel's port here is closed,
    and nothing labelled is left."""
    endpoint = ""
    with anyio.CancelScope() as scope:
        with pytest.raises(RuntimeError) if way_out == "an error in the block" else nullcontext():
            async with registry_under_test(tunnel=True) as registry:
                endpoint = (await registry.ready()).pull_endpoint
                assert (await get(endpoint, "/v2/")).status_code == 200
                if way_out == "a cancellation":
                    scope.cancel()
                    await anyio.sleep_forever()
                raise RuntimeError("the caller's own failure")
    assert endpoint
    assert session_resources(registry) == set()
    assert refuses_connections(endpoint)


async def test_a_killed_owners_ssh_socket_directory_is_swept(home: Home) -> None:
    """SIGKILL with an SSH connection open leaves its forwarded socket's directory; sweep
    removes it (the home fixture checks that nothing is left in the temporary directory),
    while its own connection's directory is in use and stays until it closes."""
    scratch = tempfile.gettempdir()  # the home fixture's: the owner's socket goes there too
    killed = await killed_owner("--tunnel", env={"TMPDIR": scratch})
    left = directories_of(killed.pid)
    assert set(left) == {"ssh"}
    assert (left["ssh"] / "engine.sock").is_socket()

    removed = await sweep()  # over SSH too; an SSH directory belongs to no session

    assert str(left["ssh"]) in {leftover.id for leftover in removed}
    assert directories_of(killed.pid) == {}
    assert testbed.labelled(f"{testbed.LABEL}={killed.session}") == set()


async def test_a_remote_ssh_engine_without_a_tunnel_refuses_loopback(
    home: Home, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As for tcp://: its loopback is not ours. By its address, loopback is this host."""
    before = testbed.labelled_by_this_run()
    with pytest.raises(InvalidArgumentError) as caught:
        async with registry_under_test():
            pass
    assert caught.value.argument == "host_ip"
    assert testbed.labelled_by_this_run() == before
    monkeypatch.setenv("DOCKER_HOST", engine_url("127.0.0.1"))
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        assert endpoints.pull_endpoint == f"127.0.0.1:{published_port(registry.name)}"
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
    assert session_resources(registry) == set()


@pytest.fixture
def agent(tmp_path: Path) -> Iterator[Path]:
    """A real ssh-agent holding this user's key; its socket."""
    agent_socket = Path(tempfile.mkdtemp(prefix="ert-agent-", dir="/tmp")) / "agent.sock"
    process = subprocess.Popen(
        ["ssh-agent", "-D", "-a", str(agent_socket)], stdout=subprocess.DEVNULL
    )
    try:
        for _ in range(50):
            if agent_socket.exists():
                break
            time.sleep(0.1)
        added = subprocess.run(
            ["ssh-add", "-q", str(key())],
            capture_output=True,
            text=True,
            env={**os.environ, "SSH_AUTH_SOCK": str(agent_socket)},
        )
        assert added.returncode == 0, added.stderr
        yield agent_socket
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(agent_socket.parent, ignore_errors=True)


async def test_a_key_held_by_the_agent_and_a_docker_context_are_used(
    home: Home, agent: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key in the configuration: ssh-agent's (SSH_AUTH_SOCK); the engine named by a
    docker context whose endpoint is ssh://, as `docker context create` writes it."""
    home.configure(identity=None)
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent))
    config = tmp_path / "docker-config"
    meta = config / "contexts" / "meta" / hashlib.sha256(b"box").hexdigest() / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": engine_url(), "SkipTLSVerify": False}
    meta.write_text(json.dumps({"Name": "box", "Endpoints": {"docker": endpoint}}))
    monkeypatch.delenv("DOCKER_HOST")
    monkeypatch.setenv("DOCKER_CONFIG", str(config))
    monkeypatch.setenv("DOCKER_CONTEXT", "box")
    async with registry_under_test(tunnel=True) as registry:
        endpoints = await registry.ready()
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
    assert session_resources(registry) == set()


@pytest.mark.parametrize(
    "fault",
    [
        "unknown host key",
        "no key accepted",
        "no engine",
        "no sshd",
        "config a FIFO",
        "config with a bad port",
        "config including itself",
        "known_hosts not text",
        "key not a key",
    ],
)
async def test_what_fails_over_ssh_is_said_before_anything_is_created(
    home: Home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    """Each a DockerUnavailableError naming what is wrong, within the deadline, and no
    thread of the library's left running (asyncssh reads only checked copies)."""
    threads = set(threading.enumerate())
    config = home.ssh / "config"
    if fault == "config a FIFO":
        config.unlink()
        os.mkfifo(config)
        expected = "config: is not a regular file \\(it is a FIFO\\)"
    elif fault == "config with a bad port":
        config.write_text(config.read_text() + "Port notanumber\n")
        expected = "config line 8: Invalid Port"
    elif fault == "config including itself":
        config.write_text(f"Include {config}\n" + config.read_text())
        expected = "includes nest over 16 deep"
    elif fault == "known_hosts not text":
        (home.ssh / "known_hosts").write_bytes(b"\xff\xfe\n")
        expected = "known_hosts: is not a known hosts file"
    elif fault == "key not a key":
        garbage = tmp_path / "garbage"
        garbage.write_text("not a key\n")
        home.configure(identity=garbage)
        expected = "garbage: is not a usable private key"
    elif fault == "unknown host key":
        (home.ssh / "known_hosts").write_text("")
        expected = "host key of engine-box is not known"
    elif fault == "no key accepted":
        stranger = tmp_path / "stranger"
        await anyio.run_process(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)]
        )
        home.configure(identity=stranger)
        expected = "SSH authentication to engine-box failed"
    elif fault == "no engine":
        monkeypatch.setenv("DOCKER_HOST", f"ssh://{ALIAS}/run/no-engine-here.sock")
        expected = "no engine answers at /run/no-engine-here.sock"
    else:
        home.configure(identity=key(), port=PORT + 1)  # nothing listens there
        expected = "cannot connect over SSH"
    before = testbed.labelled_by_this_run()
    with anyio.fail_after(30), pytest.raises(DockerUnavailableError, match=expected):
        async with registry_under_test(tunnel=True):
            pass
    with pytest.raises(DockerUnavailableError, match=expected):
        await find_leftovers()
    assert testbed.labelled_by_this_run() == before
    for _ in range(100):  # an idle worker thread of anyio's may take a moment to end
        if set(threading.enumerate()) <= threads | idle_workers():
            break
        await anyio.sleep(0.01)
    assert set(threading.enumerate()) <= threads | idle_workers()


def idle_workers() -> set[threading.Thread]:
    """The pools' threads (anyio's, the event loop's executor), which outlive a call by
    design until the loop closes; the unit tests check, once it has closed, that none
    is left."""
    return {
        thread
        for thread in threading.enumerate()
        if thread.name == "AnyIO worker thread" or thread.name.startswith("asyncio_")
    }
