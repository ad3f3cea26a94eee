"""The teardown against the fake engine: what it removes, in which order, on which engine."""

from __future__ import annotations

import logging

import anyio
import pytest

from ephemeral_registry import CleanupError, DockerEngineError
from ephemeral_registry._engine import ContainerSpec, Identity
from ephemeral_registry._session import Session
from ephemeral_registry._teardown import tear_down

from .fake_engine import DOCKER_20_10, DOCKER_29, PODMAN, FakeEngine

pytestmark = pytest.mark.anyio

IMAGE = "registry"


async def made(engine: FakeEngine, session: Session, *, cranes: int = 1) -> None:
    """What a bring-up and ``cranes`` pushes under way create, recorded in the session."""
    await engine.identify()
    created = session.created
    created.network = await engine.create_network(session.name, session.labels("network"))
    spec = ContainerSpec(session.name, IMAGE, session.labels("registry"), session.name)
    created.registry = await engine.create_container(spec)
    await engine.start(created.registry)
    for number in range(cranes):
        crane = ContainerSpec(f"{session.name}-push-{number}", IMAGE, {}, session.name)
        created.cranes.add(await engine.create_container(crane))
    engine.calls.clear()


@pytest.mark.parametrize("identity", [DOCKER_20_10, PODMAN], ids=["docker 20.10", "podman"])
async def test_older_engines_remove_the_network_once_its_containers_are_gone(
    identity: Identity,
) -> None:
    """No overlap where it deadlocked Docker 20.10 or left Podman's forwarding behind."""
    engine, session = FakeEngine(identity=identity, images=[IMAGE]), Session.new(auth=False)
    await made(engine, session, cranes=2)
    assert await tear_down(engine, session, timeout=5) is None
    assert engine.empty
    assert not session.created.describe()
    assert engine.calls == ["remove_container"] * 3 + ["remove_network"]


async def test_docker_29_disconnects_and_removes_the_network_beside_the_containers() -> None:
    engine, session = FakeEngine(identity=DOCKER_29, images=[IMAGE]), Session.new(auth=False)
    await made(engine, session, cranes=2)
    assert await tear_down(engine, session, timeout=5) is None
    assert engine.empty
    assert engine.calls.count("disconnect") == 3


@pytest.mark.parametrize(
    ("identity", "network_goes"), [(DOCKER_29, True), (DOCKER_20_10, False)], ids=["29", "20.10"]
)
async def test_only_docker_29_removes_the_network_while_a_container_removal_hangs(
    identity: Identity, network_goes: bool
) -> None:
    engine, session = FakeEngine(identity=identity, images=[IMAGE]), Session.new(auth=False)
    await made(engine, session)
    engine.hang.add("remove_container")
    problem = await tear_down(engine, session, timeout=0.2)
    assert isinstance(problem, CleanupError)
    assert (not engine.networks) is network_goes
    assert (f"network {session.name}" in str(problem)) is not network_goes


async def test_an_engine_never_identified_is_torn_down_the_careful_way() -> None:
    engine, session = FakeEngine(identity=DOCKER_29, images=[IMAGE]), Session.new(auth=False)
    await made(engine, session)
    engine._known = None  # as if the bring-up never pinged it
    assert await tear_down(engine, session, timeout=5) is None
    assert engine.calls == ["remove_container"] * 2 + ["remove_network"]


async def test_a_kept_session_is_left_in_place_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    engine, session = FakeEngine(images=[IMAGE]), Session.new(auth=False)
    await made(engine, session)
    session.kept = True
    with caplog.at_level(logging.WARNING, logger="ephemeral_registry"):
        assert await tear_down(engine, session, timeout=5) is None
    assert (len(engine.containers), len(engine.networks), engine.calls) == (2, 1, [])
    assert f"network {session.name}" in caplog.text


async def test_an_uncertain_create_is_looked_for_by_the_sessions_label() -> None:
    """A create whose answer was lost: the resource exists, unrecorded, and still goes."""
    engine, session = FakeEngine(images=[IMAGE]), Session.new(auth=False)
    await made(engine, session, cranes=0)
    spec = ContainerSpec(f"{session.name}-relay", IMAGE, session.labels("relay"), session.name)
    await engine.create_container(spec)  # never recorded
    session.created.uncertain = True
    assert await tear_down(engine, session, timeout=5) is None
    assert engine.empty
    assert {"list_containers", "list_networks"} <= set(engine.calls)


async def test_a_refused_removal_is_a_cleanup_error_naming_what_is_left() -> None:
    engine, session = FakeEngine(images=[IMAGE]), Session.new(auth=False)
    await made(engine, session, cranes=0)
    refusal = DockerEngineError("remove the container", 500, "driver failed")
    engine.fail["remove_container"] = [refusal]
    problem = await tear_down(engine, session, timeout=5)
    assert isinstance(problem, CleanupError)
    assert problem.__cause__ is refusal
    assert f"container {session.name}" in str(problem)
    assert f"network {session.name}" in str(problem)


async def test_a_removal_that_hangs_ends_at_the_cleanup_timeout() -> None:
    engine, session = FakeEngine(images=[IMAGE]), Session.new(auth=False)
    await made(engine, session, cranes=0)
    engine.hang.add("remove_network")
    problem = await tear_down(engine, session, timeout=0.1)
    assert isinstance(problem, CleanupError)
    assert "not done within cleanup_timeout=0.1 s" in str(problem)
    assert f"network {session.name}" in str(problem)
    assert not engine.containers


async def test_a_cancellation_does_not_stop_the_removal_and_is_left_for_the_caller() -> None:
    engine, session = FakeEngine(images=[IMAGE]), Session.new(auth=False)
    await made(engine, session)
    with anyio.CancelScope() as scope:
        scope.cancel()
        problem = await tear_down(engine, session, timeout=5)
        assert (problem, engine.empty) == (None, True)
        await anyio.lowlevel.checkpoint()
        pytest.fail("the cancellation was not kept")  # pragma: no cover
    assert scope.cancelled_caught
