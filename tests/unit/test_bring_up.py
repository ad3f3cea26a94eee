"""The bring-up against the fake engine (the registry's log lines for a push's PushError are
``_watch``'s: test_watch.py)."""

from __future__ import annotations

from typing import Any

import pytest

from ephemeral_registry import (
    DockerEngineError,
    ImageNotFoundError,
    InvalidArgumentError,
    RegistryNotReadyError,
)
from ephemeral_registry._bring_up import PORT_ATTEMPTS, BringUp
from ephemeral_registry._discovery import EngineAddress
from ephemeral_registry._options import resolve
from ephemeral_registry._session import Session
from ephemeral_registry._teardown import tear_down

from .fake_engine import PODMAN, FakeEngine

LOCAL = EngineAddress("unix:///fake/engine.sock", "the test")


async def brought_up(engine: FakeEngine, **given: Any) -> tuple[BringUp, Session]:
    """A bring-up run to its end on ``engine`` (publishing); its outcome in ``running``."""
    session = Session.new(auth=given.get("auth", False))
    options = resolve(**({"ready_timeout": 5} | given))
    bring_up = BringUp(engine, options, session, engine_address=LOCAL)
    await bring_up.run()
    return bring_up, session


def images(**given: Any) -> list[str]:
    options = resolve(**given)
    return [options.registry_image, options.crane_image]


@pytest.mark.anyio
async def test_the_credentials_are_copied_in_before_the_registry_starts() -> None:
    async with FakeEngine(images=images()).publishing() as engine:
        bring_up, session = await brought_up(engine, auth=True)
        await bring_up.running.get()
        (container,) = engine.containers.values()
        assert len(container.copied) == 1
        calls = [call for call in engine.calls if call in ("create_container", "copy_in", "start")]
        assert calls == ["create_container", "copy_in", "start"]
        assert await tear_down(engine, session, timeout=5) is None


PORT_TAKEN = DockerEngineError("start the container", 500, "address already in use")
"""Podman's refusal to start a container whose host port another one got."""


@pytest.mark.anyio
async def test_a_taken_port_makes_the_container_again() -> None:
    """Podman under load gives two containers one port: the second start fails."""
    async with FakeEngine(images=images()).publishing() as engine:
        engine.fail["start"] = [PORT_TAKEN]
        bring_up, session = await brought_up(engine)
        running = await bring_up.running.get()
        (container,) = engine.containers.values()
        assert running.container_id == container.id == session.created.registry
        assert engine.calls.count("create_container") == 2
        assert engine.calls.count("remove_container") == 1
        assert await tear_down(engine, session, timeout=5) is None


@pytest.mark.anyio
async def test_a_port_taken_every_time_is_the_engines_error_the_last_container_recorded() -> None:
    async with FakeEngine(images=images()).publishing() as engine:
        engine.fail["start"] = [PORT_TAKEN] * PORT_ATTEMPTS
        bring_up, session = await brought_up(engine)
        assert bring_up.running.error is PORT_TAKEN
        assert engine.calls.count("create_container") == PORT_ATTEMPTS
        (container,) = engine.containers.values()
        assert session.created.registry == container.id
        assert await tear_down(engine, session, timeout=5) is None
        assert engine.empty


@pytest.mark.anyio
async def test_another_refusal_to_start_is_not_tried_again() -> None:
    refused = DockerEngineError("start the container", 500, "no such device")
    async with FakeEngine(images=images()).publishing() as engine:
        engine.fail["start"] = [refused]
        bring_up, session = await brought_up(engine)
        assert bring_up.running.error is refused
        assert engine.calls.count("create_container") == 1
        assert await tear_down(engine, session, timeout=5) is None


@pytest.mark.anyio
async def test_a_missing_image_that_may_not_be_pulled_creates_nothing() -> None:
    async with FakeEngine(images=[]).publishing() as engine:
        bring_up, _ = await brought_up(engine, pull="never")
        assert isinstance(bring_up.running.error, ImageNotFoundError)
        assert engine.empty
        assert not {"create_network", "create_container", "pull"} & set(engine.calls)


@pytest.mark.anyio
async def test_podman_as_root_refuses_an_ipv6_address_before_creating_anything() -> None:
    async with FakeEngine(identity=PODMAN, images=images()).publishing() as engine:
        bring_up, _ = await brought_up(engine, host_ip="::1")
        assert isinstance(bring_up.running.error, InvalidArgumentError)
        assert "rootless" in engine.calls
        assert engine.empty


@pytest.mark.anyio
async def test_a_registry_that_exits_at_once_is_not_ready_with_its_logs() -> None:
    given = images()
    async with FakeEngine(images=given, exits_at_once={given[0]: 3}).publishing() as engine:
        bring_up, session = await brought_up(engine)
        error = bring_up.running.error
        assert isinstance(error, RegistryNotReadyError)
        assert "exited with code 3" in str(error)
        assert error.logs == ('level=fatal msg="configuration error"',)
        assert await tear_down(engine, session, timeout=5) is None
