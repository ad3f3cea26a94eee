"""Which engine answers, from its /_ping headers, and what the teardown may do there."""

from __future__ import annotations

from pathlib import Path

import aiodocker
import aiohttp.web
import pytest

from ephemeral_registry._engine import ContainerSpec, DockerEngine, Identity
from ephemeral_registry._engine.docker import (
    _raise_pull_error,
    container_config,
    error_document_message,
)
from ephemeral_registry._errors import DockerEngineError

PINGS = {
    "docker 20.10": {"Api-Version": "1.41", "Server": "Docker/20.10.24+dfsg1 (linux)"},
    "docker 29": {"Api-Version": "1.52", "Server": "Docker/29.0.0 (linux)"},
    "docker 29 from source": {"Api-Version": "1.56", "Server": "Docker/library-import (linux)"},
    "podman 4.3": {
        "Api-Version": "1.41",
        "Libpod-Api-Version": "4.3.1",
        "Server": "Libpod/4.3.1 (linux)",
    },
}


@pytest.mark.parametrize(
    ("engine", "product", "api", "concurrently"),
    [
        ("docker 20.10", "docker", (1, 41), False),
        ("docker 29", "docker", (1, 52), True),
        ("docker 29 from source", "docker", (1, 56), True),
        ("podman 4.3", "podman", (1, 41), False),
    ],
)
def test_the_ping_says_which_engine_and_whether_removals_may_overlap(
    engine: str, product: str, api: tuple[int, int], concurrently: bool
) -> None:
    """Docker is judged by its API version (a build may name no version); Podman never."""
    identity = Identity.from_headers(PINGS[engine])
    assert (identity.product, identity.api_version) == (product, api)
    assert identity.removes_concurrently is concurrently
    assert identity.server == PINGS[engine]["Server"]


@pytest.mark.parametrize(
    ("engine", "joins"),
    [("docker 20.10", False), ("docker 29", True), ("podman 4.3", True)],
)
def test_only_old_docker_engines_need_containers_to_join_a_network_one_at_a_time(
    engine: str, joins: bool
) -> None:
    """Docker before 29 keeps an endpoint count that concurrent joins can corrupt."""
    assert Identity.from_headers(PINGS[engine]).joins_concurrently is joins


def test_a_ping_without_headers_is_an_old_docker() -> None:
    """No version header: the oldest API this library speaks, and the careful teardown."""
    identity = Identity.from_headers({})
    assert identity.api_version == (1, 24)
    assert not identity.removes_concurrently
    assert not identity.joins_concurrently


def test_hosts_go_to_etc_hosts() -> None:
    """A crane container resolves the registry's name without the network's DNS."""
    spec = ContainerSpec(
        name="push",
        image="crane",
        labels={},
        network="net",
        hosts={"ephemeral-registry-abc": "10.89.0.2"},
        read_only_mount=(Path("/tmp/x"), "/src"),
    )
    docker = Identity.from_headers(PINGS["docker 20.10"])
    config = container_config(spec, docker)
    assert config["HostConfig"]["ExtraHosts"] == ["ephemeral-registry-abc:10.89.0.2"]
    bare = ContainerSpec("r", "i", {}, "net")
    assert "ExtraHosts" not in container_config(bare, docker)["HostConfig"]


@pytest.mark.parametrize(
    ("host_ip", "docker", "podman"),
    [
        ("127.0.0.1", "127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "0.0.0.0", ""),
        ("::", "::", ""),
        ("192.0.2.7", "192.0.2.7", "192.0.2.7"),
    ],
)
def test_every_interface_is_an_empty_host_ip_for_podman(
    host_ip: str, docker: str, podman: str
) -> None:
    """Podman's netavark takes 0.0.0.0 as a literal destination; Docker takes it as meant."""
    spec = ContainerSpec("r", "i", {}, "net", publish_port=5000, host_ip=host_ip)
    for engine, sent in (("docker 29", docker), ("podman 4.3", podman)):
        identity = Identity.from_headers(PINGS[engine])
        bindings = container_config(spec, identity)["HostConfig"]["PortBindings"]
        assert bindings == {"5000/tcp": [{"HostIp": sent, "HostPort": ""}]}


@pytest.mark.parametrize(
    "line",
    [
        '{"status":"Pulling from mirror/registry","id":"2"}',
        '{"status":"Downloading","progressDetail":{"current":1,"total":2},"id":"a1"}\r',
        "",
        "   ",
    ],
)
def test_a_pull_progress_line_without_an_error_passes(line: str) -> None:
    _raise_pull_error("pull x", line)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"errorDetail":{"message":"unknown"},"error":"manifest unknown"}', "unknown"),
        ('{"error":"denied"}', "denied"),
        ('{"errorDetail":"odd","error":"refused"}', "refused"),
        ('{"errorDetail":{}}', "an error without a message"),
        ("not json", "the answer is not a progress stream: 'not json'"),
        ("[1, 2]", "the answer is not a progress stream"),
    ],
)
def test_a_pull_progress_line_with_an_error_is_a_docker_engine_error(
    line: str, message: str
) -> None:
    with pytest.raises(DockerEngineError) as caught:
        _raise_pull_error("pull x", line)
    assert caught.value.operation == "pull x"
    assert caught.value.message.startswith(message)


def test_an_error_document_gives_its_message() -> None:
    document = b'{"cause":"no such container","message":"failed to obtain logs","response":500}'
    assert error_document_message(document) == "failed to obtain logs"


@pytest.mark.parametrize("document", [b"{not json", b"[1, 2]", b'{"message": 7}', b"{}"])
def test_an_error_document_without_a_message_is_quoted_short(document: bytes) -> None:
    assert error_document_message(document + b"x" * 5000).startswith("the answer is not framed")
    assert len(error_document_message(document + b"x" * 5000)) < 300


PODMAN_LATE_ERROR = (
    b'{"cause":"container state improper","message":"failed to obtain logs","response":500}\n'
)


async def _logs_server(tmp_path: Path, bodies: list[bytes]) -> tuple[aiohttp.web.AppRunner, str]:
    """An answer like Podman 4.3's logs handler: 200, then whatever the body is."""
    served = iter(bodies)

    async def logs(request: aiohttp.web.Request) -> aiohttp.web.StreamResponse:
        response = aiohttp.web.StreamResponse(status=200)
        await response.prepare(request)
        await response.write(next(served))
        await response.write_eof()
        return response

    app = aiohttp.web.Application()
    app.router.add_get("/v1.41/containers/{id}/logs", logs)
    runner = aiohttp.web.AppRunner(app)
    await runner.setup()
    socket = str(tmp_path / "engine.sock")
    await aiohttp.web.UnixSite(runner, socket).start()
    return runner, socket


async def _read_all(socket: str) -> list[tuple[str, bytes]]:
    got: list[tuple[str, bytes]] = []

    async def on_frame(stream: str, payload: bytes) -> None:
        got.append((stream, payload))

    client = aiodocker.Docker(url=f"unix://{socket}", api_version="v1.41")
    try:
        engine = DockerEngine(client, request_timeout=5)
        await engine.read_output("c" * 64, on_frame, follow=True, timeout=5)
    finally:
        await client.close()
    return got


@pytest.mark.anyio
async def test_a_late_refusal_before_any_frame_is_read_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Podman 4.3 answers 200 and then fails to look the container up (under load)."""
    monkeypatch.setattr("ephemeral_registry._engine.retry.DELAY", 0)
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    runner, socket = await _logs_server(tmp_path, [PODMAN_LATE_ERROR, PODMAN_LATE_ERROR, frame])
    try:
        assert await _read_all(socket) == [("stdout", b"hi\n")]
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_a_late_refusal_that_lasts_is_the_engines_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ephemeral_registry._engine.retry.DELAY", 0)
    runner, socket = await _logs_server(tmp_path, [PODMAN_LATE_ERROR] * 5)
    try:
        with pytest.raises(DockerEngineError, match="failed to obtain logs") as raised:
            await _read_all(socket)
        assert raised.value.status == 500
    finally:
        await runner.cleanup()


@pytest.mark.anyio
async def test_garbage_after_a_frame_is_not_read_again(tmp_path: Path) -> None:
    frame = b"\x01\x00\x00\x00\x00\x00\x00\x03hi\n"
    runner, socket = await _logs_server(tmp_path, [frame + PODMAN_LATE_ERROR])
    try:
        with pytest.raises(DockerEngineError, match="not framed"):
            await _read_all(socket)
    finally:
        await runner.cleanup()
