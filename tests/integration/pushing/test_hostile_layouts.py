"""A caller's OCI layout is read as hostile as a tarball, with the same verdict whichever
pusher: each fault is an InvalidSourceError before anything is pushed or created."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from ephemeral_registry import InvalidSourceError

from ..support.helpers import get, registry_under_test, session_resources

pytestmark = pytest.mark.anyio

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def layer_tar() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = 6
        tar.addfile(info, io.BytesIO(b"hello\n"))
    return buffer.getvalue()


def put(layout: Path, data: bytes, media_type: str, algorithm: str = "sha256") -> dict[str, object]:
    encoded = hashlib.new(algorithm, data).hexdigest()
    (layout / "blobs" / algorithm).mkdir(parents=True, exist_ok=True)
    (layout / "blobs" / algorithm / encoded).write_bytes(data)
    return {"mediaType": media_type, "digest": f"{algorithm}:{encoded}", "size": len(data)}


def write_layout(
    layout: Path,
    *,
    config: dict[str, object] | bytes | None = None,
    layer_algorithm: str = "sha256",
) -> Path:
    """A one-image layout of one uncompressed layer; ``config`` replaces its config."""
    layer = layer_tar()
    layer_descriptor = put(layout, layer, OCI_LAYER, layer_algorithm)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    fields: dict[str, object] = {
        "os": "linux",
        "architecture": "amd64",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }
    if isinstance(config, dict):
        fields |= config
    content = config if isinstance(config, bytes) else json.dumps(fields).encode()
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": put(layout, content, OCI_CONFIG),
        "layers": [layer_descriptor],
    }
    entry = put(layout, json.dumps(manifest).encode(), OCI_MANIFEST)
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (layout / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [entry]}))
    return layout


def link_out(name: str) -> Callable[[Path], None]:
    def fault(layout: Path) -> None:
        if name == "layer":
            path = layout / "blobs" / "sha256" / hashlib.sha256(layer_tar()).hexdigest()
        else:
            path = layout / name
        outside = layout.parent / f"outside-{path.name}"
        path.rename(outside)
        path.symlink_to(outside)

    return fault


def changed_layer(layout: Path) -> None:
    path = layout / "blobs" / "sha256" / hashlib.sha256(layer_tar()).hexdigest()
    path.write_bytes(path.read_bytes().replace(b"hello\n", b"HELLO\n"))


FAULTS: dict[str, tuple[Callable[[Path], object], str]] = {
    "index.json linked out": (lambda path: link_out("index.json")(write_layout(path)), "link"),
    "oci-layout linked out": (lambda path: link_out("oci-layout")(write_layout(path)), "link"),
    "a layer linked out": (lambda path: link_out("layer")(write_layout(path)), "link"),
    "a layer's bytes changed": (lambda path: changed_layer(write_layout(path)), "digest"),
    "a config not JSON": (lambda path: write_layout(path, config=b"not json"), "not JSON"),
    "a diff_id that does not match": (
        lambda path: write_layout(path, config={"rootfs": {"diff_ids": ["sha256:" + "0" * 64]}}),
        "its config says",
    ),
    "a sha512 layer": (lambda path: write_layout(path, layer_algorithm="sha512"), "sha512"),
    "an os that is a list": (lambda path: write_layout(path, config={"os": ["linux"]}), "its os"),
}


@pytest.mark.parametrize("pusher", ["native", "crane"])
async def test_a_sound_layout_is_pushed_by_either_pusher(tmp_path: Path, pusher: str) -> None:
    """The control: the layout the faults below start from is pushed."""
    layout = write_layout(tmp_path / "layout")
    async with registry_under_test(pusher=pusher) as registry:
        result = await registry.push(layout, "sound/layout:1")
        entry = json.loads((layout / "index.json").read_text())["manifests"][0]
        assert result.digest == entry["digest"]
    assert session_resources(registry) == set()


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("pusher", ["native", "crane"])
async def test_a_hostile_layout_gets_the_same_verdict_from_either_pusher(
    tmp_path: Path, pusher: str, fault: str
) -> None:
    """InvalidSourceError naming the fault; the registry holds no tag; nothing labelled is
    left (crane's container never is created)."""
    make, problem = FAULTS[fault]
    (tmp_path / "layout").mkdir()
    make(tmp_path / "layout")
    async with registry_under_test(pusher=pusher) as registry:
        with pytest.raises(InvalidSourceError, match=problem):
            await registry.push(tmp_path / "layout", "hostile/layout:1")
        endpoint = (await registry.ready()).pull_endpoint
        assert (await get(endpoint, "/v2/hostile/layout/tags/list")).status_code == 404
    assert session_resources(registry) == set()
