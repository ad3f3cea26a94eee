"""Write OCI image archives of the sample image as a containerd image store keeps them.

Docker 29's image store keeps layers as they came: gzip or zstd compressed,
and an image may be an index of several platforms. `docker load` of these
archives into that engine makes such images without pulling anything.

Usage: python3 oci_images.py SAVED_TAR OUT_DIR

SAVED_TAR is `docker save` of one image from any engine. Writes into OUT_DIR:
  gzip.tar   its layers gzip-compressed             (tag sample:gzip)
  zstd.tar   its layers zstd-compressed             (tag sample:zstd)
  multi.tar  an index of linux/amd64 (gzip layers) and linux/arm64
             (the same layers under a config that says arm64)  (tag multi:latest)
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import posixpath
import subprocess
import sys
import tarfile
from pathlib import Path

REPOSITORY = "docker.io/ephemeral-registry-testbed"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = {
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}


def compress(data: bytes, kind: str) -> bytes:
    if kind == "gzip":
        return gzip.compress(data, compresslevel=1, mtime=0)
    return subprocess.run(
        ["zstd", "-q", "-c", "-3"], input=data, capture_output=True, check=True
    ).stdout


class Archive:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}

    def add(self, data: bytes, media_type: str, **extra: object) -> dict[str, object]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        self.blobs[digest] = data
        return {"mediaType": media_type, "digest": digest, "size": len(data), **extra}

    def manifest(
        self, config: bytes, layers: list[bytes], kind: str, **extra: object
    ) -> dict[str, object]:
        body = {
            "schemaVersion": 2,
            "mediaType": MANIFEST,
            "config": self.add(config, CONFIG),
            "layers": [self.add(compress(layer, kind), LAYER[kind]) for layer in layers],
        }
        return self.add(json.dumps(body).encode(), MANIFEST, **extra)

    def write(self, path: Path, top: dict[str, object], name: str) -> None:
        top = {
            **top,
            "annotations": {
                "io.containerd.image.name": name,
                "org.opencontainers.image.ref.name": name.rpartition(":")[2],
            },
        }
        index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": [top]}
        files = {
            "oci-layout": b'{"imageLayoutVersion":"1.0.0"}',
            "index.json": json.dumps(index).encode(),
            **{f"blobs/sha256/{d.removeprefix('sha256:')}": b for d, b in self.blobs.items()},
        }
        with tarfile.open(path, "w") as tar:
            for member, data in files.items():
                info = tarfile.TarInfo(member)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def read_saved(path: Path) -> tuple[bytes, list[bytes]]:
    """The config and the uncompressed layers of a `docker save` of one image."""
    with tarfile.open(path) as tar:

        def read(name: str) -> bytes:
            member = tar.getmember(name)
            if member.issym():  # a layer shared with another image
                return read(
                    posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
                )
            file = tar.extractfile(member)
            assert file is not None
            return file.read()

        (entry,) = json.loads(read("manifest.json"))
        return read(entry["Config"]), [read(layer) for layer in entry["Layers"]]


def main() -> None:
    saved, out = Path(sys.argv[1]), Path(sys.argv[2])
    config, layers = read_saved(saved)
    for kind in ("gzip", "zstd"):
        archive = Archive()
        archive.write(
            out / f"{kind}.tar",
            archive.manifest(config, layers, kind),
            f"{REPOSITORY}/sample:{kind}",
        )

    archive = Archive()
    arm = json.loads(config)
    arm["architecture"] = "arm64"
    arm["variant"] = "v8"
    manifests = [
        archive.manifest(config, layers, "gzip", platform={"os": "linux", "architecture": "amd64"}),
        archive.manifest(
            json.dumps(arm).encode(),
            layers,
            "gzip",
            platform={"os": "linux", "architecture": "arm64", "variant": "v8"},
        ),
    ]
    index = {"schemaVersion": 2, "mediaType": INDEX, "manifests": manifests}
    top = archive.add(json.dumps(index).encode(), INDEX)
    archive.write(out / "multi.tar", top, f"{REPOSITORY}/multi:latest")


if __name__ == "__main__":
    main()
