"""How long the check of an OCI layout takes per GiB of layer data (every blob streamed
and hashed once; gzip layers inflated for their diff_ids), and the peak memory of reading
a layout of 60 distinct manifests of 8 MiB each.

    .venv/bin/python benchmarks/layout_check.py [--gib 1]
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from ephemeral_registry._oci.layout import read_layout_blocking

CONFIG = "application/vnd.oci.image.config.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def put(layout: Path, data: bytes, media_type: str) -> dict[str, object]:
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data)}


def image(layout: Path, layers: list[bytes], compress: bool, padding: int = 0) -> dict[str, object]:
    diff_ids = [f"sha256:{hashlib.sha256(layer).hexdigest()}" for layer in layers]
    blobs = [gzip.compress(layer, 1) if compress else layer for layer in layers]
    kind = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if compress else "")
    config = {
        "os": "linux",
        "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST,
        "config": put(layout, json.dumps(config).encode(), CONFIG),
        "layers": [put(layout, blob, kind) for blob in blobs],
        "annotations": {"padding": "x" * padding},
    }
    return put(layout, json.dumps(manifest).encode(), MANIFEST)


def write_index(layout: Path, entries: list[dict[str, object]]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": entries}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gib", type=float, default=1.0)
    arguments = parser.parse_args()
    layer_size = 64 << 20
    count = max(1, int(arguments.gib * (1 << 30)) // layer_size)
    with tempfile.TemporaryDirectory(dir="/var/tmp") as directory:
        layout = Path(directory) / "manifests"
        entries = [
            image(layout, [f"layer {n}".encode()], False, (8 << 20) - 1000) for n in range(60)
        ]
        write_index(layout, entries)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        read_layout_blocking(layout)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(
            f"60 manifests of 8 MiB: peak RSS {peak / 1024:.0f} MiB"
            f" (before reading {before / 1024:.0f} MiB)"
        )
        for compress in (False, True):
            layout = Path(directory) / f"layout-{compress}"
            layers = [os.urandom(1 << 20) * 64 for _ in range(count)]  # 64 MiB, compressible
            write_index(layout, [image(layout, layers, compress)])
            del layers
            started = time.perf_counter()
            read_layout_blocking(layout)
            took = time.perf_counter() - started
            data = count * layer_size / (1 << 30)
            kind = "gzip" if compress else "uncompressed"
            print(f"{kind} layers: {took / data:.2f} s per GiB of layer content ({data:.2f} GiB)")


if __name__ == "__main__":
    main()
