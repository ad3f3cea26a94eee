"""The native pusher's upload pipeline: the blob cache that spares uploads."""

from __future__ import annotations

import pytest

from ephemeral_registry._oci.content import Blob
from ephemeral_registry._pushers.upload import BlobCache, Held

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "a" * 64


async def test_a_failed_pushs_cache_entries_are_forgotten() -> None:
    """What one push recorded goes when it fails: it cannot spoil a later push."""
    cache = BlobCache()
    blob = Blob(DIGEST, 4, "none", DIGEST)
    async with cache.claim("gzip:layer") as held:
        assert held is None
        cache.record("gzip:layer", Held(blob, blob, "app"))
    cache.forget({"gzip:layer"})
    async with cache.claim("gzip:layer") as held:
        assert held is None
