"""The docker save reader on its own: it raises only _oci's format errors, which the glue
(``_export.reading``, tested through ``test_export``) makes the library's."""

from __future__ import annotations

import json

import pytest

from ephemeral_registry._oci.errors import FormatError, NotForPlatform
from ephemeral_registry._oci.save import CheckStore, Image, Unpacker
from ephemeral_registry._platform import Platform

from .test_export import (
    PLATFORM,
    OciSave,
    docker_save,
    engine_platform,
    layer,
    multi_platform,
    reader,
    save_tar,
)

pytestmark = pytest.mark.anyio


async def read(tar: bytes, platform: Platform | None, *, engine: bool = True) -> Image:
    unpacker = Unpacker(reader(tar), CheckStore(1 << 20))
    await unpacker.run()
    return await unpacker.choose(platform, engine_platform if engine else None)


async def test_a_platform_the_save_does_not_hold_is_not_for_platform() -> None:
    """The reader names the platform asked for and those held, for the glue to say."""
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    with pytest.raises(NotForPlatform) as caught:
        await read(tar, Platform("linux", "ppc64le"))
    assert caught.value.wanted == "linux/ppc64le"
    assert caught.value.available == ("linux/amd64", "linux/arm64")


async def test_several_images_and_no_engine_to_ask_is_a_format_error() -> None:
    """A caller's tarball of several images: no engine says which, so none is taken."""
    save = OciSave()
    tar = save_tar(save.members(multi_platform(save, "amd64", "arm64")))
    assert (await read(tar, None)).platform == PLATFORM
    with pytest.raises(FormatError, match="it holds several images"):
        await read(tar, None, engine=False)


@pytest.mark.parametrize(
    "tar",
    [
        save_tar(docker_save([layer("one")])[0])[:700],
        b"not a tar" * 100,
        save_tar([("manifest.json", json.dumps([{"Config": 1}]).encode())]),
        save_tar([("layer.tar", layer("one"))]),
    ],
    ids=["cut-short", "not-a-tar", "config-not-a-name", "no-manifest-json"],
)
async def test_broken_saves_are_format_errors(tar: bytes) -> None:
    """Whatever is wrong with the stream, the reader raises a FormatError, nothing else."""
    with pytest.raises(FormatError):
        await read(tar, None)
