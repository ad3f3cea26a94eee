"""Cancellation at every await point: it propagates, and nothing is left.

Two ways to find the points:

- at the engine boundary, where resources are made and removed: every call
  the library makes to the engine is numbered, and the caller is cancelled
  right before call N, or right after it returns (the cancellation then
  arrives at the library's next await), for every N;
- in between (the readiness poll, crane's log streams, the export's writes):
  the caller is cancelled after increasing delays across the whole operation.
"""

from __future__ import annotations

import inspect
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral_registry import Registry, _host, _scratch
from ephemeral_registry._engine import DockerEngine, Engine
from ephemeral_registry._lifecycle import EXIT_WATCH

from ..support import testbed
from ..support.helpers import get, registry_under_test, saved, session_resources

pytestmark = pytest.mark.anyio

ENGINE_CALLS = tuple(
    sorted(
        name
        for name in Engine.__abstractmethods__
        if inspect.iscoroutinefunction(getattr(DockerEngine, name))
    )
)
"""Every request of the engine interface that is awaited: all but its properties and the
two that open a block instead (``attached``, ``export``). A call made inside another
(``identify`` inside ``has_image``, say) is numbered too."""

Operation = Callable[[Registry], Awaitable[object]]


class CancelAtCall:
    """Cancels ``scope`` at the ``target``-th engine call (before it, or after it returns)."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, engine: type[Engine] = DockerEngine
    ) -> None:
        self.calls: list[str] = []
        self.target = 0
        self.after = False
        self.scope: anyio.CancelScope | None = None
        self.hit = ""
        for name in ENGINE_CALLS:
            monkeypatch.setattr(engine, name, self._wrap(name, getattr(engine, name)))

    def arm(self, target: int, *, after: bool) -> anyio.CancelScope:
        self.calls, self.target, self.after, self.hit = [], target, after, ""
        self.scope = anyio.CancelScope()
        return self.scope

    def _cancel(self, name: str) -> None:
        assert self.scope is not None
        self.hit = f"{'after' if self.after else 'before'} call {self.target} ({name})"
        self.scope.cancel()

    def _wrap(
        self, name: str, call: Callable[..., Awaitable[Any]]
    ) -> Callable[..., Awaitable[Any]]:
        async def wrapper(engine: Engine, *args: Any, **kwargs: Any) -> Any:
            if anyio.get_current_task().name == EXIT_WATCH:
                return await call(engine, *args, **kwargs)  # not numbered: see run_once
            self.calls.append(name)
            hit = len(self.calls) == self.target
            if hit and not self.after:
                self._cancel(name)
                await anyio.lowlevel.checkpoint()  # raises here, unless shielded
            result = await call(engine, *args, **kwargs)
            if hit and self.after:
                self._cancel(name)  # arrives at the library's next await
            return result

        return wrapper


@pytest.fixture
def cancel_at(monkeypatch: pytest.MonkeyPatch) -> CancelAtCall:
    return CancelAtCall(monkeypatch)


def operations() -> dict[str, Operation]:
    return {
        "bring-up": lambda registry: registry.ready(),
        "push_image (tarball)": lambda registry: registry.push_image(
            testbed.SAMPLE, "cancel/image", layer_compression="gzip"
        ),
        "push_image (copied in)": lambda registry: registry.push_image(
            testbed.SAMPLE, "cancel/image", layer_compression="gzip"
        ),
    }


def copy_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Have crane's source copied in, as for an engine that does not see this host's files."""

    async def does_not_share(*args: object, **kwargs: object) -> bool:
        return False

    monkeypatch.setattr(_host, "shares_files", does_not_share)


async def run_once(operation: Operation, sessions: list[str]) -> bool:
    """The operation inside a registry's block; True if it ran to the end of the block.

    Without the background sweep, and with the calls of the watch for the
    registry's exit left unnumbered: their engine calls interleave with the
    operation's at points that vary from run to run, so call N would not be the
    same call each time (test_sweep.py covers the sweep; every block's exit
    cancels the watch in its wait).
    """
    async with registry_under_test(sweep_leftovers=False) as registry:
        sessions.append(registry.session_id)
        await operation(registry)
    return True


# push_image with layer_compression="gzip" (crane) makes every call push() makes, and the
# export's; "copied in", those of a crane whose source is copied into its container.
@pytest.mark.parametrize("name", ["bring-up", "push_image (tarball)", "push_image (copied in)"])
async def test_cancellation_at_every_engine_call(
    cancel_at: CancelAtCall, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    """Before and after each engine call of the bring-up, the operation and the teardown."""
    if name.endswith("(copied in)"):
        copy_the_source(monkeypatch)
    operation = operations()[name]
    sessions: list[str] = []
    cancel_at.arm(0, after=False)
    assert await run_once(operation, sessions)
    total = len(cancel_at.calls)
    assert total >= 8, cancel_at.calls
    hits = []
    for target in range(1, total + 1):
        for after in (False, True):
            finished = False
            with cancel_at.arm(target, after=after) as scope:
                finished = await run_once(operation, sessions)
            if cancel_at.hit:  # a call cancelled by the library itself (a lost race) never returns
                hits.append(cancel_at.hit)
                assert scope.cancelled_caught, f"cancellation swallowed {cancel_at.hit}"
                assert not finished, f"the block ran on after cancellation {cancel_at.hit}"
            leftovers = testbed.labelled(f"{testbed.LABEL}={sessions[-1]}")
            assert leftovers == set(), f"left {leftovers} when cancelled {cancel_at.hit}"
    # Every call was reached and cancelled before it; the "after" cases miss only the calls
    # that the library cancels itself (the exit wait that loses the readiness race, say).
    assert sum(hit.startswith("before") for hit in hits) == total, hits


@pytest.mark.parametrize("copied", [False, True], ids=["mounted", "copied"])
async def test_cancellation_at_increasing_delays_during_an_export_and_push(
    monkeypatch: pytest.MonkeyPatch, copied: bool
) -> None:
    """The export's stream, the layout's writes, the copy into crane's container, crane's log
    streams: cancelled anywhere."""
    if copied:
        copy_the_source(monkeypatch)
    image = testbed.REGISTRY3  # 55 MB: the export and the push take a while
    started = time.monotonic()
    sessions: list[str] = []
    operation: Operation = lambda registry: registry.push_image(image, "cancel/big")  # noqa: E731
    assert await run_once(operation, sessions)
    duration = time.monotonic() - started

    def exports() -> set[Path]:
        """This process's temporary exports (by the pid in their names: another process's
        runs, of this user or another, are not this test's)."""
        found = _scratch.find([Path(tempfile.gettempdir())])
        return {each.path for each in found if each.kind == "export" and each.pid == os.getpid()}

    before = exports()
    steps = 16

    async def then_wait(registry: Registry) -> None:
        # Runs may be quicker than the measured one: wait, so every delay cancels something.
        await operation(registry)
        await anyio.sleep_forever()

    for step in range(steps):
        delay = duration * step / steps
        finished = False
        with anyio.move_on_after(delay) as scope:
            finished = await run_once(then_wait, sessions)
        assert scope.cancelled_caught, f"not cancelled after {delay:.2f} s of {duration:.2f} s"
        assert not finished
        assert testbed.labelled(f"{testbed.LABEL}={sessions[-1]}") == set()
        assert exports() == before, "export files left"


@pytest.mark.parametrize("after", [False, True], ids=["before", "after"])
@pytest.mark.parametrize("call", ["remove_container", "remove_network"])
async def test_cancelling_during_the_teardown_still_removes_everything(
    monkeypatch: pytest.MonkeyPatch, call: str, after: bool
) -> None:
    """The removal is shielded: it finishes, then the cancellation propagates.

    The caller is cancelled right before each removal request of the
    teardown, or right after it returns: moments, not delays, so that it
    holds on engines of any speed.
    """
    scope = anyio.CancelScope()
    armed = False
    original = getattr(DockerEngine, call)

    async def cancelling(self: DockerEngine, *args: Any) -> Any:
        if armed and not after:
            scope.cancel()
        result = await original(self, *args)
        if armed and after:
            scope.cancel()
        return result

    monkeypatch.setattr(DockerEngine, call, cancelling)
    with scope:
        async with registry_under_test() as registry:
            await registry.ready()
            armed = True
    assert scope.cancelled_caught, (
        f"the exit swallowed a cancellation {'after' if after else 'before'} {call}"
    )
    assert session_resources(registry) == set()


# Cancellation of one wait, of the bring-up, and of a push with each pusher.


async def test_cancelling_one_ready_call_does_not_cancel_the_bring_up() -> None:
    """A waiter that gives up leaves the bring-up going for the others."""
    async with registry_under_test() as registry:
        with anyio.move_on_after(0.01) as scope:
            await registry.ready()
        assert scope.cancelled_caught
        endpoints = await registry.ready()
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200


@pytest.mark.parametrize("delay", [0, 0.001, 0.005, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.45, 0.7])
async def test_cancelling_the_bring_up_leaves_nothing(delay: float) -> None:
    """Cancellation at many moments of the bring-up propagates and removes everything."""
    reached_ready = False
    mine = f"{testbed.OWNER_PID_LABEL}={os.getpid()}"
    before = testbed.labelled(mine)
    registry = None
    with anyio.move_on_after(delay) as scope:
        async with registry_under_test() as registry:
            await registry.ready()
            reached_ready = True
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    if registry is None:  # cancelled on entry (while the engine was looked for): nothing made
        assert testbed.labelled(mine) <= before
    else:
        assert session_resources(registry) == set(), f"leftovers (ready reached: {reached_ready})"


async def test_cancelling_a_push_removes_its_container(tmp_path: Path) -> None:
    """The cancellation propagates; the crane container is gone when push() returns."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with registry_under_test(crane_image=testbed.CRANE_HANGS) as registry:
        started = anyio.Event()
        with anyio.move_on_after(5) as scope:
            async with anyio.create_task_group() as tg:
                tg.start_soon(lambda: registry.push(tarball, "xy", on_log=lambda _: started.set()))
                await started.wait()
                tg.cancel_scope.cancel()
        assert not scope.cancelled_caught
        assert len(session_resources(registry)) == 2


async def test_cancelling_a_native_push_leaves_the_registry_usable() -> None:
    """Cancelled in the middle of a layer's upload; the block exits cleanly after."""
    async with registry_under_test(pusher="native") as registry:
        await registry.ready()
        with anyio.move_on_after(0.3) as scope:
            await registry.push_image(testbed.REGISTRY3, "cancelled/registry")
        assert scope.cancelled_caught
        result = await registry.push_image(testbed.SAMPLE, "after/cancel")
        assert result.digest.startswith("sha256:")
    assert session_resources(registry) == set()
