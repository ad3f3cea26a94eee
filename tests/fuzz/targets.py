"""Fuzz targets: each reader of bytes from outside, fed anything, ends in a result or in the
error it promises. ``run.py`` drives them with atheris; ``tests/unit/test_fuzz_corpus.py``
replays every input kept in ``corpus/<target>/``.

A target raises ``AssertionError`` (or lets an unexpected exception out) on a broken promise.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from pathlib import Path

import anyio

from ephemeral_registry import DockerUnavailableError, EphemeralRegistryError
from ephemeral_registry._discovery import discover
from ephemeral_registry._export import CheckStore, Unpacker
from ephemeral_registry._logs import MAX_LINE, FrameError, Frames, Lines
from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._oci.layout import read_layout_blocking
from ephemeral_registry._platform import Platform

SEPARATOR = b"\n--\n"


def save(data: bytes) -> None:
    """A ``docker save`` stream: read whole (the one tar reader, the JSON, the diff_id check)."""

    async def read() -> None:
        stream = io.BytesIO(data)

        async def read_exactly(size: int) -> bytes:
            got = stream.read(size)
            if len(got) < size:
                raise EOFError
            return got

        async def engine_platform() -> Platform:
            return Platform("linux", "amd64")

        unpacker = Unpacker("fuzz", read_exactly, CheckStore(1 << 20))
        try:
            await unpacker.run()
            await unpacker.choose(None, engine_platform)
        except EphemeralRegistryError:
            pass

    anyio.run(read)


def layout(data: bytes) -> None:
    """An OCI layout: ``index.json`` and documents it may name, parts split by SEPARATOR."""
    index, *documents = data.split(SEPARATOR)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        blobs = root / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        (root / "index.json").write_bytes(index)
        for document in documents[:8]:
            (blobs / hashlib.sha256(document).hexdigest()).write_bytes(document)
        try:
            found = read_layout_blocking(root)
        except FormatError:
            return
        for manifest in found.manifests():
            for blob in manifest.blobs:
                assert found.blob_path(blob).resolve().is_relative_to(root.resolve())


def frames(data: bytes) -> None:
    """The engine's multiplexed output, cut into pieces the first byte chooses, then lines."""
    if not data:
        return
    piece = data[0] + 1
    splitter, lines = Frames(), Lines()
    try:
        for start in range(1, len(data), piece):
            for stream, payload in splitter.feed(data[start : start + piece]):
                for line in lines.feed(stream, payload):
                    assert len(line.encode(errors="surrogateescape")) <= MAX_LINE * 3
        splitter.end()
    except FrameError:
        pass
    lines.end()


def docker_config(data: bytes) -> None:
    """``config.json``, a context's ``meta.json`` and ``DOCKER_HOST``, split by SEPARATOR."""
    config, meta, host = [*data.split(SEPARATOR, 2), b"", b""][:3]
    with tempfile.TemporaryDirectory() as directory:
        home = Path(directory)
        (home / "config.json").write_bytes(config)
        key = hashlib.sha256(b"fuzz").hexdigest()
        (home / "contexts" / "meta" / key).mkdir(parents=True)
        (home / "contexts" / "meta" / key / "meta.json").write_bytes(meta)
        environments = [
            {"DOCKER_CONFIG": directory},
            {"DOCKER_CONFIG": directory, "DOCKER_CONTEXT": "fuzz"},
        ]
        text = host.decode("utf-8", "replace").replace("\0", "")
        if text:
            environments.append({"DOCKER_HOST": text})
        for environment in environments:
            try:
                address = discover(environment, home=home)
            except DockerUnavailableError:
                continue
            assert isinstance(address.url, str)
            assert address.is_remote in (True, False)
            address.client_url  # noqa: B018 - must not raise


TARGETS: dict[str, Callable[[bytes], None]] = {
    "save": save,
    "layout": layout,
    "frames": frames,
    "docker_config": docker_config,
}

CORPUS = Path(__file__).parent / "corpus"
