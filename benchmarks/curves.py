"""How the cost grows: time to pushed and peak memory, by image size and by conversions at once.

On the engine DOCKER_HOST names, each point beside that engine's own
``docker save`` of the same images (to /dev/null, as many at once) in the
same run:

- one conversion of an image of ~50 MB, ~200 MB, ~1 GB and ~2 GB;
- 1, 2, 4, 8 and 16 conversions of distinct ~200 MB images into one
  registry at once (``max_concurrent_pushes`` as many).

A conversion is the native pusher (layer compression none: layers as the
engine keeps them), from entering ``ephemeral_registry()`` until every push
has landed. Each point runs in a new Python process, whose peak memory
(VmHWM) is reported with it. The figures are written to
``benchmarks/results/curves-ENGINE.json``, from which ``benchmarks/chart.py``
draws ``docs/curves.svg``.

Usage, after scripts/setup and ``bash benchmarks/images.sh --curves HOST``
(which puts the images on that engine):

    DOCKER_HOST=... .venv/bin/python benchmarks/curves.py --engine NAME [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from shell_baseline import CRANE, REGISTRY

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
SIZES = {
    50: "ephemeral-registry-benchmark/size:50",
    200: "ephemeral-registry-benchmark/bulk-0:200",
    1000: "ephemeral-registry-benchmark/size:1000",
    2000: "ephemeral-registry-benchmark/size:2000",
}
AT_ONCE = (1, 2, 4, 8, 16)
BULK = [f"ephemeral-registry-benchmark/bulk-{n}:200" for n in range(max(AT_ONCE))]

MEASURE = """
import json, sys, time, anyio
from ephemeral_registry import ephemeral_registry

def peak():
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:")) // 1024

async def main(registry_image, crane_image, *images):
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=registry_image, crane_image=crane_image, pull="never",
        pusher="native", layer_compression="none", max_concurrent_pushes=len(images),
    ) as registry:
        async with anyio.create_task_group() as tg:
            for number, image in enumerate(images):
                tg.start_soon(registry.push_image, image, f"curves/image-{number}")
        pushed = time.perf_counter() - started
    print(json.dumps({"seconds": pushed, "peak_mib": peak()}))

anyio.run(main, *sys.argv[1:])
"""


def conversions(images: list[str]) -> dict[str, float]:
    """Seconds until every image is pushed, and the process's peak memory (MiB)."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, REGISTRY, CRANE, *images],
        check=True,
        capture_output=True,
        text=True,
    )
    figures: dict[str, float] = json.loads(done.stdout)
    return figures


def saves(images: list[str]) -> float:
    """Seconds for the engine's ``docker save`` of each image, all at once, to /dev/null."""
    started = time.perf_counter()
    running = [
        subprocess.Popen(["docker", "save", image], stdout=subprocess.DEVNULL) for image in images
    ]
    for process in running:
        if process.wait() != 0:
            raise SystemExit(f"docker save failed: {process.args!r}")
    return time.perf_counter() - started


def point(images: list[str], runs: int) -> dict[str, float]:
    """Medians of ``runs``: the conversions, and the saves alone, alternating which is first."""
    seconds, peaks, alone = [], [], []
    for run in range(runs):
        if run % 2:
            measured = conversions(images)
            alone.append(saves(images))
        else:
            alone.append(saves(images))
            measured = conversions(images)
        seconds.append(measured["seconds"])
        peaks.append(measured["peak_mib"])
    return {
        "seconds": statistics.median(seconds),
        "docker_save_alone": statistics.median(alone),
        "peak_mib": max(peaks),
    }


def main(engine: str, runs: int) -> None:
    figures: dict[str, object] = {
        "engine": engine,
        "runs": runs,
        "docker_host": os.environ.get("DOCKER_HOST", ""),
        "by_size_mb": {},
        "by_conversions_at_once": {},
    }
    print(f"{engine}: medians of {runs} runs (peak memory: the highest)")
    print("  what                      pushed   docker save   ratio   peak memory")
    for size, image in SIZES.items():
        measured = point([image], runs)
        figures["by_size_mb"][str(size)] = measured  # type: ignore[index]
        show(f"one of ~{size} MB", measured)
    for count in AT_ONCE:
        measured = point(BULK[:count], runs)
        figures["by_conversions_at_once"][str(count)] = measured  # type: ignore[index]
        show(f"{count} x ~200 MB at once", measured)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"curves-{engine}.json").write_text(json.dumps(figures, indent=2) + "\n")


def show(what: str, measured: dict[str, float]) -> None:
    ratio = measured["seconds"] / measured["docker_save_alone"]
    print(
        f"  {what:24} {measured['seconds']:7.2f} s  {measured['docker_save_alone']:8.2f} s"
        f"  {ratio:5.2f}x  {measured['peak_mib']:6.0f} MiB",
        flush=True,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", required=True, help="its name in the results file")
    parser.add_argument("--runs", type=int, default=1)
    arguments = parser.parse_args()
    main(arguments.engine, arguments.runs)
