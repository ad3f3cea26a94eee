"""The record of what a registry created."""

from __future__ import annotations

from ephemeral_registry._resources import Created


def test_created_lists_containers_and_networks_and_forgets_what_was_removed() -> None:
    """Cranes, a tunnel's relay and the registry are containers; each removal is forgotten
    once reported."""
    created = Created("ephemeral-registry-abc", network="n" * 64, registry="r" * 64, relay="t" * 64)
    created.cranes |= {"c" * 64}
    assert created.containers == ["c" * 64, "t" * 64, "r" * 64]
    assert created.networks == ["n" * 64]
    assert created.describe() == (
        f"crane container {'c' * 12}",
        f"relay container ephemeral-registry-abc-relay ({'t' * 12})",
        f"container ephemeral-registry-abc ({'r' * 12})",
        f"network ephemeral-registry-abc ({'n' * 12})",
    )
    for resource in ("c" * 64, "t" * 64, "r" * 64, "n" * 64):
        created.forget(resource)
    assert (created.containers, created.networks, created.describe()) == ([], [], ())
