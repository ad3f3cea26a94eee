"""The life cycle of one registry against the fake engine: up, down, and cancelled
at every engine call, the calls read from the engine interface."""

from __future__ import annotations

import collections
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from ephemeral_registry import (
    CleanupError,
    DockerUnavailableError,
    Registry,
    RegistryNotReadyError,
    RegistryUnreachableError,
)
from ephemeral_registry._discovery import EngineAddress
from ephemeral_registry._lifecycle import EXIT_WATCH, life_cycle
from ephemeral_registry._options import Options, resolve
from ephemeral_registry._sweep import live_sessions

from .fake_engine import DOCKER_20_10, DOCKER_29, ENGINE_CALLS, PODMAN, FakeEngine

pytestmark = pytest.mark.anyio

LOCAL = EngineAddress("unix:///fake/engine.sock", "the test")
OVER_SSH = EngineAddress("ssh://box", "the test")

OUTSIDE_THE_LIFE_CYCLE = {
    "attached": "a tunnel's relay, per connection",
    "copy_archive_in": "crane's source, per push",
    "export": "the native pusher's source, per push",
    "platform": "a push's platform check",
    "read_output": "crane's output, per push",
    "shares_files": "crane's choice of mount or copy, per push",
}
"""The engine calls a block makes only to push (or to relay a connection), each with
why; tests/integration/lifecycle/test_cancellation.py cancels at those of a push."""


def options(**given: Any) -> Options:
    defaults = {"sweep_leftovers": False, "ready_timeout": 5, "cleanup_timeout": 5}
    return resolve(**(defaults | given))


def both_images(given: Options) -> tuple[str, str]:
    return given.registry_image, given.crane_image


async def ready(registry: Registry) -> None:
    await registry.ready()


async def not_ready(registry: Registry) -> None:
    with pytest.raises(RegistryNotReadyError):
        await registry.ready()


async def unreachable(registry: Registry) -> None:
    with pytest.raises(RegistryUnreachableError):
        await registry.ready()


async def unavailable(registry: Registry) -> None:
    with pytest.raises(DockerUnavailableError):
        await registry.ready()


@dataclass
class Scenario:
    """One block: its engine, its options, and what it does inside."""

    engine: Callable[[Options], FakeEngine]
    given: dict[str, Any] = field(default_factory=dict)
    address: EngineAddress = LOCAL
    body: Callable[[Registry], Awaitable[None]] = ready


def _lost_create(given: Options) -> FakeEngine:
    engine = FakeEngine(images=both_images(given))
    engine.lose_answer.add("create_container")
    return engine


def _unpublished(given: Options) -> FakeEngine:
    engine = FakeEngine(images=both_images(given))
    engine.publishes = False
    return engine


SCENARIOS = {
    "docker 20.10, images pulled": Scenario(lambda given: FakeEngine(identity=DOCKER_20_10)),
    "docker 29, auth": Scenario(
        lambda given: FakeEngine(identity=DOCKER_29, images=both_images(given)),
        {"auth": True},
    ),
    "podman rootless, every interface, over ssh": Scenario(
        lambda given: FakeEngine(identity=PODMAN, images=both_images(given), rootless=True),
        {"host_ip": "::", "tunnel": True},
        OVER_SSH,
    ),
    "the registry exits at once": Scenario(
        lambda given: FakeEngine(
            images=both_images(given), exits_at_once={given.registry_image: 3}
        ),
        body=not_ready,
    ),
    "the published port reaches nothing": Scenario(_unpublished, body=unreachable),
    "a create's answer is lost": Scenario(_lost_create, body=unavailable),
}


@dataclass
class CancelAt:
    """Cancels ``scope`` right before the ``nth`` call of ``name``, or (``after``) right
    after the ``nth`` of its calls to return."""

    name: str
    nth: int
    after: bool
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    calls: int = 0
    returns: int = 0
    hit: bool = False

    def numbered(self, name: str) -> bool:
        # The watch's calls come when they come, not at the same number each run.
        return name == self.name and anyio.get_current_task().name != EXIT_WATCH

    async def before(self, name: str) -> None:
        if self.numbered(name):
            self.calls += 1
            if not self.after and self.calls == self.nth:
                self.hit = True
                self.scope.cancel()  # raised at the engine call's own await

    def after_call(self, name: str) -> None:
        if self.numbered(name):
            self.returns += 1
            if self.after and self.returns == self.nth:
                self.hit = True
                self.scope.cancel()  # arrives at the library's next await


@dataclass
class Counted:
    """The numbered calls and returns of each engine method in one run (see ``CancelAt``)."""

    calls: collections.Counter[str] = field(default_factory=collections.Counter)
    returns: collections.Counter[str] = field(default_factory=collections.Counter)

    async def before(self, name: str) -> None:
        if anyio.get_current_task().name != EXIT_WATCH:
            self.calls[name] += 1

    def after_call(self, name: str) -> None:
        if anyio.get_current_task().name != EXIT_WATCH:
            self.returns[name] += 1


_counted: dict[str, Counted] = {}


async def counted(name: str) -> Counted:
    """The scenario's calls, counted in a run of its own, once per test session."""
    if name not in _counted:
        _counted[name] = Counted()
        await run(SCENARIOS[name], _counted[name])
    return _counted[name]


async def run(scenario: Scenario, cancel: CancelAt | Counted | None = None) -> FakeEngine:
    """The scenario's block on a fresh fake engine; the engine, afterwards."""
    given = options(**scenario.given)
    engine = scenario.engine(given)
    scope = anyio.CancelScope()
    if isinstance(cancel, CancelAt):
        engine.before, engine.after, scope = cancel.before, cancel.after_call, cancel.scope
    elif cancel is not None:
        engine.before, engine.after = cancel.before, cancel.after_call
    async with engine.publishing():
        with scope:
            async with life_cycle(engine, given, scenario.address) as registry:
                await scenario.body(registry)
    return engine


@pytest.mark.parametrize("name", SCENARIOS)
async def test_every_scenario_ends_with_nothing_left(name: str) -> None:
    """Up (or failed as it should), then down: no container, no network, no live session."""
    sessions = set(live_sessions)
    engine = await run(SCENARIOS[name])
    assert engine.empty
    assert live_sessions == sessions
    assert "create_network" in engine.calls


async def test_the_registry_is_reached_where_its_port_is_published() -> None:
    given = options()
    async with FakeEngine(images=both_images(given)).publishing() as engine:
        async with life_cycle(engine, given, LOCAL) as registry:
            endpoints = await registry.ready()
            (container,) = engine.containers.values()
            host, _, port = endpoints.pull_endpoint.rpartition(":")
            assert (host, int(port)) == ("127.0.0.1", engine.published_port)
            assert endpoints.network == container.spec.network
            assert container.running
        assert engine.empty


async def test_the_blocks_own_error_comes_out_as_itself_once_everything_is_removed() -> None:
    given = options()
    raised = ValueError("the caller's")
    async with FakeEngine(images=both_images(given)).publishing() as engine:
        with pytest.raises(ValueError, match="the caller") as caught:
            async with life_cycle(engine, given, LOCAL) as registry:
                await registry.ready()
                raise raised
        assert caught.value is raised
        assert engine.empty


async def test_a_removal_that_fails_is_a_cleanup_error_naming_what_is_left() -> None:
    given = options(cleanup_timeout=0.2)
    async with FakeEngine(images=both_images(given)).publishing() as engine:
        engine.hang.add("remove_network")
        with pytest.raises(CleanupError, match="network ephemeral-registry-") as caught:
            async with life_cycle(engine, given, LOCAL) as registry:
                await registry.ready()
        assert "cleanup_timeout=0.2" in str(caught.value)
        assert not engine.containers
        assert len(engine.networks) == 1


@pytest.mark.parametrize("name", ENGINE_CALLS)
async def test_a_cancellation_at_any_engine_call_leaves_nothing(name: str) -> None:
    """For each call of the interface, in every scenario: cancelled right before its
    n-th call, and right after its n-th return, for every n; the cancellation comes
    out of the block, and the fake holds nothing. A call no block makes is named,
    with the reason."""
    sessions = set(live_sessions)
    runs = 0
    for scenario_name, scenario in SCENARIOS.items():
        count = await counted(scenario_name)
        points = [(nth, False) for nth in range(1, count.calls[name] + 1)]
        points += [(nth, True) for nth in range(1, count.returns[name] + 1)]
        for nth, after in points:
            cancel = CancelAt(name, nth, after)
            engine = await run(scenario, cancel)
            where = f"{'after return' if after else 'before call'} {nth} of {name}"
            assert cancel.hit, where
            assert cancel.scope.cancelled_caught, where
            assert engine.empty, where
            assert live_sessions == sessions, where
            runs += 1
    if name in OUTSIDE_THE_LIFE_CYCLE:
        assert runs == 0, f"{name} is called by a block now: take it off OUTSIDE_THE_LIFE_CYCLE"
    else:
        assert runs > 0, f"no scenario calls {name}: add one, or say why in OUTSIDE_THE_LIFE_CYCLE"
