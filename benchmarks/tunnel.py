"""What a tunnel through the engine's API costs (``tunnel=True`` on an engine not over SSH).

Against the same registry, through the tunnel's port and through the port the
engine published (reached here: run it on an engine whose published ports
this host reaches):

- opening a connection: a new TCP connection and one ``GET /v2/`` on it,
  answered (``Connection: close``), one after another;
- throughput: one blob of ``--size`` MB (random bytes) uploaded in one
  ``PUT``, then downloaded with one ``GET``;

and, with and without a tunnel: the bring-up (entering to ``ready()``), and a
native push of the registry image (55 MB); crane's push does not go through
the tunnel (crane runs on the registry's network).

Usage: DOCKER_HOST=... .venv/bin/python benchmarks/tunnel.py [--runs N] [--size MB]
(after scripts/setup)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import time
from collections.abc import AsyncIterator

import anyio
import httpx
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import ephemeral_registry

RELAY = "ephemeral-registry-testbed/busybox"
CONNECTIONS = 20
CHUNK = 1 << 20


def published(name: str) -> str:
    """``127.0.0.1:PORT``, the registry's port as the engine published it."""
    inspected = subprocess.run(
        ["docker", "inspect", name], check=True, capture_output=True, text=True
    ).stdout
    (binding,) = json.loads(inspected)[0]["NetworkSettings"]["Ports"]["5000/tcp"]
    return f"127.0.0.1:{binding['HostPort']}"


async def connection(endpoint: str) -> float:
    """Seconds from connecting to the end of one answered ``GET /v2/``."""
    host, _, port = endpoint.rpartition(":")
    started = time.perf_counter()
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(b"GET /v2/ HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        answer = b""
        async for data in stream:
            answer += data
    assert answer.startswith(b"HTTP/1.1 200"), answer[:100]
    return time.perf_counter() - started


async def upload_and_download(endpoint: str, blob: bytes, repository: str) -> tuple[float, float]:
    """Seconds to upload ``blob`` in one PUT, and to download it in one GET."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()

    async def body() -> AsyncIterator[bytes]:
        for offset in range(0, len(blob), CHUNK):
            yield blob[offset : offset + CHUNK]

    async with httpx.AsyncClient(trust_env=False, timeout=600) as client:
        base = f"http://{endpoint}/v2/{repository}/blobs"
        started = time.perf_counter()
        begun = await client.post(f"{base}/uploads/")
        location = httpx.URL(f"http://{endpoint}").join(begun.headers["Location"])
        put = await client.put(
            location.copy_merge_params({"digest": digest}),
            content=body(),
            headers={"Content-Length": str(len(blob))},
        )
        assert put.status_code == 201, put.text
        uploaded = time.perf_counter() - started
        started = time.perf_counter()
        size = 0
        async with client.stream("GET", f"{base}/{digest}") as answer:
            async for data in answer.aiter_raw():
                size += len(data)
        assert size == len(blob)
        return uploaded, time.perf_counter() - started


async def bring_up_and_push(tunnel: bool, rows: dict[str, list[float]]) -> None:
    """Enter, ``ready()``, one native push of the registry image, leave."""
    way = "with a tunnel" if tunnel else "without"
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, relay_image=RELAY, pull="never", tunnel=tunnel
    ) as registry:
        await registry.ready()
        rows.setdefault(f"bring-up, {way}, s", []).append(time.perf_counter() - started)
        started = time.perf_counter()
        await registry.push_image(REGISTRY, "bench/registry", pusher="native")
        rows.setdefault(f"native push of 55 MB, {way}, s", []).append(time.perf_counter() - started)


async def measure(runs: int, size: int) -> dict[str, list[float]]:
    rows: dict[str, list[float]] = {}
    blob = os.urandom(size << 20)
    for run in range(runs):
        for tunnelled in (False, True):
            await bring_up_and_push(tunnelled, rows)
        async with ephemeral_registry(
            registry_image=REGISTRY, crane_image=CRANE, relay_image=RELAY, pull="never", tunnel=True
        ) as registry:
            tunnel = (await registry.ready()).pull_endpoint
            ways = {"tunnel": tunnel, "published port": published(registry.name)}
            for way, endpoint in ways.items():
                for _ in range(CONNECTIONS):
                    seconds = await connection(endpoint)
                    rows.setdefault(f"connection + GET /v2/, {way}, ms", []).append(seconds * 1e3)
            for way, endpoint in ways.items():
                up, down = await upload_and_download(endpoint, blob, f"bench/{run}-{len(way)}")
                rows.setdefault(f"upload {size} MB, {way}, MB/s", []).append(size / up)
                rows.setdefault(f"download {size} MB, {way}, MB/s", []).append(size / down)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size", type=int, default=100, help="the blob's size in MB")
    args = parser.parse_args()
    rows = anyio.run(measure, args.runs, args.size)
    engine = os.environ.get("DOCKER_HOST", "the default engine")
    print(f"{engine}: median (min-max) of {args.runs} runs ({CONNECTIONS} connections each)")
    for name, values in rows.items():
        print(
            f"  {name:<42} {statistics.median(values):8.2f}  ({min(values):.2f}-{max(values):.2f})"
        )


if __name__ == "__main__":
    main()
