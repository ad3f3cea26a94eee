"""The engine failing under the library: a typed error in bounded time, never a hang.

The engine is reached through a proxy that can make it look stopped (socket
gone, connections cut) or stuck (nothing answered). When it comes back,
sweep() removes whatever could not be removed while it was away.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiodocker
import anyio
import pytest

from ephemeral_registry import (
    CleanupError,
    DockerUnavailableError,
    EphemeralRegistryError,
    PushError,
    sweep,
)
from ephemeral_registry._docker import Engine

from . import testbed
from .engine_proxy import EngineProxy
from .helpers import registry_under_test

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
    """Run ``action`` just before the library's first call to ``Engine.<name>``."""
    call = getattr(Engine, name)
    done = False

    async def wrapper(engine: Engine, *args: Any, **kwargs: Any) -> Any:
        nonlocal done
        if not done:
            done = True
            await action()
        return await call(engine, *args, **kwargs)

    monkeypatch.setattr(Engine, name, wrapper)


async def sweep_after_return(proxy: EngineProxy, session: str) -> None:
    """The engine is back: sweep() removes the session's leftovers."""
    await proxy.resume()
    assert testbed.labelled(f"{testbed.LABEL}={session}"), "nothing was left to sweep"
    removed = await sweep()
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
    """ready() raises DockerUnavailableError, the exit CleanupError; then sweep() cleans up."""
    action = (lambda: hang(proxy)) if failure == "stuck" else proxy.stop
    before_call(monkeypatch, "start", action)
    started = anyio.current_time()
    with anyio.fail_after(10), pytest.raises(CleanupError) as cleanup:
        async with registry_under_test(docker=client, **FAST) as registry:
            with pytest.raises(DockerUnavailableError):
                await registry.ready()
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
    assert isinstance(caught.value, PushError | DockerUnavailableError) or "broke off" in str(
        caught.value
    )
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


async def test_the_registry_killed_during_a_push(tmp_path: Path) -> None:
    """crane fails (PushError with its message), then the block exits cleanly."""
    tarball = tmp_path / "big.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.REGISTRY3)
    killed = False
    with anyio.fail_after(60):
        async with registry_under_test() as registry:
            await registry.ready()

            async def kill_registry(line: str) -> None:
                nonlocal killed
                if not killed:
                    killed = True
                    await testbed.adocker("kill", registry.name)

            with pytest.raises(PushError) as caught:
                await registry.push(tarball, "interrupted/push", on_log=kill_registry)
    assert caught.value.exit_code == 1
    assert caught.value.output
