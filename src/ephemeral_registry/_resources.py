"""What a registry created, and the one routine that removes containers and networks.

``Created`` is written as each create request answers (the bring-up's
network, registry container and tunnel relay, each push's crane container), so that the
teardown knows exactly what to remove whatever was interrupted. ``remove``
is the removal used by the teardown and by the sweep alike.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import anyio

from ._concurrency import run_all
from ._engine import Engine
from ._errors import DockerEngineError


@dataclass
class Created:
    """The resources of one registry that exist right now, by id."""

    name: str
    """The name of the registry container and of its network."""
    network: str | None = None
    registry: str | None = None
    relay: str | None = None
    """The relay container of a tunnel through the engine's API (``_relay``)."""
    cranes: set[str] = field(default_factory=set)
    """The crane containers of pushes under way."""
    uncertain: bool = False
    """A create failed without a clear answer: the resource may exist anyway,
    so the teardown also looks for the session's resources by label."""

    @property
    def containers(self) -> list[str]:
        others = [self.relay, self.registry]
        return [*sorted(self.cranes), *(container for container in others if container)]

    @property
    def networks(self) -> list[str]:
        return [self.network] if self.network else []

    def forget(self, resource_id: str) -> None:
        """Record that ``resource_id`` was removed."""
        self.cranes.discard(resource_id)
        if resource_id == self.registry:
            self.registry = None
        if resource_id == self.relay:
            self.relay = None
        if resource_id == self.network:
            self.network = None

    def describe(self) -> tuple[str, ...]:
        """What remains, for an error message."""
        described = [f"crane container {crane[:12]}" for crane in sorted(self.cranes)]
        if self.relay is not None:
            described.append(f"relay container {self.name}-relay ({self.relay[:12]})")
        if self.registry is not None:
            described.append(f"container {self.name} ({self.registry[:12]})")
        if self.network is not None:
            described.append(f"network {self.name} ({self.network[:12]})")
        return tuple(described)


async def remove(
    engine: Engine,
    containers: Iterable[str],
    networks: Iterable[str],
    *,
    overlap: bool = False,
    removed: Callable[[str], object] = lambda _: None,
) -> None:
    """Remove containers (killed, with their anonymous volumes), then networks.

    Each removal that succeeds is reported to ``removed``; a resource that is
    already gone counts as removed. With ``overlap``, each network is
    disconnected from the containers and removed while they are being
    removed (retried once they are gone, if an endpoint was still
    attached): faster, but only safe on engines that say so
    (``Identity.removes_concurrently``).

    Raises the first error; the other removals are then cancelled.
    """
    containers, networks = list(containers), list(networks)
    containers_gone = anyio.Event()

    async def remove_container(container_id: str) -> None:
        await engine.remove_container(container_id)
        removed(container_id)

    async def remove_containers() -> None:
        try:
            await run_all(*(functools.partial(remove_container, c) for c in containers))
        finally:
            containers_gone.set()

    async def remove_network(network_id: str) -> None:
        if overlap:
            for container_id in containers:
                with contextlib.suppress(DockerEngineError):  # e.g. already being removed
                    await engine.disconnect(network_id, container_id)
            with contextlib.suppress(DockerEngineError):
                await engine.remove_network(network_id)
                removed(network_id)
                return
        # A network goes once nothing is attached to it.
        await containers_gone.wait()
        await engine.remove_network(network_id)
        removed(network_id)

    await run_all(remove_containers, *(functools.partial(remove_network, n) for n in networks))
