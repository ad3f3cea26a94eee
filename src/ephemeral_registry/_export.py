"""Exporting a local image (``docker save``) as an OCI image layout, in one streamed pass.

``docker save`` writes a tar of the image's config and its layers,
uncompressed. Given that tarball, crane gzips every layer twice (once to
compute its digest, once to upload it), which is most of a push's time and
all of its CPU. For a registry on the same machine, compression buys
nothing: here the tar stream is unpacked as it arrives into an OCI image
layout whose layers stay uncompressed (``application/vnd.oci.image.layer.v1.tar``,
a standard layer type that pullers accept), and crane pushes those blobs as
they are. Each blob is hashed while it is written; a layer whose digest is
not the ``diff_id`` its config names is an error, not a silent corruption.

Memory stays constant: data goes from the engine's socket to disk a chunk at
a time.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import tarfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from ._errors import DockerEngineError

ReadExactly = Callable[[int], Awaitable[bytes]]

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
SMALL = 1 << 20
"""Members up to this size (manifest.json, the config) are also kept in memory."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True)
class _Blob:
    digest: str
    size: int
    gzipped: bool


@dataclass(frozen=True)
class Layout:
    """An OCI image layout written by ``unpack_save``."""

    path: Path
    manifest_digest: str
    size: int
    """The bytes of all blobs written."""


async def unpack_save(image: str, read_exactly: ReadExactly, layout: Path) -> Layout:
    """Read a ``docker save`` tar stream and write it as an OCI image layout at ``layout``.

    ``layout`` must be an empty directory. Raises DockerEngineError if the
    stream is cut short or is not a ``docker save`` of one image.

    Cancellation: stops at the next chunk; what was written stays in
    ``layout`` for its owner to remove.
    """
    unpacker = _Unpacker(image, read_exactly, layout)
    await unpacker.run()
    return await unpacker.write_layout()


class _Unpacker:
    def __init__(self, image: str, read_exactly: ReadExactly, layout: Path) -> None:
        self._image = image
        self._read = read_exactly
        self._layout = layout
        self._blobs = layout / "blobs" / "sha256"
        self._files: dict[str, _Blob] = {}
        self._links: dict[str, str] = {}
        self._small: dict[str, bytes] = {}
        self._written = 0

    def _broken(self, problem: str) -> DockerEngineError:
        return DockerEngineError(f"export the image {self._image}", 0, problem)

    async def _read_exactly(self, size: int) -> bytes:
        try:
            return await self._read(size)
        except EOFError:
            raise self._broken("the docker save stream ended in the middle of a file") from None

    async def run(self) -> None:
        await anyio.Path(self._blobs).mkdir(parents=True)
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        while True:
            header = await self._read_exactly(BLOCK)
            if header == tarfile.NUL * BLOCK:
                return  # the end-of-archive marker
            try:
                info = tarfile.TarInfo.frombuf(header, "utf-8", "surrogateescape")
            except tarfile.TarError as exc:
                raise self._broken(f"not a tar stream ({exc})") from None
            size = int(pax.get("size", info.size))
            padded = -(-size // BLOCK) * BLOCK
            if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
                data = await self._read_exactly(padded)
                if info.type != tarfile.XGLTYPE:
                    pax = _pax_records(data[:size])
                continue
            if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
                text = (await self._read_exactly(padded))[:size].rstrip(b"\0").decode()
                if info.type == tarfile.GNUTYPE_LONGNAME:
                    long_name = text
                else:
                    long_link = text
                continue
            name = posixpath.normpath(long_name or pax.get("path") or info.name)
            link = long_link or pax.get("linkpath") or info.linkname
            pax, long_name, long_link = {}, None, None
            if info.isreg():
                await self._write_blob(name, size)
                await self._read_exactly(padded - size)
            else:
                if info.issym():
                    self._links[name] = posixpath.normpath(
                        posixpath.join(posixpath.dirname(name), link)
                    )
                elif info.islnk():
                    self._links[name] = posixpath.normpath(link)
                if padded:
                    await self._read_exactly(padded)

    async def _write_blob(self, name: str, size: int) -> None:
        digest = hashlib.sha256()
        temporary = self._blobs / f".partial-{len(self._files)}"
        first = b""
        kept = bytearray()
        async with await anyio.open_file(temporary, "wb") as file:
            remaining = size
            while remaining:
                chunk = await self._read_exactly(min(CHUNK, remaining))
                remaining -= len(chunk)
                digest.update(chunk)
                await file.write(chunk)
                first = first or chunk[:2]
                if size <= SMALL:
                    kept += chunk
        hexdigest = digest.hexdigest()
        await anyio.Path(temporary).rename(self._blobs / hexdigest)
        self._files[name] = _Blob(f"sha256:{hexdigest}", size, first == GZIP_MAGIC)
        self._written += size
        if size <= SMALL:
            self._small[name] = bytes(kept)

    def _resolve(self, name: str) -> str:
        """The file a member name stands for, following links (as for repeated layers)."""
        name = posixpath.normpath(name)
        for _ in range(8):
            if name not in self._links:
                break
            name = self._links[name]
        return name

    def _blob(self, name: str) -> _Blob:
        name = self._resolve(name)
        try:
            return self._files[name]
        except KeyError:
            raise self._broken(f"its manifest names {name}, which the tar does not hold") from None

    async def write_layout(self) -> Layout:
        try:
            (entry,) = json.loads(self._small["manifest.json"])
            config_name, layer_names = entry["Config"], entry["Layers"]
        except KeyError:
            raise self._broken("no manifest.json: not a docker save tar") from None
        except ValueError:
            raise self._broken("manifest.json does not describe exactly one image") from None
        config = self._blob(config_name)
        config_json = self._small[self._resolve(config_name)]
        diff_ids = json.loads(config_json)["rootfs"]["diff_ids"]
        layers = [self._blob(name) for name in layer_names]
        if len(layers) != len(diff_ids):
            raise self._broken(f"{len(layers)} layers, but its config names {len(diff_ids)}")
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            if not layer.gzipped and layer.digest != diff_id:
                raise self._broken(f"a layer's digest is {layer.digest}, its config says {diff_id}")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {"mediaType": OCI_CONFIG, "digest": config.digest, "size": config.size},
                "layers": [
                    {
                        "mediaType": OCI_LAYER_GZIP if layer.gzipped else OCI_LAYER,
                        "digest": layer.digest,
                        "size": layer.size,
                    }
                    for layer in layers
                ],
            },
            separators=(",", ":"),
        ).encode()
        manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        index = {
            "schemaVersion": 2,
            "manifests": [
                {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
            ],
        }
        layout = anyio.Path(self._layout)
        await (layout / "blobs" / "sha256" / manifest_digest.removeprefix("sha256:")).write_bytes(
            manifest
        )
        await (layout / "index.json").write_text(json.dumps(index))
        await (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        return Layout(self._layout, manifest_digest, self._written + len(manifest))


def _pax_records(data: bytes) -> dict[str, str]:
    """The ``key=value`` records of a PAX extended header: ``"<length> <key>=<value>\\n"``."""
    records = {}
    position = 0
    while position < len(data):
        length_text, _, _ = data[position:].partition(b" ")
        if not length_text.isdigit():
            break
        length = int(length_text)
        record = data[position + len(length_text) + 1 : position + length - 1]
        key, _, value = record.partition(b"=")
        records[key.decode()] = value.decode("utf-8", "surrogateescape")
        position += length
    return records
