"""crane's source bind-mounted or copied into its container: what the copy costs.

For the ~200 MB benchmark image (benchmarks/images.sh), prints the median time of:

- ``push_image(IMAGE, layer_compression="none")`` with crane: its export (an
  OCI layout in a temporary directory), then crane's push of it;
- ``push(TARBALL)`` of the same image saved by the engine (``docker save -o``;
  crane gzips its layers), its check included;

each with the source bind-mounted into crane's container (what the library
does where the engine sees this host's files) and copied in through the
engine's API (what it does elsewhere), the choice forced either way; and the
time the copy itself took (``DockerEngine.copy_archive_in``), beside the docker
CLI's own ``docker cp`` of the tarball into a created container (the
engine's floor for the same bytes). Each run brings up a
registry of its own and waits until it is ready, so that only the push is
timed and no blob of it is in the registry already. Last, the peak memory
(VmHWM) of a process that pushes the ~500 MB image's tarball each way.

``--copy`` (or ``--mount``) measures that way only; a bind mount needs an
engine that sees this host's files. Usage, after scripts/setup and
benchmarks/images.sh:

    .venv/bin/python benchmarks/crane_copy.py [--runs N] [--copy | --mount]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import anyio
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import Registry, _host, ephemeral_registry
from ephemeral_registry._engine import DockerEngine, WriteArchive

IMAGE = "ephemeral-registry-benchmark/bulk-0:200"
IMAGE_500 = "ephemeral-registry-benchmark/bulk:500"
WAYS = ("mount", "copy")


def force(way: str) -> None:
    """Make every engine answer ``shares_files()`` so: mount for True, copy for False."""

    async def decided(*args: object, **kwargs: object) -> bool:
        return way == "mount"

    _host.shares_files = decided


copies: list[float] = []
"""How long each ``DockerEngine.copy_archive_in`` took, in seconds."""
_copy_archive_in = DockerEngine.copy_archive_in


async def _timed_copy(engine: DockerEngine, container_id: str, write: WriteArchive) -> None:
    started = time.perf_counter()
    await _copy_archive_in(engine, container_id, write)
    copies.append(time.perf_counter() - started)


DockerEngine.copy_archive_in = _timed_copy  # type: ignore[method-assign,assignment]


async def docker_cp(tarball: Path) -> float:
    """Seconds ``docker cp TARBALL CONTAINER:/image.tar`` takes, into a created container."""
    created = await anyio.run_process(
        ["docker", "create", "--label", "ephemeral-registry-benchmark", CRANE, "version"]
    )
    container = created.stdout.decode().strip()
    try:
        started = time.perf_counter()
        await anyio.run_process(["docker", "cp", str(tarball), f"{container}:/image.tar"])
        return time.perf_counter() - started
    finally:
        await anyio.run_process(["docker", "rm", "-f", container])


async def timed_push(push: Callable[[Registry], Awaitable[object]]) -> float:
    """Seconds ``push`` takes into a registry of its own, once that registry is ready."""
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, pull="never"
    ) as registry:
        await registry.ready()
        started = time.perf_counter()
        await push(registry)
        return time.perf_counter() - started


PEAK_MEMORY = """
import sys, anyio
from ephemeral_registry import _host, ephemeral_registry

def peak():
    # VmHWM: this process's peak (ru_maxrss would also count the parent it was forked from).
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:")) // 1024

async def decided(*args, **kwargs):
    return sys.argv[4] == "mount"

_host.shares_files = decided

async def main():
    async with ephemeral_registry(
        registry_image=sys.argv[1], crane_image=sys.argv[2], pull="never"
    ) as registry:
        await registry.ready()
        before = peak()
        await registry.push(sys.argv[3], "bench/big")
    print(before, peak())

anyio.run(main)
"""


def peak_memory(tarball: Path, way: str) -> tuple[int, int]:
    """VmHWM (MiB) of a fresh process before and after it pushed ``tarball`` with crane."""
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, REGISTRY, CRANE, str(tarball), way],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after = done.stdout.split()
    return int(before), int(after)


async def main(runs: int, ways: tuple[str, ...]) -> None:
    times: dict[tuple[str, str], list[float]] = {}
    copied: dict[str, list[float]] = {"push_image": [], "push(tarball)": []}
    cli_copies: list[float] = []
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "image.tar"
        await anyio.run_process(["docker", "save", "-o", str(tarball), IMAGE])
        size = tarball.stat().st_size / 1e6
        pushes: dict[str, Callable[[Registry], Awaitable[object]]] = {
            "push_image": lambda registry: registry.push_image(
                IMAGE, "bench/image", layer_compression="none"
            ),
            "push(tarball)": lambda registry: registry.push(tarball, "bench/tarball"),
        }
        for _ in range(runs):
            for way in ways:  # one after the other in each run: both see the same machine
                force(way)
                for name, push in pushes.items():
                    copies.clear()
                    times.setdefault((name, way), []).append(await timed_push(push))
                    if way == "copy":
                        copied[name].extend(copies)
            if "copy" in ways:
                cli_copies.append(await docker_cp(tarball))
        big = Path(directory) / "big.tar"
        await anyio.run_process(["docker", "save", "-o", str(big), IMAGE_500])
        memory = {way: peak_memory(big, way) for way in ways}
        big_size = big.stat().st_size / 1e6

    print(f"{IMAGE}: its docker save is {size:.0f} MB; medians of {runs} runs, in seconds")
    columns = [*ways, *(["copy / mount"] if ways == WAYS else [])]
    columns += ["the copy alone"] if "copy" in ways else []
    print(" | ".join(["what", *columns]))
    for name in pushes:
        medians = {way: statistics.median(times[(name, way)]) for way in ways}
        row = [f"{medians[way]:.2f} (min {min(times[(name, way)]):.2f})" for way in ways]
        if ways == WAYS:
            row.append(f"{medians['copy'] / medians['mount']:.2f}")
        if "copy" in ways:
            row.append(f"{statistics.median(copied[name]):.2f}")
        print(" | ".join([name, *row]))
    if cli_copies:
        cli = statistics.median(cli_copies)
        print(f"docker cp of the tarball into a created container | {cli:.2f}")
    print(f"peak memory (VmHWM, MiB) pushing {IMAGE_500}'s {big_size:.0f} MB tarball:")
    for way, (before, after) in memory.items():
        print(f"{way} | {before} before the push | {after} after it")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--copy", action="store_true", help="copy the source in only")
    only.add_argument("--mount", action="store_true", help="bind-mount the source only")
    arguments = parser.parse_args()
    ways = ("copy",) if arguments.copy else ("mount",) if arguments.mount else WAYS
    anyio.run(main, arguments.runs, ways)
