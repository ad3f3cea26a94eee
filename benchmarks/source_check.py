"""What checking a caller's source costs a crane push: ``push(tarball)`` and ``push(layout)``
now read the source through the native pusher's readers before crane starts.

For the ~200 MB benchmark image (benchmarks/images.sh), saved by the engine as a tarball
and as an OCI layout, prints the median time of the check alone (the tarball: every layer
hashed against its config; the layout: its descriptors and files), and of a whole crane
push of the same source into a ready registry, check included. Usage, after
scripts/setup and benchmarks/images.sh:

    .venv/bin/python benchmarks/source_check.py [--runs N]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import InvalidSourceError, ephemeral_registry
from ephemeral_registry._export import check_tarball
from ephemeral_registry._oci.layout import read_layout

IMAGE = "ephemeral-registry-benchmark/bulk-0:200"


async def timed(step: Callable[[], Awaitable[object]], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "image.tar"
        layout = Path(directory) / "layout"
        await anyio.run_process(["docker", "save", "-o", str(tarball), IMAGE])
        await anyio.run_process(
            ["skopeo", "copy", "-q", f"docker-archive:{tarball}", f"oci:{layout}:one"]
        )
        size = tarball.stat().st_size / 1e6
        fail = functools.partial(InvalidSourceError, tarball)
        check_tar = await timed(lambda: check_tarball(tarball, fail=fail), runs)
        check_layout = await timed(lambda: read_layout(layout), runs)
        async with ephemeral_registry(
            registry_image=REGISTRY, crane_image=CRANE, pull="never"
        ) as registry:
            await registry.ready()
            push_tar = await timed(lambda: registry.push(tarball, "bench/tarball"), runs)
            push_layout = await timed(lambda: registry.push(layout, "bench/layout"), runs)
    print(f"{IMAGE}: {size:.0f} MB; median of {runs} runs, in seconds")
    print("source | check alone | crane push, check included | check / push")
    print(f"tarball | {check_tar:.3f} | {push_tar:.2f} | {check_tar / push_tar:.2f}")
    print(f"OCI layout | {check_layout:.4f} | {push_layout:.2f} | {check_layout / push_layout:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    anyio.run(main, parser.parse_args().runs)
