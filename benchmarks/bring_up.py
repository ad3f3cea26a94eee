"""Bring-up-to-ready and teardown times of ephemeral_registry(), against a shell-script baseline.

Three ways to get a registry, measured in the same run, interleaved:

- library: ``async with ephemeral_registry()`` until ``ready()`` returns (an
  HTTP answer to ``GET /v2/``), then the exit (container and network removed);
- baseline: what a shell script does: ``docker network create``, ``docker run
  -d -p 127.0.0.1::5000``, ``docker port``, a TCP connect loop; then ``docker
  rm -f -v`` and ``docker network rm``, one after the other;
- floor: the engine's own cost: create the network, create and start the
  container, with raw API calls and nothing else.

Usage: .venv/bin/python benchmarks/bring_up.py [--runs N]   (after scripts/setup)
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid

import aiodocker
import anyio
import shell_baseline
from shell_baseline import CRANE, LABEL, REGISTRY

from ephemeral_registry import PullPolicy, ephemeral_registry


async def library(client: aiodocker.Docker | None, pull: PullPolicy) -> tuple[float, float]:
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, pull=pull, docker=client
    ) as registry:
        await registry.ready()
        ready = time.perf_counter()
    return ready - started, time.perf_counter() - ready


async def baseline() -> tuple[float, float]:
    started = time.perf_counter()
    name = await shell_baseline.bring_up()
    ready = time.perf_counter()
    await shell_baseline.tear_down(name)
    return ready - started, time.perf_counter() - ready


async def floor(client: aiodocker.Docker) -> float:
    name = f"{LABEL}-{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    network = await client.networks.create({"Name": name, "Labels": {LABEL: ""}})
    container = await client.containers.create(
        {
            "Image": REGISTRY,
            "Labels": {LABEL: ""},
            "HostConfig": {
                "NetworkMode": name,
                "PortBindings": {"5000/tcp": [{"HostIp": "127.0.0.1", "HostPort": ""}]},
            },
            "ExposedPorts": {"5000/tcp": {}},
        },
        name=name,
    )
    await container.start()
    elapsed = time.perf_counter() - started
    await container.delete(force=True, v=True)
    await network.delete()
    return elapsed


def median_ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main(runs: int, pull: PullPolicy) -> None:
    results: dict[str, list[float]] = {
        key: []
        for key in (
            "library up", "library down", "library up (shared client)",
            "library down (shared client)", "baseline up", "baseline down", "floor up",
        )
    }  # fmt: skip
    async with aiodocker.Docker() as client:
        # One of each first, unmeasured: image and page caches, the engine's first-use costs.
        await library(None, pull)
        await baseline()
        await floor(client)
        for _ in range(runs):
            up, down = await library(None, pull)
            results["library up"].append(up)
            results["library down"].append(down)
            up, down = await library(client, pull)
            results["library up (shared client)"].append(up)
            results["library down (shared client)"].append(down)
            up, down = await baseline()
            results["baseline up"].append(up)
            results["baseline down"].append(down)
            results["floor up"].append(await floor(client))

    print(f"median of {runs} runs, in ms; {REGISTRY}; pull={pull!r}")
    for key, values in results.items():
        print(f"  {key:32} {median_ms(values):7.1f}   (min {min(values) * 1000:.1f})")
    m = {key: median_ms(values) for key, values in results.items()}
    print("ratios")
    ratios = [
        ("bring-up / baseline", m["library up"] / m["baseline up"], "<= 1.00"),
        ("bring-up / floor", m["library up"] / m["floor up"], "<= 1.15"),
        ("bring-up (shared client) / floor", m["library up (shared client)"] / m["floor up"], ""),
        ("teardown / baseline", m["library down"] / m["baseline down"], "<= 0.85"),
    ]
    for name, ratio, target in ratios:
        print(f"  {name:36} {ratio:5.2f}  {'target ' + target if target else ''}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--pull", choices=["missing", "never", "always"], default="missing")
    args = parser.parse_args()
    anyio.run(main, args.runs, args.pull)
