"""Conversions (export a local image, bring up a registry, push) against a docker-CLI baseline.

- one conversion of a ~200 MB image: the library (``push_image`` right after
  entering, so the export overlaps the bring-up; ``layer_compression="none"``)
  against a script doing it one step after another: ``docker save``, ``docker network create``,
  ``docker run`` the registry, a TCP probe, ``docker run`` crane;
- four conversions of four ~200 MB images into one registry at once, against
  four baseline conversions one after another;
- the same one conversion with ``layer_compression="gzip"`` (the library gzips
  the layers into crane's layout; the baseline's crane gzips them itself);
- the same conversions with the native pusher (gzip and uncompressed layers);
- two floors no pusher can beat: the engine's ``docker save`` alone, and the
  registry's ingest of 200 MiB sent from memory;
- peak memory (VmHWM) of a Python process exporting and pushing a ~500 MB
  image, with each pusher, and the bytes it wrote to this machine's disk
  (``write_bytes`` of /proc/self/io: the crane pusher's temporary export;
  the registry's own storage is not counted).

Times are until the push has landed (when a converter could start), plus the
teardown. Usage, after scripts/setup and benchmarks/images.sh:

    .venv/bin/python benchmarks/conversions.py [--runs N]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import shell_baseline
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import LayerCompression, ephemeral_registry

BULK = [f"ephemeral-registry-benchmark/bulk-{n}:200" for n in range(4)]
BULK_500 = "ephemeral-registry-benchmark/bulk:500"


async def library_timed(
    images: list[str], *, layer_compression: LayerCompression | None = None, **options: Any
) -> tuple[float, float]:
    """Time to all pushes landed, and the teardown after it."""
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, **options
    ) as registry:
        async with anyio.create_task_group() as tg:
            for number, image in enumerate(images):
                push = functools.partial(registry.push_image, layer_compression=layer_compression)
                tg.start_soon(push, image, f"bench/image-{number}")
        pushed = time.perf_counter()
    return pushed - started, time.perf_counter() - pushed


async def baseline(image: str) -> tuple[float, float]:
    """One conversion the way a shell script does it, one blocking step after another."""
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "image.tar"
        started = time.perf_counter()
        await shell_baseline.cli("save", "-o", str(tarball), image)
        tarball.chmod(0o644)
        name = await shell_baseline.bring_up()
        await shell_baseline.cli(
            "run", "--rm", "--network", name, "-v", f"{tarball}:/image.tar:ro",
            CRANE, "push", "--insecure", "/image.tar", f"{name}:5000/bench/image",
        )  # fmt: skip
        pushed = time.perf_counter()
        await shell_baseline.tear_down(name)
    return pushed - started, time.perf_counter() - pushed


async def baseline_sequence(images: list[str]) -> tuple[float, float]:
    push = down = 0.0
    for image in images:
        one_push, one_down = await baseline(image)
        push += one_push
        down += one_down
    return push, down


PEAK_MEMORY = """
import sys, anyio
from ephemeral_registry import ephemeral_registry

def status(field):
    # VmHWM: this process's peak (ru_maxrss would also count the parent it was forked from).
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith(field + ":"))

def written():
    # Bytes this process caused to be written to storage (not the registry's, not the engine's).
    lines = open("/proc/self/io").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("write_bytes:"))

async def main():
    before, written_before = status("VmHWM"), written()
    async with ephemeral_registry(
        registry_image=sys.argv[1], crane_image=sys.argv[2], pusher=sys.argv[4],
        layer_compression="none",
    ) as registry:
        await registry.push_image(sys.argv[3], "bench/big")
    print(before // 1024, status("VmHWM") // 1024, (written() - written_before) // 1024)

anyio.run(main)
"""


def peak_memory(pusher: str) -> tuple[int, int, int]:
    done = subprocess.run(
        [sys.executable, "-c", PEAK_MEMORY, REGISTRY, CRANE, BULK_500, pusher],
        capture_output=True,
        text=True,
        check=True,
    )
    before, after, written = done.stdout.split()
    return int(before), int(after), int(written)


def export_floor(image: str) -> float:
    """``docker save`` of ``image`` to /dev/null: what the engine's export alone takes."""
    started = time.perf_counter()
    subprocess.run(["docker", "save", image], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


async def upload_floor(size: int) -> float:
    """``size`` bytes uploaded from memory as one blob, in one streamed PATCH: what the
    registry's ingest alone takes (it hashes and writes what it gets)."""
    chunk = os.urandom(1 << 20)
    digest = hashlib.sha256()
    for _ in range(size >> 20):
        digest.update(chunk)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size >> 20):
            yield chunk

    async with ephemeral_registry(registry_image=REGISTRY, crane_image=CRANE) as registry:
        endpoints = await registry.ready()
        async with httpx.AsyncClient(
            base_url=f"http://{endpoints.pull_endpoint}", trust_env=False
        ) as client:
            location = (await client.post("/v2/floor/blobs/uploads/")).headers["Location"]
            started = time.perf_counter()
            patched = await client.patch(location, content=chunks())
            url = httpx.URL(patched.headers["Location"])
            done = await client.put(url.copy_add_param("digest", f"sha256:{digest.hexdigest()}"))
            assert done.status_code == 201, done.text
            return time.perf_counter() - started


def median(values: list[float]) -> float:
    return statistics.median(values)


async def main(runs: int, engine: str, save: Path | None) -> None:
    rows: dict[str, list[tuple[float, float]]] = {
        "one: library": [],
        "one: library, gzip layers": [],
        "one: baseline": [],
        "four at once: library": [],
        "four one after another: baseline": [],
        "one: native, gzip": [],
        "one: native, none": [],
        "four at once: native, gzip": [],
    }
    for _ in range(runs):
        rows["one: native, gzip"].append(await library_timed(BULK[:1], pusher="native"))
        rows["one: native, none"].append(
            await library_timed(BULK[:1], pusher="native", layer_compression="none")
        )
        rows["four at once: native, gzip"].append(await library_timed(BULK, pusher="native"))
        # crane's OCI layout, pushed as it is (crane's default before gzip became everyone's)
        rows["one: library"].append(await library_timed(BULK[:1], layer_compression="none"))
        rows["one: library, gzip layers"].append(
            await library_timed(BULK[:1], layer_compression="gzip")
        )
        rows["one: baseline"].append(await baseline(BULK[0]))
        rows["four at once: library"].append(await library_timed(BULK, layer_compression="none"))
        rows["four one after another: baseline"].append(await baseline_sequence(BULK))

    export_floors = [export_floor(BULK[0]) for _ in range(runs)]
    upload_floors = [await upload_floor(200 << 20) for _ in range(runs)]
    print(f"median of {runs} runs, seconds: until pushed + teardown = total")
    totals = {}
    for name, values in rows.items():
        push = median([v[0] for v in values])
        down = median([v[1] for v in values])
        totals[name] = (push, push + down)
        print(f"  {name:36} {push:6.2f} + {down:4.2f} = {push + down:6.2f}")
    print("ratios (until pushed; with teardown)")
    for label, mine, theirs, target in [
        ("one conversion", "one: library", "one: baseline", "<= 0.85"),
        ("one, gzip layers", "one: library, gzip layers", "one: baseline", ""),
        ("four at once / four in sequence", "four at once: library",
         "four one after another: baseline", "<= 0.60"),
        ("native gzip: one conversion", "one: native, gzip", "one: baseline", "<= 0.35"),
        ("native none: one conversion", "one: native, none", "one: baseline", "<= 0.30"),
        ("native gzip: four at once / in sequence", "four at once: native, gzip",
         "four one after another: baseline", "<= 0.25"),
    ]:  # fmt: skip
        pushed = totals[mine][0] / totals[theirs][0]
        total = totals[mine][1] / totals[theirs][1]
        print(f"  {label:36} {pushed:5.2f}; {total:5.2f}   {'target ' + target if target else ''}")
    print(
        f"floors: docker save {BULK[0]} > /dev/null {median(export_floors):.2f} s;"
        f" 200 MiB uploaded from memory into the registry {median(upload_floors):.2f} s"
    )
    peaks = {}
    for pusher in ("crane", "native"):
        before, after, written = peak_memory(pusher)
        peaks[pusher] = after
        print(
            f"{pusher}: peak RSS exporting and pushing {BULK_500}: {after} MiB"
            f" (after imports, before the export: {before} MiB)   target <= 100 MiB;"
            f" written to this machine's disk by the push: {written} KiB"
        )

    if save is not None:
        figures = {
            "engine": engine,
            "runs": runs,
            "until_pushed": {name: pushed for name, (pushed, _) in totals.items()},
            "docker_save_alone": median(export_floors),
            "upload_200_mib": median(upload_floors),
            "peak_rss_mib": peaks,
        }
        await anyio.Path(save).write_text(json.dumps(figures, indent=2) + "\n")
        print(f"saved to {save}; benchmarks/chart.py draws the documentation's chart from it")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--engine", default="Docker 20.10", help="the engine's name, for --save")
    parser.add_argument(
        "--save",
        type=Path,
        help="write the figures as JSON (benchmarks/results/conversions-*.json)",
    )
    arguments = parser.parse_args()
    anyio.run(main, arguments.runs, arguments.engine, arguments.save)
