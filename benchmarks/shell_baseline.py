"""What a shell script does to get a registry: docker CLI calls one after another, a TCP probe."""

from __future__ import annotations

import socket
import uuid

import anyio

REGISTRY = "ephemeral-registry-testbed/registry:3"  # the default, registry 3
CRANE = "ephemeral-registry-testbed/crane"
LABEL = "ephemeral-registry-benchmark"


async def cli(*args: str) -> str:
    done = await anyio.run_process(["docker", *args])
    return done.stdout.decode().strip()


async def tcp_probe(port: int) -> None:
    """What most scripts call readiness: a TCP connect (docker-proxy accepts it at once)."""
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            await anyio.sleep(0.01)


async def bring_up() -> str:
    """``docker network create``, ``docker run -d -p``, ``docker port``, a TCP probe; the name."""
    name = f"{LABEL}-{uuid.uuid4().hex[:8]}"
    await cli("network", "create", "--label", LABEL, name)
    await cli(
        "run", "-d", "--name", name, "--network", name, "--label", LABEL,
        "-p", "127.0.0.1::5000", REGISTRY,
    )  # fmt: skip
    port = int((await cli("port", name, "5000/tcp")).splitlines()[0].rsplit(":", 1)[1])
    await tcp_probe(port)
    return name


async def tear_down(name: str) -> None:
    """``docker rm -f -v``, then ``docker network rm``."""
    await cli("rm", "-f", "-v", name)
    await cli("network", "rm", name)
