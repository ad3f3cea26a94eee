"""push_image exports exactly the image named, whatever the engine keeps it as."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest

from ephemeral_registry import Endpoints, ExportError, ImageNotFoundError, PushResult

from ..support import testbed
from ..support.helpers import get, registry_under_test

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PREFIX = testbed.PREFIX
needs_containerd_store = pytest.mark.skipif(
    "not testbed.has_containerd_store()",
    reason="only a containerd image store keeps compressed layers and several platforms;"
    " tests/unit/test_export.py covers the logic on every engine",
)


async def pushed_manifest(endpoints: Endpoints, result: PushResult) -> dict[str, object]:
    repository = result.digest_ref.split("/", 1)[1].split("@")[0]
    response = await get(
        endpoints.pull_endpoint, f"/v2/{repository}/manifests/{result.digest}", Accept=OCI_MANIFEST
    )
    assert response.status_code == 200, response.text
    manifest: dict[str, object] = response.json()
    return manifest


async def pushed_config(endpoints: Endpoints, result: PushResult) -> dict[str, object]:
    manifest = await pushed_manifest(endpoints, result)
    digest = manifest["config"]["digest"]  # type: ignore[index]
    repository = result.digest_ref.split("/", 1)[1].split("@")[0]
    response = await get(endpoints.pull_endpoint, f"/v2/{repository}/blobs/{digest}")
    config: dict[str, object] = json.loads(response.content)
    return config


@pytest.fixture
def two_tags() -> Iterator[str]:
    """A repository of this test's own with two tags: latest (sample one) and other (two)."""
    name = f"ert-tagless-{secrets.token_hex(4)}"
    testbed.docker("tag", testbed.SAMPLE, f"{name}:latest")
    testbed.docker("tag", testbed.SAMPLE_TWO, f"{name}:other")
    try:
        yield name
    finally:
        testbed.docker("rmi", f"{name}:latest", f"{name}:other", check=False)


@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_a_name_without_a_tag_pushes_latest_only(two_tags: str, pusher: str) -> None:
    """As in Docker, `name` is `name:latest`: the other tag is neither exported nor pushed."""
    async with registry_under_test(pusher=pusher) as registry:
        result = await registry.push_image(two_tags)
        endpoints = await registry.ready()
        assert result.ref.endswith(f"/{two_tags}:latest")
        manifest = await pushed_manifest(endpoints, result)
    assert manifest["config"]["digest"] == testbed.config_digest(testbed.SAMPLE)  # type: ignore[index]


@pytest.mark.parametrize(
    ("pusher", "compression"), [("crane", "none"), ("native", "none"), ("native", "gzip")]
)
async def test_a_name_at_a_digest_is_that_image(pusher: str, compression: str) -> None:
    """``name@sha256:...``, a digest the engine knows from a pull: that image, pushed as
    ``name:latest`` unless ``ref=`` says otherwise."""
    async with registry_under_test(pusher=pusher, layer_compression=compression) as registry:
        first = await registry.push_image(testbed.SAMPLE, "by/digest:1")
        await testbed.adocker("pull", "-q", first.digest_ref)  # known to the engine by its digest
        try:
            if compression == "gzip" and testbed.has_containerd_store():
                # A known difference: the store holds the sample's layers unpacked, so the
                # pull fetched none of their gzip blobs (moby/moby#49784); say so clearly.
                with pytest.raises(ExportError, match="moby/moby#49784"):
                    await registry.push_image(first.digest_ref)
                return
            result = await registry.push_image(first.digest_ref)
            named = await registry.push_image(first.digest_ref, "named:2")
        finally:
            await testbed.adocker("rmi", first.digest_ref)
        assert result.ref.endswith("/by/digest:latest"), result
        assert named.ref.endswith("/named:2"), named
        expected = testbed.config_digest(testbed.SAMPLE)
        for pushed in (result, named):
            assert await testbed.pulled_config_digest(pushed.ref) == expected


async def test_a_missing_tag_is_named_in_the_error() -> None:
    """The repository exists, but not its :latest: the error names the image it looked for."""
    async with registry_under_test() as registry:
        with pytest.raises(ImageNotFoundError) as caught:
            await registry.push_image(f"{PREFIX}/sample")
    assert caught.value.image == f"{PREFIX}/sample:latest"
    assert f"{PREFIX}/sample:latest is not held" in str(caught.value)


@needs_containerd_store
@pytest.mark.parametrize("pusher", ["crane", "native"])
@pytest.mark.parametrize(
    ("tag", "media_type"),
    [
        ("gzip", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
    ],
)
async def test_compressed_layers_are_pushed_as_they_are(
    tag: str, media_type: str, pusher: str
) -> None:
    """The store's compressed layers keep their bytes and get their media type; same config."""
    image = f"{PREFIX}/sample:{tag}"
    async with registry_under_test(pusher=pusher) as registry:
        result = await registry.push_image(image)
        endpoints = await registry.ready()
        manifest = await pushed_manifest(endpoints, result)
        assert {layer["mediaType"] for layer in manifest["layers"]} == {media_type}  # type: ignore[attr-defined]
        source = testbed.config_digest(testbed.SAMPLE)
        assert manifest["config"]["digest"] == source  # type: ignore[index]
        assert await testbed.pulled_config_digest(result.ref) == source


@needs_containerd_store
@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_a_multi_platform_image_pushes_the_engines_platform_or_the_one_named(
    pusher: str,
) -> None:
    """The engine's own platform by default; platform= picks another; a missing one is named."""
    image = f"{PREFIX}/multi:latest"
    async with registry_under_test(pusher=pusher) as registry:
        endpoints = await registry.ready()
        native = await registry.push_image(image, "multi/native:1")
        arm = await registry.push_image(image, "multi/arm:1", platform="linux/arm64")
        assert (await pushed_config(endpoints, native))["architecture"] == "amd64"
        assert (await pushed_config(endpoints, arm))["architecture"] == "arm64"
        with pytest.raises(ImageNotFoundError) as caught:
            await registry.push_image(image, "multi/none:1", platform="linux/s390x")
    assert caught.value.available == ("linux/amd64", "linux/arm64/v8")
