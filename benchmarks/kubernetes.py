"""What a registry on Kubernetes costs (``backend="kubernetes"``), on the test bed's cluster.

- bring-up (entering to ``ready()``) and teardown (leaving), on the cluster and, beside
  it, on the default Docker engine;
- one native conversion of a ~200 MB image (``push_image``, read from the Docker
  engine beside the cluster), through the port-forward, beside the same push into a
  registry on the Docker engine (through its published port);
- four such conversions at once (four distinct images), on each;
- what the API server's relay costs: one blob of ``--size`` MB uploaded in one ``PUT``
  and downloaded with one ``GET``, through the port-forward and straight to the Pod's
  address (this host reaches the Pod network: the cluster's node is this host).

Usage, after scripts/setup and ``bash benchmarks/images.sh``:

    KUBECONFIG=/run/ephemeral-registry-testbed/kubernetes/kubeconfig \\
        .venv/bin/python benchmarks/kubernetes.py [--runs N] [--size MB]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import anyio
from tunnel import upload_and_download

from ephemeral_registry import Backend, ephemeral_registry

REGISTRY = "ephemeral-registry-testbed/registry:3"
IMAGES = [f"ephemeral-registry-benchmark/bulk-{n}:200" for n in range(4)]
BACKENDS: tuple[Backend, ...] = ("kubernetes", "docker")


async def one_run(backend: Backend, size: int, blob: bytes, rows: dict[str, list[float]]) -> None:
    def record(name: str, value: float) -> None:
        rows.setdefault(f"{name}, {backend}", []).append(value)

    started = time.perf_counter()
    block = ephemeral_registry(
        backend=backend, registry_image=REGISTRY, pull="never", pusher="native"
    )
    registry = await block.__aenter__()
    try:
        endpoints = await registry.ready()
        record("bring-up, s", time.perf_counter() - started)
        started = time.perf_counter()
        await registry.push_image(IMAGES[0], "bench/one")
        record("one ~200 MB conversion, s", time.perf_counter() - started)
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for n, image in enumerate(IMAGES):
                tg.start_soon(registry.push_image, image, f"bench/four-{n}")
        record("four ~200 MB conversions at once, s", time.perf_counter() - started)
        if backend == "kubernetes":
            pod = _pod_address(endpoints.push_endpoint.split(".")[0])
            for way, endpoint in (
                ("port-forward", endpoints.pull_endpoint),
                ("Pod's address", pod),
            ):
                up, down = await upload_and_download(endpoint, blob, f"bench/{len(way)}")
                rows.setdefault(f"upload {size} MB, {way}, MB/s", []).append(size / up)
                rows.setdefault(f"download {size} MB, {way}, MB/s", []).append(size / down)
    finally:
        started = time.perf_counter()
        await block.__aexit__(None, None, None)
        record("teardown, s", time.perf_counter() - started)


def _pod_address(name: str) -> str:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parents[1]))
    from tests.integration.support import cluster

    with cluster.client() as api:
        pod = api.get(cluster.path("pods", name)).json()
    return f"{pod['status']['podIP']}:5000"


async def measure(runs: int, size: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}
    blob = os.urandom(size << 20)
    for _ in range(runs):
        for backend in BACKENDS:
            await one_run(backend, size, blob, rows)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=100, help="the relay's blob, in MB")
    args = parser.parse_args()
    rows = anyio.run(measure, args.runs, args.size)
    print(f"median (min-max) of {args.runs} runs; the cluster of {os.environ.get('KUBECONFIG')}")
    for name, values in sorted(rows.items()):
        print(
            f"  {name:<52} {statistics.median(values):8.2f}  ({min(values):.2f}-{max(values):.2f})"
        )


if __name__ == "__main__":
    main()
