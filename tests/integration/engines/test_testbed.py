"""The test bed leaves the machine's default engine as it found it, and its Desktop-shaped
engines have Desktop's shape."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from ..support import testbed

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
"""Debian's Docker 20.10, beside which the other engines of the test bed run."""


def default_docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", "-H", DEFAULT_ENGINE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_the_default_engine_still_runs_and_builds_on_its_default_bridge(tmp_path: Path) -> None:
    """After the whole set-up (Docker 29 and Podman beside it), the default engine's docker0
    is there, and `docker run` and `docker build` on its default bridge work."""
    assert Path("/sys/class/net/docker0").exists(), "the default engine's docker0 is gone"
    shell = ["--entrypoint", "/bin/busybox", testbed.REGISTRY_LATE]
    address = default_docker("run", "--rm", "--network", "bridge", *shell, "hostname", "-i")
    assert address.strip(), "the container on the default bridge has no address"
    tag = f"{testbed.PREFIX}/built-on-the-bridge:{uuid.uuid4().hex[:12]}"
    dockerfile = f'FROM {testbed.REGISTRY_LATE}\nRUN ["/bin/busybox", "touch", "/built"]\n'
    (tmp_path / "Dockerfile").write_text(dockerfile)
    try:
        default_docker("build", "--network", "bridge", "-q", "-t", tag, str(tmp_path))
        default_docker("run", "--rm", "--entrypoint", "/bin/busybox", tag, "test", "-f", "/built")
    finally:
        subprocess.run(
            ["docker", "-H", DEFAULT_ENGINE, "rmi", tag], capture_output=True, check=False
        )


ENGINES = dict(
    pair.split("=", 1) for pair in os.environ.get("EPHEMERAL_REGISTRY_TESTBED_ENGINES", "").split()
)
TEST_LABEL = f"{testbed.PREFIX}.test"
"""Marks what a test here makes on a Desktop-shaped engine: it removes that, and only that."""


@dataclass(frozen=True)
class Desktop:
    """An engine shaped like Docker Desktop's (testbed/desktop.sh), and this test's label."""

    name: str
    host: str
    label: str

    @property
    def forwarded(self) -> bool:
        return self.name == "desktop-forwarded"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["docker", "-H", self.host, *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0 or not check, f"docker {' '.join(args)}: {done.stderr}"
        return done


@pytest.fixture(params=["desktop-forwarded", "desktop-isolated"])
def desktop(request: pytest.FixtureRequest) -> Iterator[Desktop]:
    """One of the two Desktop-shaped engines; what the test labelled there is removed after."""
    name: str = request.param
    if name not in ENGINES:
        pytest.skip(f"scripts/setup names {name} in EPHEMERAL_REGISTRY_TESTBED_ENGINES")
    engine = Desktop(name, ENGINES[name], f"{TEST_LABEL}={uuid.uuid4().hex}")
    try:
        yield engine
    finally:
        labelled = ("--filter", f"label={engine.label}")
        for ident in engine.docker("ps", "-aq", *labelled).stdout.split():
            engine.docker("rm", "-f", "-v", ident, check=False)
        for ident in engine.docker("network", "ls", "-q", *labelled).stdout.split():
            engine.docker("network", "rm", ident, check=False)


def registry_on_a_network(desktop: Desktop) -> tuple[str, str, int]:
    """A registry on a network of its own, published on the engine's 127.0.0.1: its name,
    its address on that network, and its published port. Another container on the network
    has had an answer from it by name, as crane's does."""
    suffix = desktop.label.rpartition("=")[2][:12]
    network, name = f"ertb-test-{suffix}", f"ertb-test-registry-{suffix}"
    desktop.docker("network", "create", "--label", desktop.label, network)
    desktop.docker(
        "run", "-d", "--label", desktop.label, "--network", network, "--name", name,
        "-p", "127.0.0.1::5000", testbed.REGISTRY3,
    )  # fmt: skip
    poll = f"for i in $(/bin/busybox seq 100); do /bin/busybox wget -qO- http://{name}:5000/v2/ && exit 0; /bin/busybox sleep 0.1; done; exit 1"  # noqa: E501
    desktop.docker(
        "run", "--rm", "--label", desktop.label, "--network", network,
        "--entrypoint", "/bin/busybox", testbed.REGISTRY_LATE, "sh", "-c", poll,
    )  # fmt: skip
    state = json.loads(desktop.docker("inspect", name).stdout)[0]["NetworkSettings"]
    address = state["Networks"][network]["IPAddress"]
    port = int(state["Ports"]["5000/tcp"][0]["HostPort"])
    return name, address, port


def test_a_desktop_engine_s_container_addresses_are_this_host_s_own(desktop: Desktop) -> None:
    """A packet from here to a container address of a Desktop-shaped engine stays on this
    machine: its subnet is routed locally (the engine's networks are in its own namespace)."""
    _, address, _ = registry_on_a_network(desktop)
    route = subprocess.run(
        ["ip", "route", "get", address], capture_output=True, text=True, check=True
    ).stdout
    assert route.startswith(f"local {address} "), route


def test_a_desktop_engine_s_tmp_is_not_this_host_s(desktop: Desktop) -> None:
    """A file in this host's /tmp cannot be bind-mounted into a container of a Desktop-shaped
    engine, as on Desktop, where the engine is in a VM; the default engine mounts it."""
    content = f"made by {desktop.label}"
    with tempfile.NamedTemporaryFile("w", dir="/tmp", prefix="ertb-test-") as file:
        file.write(content)
        file.flush()
        os.chmod(file.name, 0o644)
        run = ("run", "--rm", "--label", desktop.label,
               "--mount", f"type=bind,source={file.name},target=/probe,readonly",
               "--entrypoint", "/bin/busybox", testbed.REGISTRY_LATE, "cat", "/probe")  # fmt: skip
        assert default_docker(*run) == content
        there = desktop.docker(*run, check=False)
    assert there.returncode != 0 or content not in there.stdout, there


def test_a_desktop_engine_s_published_port_answers_here_only_when_forwarded(
    desktop: Desktop,
) -> None:
    """A port published on the engine's 127.0.0.1 answers on this host's 127.0.0.1 at the
    same port through the forwarder (desktop-forwarded), and not at all without one."""
    _, _, port = registry_on_a_network(desktop)
    url = f"http://127.0.0.1:{port}/v2/"
    if not desktop.forwarded:
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return
    deadline = time.monotonic() + 10
    while True:
        try:
            response = httpx.get(url, trust_env=False, timeout=5)
            break
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    assert response.status_code == 200, response
    assert response.headers["Docker-Distribution-Api-Version"] == "registry/2.0"
