"""The registry's life cycle against the real engine: bring-up, readiness, removal."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiodocker
import anyio
import httpx
import pytest

from ephemeral_registry import (
    DockerUnavailableError,
    Endpoints,
    ImageNotFoundError,
    ImagePullError,
    InvalidArgumentError,
    RegistryClosedError,
    RegistryNotReadyError,
)
from ephemeral_registry._engine import ContainerSpec, DockerEngine
from ephemeral_registry._labels import Owner, labels, new_session_id
from ephemeral_registry._readiness import TOKEN_HEADER

from ..support import testbed
from ..support.engine_proxy import EngineProxy
from ..support.helpers import get, registry_under_test, session_resources

pytestmark = pytest.mark.anyio


async def get_v2(pull_endpoint: str) -> httpx.Response:
    return await get(pull_endpoint, "/v2/")


@pytest.mark.parametrize("image", [testbed.REGISTRY2, testbed.REGISTRY3])
async def test_ready_registry_takes_pushes_from_the_network_and_pulls_from_the_host(
    image: str,
) -> None:
    """An image pushed by crane from a container on the network is pulled back by the engine."""
    async with registry_under_test(registry_image=image) as registry:
        endpoints = await registry.ready()
        pushed = await testbed.crane_push_cli(
            endpoints.network, endpoints.push_endpoint, testbed.SAMPLE, "sample/app:v1"
        )
        assert pushed.startswith(f"{endpoints.push_endpoint}/sample/app@sha256:")
        pulled = f"{endpoints.pull_endpoint}/sample/app:v1"
        source = testbed.config_digest(testbed.SAMPLE)
        assert await testbed.pulled_config_digest(pulled) == source
    assert session_resources(registry) == set()


async def test_endpoints_name_the_network_the_container_and_a_loopback_port() -> None:
    """push_endpoint is <container>:5000 on the network; pull_endpoint is 127.0.0.1:<port>."""
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        container = testbed.inspect("container", registry.name)
        network = testbed.inspect("network", endpoints.network)
        binding = container["NetworkSettings"]["Ports"]["5000/tcp"][0]
        assert endpoints == Endpoints(
            network=registry.name,
            push_endpoint=f"{registry.name}:5000",
            pull_endpoint=f"127.0.0.1:{binding['HostPort']}",
        )
        assert binding["HostIp"] == "127.0.0.1"
        assert container["Id"] in network["Containers"]
        assert (await get_v2(endpoints.pull_endpoint)).status_code == 200


@pytest.mark.parametrize("image", [testbed.REGISTRY2, testbed.REGISTRY3])
@pytest.mark.parametrize("auth", [False, True], ids=["open", "auth"])
async def test_every_answer_of_the_registry_carries_its_own_token(image: str, auth: bool) -> None:
    """The registry proves it is this block's: a secret of its session in a header of
    every answer, 401s included, set through its environment on every engine."""
    async with registry_under_test(registry_image=image, auth=auth) as registry:
        endpoints = await registry.ready()
        answer = await get_v2(endpoints.pull_endpoint)
        assert answer.status_code == (401 if auth else 200)
        token = answer.headers[TOKEN_HEADER]
        assert len(token) == 32
        assert token == registry._session.token
        async with registry_under_test(registry_image=image, auth=auth) as other:
            other_answer = await get_v2((await other.ready()).pull_endpoint)
            assert other_answer.headers[TOKEN_HEADER] not in ("", token)
    assert session_resources(registry) == set()


async def test_every_resource_is_labelled_with_its_session_and_owner() -> None:
    """Containers and networks name the session, host, pid and process start time."""
    async with registry_under_test() as registry:
        await registry.ready()
        for kind in ("container", "network"):
            labels = testbed.inspect(kind, registry.name)
            labels = labels["Config"]["Labels"] if kind == "container" else labels["Labels"]
            assert labels["ephemeral-registry.session"] == registry.session_id
            assert labels["ephemeral-registry.owner.pid"] == str(os.getpid())
            assert labels["ephemeral-registry.owner.host"] == os.uname().nodename
            assert labels["ephemeral-registry.owner.started"].isdigit()
        assert len(session_resources(registry)) == 2


async def test_exit_removes_container_network_and_volume() -> None:
    """On a normal exit the container, its anonymous volume and the network are gone."""
    async with registry_under_test() as registry:
        await registry.ready()
        mounts = testbed.inspect("container", registry.name)["Mounts"]
        volumes = [mount["Name"] for mount in mounts if mount["Type"] == "volume"]
        assert volumes, "the test bed's registry image declares a volume, like registry:2"
    assert session_resources(registry) == set()
    for volume in volumes:
        assert testbed.docker("volume", "ls", "-q", "--filter", f"name={volume}").strip() == ""


async def test_ready_may_be_awaited_many_times_from_many_tasks() -> None:
    """Every waiter gets the same endpoints."""
    results: list[Endpoints] = []
    async with registry_under_test() as registry:

        async def wait() -> None:
            results.append(await registry.ready())

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(wait)
        results.append(await registry.ready())
    assert len(results) == 6
    assert len(set(results)) == 1


async def test_a_late_registry_is_not_ready_before_it_answers() -> None:
    """Whatever a TCP connect says, ready() waits for the HTTP answer 2 s later."""
    async with registry_under_test(registry_image=testbed.REGISTRY_LATE) as registry:
        port = await wait_for_host_port(registry.name)
        port_seen = time.monotonic()
        # docker-proxy accepts the connection (Podman's DNAT refuses it): proof of nothing.
        with contextlib.suppress(OSError):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            await stream.aclose()
        with anyio.move_on_after(1.0):
            await registry.ready()
            pytest.fail("ready() returned while the registry was not listening yet")
        endpoints = await registry.ready()
        assert time.monotonic() - port_seen > 1.5
        assert (await get_v2(endpoints.pull_endpoint)).status_code == 200


async def wait_for_host_port(container: str) -> int:
    with anyio.fail_after(10):
        while True:
            ports = testbed.docker("port", container, "5000/tcp", check=False).split()
            if ports:
                return int(ports[0].rsplit(":", 1)[1])
            await anyio.sleep(0.02)


async def test_a_registry_that_exits_fails_fast_with_its_logs() -> None:
    """An exiting container ends the wait at once; the error has its state and last lines."""
    started = time.monotonic()
    async with registry_under_test(registry_image=testbed.REGISTRY_EXITS) as registry:
        with pytest.raises(RegistryNotReadyError) as caught:
            await registry.ready()
    assert time.monotonic() - started < 5  # ready_timeout is 30 s
    error = caught.value
    assert "exited with code 3" in error.reason
    assert error.state is not None
    assert error.state.exit_code == 3
    assert any('storage driver "nowhere"' in line for line in error.logs)
    assert 'storage driver "nowhere"' in str(error)
    assert session_resources(registry) == set()


async def test_a_registry_that_never_answers_times_out() -> None:
    """ready_timeout bounds the wait; the error says the container was still running."""
    started = time.monotonic()
    async with registry_under_test(
        registry_image=testbed.REGISTRY_SILENT, ready_timeout=1.0
    ) as registry:
        with pytest.raises(RegistryNotReadyError) as caught:
            await registry.ready()
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5
    assert "no answer within 1 s" in caught.value.reason
    assert caught.value.state is not None
    assert caught.value.state.status == "running"
    assert session_resources(registry) == set()


async def test_an_unseen_bring_up_failure_is_raised_at_exit() -> None:
    """A block that never awaited ready() still learns that the bring-up failed."""
    with pytest.raises(RegistryNotReadyError):
        async with registry_under_test(registry_image=testbed.REGISTRY_EXITS) as registry:
            # Wait for the failure without ready(), which would count as seeing it.
            with pytest.raises(RegistryNotReadyError):
                await registry._bring_up.running.get()


@pytest.mark.parametrize(
    "raised",
    [
        KeyError("from the block"),
        ExceptionGroup("mine", [ValueError("one")]),
        ExceptionGroup("mine", [ExceptionGroup("nested", [KeyError("deep")])]),
        BaseExceptionGroup("base", [ValueError("in a base group")]),
    ],
    ids=repr,
)
@pytest.mark.parametrize("when", ["ready", "bringing up"])
async def test_an_error_in_the_block_comes_out_as_the_very_object_raised(
    raised: BaseException, when: str
) -> None:
    """Not wrapped in a group, nor unwrapped from the user's own; and nothing is left."""
    with pytest.raises(BaseException) as caught:  # noqa: PT011 (identity checked below)
        async with registry_under_test() as registry:
            if when == "ready":
                await registry.ready()
            raise raised
    assert caught.value is raised
    assert session_resources(registry) == set()


async def test_a_block_that_exits_early_leaves_nothing() -> None:
    """Leaving the block while the bring-up is under way stops it and removes its resources."""
    async with registry_under_test() as registry:
        pass
    assert session_resources(registry) == set()
    with pytest.raises(RegistryClosedError):
        await registry.ready()


@pytest.mark.parametrize("address", ["unix:///nonexistent/docker.sock", "tcp://127.0.0.1:9"])
async def test_an_unreachable_engine_is_reported_within_two_seconds(
    address: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DockerUnavailableError names the address; the block then exits cleanly."""
    monkeypatch.setenv("DOCKER_HOST", address)
    started = time.monotonic()
    async with registry_under_test() as registry:
        with pytest.raises(DockerUnavailableError) as caught:
            await registry.ready()
    assert time.monotonic() - started < 2
    assert address.split("://")[1] in caught.value.address
    assert "DOCKER_HOST" in str(caught.value)


async def test_docker_host_names_the_engine_whatever_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """docker_host= wins over DOCKER_HOST (as the docker CLI's -H) and leaves the
    environment as it was; the registry comes up on that engine and is removed."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    async with registry_under_test(docker_host=testbed.ENGINE) as registry:
        endpoints = await registry.ready()
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
        assert os.environ["DOCKER_HOST"] == "unix:///nonexistent/docker.sock"
    assert session_resources(registry) == set()


async def test_docker_and_docker_host_together_are_refused_before_anything_is_made() -> None:
    """A client names its engine already: InvalidArgumentError at entry."""
    async with aiodocker.Docker(url=testbed.ENGINE) as client:
        with pytest.raises(InvalidArgumentError) as caught:
            async with registry_under_test(docker=client, docker_host=testbed.ENGINE):
                pytest.fail("entered with both")
    assert caught.value.argument == "docker_host"


async def test_pull_never_with_a_missing_image_creates_nothing() -> None:
    """ImageNotFoundError, raised before any network or container exists."""
    async with aiodocker.Docker() as client:
        async with registry_under_test(
            registry_image="ephemeral-registry-testbed/does-not-exist:1", docker=client
        ) as registry:
            with pytest.raises(ImageNotFoundError) as caught:
                await registry.ready()
            # The bring-up has ended; nothing of this session was ever created.
            assert session_resources(registry) == set()
            assert registry._session.created.network is None
        assert caught.value.image == "ephemeral-registry-testbed/does-not-exist:1"
        assert caught.value.pull == "never"


@pytest.fixture
async def source_registry() -> AsyncIterator[Endpoints]:
    """A registry holding a copy of the test bed's registry image, to pull from."""
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        for image, ref in (
            (testbed.REGISTRY2, "mirror/registry:2"),
            (testbed.CRANE, "mirror/crane"),
        ):
            await testbed.crane_push_cli(endpoints.network, endpoints.push_endpoint, image, ref)
        yield endpoints


@pytest.mark.parametrize("pull", ["missing", "always"])
async def test_a_missing_registry_image_is_pulled(source_registry: Endpoints, pull: str) -> None:
    """With pull="missing" or "always", the engine pulls the registry image, then runs it."""
    image = f"{source_registry.pull_endpoint}/mirror/registry:2"
    crane = f"{source_registry.pull_endpoint}/mirror/crane"  # "always" pulls crane too
    try:
        async with registry_under_test(
            registry_image=image, crane_image=crane, pull=pull
        ) as registry:
            endpoints = await registry.ready()
            assert (await get_v2(endpoints.pull_endpoint)).status_code == 200
        assert testbed.docker("image", "ls", "-q", image).strip()
    finally:
        testbed.docker("rmi", image, crane, check=False)


async def test_an_image_that_cannot_be_pulled_gives_image_pull_error(
    source_registry: Endpoints,
) -> None:
    """The engine's refusal is carried in ImagePullError."""
    image = f"{source_registry.pull_endpoint}/nothing/here:1"
    async with registry_under_test(registry_image=image, pull="missing") as registry:
        with pytest.raises(ImagePullError) as caught:
            await registry.ready()
    assert caught.value.image == image
    assert caught.value.option == "registry_image"
    # It says how to choose another image, and how to bring this one in offline.
    for advice in ("--registry-image", "$EPHEMERAL_REGISTRY_REGISTRY_IMAGE", "docker load -i"):
        assert advice in str(caught.value)
    assert session_resources(registry) == set()


async def test_a_caller_supplied_client_is_left_open() -> None:
    """docker=client is used, and not closed."""
    async with aiodocker.Docker() as client:
        async with registry_under_test(docker=client) as registry:
            await registry.ready()
        assert "ApiVersion" in await client.version()


async def test_the_engine_is_pinged_once_and_never_asked_its_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One /_ping gives the API version, before any versioned request, from every task.

    aiodocker asks /version before the first versioned request of a client that
    has none; Podman takes about 0.25 s of CPU to answer it, and the crane
    image check that overlaps the bring-up used to make it ask, slowing the
    registry's start.
    """
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        monkeypatch.setenv("DOCKER_HOST", proxy.url)
        async with registry_under_test(pull="missing") as registry:
            await registry.ready()
            await anyio.sleep(0.2)  # the background sweep's requests too
        assert session_resources(registry) == set()
    paths = [request.split(" ")[1] for request in proxy.requests]
    assert paths[0] == "/_ping", paths
    assert paths.count("/_ping") == 1, paths
    assert not [p for p in paths if p.split("?")[0].endswith("/version")], paths
    assert len(paths) >= 8, paths  # the whole life cycle was seen


async def test_two_registries_at_once_do_not_collide() -> None:
    """Names, networks and ports differ; both answer."""
    async with registry_under_test() as one, registry_under_test() as two:
        first, second = await one.ready(), await two.ready()
        assert len({first.network, second.network}) == 2
        assert len({first.pull_endpoint, second.pull_endpoint}) == 2
        for endpoints in (first, second):
            assert (await get_v2(endpoints.pull_endpoint)).status_code == 200


async def test_the_teardown_overlaps_removals_only_where_the_engine_is_safe(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Docker 29 removes the network while the containers go; Docker 20.10 and Podman after.

    test_load.py runs each engine's choice under load; this checks which one it makes.
    """
    events: list[str] = []
    for name in ("remove_container", "disconnect", "remove_network"):
        call = getattr(DockerEngine, name)

        async def logged(
            engine: DockerEngine, *args: str, _call: Any = call, _name: str = name
        ) -> None:
            events.append(f"{_name} starts")
            await _call(engine, *args)
            events.append(f"{_name} ends")

        monkeypatch.setattr(DockerEngine, name, logged)
    async with registry_under_test() as registry:
        await registry.ready()
        identity = registry._engine.known_identity
    assert identity is not None
    expected_product = "podman" if testbed.is_podman() else "docker"
    assert identity.product == expected_product
    newer_docker = identity.api_version >= (1, 52)
    assert testbed.has_containerd_store() == newer_docker  # the test bed's 29 and 20.10
    if identity.product == "docker" and newer_docker:
        assert identity.removes_concurrently
        assert events.index("disconnect starts") < events.index("remove_container ends")
    else:
        assert not identity.removes_concurrently
        assert "disconnect starts" not in events
        assert events.index("remove_network starts") > events.index("remove_container ends")
    assert "remove_network ends" in events
    assert session_resources(registry) == set()


async def test_the_published_port_is_released_after_the_block() -> None:
    """Nothing is left forwarding the host port: a connection to it is refused at once.

    A forwarding rule left behind (Podman's netavark DNAT, say) would send it
    to a container that is gone, and would catch the next registry given the port.
    """
    async with registry_under_test() as registry:
        host, _, port = (await registry.ready()).pull_endpoint.rpartition(":")
        # The test bed's Docker 29 publishes with docker-proxy alone (iptables off),
        # rootless Podman with its rootlessport process; an engine shaped like Docker
        # Desktop's keeps its rules in its own network namespace.
        by_nat = not (
            testbed.has_containerd_store() or testbed.is_rootless() or testbed.is_desktop_shaped()
        )
        assert testbed.forwards(port) == by_nat
    assert not testbed.forwards(port)
    with anyio.fail_after(2), pytest.raises(OSError, match="connection attempts failed") as caught:
        await anyio.connect_tcp(host, int(port))
    assert isinstance(caught.value.__cause__, ConnectionRefusedError)  # not a lost packet


async def test_a_network_that_still_lists_an_endpoint_is_removed_all_the_same() -> None:
    """Docker 20.10 sometimes lists the endpoint of a container it has just removed.

    The network removal then answers "has active endpoints"; the endpoints it
    lists are forced off and the removal tried again. Made here for real with a
    container still attached. Podman names no endpoints (it refuses with
    "network is being used"), and its containers' removal never lags behind.
    """
    if testbed.is_podman():
        pytest.skip("Podman does not answer 'active endpoints'; the retry is Docker's")
    session = new_session_id()
    marks = labels(session, Owner.current(), "test")
    async with aiodocker.Docker(url=testbed.ENGINE) as client:
        engine = DockerEngine(client, request_timeout=30)
        name = f"ephemeral-registry-test-{session}"
        network = await engine.create_network(name, marks)
        spec = ContainerSpec(name, testbed.REGISTRY2, marks, network=network)
        container = await engine.create_container(spec)
        try:
            await engine.start(container)
            await engine.remove_network(network)
            assert testbed.docker("network", "ls", "-q", "--filter", f"id={network}") == ""
        finally:
            await engine.remove_container(container)
            await engine.remove_network(network)
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()
