"""The engine failing under the library: a typed error in bounded time, never a hang.

The engine is reached through a proxy that can make it look stopped (socket
gone, connections cut) or stuck (nothing answered). When it comes back,
sweep() removes whatever could not be removed while it was away.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker
import anyio
import anyio.abc
import pytest

from ephemeral_registry import (
    CleanupError,
    DockerEngineError,
    DockerUnavailableError,
    EngineTimeoutError,
    EphemeralRegistryError,
    PushError,
    PushTimeoutError,
    sweep,
)
from ephemeral_registry._engine import DockerEngine

from ..support import testbed
from ..support.engine_proxy import EngineProxy
from ..support.helpers import registry_under_test, session_resources

pytestmark = pytest.mark.anyio

FAST = {"request_timeout": 1.0, "cleanup_timeout": 2.0, "sweep_leftovers": False}


@pytest.fixture
async def proxy(tmp_path: Path) -> AsyncIterator[EngineProxy]:
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        yield proxy


@pytest.fixture
async def client(proxy: EngineProxy) -> AsyncIterator[aiodocker.Docker]:
    async with aiodocker.Docker(url=proxy.url) as client:
        yield client


def before_call(
    monkeypatch: pytest.MonkeyPatch, name: str, action: Callable[[], Awaitable[None]]
) -> None:
    """Run ``action`` just before the library's first call to ``DockerEngine.<name>``."""
    call = getattr(DockerEngine, name)
    done = False

    async def wrapper(engine: DockerEngine, *args: Any, **kwargs: Any) -> Any:
        nonlocal done
        if not done:
            done = True
            await action()
        return await call(engine, *args, **kwargs)

    monkeypatch.setattr(DockerEngine, name, wrapper)


async def sweep_after_return(proxy: EngineProxy, session: str) -> None:
    """The engine is back: sweep() removes the session's leftovers."""
    await proxy.resume()
    assert testbed.labelled(f"{testbed.LABEL}={session}"), "nothing was left to sweep"
    removed = await sweep(sessions=[session])
    assert {leftover.session for leftover in removed} == {session}
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


async def hang(proxy: EngineProxy) -> None:
    proxy.hang()


@pytest.mark.parametrize("failure", ["stuck", "stopped"])
async def test_the_engine_failing_during_the_bring_up(
    proxy: EngineProxy,
    client: aiodocker.Docker,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """ready() raises EngineTimeoutError (stuck) or DockerUnavailableError (stopped), the
    exit CleanupError; then sweep() cleans up."""
    action = (lambda: hang(proxy)) if failure == "stuck" else proxy.stop
    before_call(monkeypatch, "start", action)
    started = anyio.current_time()
    with anyio.fail_after(10), pytest.raises(CleanupError) as cleanup:
        async with registry_under_test(docker=client, **FAST) as registry:
            with pytest.raises(EphemeralRegistryError) as caught:
                await registry.ready()
    if failure == "stuck":
        assert type(caught.value) is EngineTimeoutError
        assert caught.value.operation.startswith("start the container")
        assert caught.value.limit_name == "request_timeout"
    else:
        assert type(caught.value) is DockerUnavailableError
    assert anyio.current_time() - started < 5
    assert any(registry.name in leftover for leftover in cleanup.value.leftovers)
    await sweep_after_return(proxy, registry.session_id)


@pytest.mark.parametrize("failure", ["stuck", "stopped"])
async def test_the_engine_failing_during_a_push(
    proxy: EngineProxy, client: aiodocker.Docker, tarball: Path, failure: str
) -> None:
    """The push fails with a typed error in bounded time; so does the exit; sweep() cleans up."""
    crane_started = anyio.Event()
    started = anyio.current_time()
    with anyio.fail_after(15), pytest.raises(CleanupError):
        async with registry_under_test(
            docker=client, crane_image=testbed.CRANE_HANGS, push_timeout=3.0, **FAST
        ) as registry:
            await registry.ready()
            async with anyio.create_task_group() as tg:

                async def fail_engine() -> None:
                    await crane_started.wait()
                    if failure == "stuck":
                        proxy.hang()
                    else:
                        await proxy.stop()

                tg.start_soon(fail_engine)
                with pytest.raises(EphemeralRegistryError) as caught:
                    await registry.push(tarball, "doomed", on_log=lambda _: crane_started.set())
    if failure == "stuck":  # crane's time runs out first: the engine was never asked to give up
        assert type(caught.value) is PushTimeoutError
        assert caught.value.stage == "push"
        assert "did not finish within 3 s" in str(caught.value)
    else:  # the connections that follow crane's output and wait for it are cut
        assert type(caught.value) is DockerUnavailableError
    assert anyio.current_time() - started < 12
    await sweep_after_return(proxy, registry.session_id)


async def test_the_engine_stopping_before_the_teardown(
    proxy: EngineProxy, client: aiodocker.Docker
) -> None:
    """The exit raises CleanupError at once, naming what is left; sweep() removes it later."""
    with anyio.fail_after(10), pytest.raises(CleanupError) as caught:
        async with registry_under_test(docker=client, **FAST) as registry:
            await registry.ready()
            await proxy.stop()
    assert len(caught.value.leftovers) == 2  # the container and the network
    assert "ephemeral-registry.session" in str(caught.value)
    await sweep_after_return(proxy, registry.session_id)


@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_the_registry_killed_during_a_push(tmp_path: Path, pusher: str) -> None:
    """The push ends at once with a PushError naming the exit (not after crane's retries or
    push_timeout), then the block exits cleanly."""
    tarball = tmp_path / "big.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.REGISTRY3)
    killed_at: float | None = None
    with anyio.fail_after(60):
        async with registry_under_test(pusher=pusher) as registry:
            await registry.ready()

            async def kill_registry(line: str) -> None:
                nonlocal killed_at
                if killed_at is None:
                    killed_at = time.monotonic()
                    await testbed.adocker("kill", registry.name)

            with pytest.raises(PushError) as caught:
                await registry.push(tarball, "interrupted/push", on_log=kill_registry)
            failed_at = time.monotonic()
    assert killed_at is not None
    assert f"the registry container {registry.name} exited with code" in caught.value.reason
    assert failed_at - killed_at < 10, "the push went on long after the registry was killed"


def removed_before(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Someone else removes the container just before the library's ``DockerEngine.<name>`` call."""
    call = getattr(DockerEngine, name)

    async def wrapper(engine: DockerEngine, container_id: str, *args: Any, **kwargs: Any) -> Any:
        await testbed.adocker("rm", "-f", "-v", container_id)  # its volume too: nothing left
        return await call(engine, container_id, *args, **kwargs)

    monkeypatch.setattr(DockerEngine, name, wrapper)


@pytest.mark.parametrize(
    ("call", "options"),
    [("start", {}), ("attachment", {}), ("copy_in", {"auth": True})],
)
async def test_a_container_removed_by_someone_else_is_a_docker_engine_error(
    monkeypatch: pytest.MonkeyPatch, call: str, options: dict[str, Any]
) -> None:
    """The engine's 404 is DockerEngineError (status 404, naming the request), nothing private."""
    removed_before(monkeypatch, call)
    with anyio.fail_after(30):
        async with registry_under_test(**options) as registry:
            with pytest.raises(EphemeralRegistryError) as caught:
                await registry.ready()
    assert type(caught.value) is DockerEngineError
    assert caught.value.status == 404
    assert "container" in caught.value.operation
    assert session_resources(registry) == set()


async def test_an_image_removed_before_its_export_is_a_docker_engine_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """push_image of an image that goes away between its check and its export: a 404."""
    image = f"{testbed.PREFIX}/vanishing:{testbed.LABEL.split('.')[0]}"
    await testbed.adocker("tag", testbed.SAMPLE, image)
    export = DockerEngine.export

    def export_after_removal(engine: DockerEngine, name: str, *, timeout: float) -> Any:
        testbed.docker("rmi", image)
        return export(engine, name, timeout=timeout)

    monkeypatch.setattr(DockerEngine, "export", export_after_removal)
    try:
        async with registry_under_test() as registry:
            with pytest.raises(EphemeralRegistryError) as caught:
                await registry.push_image(image, "vanishing/app:1")
    finally:
        testbed.docker("rmi", image, check=False)
    assert type(caught.value) is DockerEngineError
    assert caught.value.status == 404
    assert caught.value.operation == f"export the image {image}"


async def test_an_export_that_runs_past_push_timeout_is_a_push_timeout(
    proxy: EngineProxy, client: aiodocker.Docker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stuck export is the push's PushTimeoutError (a TimeoutError), naming the export and
    push_timeout, not the engine's EngineTimeoutError nor "start one"."""
    export = DockerEngine.export

    def export_stuck(engine: DockerEngine, image: str, *, timeout: float) -> Any:
        proxy.hang()
        return export(engine, image, timeout=timeout)

    monkeypatch.setattr(DockerEngine, "export", export_stuck)
    started = anyio.current_time()
    with anyio.fail_after(20):
        async with registry_under_test(docker=client, push_timeout=2.0, **FAST) as registry:
            await registry.ready()
            with pytest.raises(EphemeralRegistryError) as caught:
                await registry.push_image(testbed.SAMPLE, "slow/app:1")
            await proxy.resume()
    assert type(caught.value) is PushTimeoutError
    assert isinstance(caught.value, TimeoutError)
    assert (caught.value.limit, caught.value.stage) == (2.0, "export")
    assert f"export of the image {testbed.SAMPLE}" in caught.value.reason
    assert "push_timeout=" in str(caught.value)
    assert anyio.current_time() - started < 10
    assert session_resources(registry) == set()


async def test_a_pull_that_runs_past_its_limit_is_an_engine_timeout() -> None:
    """A pull from a registry that never answers: EngineTimeoutError naming the pull and
    pull_timeout, not "start an engine"."""
    connections: list[anyio.abc.SocketStream] = []

    async def hold(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            connections.append(stream)  # accepted, never answered
            await anyio.sleep_forever()

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    image = f"127.0.0.1:{port}/stalls/registry:1"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, hold)
        with anyio.fail_after(20):
            async with registry_under_test(
                registry_image=image, pull="missing", pull_timeout=1.5, sweep_leftovers=False
            ) as registry:
                with pytest.raises(EphemeralRegistryError) as caught:
                    await registry.ready()
        tg.cancel_scope.cancel()
    assert connections, "the engine never reached the stalling registry"
    assert type(caught.value) is EngineTimeoutError
    assert (caught.value.limit, caught.value.limit_name) == (1.5, "pull_timeout")
    assert caught.value.operation == f"pull {image}"
    assert session_resources(registry) == set()
