"""A process that owns a registry with a push running, to be killed by a test.

    python owner_process.py TARBALL

Prints ``{"session": ...}`` once its crane container is running, then waits forever.
"""

from __future__ import annotations

import json
import sys

import anyio

from ephemeral_registry import ephemeral_registry

from . import testbed


async def main(tarball: str) -> None:
    running = anyio.Event()
    async with (
        ephemeral_registry(
            registry_image=testbed.REGISTRY3, crane_image=testbed.CRANE_HANGS, pull="never"
        ) as registry,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(lambda: registry.push(tarball, "never/lands", on_log=lambda _: running.set()))
        await running.wait()
        print(json.dumps({"session": registry.session_id}), flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    anyio.run(main, sys.argv[1])
