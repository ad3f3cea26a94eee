"""push_timeout, whichever stage of a push it ends: a PushTimeoutError, a TimeoutError too."""

from __future__ import annotations

import os

import anyio
import pytest

from ephemeral_registry import PushError, PushTimeoutError

from ..support import testbed
from ..support.helpers import directories_of, registry_under_test, session_resources

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(("pusher", "stage"), [("crane", "export"), ("native", "push")])
async def test_a_push_timeout_too_short_for_the_export_is_a_push_timeout_error(
    pusher: str, stage: str
) -> None:
    """push_image whose export outlasts push_timeout (its reader is held from the first
    MiB) raises PushTimeoutError, which `except TimeoutError` catches, not the engine's
    EngineTimeoutError; the export is abandoned and its files removed, and no crane
    container is made.

    crane's export is a stage of its own; the native pusher uploads the export as it
    reads it, so its stage is the push.
    """

    async def hold_the_export(done: int, total: int | None) -> None:
        await anyio.sleep_forever()  # a reader slower than push_timeout allows

    async with registry_under_test(pusher=pusher, push_timeout=2.0) as registry:
        await registry.ready()
        started = anyio.current_time()
        with pytest.raises(TimeoutError) as caught:
            await registry.push_image(
                testbed.REGISTRY3, "slow/export:1", on_progress=hold_the_export
            )
        elapsed = anyio.current_time() - started
        error = caught.value
        assert type(error) is PushTimeoutError
        assert isinstance(error, PushError)
        assert (error.ref, error.limit, error.stage, error.exit_code) == (
            "slow/export:1",
            2.0,
            stage,
            None,
        )
        assert "push_timeout" in str(error)
        if stage == "export":
            assert f"export of the image {testbed.REGISTRY3} did not finish" in error.reason
        assert 2.0 <= elapsed < 10
        assert "export" not in directories_of(os.getpid())
        assert len(session_resources(registry)) == 2  # the registry and its network
    assert session_resources(registry) == set()
