"""Exporting a local image (``docker save``) as an OCI image layout, in one streamed pass.

What ``docker save`` writes differs by engine:

- Docker 20.10: ``<id>/layer.tar`` files, ``<id>.json`` configs, ``manifest.json``;
- Podman: ``<digest>.tar`` layers, ``<digest>.json`` config, ``manifest.json``;
- Docker 25 and later: an OCI layout (``blobs/sha256/...``, ``index.json``)
  plus ``manifest.json``; with the containerd image store, layers stay as the
  store keeps them (gzip or zstd compressed, as pulled or built), and an
  image may be an index of several platforms, of which ``manifest.json``
  lists only the engine's own.

The tar stream is unpacked as it arrives into an OCI image layout, each
member written once, as a blob named by its digest. Where the save has an
``index.json``, the image is found through it (so that any platform it holds
can be chosen); elsewhere through ``manifest.json``. Layers are pushed as
they came: uncompressed ones stay uncompressed (crane would otherwise gzip
each layer twice; for a registry on the same machine that is pure CPU cost),
compressed ones are recognised by their content and keep their compression.
Every layer is checked against the ``diff_id`` its config names, over its
uncompressed content: a mismatch is an error, never a silently corrupt image.

Memory stays constant: data goes from the engine's socket to disk a chunk at
a time (decompression for the check is bounded too).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import tarfile
import tempfile
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal, Protocol, cast

import zstandard

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import Path as AsyncPath

from ._concurrency import opened
from ._docker import Engine
from ._errors import ExportError, ImageNotFoundError
from ._platform import Platform

logger = logging.getLogger("ephemeral_registry")

ReadExactly = Callable[[int], Awaitable[bytes]]
Compression = Literal["none", "gzip", "zstd"]

CHUNK = 1 << 20
BLOCK = tarfile.BLOCKSIZE
INFLATE_CHUNK = 1 << 20
"""The most bytes one step of the diff_id check decompresses at once."""

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
LAYER_TYPES: dict[Compression, str] = {
    "none": OCI_LAYER,
    "gzip": OCI_LAYER_GZIP,
    "zstd": OCI_LAYER_ZSTD,
}
MAGIC: dict[bytes, Compression] = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
MAX_LINKS = 8


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    compression: Compression
    diff_id: str
    """The digest of the uncompressed content (the blob's own digest when uncompressed)."""


@dataclass(frozen=True)
class Image:
    """One image the save holds: its platform, config and layers."""

    platform: Platform
    config: Blob
    layers: list[Blob]


@dataclass(frozen=True)
class Layout:
    """An OCI image layout written by ``unpack_save``."""

    path: Path
    manifest_digest: str
    config_digest: str
    """The image's config digest: its id on engines without a containerd image store."""
    platform: Platform
    size: int
    """The bytes of all blobs written."""


class Digests:
    """The digest of a blob and of its uncompressed content, fed a chunk at a time."""

    def __init__(self) -> None:
        self._raw = hashlib.sha256()
        self._plain = hashlib.sha256()
        self.compression: Compression | None = None
        self._inflate: Any = None  # zlib's decompressor, or zstandard's stream writer

    def update(self, chunk: bytes) -> None:
        self._raw.update(chunk)
        if self.compression is None:
            self._start(chunk)
        if self.compression == "gzip":
            self._gunzip(chunk)
        elif self.compression == "zstd":
            self._inflate.write(chunk)

    def _start(self, first: bytes) -> None:
        self.compression = next(
            (kind for magic, kind in MAGIC.items() if first.startswith(magic)), "none"
        )
        if self.compression == "gzip":
            self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)
        elif self.compression == "zstd":
            sink = cast(IO[bytes], _HashWriter(self._plain))
            self._inflate = zstandard.ZstdDecompressor().stream_writer(
                sink, write_size=INFLATE_CHUNK
            )

    def _gunzip(self, data: bytes) -> None:
        while data:
            self._plain.update(self._inflate.decompress(data, INFLATE_CHUNK))
            data = self._inflate.unconsumed_tail
            if self._inflate.eof and self._inflate.unused_data:  # another gzip member
                data = self._inflate.unused_data
                self._inflate = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def blob(self, size: int) -> Blob:
        if self.compression == "zstd":
            self._inflate.flush()
        raw = f"sha256:{self._raw.hexdigest()}"
        compression = self.compression or "none"
        plain = raw if compression == "none" else f"sha256:{self._plain.hexdigest()}"
        return Blob(raw, size, compression, plain)


class BlobStore(Protocol):
    """Where the files of a ``docker save`` stream go as they are read."""

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        """Read the ``size`` bytes of the member ``name``; describe them as they came."""
        ...

    async def content(self, blob: Blob) -> bytes:
        """The bytes of a blob kept earlier (a JSON document of the save)."""
        ...


class _LayoutStore:
    """Every file of the save written once, as a blob of an OCI layout named by its digest."""

    def __init__(self, layout: Path) -> None:
        self.blobs = layout / "blobs" / "sha256"
        self.written = 0

    def path(self, digest: str) -> Path:
        return self.blobs / digest.removeprefix("sha256:")

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        digests = Digests()
        temporary = self.blobs / ".partial"  # one file at a time: the stream is sequential
        async with opened(temporary, "wb") as file:
            remaining = size
            while remaining:
                chunk = await read_exactly(min(CHUNK, remaining))
                remaining -= len(chunk)
                digests.update(chunk)
                await file.write(chunk)
        blob = digests.blob(size)
        await AsyncPath(temporary).rename(self.path(blob.digest))
        self.written += size
        return blob

    async def content(self, blob: Blob) -> bytes:
        return await AsyncPath(self.path(blob.digest)).read_bytes()


class _HashWriter:
    """A file-like sink that only hashes what is written to it."""

    def __init__(self, digest: Any) -> None:
        self._digest = digest

    def write(self, data: bytes) -> int:
        self._digest.update(data)
        return len(data)


@asynccontextmanager
async def exported(
    engine: Engine,
    image: str,
    *,
    platform: Platform | None,
    as_tarball: bool,
    timeout: float,
) -> AsyncIterator[Path]:
    """``image`` exported into a temporary directory, for a push; removed on exit.

    Yields an OCI layout (see ``export_image``) or, ``as_tarball``, the
    ``docker save`` tarball as the engine wrote it (crane then gzips its layers).

    Cancellation: the export stops, and the directory is removed.
    """
    with tempfile.TemporaryDirectory(prefix="ephemeral-registry-") as directory:
        if as_tarball:
            source = Path(directory) / "image.tar"
            size = await engine.save_image(image, source, timeout=timeout)
        else:
            source = Path(directory) / "layout"
            size = (
                await export_image(engine, image, source, platform=platform, timeout=timeout)
            ).size
        logger.debug("exported %s (%d bytes)", image, size)
        yield source


async def export_image(
    engine: Engine, image: str, layout: Path, *, platform: Platform | None, timeout: float
) -> Layout:
    """Export ``image`` from the engine into an OCI layout at ``layout`` (an empty directory).

    ``platform=None`` takes the only image there is, or else the engine's own
    platform. ``timeout`` bounds the whole export.

    Raises:
        ImageNotFoundError: the save holds no image for ``platform``.
        DockerEngineError: the engine refused (status 404: the image went away).
        ExportError: the stream broke off, is not a ``docker save``, or a
            layer does not match its config.
        EngineTimeoutError: the export took longer than ``timeout``.

    Cancellation: stops at the next chunk; what was written stays in
    ``layout`` for its owner to remove.
    """
    async with engine.export(image, timeout=timeout) as content:
        return await unpack_save(
            image,
            content.readexactly,
            layout,
            platform=platform,
            engine_platform=engine.platform,
        )


async def unpack_save(
    image: str,
    read_exactly: ReadExactly,
    layout: Path,
    *,
    platform: Platform | None = None,
    engine_platform: Callable[[], Awaitable[Platform]],
) -> Layout:
    """Read a ``docker save`` tar stream and write one of its images as an OCI layout at ``layout``.

    The image is the one for ``platform``; with ``platform=None``, the only
    one the save holds, whatever its platform, or else the one for
    ``engine_platform()`` (asked only then: it is a request to the engine).
    ``layout`` must be an empty directory.

    Raises:
        ImageNotFoundError: no image for ``platform``.
        ExportError: the stream is cut short, is not a ``docker save``,
            or a layer does not match its config.

    Cancellation: stops at the next chunk; what was written stays in
    ``layout`` for its owner to remove.
    """
    store = _LayoutStore(layout)
    await AsyncPath(store.blobs).mkdir(parents=True)
    unpacker = Unpacker(image, read_exactly, store)
    await unpacker.run()
    chosen = await unpacker.choose(platform, engine_platform)
    manifest = manifest_json(chosen.config, chosen.layers)
    manifest_digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    index_json = {
        "schemaVersion": 2,
        "manifests": [
            {"mediaType": OCI_MANIFEST, "digest": manifest_digest, "size": len(manifest)}
        ],
    }
    await AsyncPath(store.path(manifest_digest)).write_bytes(manifest)
    # The engine's own index.json, if any, is a blob now; this one names the chosen image.
    await (AsyncPath(layout) / "index.json").write_text(json.dumps(index_json))
    await (AsyncPath(layout) / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return Layout(
        layout,
        manifest_digest,
        chosen.config.digest,
        chosen.platform,
        store.written + len(manifest),
    )


class Unpacker:
    """Reads a ``docker save`` tar stream into a ``BlobStore``, then finds the image in it."""

    def __init__(self, image: str, read_exactly: ReadExactly, store: BlobStore) -> None:
        self._image = image
        self._read = read_exactly
        self._store = store
        self._files: dict[str, Blob] = {}
        self._links: dict[str, str] = {}

    def _broken(self, problem: str) -> ExportError:
        return ExportError(self._image, problem)

    async def _read_exactly(self, size: int) -> bytes:
        try:
            return await self._read(size)
        except EOFError:
            raise self._broken("the docker save stream ended in the middle of a file") from None

    async def run(self) -> None:
        """Read the whole stream, handing each regular file to the store."""
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
                self._files[name] = await self._store.keep(name, size, self._read_exactly)
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

    # Finding the image in what was unpacked.

    def _member(self, name: str) -> Blob | None:
        """The file a member name stands for, following links (as for repeated layers)."""
        name = posixpath.normpath(name)
        for _ in range(MAX_LINKS):
            if name not in self._links:
                break
            name = self._links[name]
        return self._files.get(name)

    def _named(self, name: str) -> Blob:
        blob = self._member(name)
        if blob is None:
            raise self._broken(f"its manifest names {name}, which the tar does not hold")
        return blob

    def _by_digest(self, digest: str) -> Blob | None:
        """A blob of the OCI layout by its digest; None where the save left it out."""
        algorithm, _, encoded = str(digest).partition(":")
        blob = self._member(f"blobs/{algorithm}/{encoded}")
        if blob is not None and blob.digest != digest:
            raise self._broken(f"the blob named {digest} has the digest {blob.digest}")
        return blob

    async def _json(self, blob: Blob, expected: type[dict[str, Any] | list[Any]] = dict) -> Any:
        """A JSON document of the save, of the ``expected`` kind (whatever its size)."""
        try:
            document = json.loads(await self._store.content(blob))
        except ValueError:
            raise self._broken(f"the blob {blob.digest} is not JSON") from None
        if not isinstance(document, expected):
            kind = "an object" if expected is dict else "an array"
            raise self._broken(f"the JSON of {blob.digest} is not {kind}")
        return document

    async def _oci_images(self, index: Blob) -> list[Image]:
        """The complete images an OCI layout's index leads to, through nested indexes."""
        images: list[Image] = []

        async def visit(descriptors: list[dict[str, Any]], depth: int) -> None:
            for descriptor in descriptors:
                blob = self._by_digest(descriptor.get("digest", ""))
                if blob is None:  # a platform the engine does not hold
                    continue
                document = await self._json(blob)
                media_type = descriptor.get("mediaType") or document.get("mediaType")
                if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) and depth < MAX_LINKS:
                    await visit(document.get("manifests", []), depth + 1)
                elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
                    image = await self._oci_image(document)
                    if image is not None:
                        images.append(image)

        await visit((await self._json(index)).get("manifests", []), 0)
        return images

    async def _oci_image(self, manifest: dict[str, Any]) -> Image | None:
        try:
            config = self._by_digest(manifest["config"]["digest"])
            layers = [self._by_digest(layer["digest"]) for layer in manifest["layers"]]
        except (KeyError, TypeError):
            raise self._broken("a manifest in its index.json is malformed") from None
        if config is None or None in layers:
            return None
        platform = Platform.of(await self._json(config))
        if platform.os == "unknown":  # an attestation, not an image
            return None
        return Image(platform, config, [layer for layer in layers if layer is not None])

    async def _saved_images(self) -> list[Image]:
        """The images ``manifest.json`` lists (engines that write no index.json)."""
        manifest = self._member("manifest.json")
        if manifest is None:
            raise self._broken("no manifest.json: not a docker save tar")
        images = []
        try:
            for entry in await self._json(manifest, list):
                config = self._named(entry["Config"])
                layers = [self._named(name) for name in entry["Layers"]]
                images.append(Image(Platform.of(await self._json(config)), config, layers))
        except (KeyError, TypeError):
            raise self._broken("manifest.json is malformed") from None
        return images

    async def _choose(
        self,
        images: list[Image],
        platform: Platform | None,
        engine_platform: Callable[[], Awaitable[Platform]],
    ) -> Image:
        if platform is None and len(images) == 1:
            return images[0]
        wanted = platform or await engine_platform()
        matching = [image for image in images if wanted.matches(image.platform)]
        if len(matching) == 1:
            return matching[0]
        if not images:
            raise self._broken(
                "it holds no complete image: a blob its index names is missing. Docker's"
                " containerd image store does not fetch a pulled image's compressed layers"
                " when it holds their content unpacked already, from another image"
                " (moby/moby#49784): such an image runs, but cannot be exported"
            )
        if matching:
            raise self._broken(
                f"it holds {len(matching)} images for {wanted}, not exactly one image"
            )
        raise ImageNotFoundError(
            self._image, platform=str(wanted), available=tuple(str(i.platform) for i in images)
        )

    async def choose(
        self, platform: Platform | None, engine_platform: Callable[[], Awaitable[Platform]]
    ) -> Image:
        """The image to push, once the stream is read; its layers checked against its config."""
        index = self._member("index.json")
        images = await self._oci_images(index) if index else await self._saved_images()
        image = await self._choose(images, platform, engine_platform)
        try:
            diff_ids = list((await self._json(image.config))["rootfs"]["diff_ids"])
        except (KeyError, TypeError):
            raise self._broken("its config names no rootfs.diff_ids") from None
        if len(image.layers) != len(diff_ids):
            raise self._broken(f"{len(image.layers)} layers, but its config names {len(diff_ids)}")
        for layer, diff_id in zip(image.layers, diff_ids, strict=True):
            if layer.diff_id != diff_id:
                raise self._broken(
                    f"a layer's content has the digest {layer.diff_id}, its config says {diff_id}"
                )
        return image


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
