"""The crane pusher's refusals: what crane cannot do is refused before anything is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ephemeral_registry import Endpoints, InvalidArgumentError, LayerCompression
from ephemeral_registry._engine import Identity
from ephemeral_registry._engine.docker import container_config
from ephemeral_registry._platform import Platform
from ephemeral_registry._pushers.base import FromEngine, FromFile, Job
from ephemeral_registry._pushers.crane import CraneImage, CranePusher, crane_spec
from ephemeral_registry._pushers.report import Report
from ephemeral_registry._reference import parse
from ephemeral_registry._resources import Created
from ephemeral_registry._source import MOUNT_POINT, Source


def _job(what: FromFile | FromEngine, compression: LayerCompression) -> Job:
    reference = parse("a/b:c")
    return Job(what, reference, compression, Report("crane", reference, None, None))


def _pusher() -> CranePusher:
    async def never() -> Any:
        raise AssertionError("a check waits for nothing")

    return CranePusher(
        None,  # type: ignore[arg-type]  # a check asks the engine nothing
        never,
        CraneImage(None, None, name="n"),  # type: ignore[arg-type]  # nor for crane's image
        name="n",
        labels={},
        created=Created("n"),
        cleanup_timeout=1.0,
    )


def _file(tmp_path: Path, *, layout: bool) -> FromFile:
    return FromFile(Source(path=tmp_path, is_layout=layout, user="0:0"))


def test_a_tarball_without_compression_is_refused(tmp_path: Path) -> None:
    """crane gzips a tarball's layers itself: layer_compression="none" cannot be kept."""
    with pytest.raises(InvalidArgumentError) as caught:
        _pusher().check(_job(_file(tmp_path, layout=False), "none"))
    assert caught.value.argument == "layer_compression"


def test_a_gzipped_tarball_is_taken(tmp_path: Path) -> None:
    """gzip, the default, is what crane does with a tarball."""
    _pusher().check(_job(_file(tmp_path, layout=False), "gzip"))


@pytest.mark.parametrize("compression", ["gzip", "none"])
def test_a_layout_is_taken_whatever_the_compression(
    tmp_path: Path, compression: LayerCompression
) -> None:
    """A layout is pushed as it is."""
    _pusher().check(_job(_file(tmp_path, layout=True), compression))


@pytest.mark.parametrize("compression", ["gzip", "none"])
@pytest.mark.parametrize(
    ("platform", "platforms"),
    [(Platform("linux", "arm64"), None), (None, "all"), (None, (Platform("linux", "arm64"),))],
)
def test_a_platform_is_taken_whatever_the_compression(
    platform: Platform | None, platforms: Any, compression: LayerCompression
) -> None:
    """An image of the engine goes through an OCI layout either way, which holds any platform."""
    _pusher().check(_job(FromEngine("img", platform, platforms), compression))


@pytest.mark.parametrize(("mounted", "rootless"), [(True, False), (False, False), (False, True)])
def test_crane_runs_as_the_same_user_whether_its_source_is_mounted_or_copied(
    tmp_path: Path, mounted: bool, rootless: bool
) -> None:
    """A bind mount only where the engine sees this host's files; the user either way."""
    source = Source(path=tmp_path / "image.tar", is_layout=False, user="4321:4322")
    spec = crane_spec(
        name="n-push-1",
        crane_image="crane",
        labels={},
        endpoints=Endpoints("net", "n:5000", "127.0.0.1:1"),
        source=source,
        reference=parse("a/b:c"),
        registry_address=None,
        rootless=rootless,
        mounted=mounted,
    )
    config = container_config(spec, Identity("docker", (1, 41), "Docker/20.10.24 (linux)"))
    mounts = config["HostConfig"].get("Mounts")
    if mounted:
        assert mounts == [
            {"Type": "bind", "Source": str(source.path), "Target": MOUNT_POINT, "ReadOnly": True}
        ]
    else:
        assert mounts is None
    assert MOUNT_POINT in config["Cmd"]
    assert config["User"] == ("0:0" if rootless else "4321:4322")
