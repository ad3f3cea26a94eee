"""Several platforms in one push: push_image(platforms=...) and OCI layouts holding indexes,
with either pusher, read back by platform by a real client."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import anyio
import pytest

from ephemeral_registry import Endpoints, ImageNotFoundError, InvalidArgumentError, PushResult

from ..support import testbed
from ..support.helpers import get, registry_under_test, session_resources

pytestmark = pytest.mark.anyio

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MULTI = f"{testbed.PREFIX}/multi:latest"
"""The test bed's image of two platforms (linux/amd64, linux/arm64/v8), on Docker 29 only."""
needs_containerd_store = pytest.mark.skipif(
    "not testbed.has_containerd_store()",
    reason="only a containerd image store holds an image for several platforms;"
    " tests/unit/test_export.py covers the index on every engine",
)


async def pushed(endpoints: Endpoints, result: PushResult, accept: str = OCI_INDEX) -> Any:
    """The document the registry holds at the result's digest."""
    repository = result.digest_ref.split("/", 1)[1].split("@")[0]
    response = await get(
        endpoints.pull_endpoint, f"/v2/{repository}/manifests/{result.digest}", Accept=accept
    )
    assert response.status_code == 200, response.text
    assert "sha256:" + hashlib.sha256(response.content).hexdigest() == result.digest
    return response.json()


def platforms_of(index: dict[str, Any]) -> list[str]:
    return [
        "/".join(filter(None, (p["os"], p["architecture"], p.get("variant"))))
        for p in (entry["platform"] for entry in index["manifests"])
    ]


async def skopeo_inspect(ref: str, architecture: str | None = None) -> dict[str, Any]:
    """What skopeo, a client that picks an index's entry by platform, reads at ``ref``."""
    chosen = ("--override-arch", architecture) if architecture else ()
    done = await anyio.run_process(
        ["skopeo", *chosen, "inspect", "--tls-verify=false", f"docker://{ref}"], check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    inspected: dict[str, Any] = json.loads(done.stdout)
    return inspected


@needs_containerd_store
async def test_every_platform_goes_up_as_one_index_the_same_with_either_pusher() -> None:
    """platforms="all": an index of both platforms, each pulled back by its platform (by
    skopeo, and by Docker 29 itself); crane and the native pusher push the same index."""
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        by_crane = await registry.push_image(MULTI, "multi/all:1", platforms="all")
        native = await registry.push_image(MULTI, "multi/all:2", platforms="all", pusher="native")
        assert native.digest == by_crane.digest
        index = await pushed(endpoints, by_crane)
        assert index["mediaType"] == OCI_INDEX
        assert platforms_of(index) == ["linux/amd64", "linux/arm64/v8"]
        for architecture in ("amd64", "arm64"):
            for result in (by_crane, native):
                inspected = await skopeo_inspect(result.ref, architecture)
                assert inspected["Architecture"] == architecture
        await testbed.adocker("pull", "-q", "--platform", "linux/arm64", native.ref)
        try:
            shown = await testbed.adocker(
                "image", "inspect", "--platform", "linux/arm64", "--format",
                "{{.Os}}/{{.Architecture}}", native.ref,
            )  # fmt: skip
        finally:
            await testbed.adocker("rmi", native.ref)
        assert shown.strip() == "linux/arm64"
    assert session_resources(registry) == set()


@needs_containerd_store
@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_platforms_named_are_those_pushed(pusher: str) -> None:
    """A list: an index of exactly those; one the engine lacks is named with those it has."""
    async with registry_under_test(pusher=pusher) as registry:
        endpoints = await registry.ready()
        result = await registry.push_image(MULTI, "multi/arm:1", platforms=["linux/arm64"])
        index = await pushed(endpoints, result)
        assert platforms_of(index) == ["linux/arm64/v8"]
        assert (await skopeo_inspect(result.ref, "arm64"))["Architecture"] == "arm64"
        with pytest.raises(ImageNotFoundError) as caught:
            await registry.push_image(MULTI, platforms=["linux/amd64", "linux/s390x"])
    assert caught.value.platform == "linux/s390x"
    assert caught.value.available == ("linux/amd64", "linux/arm64/v8")


@pytest.mark.parametrize("pusher", ["crane", "native"])
async def test_all_platforms_of_an_image_of_one_is_an_index_of_one(pusher: str) -> None:
    """Every engine: the platform it holds the image for, in an index a client reads."""
    async with registry_under_test(pusher=pusher) as registry:
        endpoints = await registry.ready()
        result = await registry.push_image(testbed.SAMPLE, "sample/all:1", platforms="all")
        index = await pushed(endpoints, result)
        (entry,) = index["manifests"]
        assert entry["mediaType"] == OCI_MANIFEST
        repository = "sample/all"
        response = await get(
            endpoints.pull_endpoint,
            f"/v2/{repository}/manifests/{entry['digest']}",
            Accept=OCI_MANIFEST,
        )
        config = response.json()["config"]["digest"]
        assert config == testbed.config_digest(testbed.SAMPLE)
        inspected = await skopeo_inspect(result.ref, entry["platform"]["architecture"])
        assert inspected["Digest"] == result.digest
    assert session_resources(registry) == set()


async def test_platforms_is_checked_before_anything_is_made() -> None:
    async with registry_under_test() as registry:
        with pytest.raises(InvalidArgumentError) as caught:
            await registry.push_image(testbed.SAMPLE, platforms="linux/amd64")
        assert caught.value.argument == "platforms"
        with pytest.raises(InvalidArgumentError, match="cannot both be given"):
            await registry.push_image(
                testbed.SAMPLE, platform="linux/amd64", platforms=["linux/amd64"]
            )
        assert len(session_resources(registry)) <= 2  # the registry and its network only


def put(layout: Path, document: dict[str, Any], media_type: str, **extra: Any) -> dict[str, Any]:
    data = json.dumps(document).encode()
    digest = hashlib.sha256(data).hexdigest()
    (layout / "blobs" / "sha256" / digest).write_bytes(data)
    return {"mediaType": media_type, "digest": f"sha256:{digest}", "size": len(data), **extra}


@pytest.fixture
async def two_images(tmp_path: Path) -> Path:
    """An OCI layout (made by skopeo) whose index.json names two images: sample one and two."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    second = tmp_path / "second"
    await testbed.oci_layout(testbed.SAMPLE_TWO, second)
    for blob in (second / "blobs" / "sha256").iterdir():
        target = layout / "blobs" / "sha256" / blob.name
        if not target.exists():
            blob.rename(target)
    index = json.loads((layout / "index.json").read_text())
    (entry,) = json.loads((second / "index.json").read_text())["manifests"]
    entry["annotations"] = {"org.opencontainers.image.ref.name": "two"}
    index["manifests"].append(entry)
    (layout / "index.json").write_text(json.dumps(index))
    return layout


async def test_a_layout_of_several_entries_is_pushed_as_its_index_by_either_pusher(
    two_images: Path,
) -> None:
    """index.json itself becomes the index (crane's --index): the same digest by both
    pushers, and each image it names is in the registry."""
    index_json = (two_images / "index.json").read_bytes()
    expected = "sha256:" + hashlib.sha256(index_json).hexdigest()
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        by_crane = await registry.push(two_images, "layout/two:1")
        native = await registry.push(two_images, "layout/two:2", pusher="native")
        assert by_crane.digest == native.digest == expected
        index = await pushed(endpoints, native)
        assert len(index["manifests"]) == 2
        for entry in index["manifests"]:
            response = await get(
                endpoints.pull_endpoint,
                f"/v2/layout/two/manifests/{entry['digest']}",
                Accept=entry["mediaType"],
            )
            assert response.status_code == 200, response.text
    assert session_resources(registry) == set()


async def test_a_layout_naming_one_index_pushes_that_index_by_either_pusher(
    tmp_path: Path,
) -> None:
    """index.json names an index of platforms (as a containerd store's export does): that
    index, with what it names, is the tag; both pushers push the same digest."""
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE, layout)
    (entry,) = json.loads((layout / "index.json").read_text())["manifests"]
    manifest = json.loads(await blob(layout, entry["digest"]))
    config = json.loads(await blob(layout, manifest["config"]["digest"]))
    platform = {"os": config["os"], "architecture": config["architecture"]}
    named = [{**entry, "platform": platform}]
    top = put(layout, {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": named}, OCI_INDEX)
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [top]}))
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        by_crane = await registry.push(layout, "layout/index:1")
        native = await registry.push(layout, "layout/index:2", pusher="native")
        assert by_crane.digest == native.digest == top["digest"]
        index = await pushed(endpoints, native)
        assert [e["digest"] for e in index["manifests"]] == [entry["digest"]]
        inspected = await skopeo_inspect(by_crane.ref, config["architecture"])
        assert inspected["Digest"] == top["digest"]
    assert session_resources(registry) == set()


async def blob(layout: Path, digest: str) -> bytes:
    path = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return await anyio.Path(path).read_bytes()
