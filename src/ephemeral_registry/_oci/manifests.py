"""The documents a push writes of what the readers read: an OCI image manifest of blobs as
they came (each layer keeps its compression), and an index of such manifests."""

from __future__ import annotations

import json

from .._platform import Platform
from .content import Blob, Compression, sha256_of
from .media_types import (
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_LAYER_ZSTD,
    OCI_MANIFEST,
)

LAYER_TYPES: dict[Compression, str] = {
    "none": OCI_LAYER,
    "gzip": OCI_LAYER_GZIP,
    "zstd": OCI_LAYER_ZSTD,
}


def manifest_json(config: Blob, layers: list[Blob]) -> bytes:
    """An OCI image manifest of ``config`` and ``layers``, as compact JSON."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
            "layers": [
                {
                    "mediaType": LAYER_TYPES[layer.compression],
                    "digest": layer.digest,
                    "size": layer.size,
                }
                for layer in layers
            ],
        },
        separators=(",", ":"),
    ).encode()


def index_json(manifests: list[tuple[bytes, Platform]]) -> bytes:
    """An OCI image index of image manifests, each with its platform, as compact JSON."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [
                {
                    "mediaType": OCI_MANIFEST,
                    "digest": sha256_of(manifest),
                    "size": len(manifest),
                    "platform": platform.descriptor(),
                }
                for manifest, platform in manifests
            ],
        },
        separators=(",", ":"),
    ).encode()
