"""How soon ready() says that the pull endpoint does not reach this host.

On an engine whose published ports are not forwarded here (the test bed's
``desktop-isolated``, testbed/desktop.sh), from entering ``ephemeral_registry()``
to ``RegistryUnreachableError``, with ``ready_timeout=60``: what it would otherwise
wait out.

Usage: DOCKER_HOST=unix:///run/ephemeral-registry-testbed/desktop-isolated/docker.sock \\
    .venv/bin/python benchmarks/unreachable.py [--runs N]   (after scripts/setup)
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import RegistryUnreachableError, ephemeral_registry

READY_TIMEOUT = 60.0


async def once() -> float:
    started = time.monotonic()
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, pull="never", ready_timeout=READY_TIMEOUT
    ) as registry:
        try:
            await registry.ready()
        except RegistryUnreachableError:
            return time.monotonic() - started
    raise SystemExit("the registry was reached: run this against an engine whose ports are not")


async def main(runs: int) -> None:
    times = [await once() for _ in range(runs)]
    print(
        f"RegistryUnreachableError after {statistics.median(times):.2f} s (median of {runs};"
        f" {min(times):.2f}-{max(times):.2f} s), against ready_timeout={READY_TIMEOUT:g} s"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    anyio.run(main, parser.parse_args().runs)
