"""How long a push goes on after its registry's container dies: the time from ``docker kill``
of the registry, at the push's first line of output, to the push's PushError, for each
pusher. Usage, after scripts/setup (DOCKER_HOST picks the engine):

    .venv/bin/python benchmarks/dead_registry.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Literal

import anyio
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import PushError, ephemeral_registry

IMAGE = "ephemeral-registry-testbed/registry:3"
"""About 55 MB: the push is still under way when the registry is killed."""


async def once(tarball: Path, pusher: Literal["crane", "native"]) -> float:
    killed_at: float | None = None
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, pull="never", pusher=pusher
    ) as registry:
        await registry.ready()

        async def kill(line: str) -> None:
            nonlocal killed_at
            if killed_at is None:
                killed_at = time.perf_counter()
                await anyio.run_process(["docker", "kill", registry.name])

        try:
            await registry.push(tarball, "bench/killed", on_log=kill)
        except PushError:
            failed_at = time.perf_counter()
        else:
            raise AssertionError("the push landed although its registry was killed")
    assert killed_at is not None
    return failed_at - killed_at


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "image.tar"
        await anyio.run_process(["docker", "save", "-o", str(tarball), IMAGE])
        print(f"from the registry's kill to the push's PushError; median of {runs}, in seconds")
        pushers: tuple[Literal["crane", "native"], ...] = ("crane", "native")
        for pusher in pushers:
            times = [await once(tarball, pusher) for _ in range(runs)]
            print(f"{pusher} | {statistics.median(times):.2f} (max {max(times):.2f})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    anyio.run(main, parser.parse_args().runs)
