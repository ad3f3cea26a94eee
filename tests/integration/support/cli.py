"""The ephemeral-registry command, run as a new process with the test bed's images."""

from __future__ import annotations

import os
import sys

import anyio

from . import testbed

ENV = {
    **os.environ,
    "EPHEMERAL_REGISTRY_REGISTRY_IMAGE": testbed.REGISTRY3,
    "EPHEMERAL_REGISTRY_CRANE_IMAGE": testbed.CRANE,
    "EPHEMERAL_REGISTRY_RELAY_IMAGE": testbed.BUSYBOX,
}


async def cli(*args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, "-m", "ephemeral_registry", *args], env=ENV, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()
