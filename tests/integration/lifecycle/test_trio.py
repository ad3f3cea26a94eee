"""A trio program runs the registry on an asyncio loop in a thread: the recipe of
docs/pytest.md and of AsyncioRequiredError, run for real."""

from __future__ import annotations

import functools

import anyio
import anyio.to_thread
from anyio.from_thread import start_blocking_portal

from ..support import testbed
from ..support.helpers import registry_under_test


def test_a_trio_program_pushes_through_a_portal_to_an_asyncio_loop() -> None:
    """Bring-up, a push and the teardown, driven from trio; nothing is left."""

    async def main() -> tuple[str, str]:
        with start_blocking_portal("asyncio") as portal:
            block = portal.wrap_async_context_manager(registry_under_test())
            registry = await anyio.to_thread.run_sync(block.__enter__)
            try:
                push = functools.partial(portal.call, registry.push_image, testbed.SAMPLE)
                pushed = await anyio.to_thread.run_sync(push)
            finally:
                await anyio.to_thread.run_sync(block.__exit__, None, None, None)
        return registry.session_id, pushed.ref

    session, ref = anyio.run(main, backend="trio")
    assert ref.endswith("/" + testbed.SAMPLE)
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()
