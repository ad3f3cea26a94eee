"""The ``docker save`` reader: a tar stream from an engine or a caller, every engine's format.

What ``docker save`` writes differs by engine:

- Docker 20.10: ``<id>/layer.tar`` files, ``<id>.json`` configs, ``manifest.json``;
- Podman: ``<digest>.tar`` layers, ``<digest>.json`` config, ``manifest.json``;
- Docker 25 and later: an OCI layout (``blobs/sha256/...``, ``index.json``)
  plus ``manifest.json``; with the containerd image store, layers stay as the
  store keeps them (gzip or zstd compressed, as pulled or built), and an
  image may be an index of several platforms, of which ``manifest.json``
  lists only the engine's own.

``Unpacker`` reads the stream once, handing each member's data to a
``BlobStore`` as it arrives (the caller's: a layout on disk, an upload, or
``CheckStore``, which only checks), then finds the image in what it read:
through the save's ``index.json`` where it has one (so that any platform it
holds can be chosen), elsewhere through ``manifest.json``. Every layer is
checked against the ``diff_id`` its config names, over its uncompressed
content: a mismatch is an error, never a silently corrupt image.

Like every reader of ``_oci``, it raises nothing of the library's own: any
input ends in a result or in a ``FormatError``, which the caller translates
once (``_export.reading``).
"""

from __future__ import annotations

import posixpath
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from .._platform import Platform, Platforms
from .content import Blob, Config, read_blob, read_config, strings
from .documents import MAX_DOCUMENT, kind_of, parse_array, parse_object
from .errors import FormatError, NotForPlatform
from .layout import MAX_MANIFESTS, check_digest
from .media_types import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from .stream import ReadExactly
from .tar import TarReader
from .threads import check_cancelled

T = TypeVar("T")
EnginePlatform = Callable[[], Awaitable[Platform]]
"""Asks the engine for its own platform: the image to take where a save holds several."""

MAX_MEMBERS = 100_000
"""The most files and links of a save that are indexed (a save of 127 layers has about 400)."""
MAX_NAME_BYTES = 16 << 20
"""The most bytes of member names and link targets indexed, in all."""
MAX_DESCRIPTORS = 4 * MAX_MANIFESTS
"""The most descriptors its indexes may hold in all, those that repeat included."""
MAX_LINKS = 8


@dataclass(frozen=True)
class Image:
    """One image the save holds: its platform, config and layers."""

    platform: Platform
    config: Blob
    layers: list[Blob]


class BlobStore(Protocol):
    """Where the files of a ``docker save`` stream go as they are read."""

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        """Read the ``size`` bytes of the member ``name``; describe them as they came."""
        ...

    async def content(self, blob: Blob) -> bytes | None:
        """The bytes of a blob kept earlier (a JSON document of the save); None where the
        store did not keep them (over its budget)."""
        ...


class CheckStore:
    """A BlobStore that only checks: it hashes every file (and inflates compressed ones, for
    the diff_id check) and keeps just the JSON documents, within ``budget`` bytes in all.

    It is how a tarball for crane goes through the same reader as a native push.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self._documents: dict[str, bytes] = {}

    async def keep(self, name: str, size: int, read_exactly: ReadExactly) -> Blob:
        document = size <= min(MAX_DOCUMENT, self._budget)
        parts: list[bytes] = []

        async def hold(chunk: bytes) -> None:
            nonlocal document
            if document and (parts or chunk[:1] in (b"{", b"[")):
                parts.append(chunk)
            else:
                document = False

        blob = await read_blob(read_exactly, size, hold)
        if document and parts:
            self._budget -= size
            self._documents[blob.digest] = b"".join(parts)
        return blob

    async def content(self, blob: Blob) -> bytes | None:
        return self._documents.get(blob.digest)


class Unpacker:
    """Reads a ``docker save`` tar stream into a ``BlobStore``, then finds the image in it.

    Any input ends in a result or in a ``FormatError`` (``NotForPlatform``
    where the save holds images, but none for the platform asked for): the
    tar is read by the one tar reader (``tar``); JSON documents are parsed
    on a worker thread within the bounds of ``documents`` (size, nesting,
    tokens) and checked for type there, each config once however many
    images name it; an index's descriptors are checked against the digest
    grammar; and what is indexed is bounded (``MAX_MEMBERS``,
    ``MAX_MANIFESTS``, ``MAX_DESCRIPTORS``).
    """

    def __init__(self, read_exactly: ReadExactly, store: BlobStore) -> None:
        self._tar = TarReader(read_exactly)
        self._store = store
        self._files: dict[str, Blob] = {}
        self._links: dict[str, str] = {}
        self._name_bytes = 0
        self._configs: dict[str, Config] = {}

    async def run(self) -> None:
        """Read the whole stream, handing each regular file to the store."""
        async for member in self._tar.members():
            if member.kind == "other":
                continue
            if len(self._files) + len(self._links) >= MAX_MEMBERS:
                raise FormatError(f"it holds more than {MAX_MEMBERS} files and links")
            self._name_bytes += len(member.name) + len(member.link)
            if self._name_bytes > MAX_NAME_BYTES:
                raise FormatError(f"its member names take more than {MAX_NAME_BYTES} bytes")
            name = member.name
            if member.kind == "file":
                self._files[name] = await self._store.keep(name, member.size, self._tar.read)
            elif member.kind == "symlink":
                self._links[name] = posixpath.normpath(
                    posixpath.join(posixpath.dirname(name), member.link)
                )
            else:
                self._links[name] = posixpath.normpath(member.link)

    # Finding the image in what was unpacked. Documents are parsed on a worker thread,
    # within the bounds of _oci.documents, and typed there; each config once.

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
            raise FormatError(f"its manifest names {name:.200}, which the tar does not hold")
        return blob

    def _by_digest(self, digest: object) -> Blob | None:
        """A blob of the OCI layout by its digest; None where the save left it out."""
        algorithm, _, encoded = check_digest(digest).partition(":")
        blob = self._member(f"blobs/{algorithm}/{encoded}")
        if blob is not None and blob.digest != digest:
            raise FormatError(f"the blob named {digest} has the digest {blob.digest}")
        return blob

    async def _content(self, blob: Blob, what: str) -> bytes:
        content = await self._store.content(blob)
        if content is None:
            raise FormatError(
                f"{what} has {blob.size} bytes: over what is read (at most {MAX_DOCUMENT},"
                " and the save's small files held at once)"
            )
        return content

    async def _off_loop(self, read: Callable[[bytes, str], T], blob: Blob, what: str) -> T:
        """``read(content, what)`` of a JSON document of the save, on a worker thread."""
        content = await self._content(blob, what)
        return await anyio.to_thread.run_sync(read, content, what)

    async def _json(self, blob: Blob) -> dict[str, Any]:
        """A JSON object of the save (an index, a manifest)."""
        return await self._off_loop(parse_object, blob, f"the JSON document {blob.digest}")

    async def _config(self, blob: Blob) -> Config:
        """An image config of the save, typed; read once, however many images name it."""
        config = self._configs.get(blob.digest)
        if config is None:
            config = await self._off_loop(read_config, blob, f"the config {blob.digest}")
            self._configs[blob.digest] = config
        return config

    async def _oci_images(self, index: Blob) -> list[Image]:
        """The complete images an OCI layout's index leads to, through nested indexes;
        an entry that repeats is visited once."""
        images: list[Image] = []
        seen: set[str] = set()
        named = 0

        async def visit(descriptors: object, depth: int) -> None:
            nonlocal named
            if not isinstance(descriptors, list):
                raise FormatError("an index's manifests is not an array")
            for descriptor in descriptors:
                named += 1
                if named > MAX_DESCRIPTORS:
                    raise FormatError(f"its indexes name more than {MAX_DESCRIPTORS} manifests")
                if not isinstance(descriptor, dict):
                    raise FormatError("an index names a manifest by something not an object")
                blob = self._by_digest(descriptor.get("digest"))
                if blob is None or blob.digest in seen:  # a platform the engine does not hold
                    continue
                seen.add(blob.digest)
                if len(seen) > MAX_MANIFESTS:
                    raise FormatError(f"its index leads to more than {MAX_MANIFESTS} manifests")
                document = await self._json(blob)
                media_type = descriptor.get("mediaType") or document.get("mediaType")
                if not isinstance(media_type, str | None):
                    raise FormatError(f"the mediaType of {blob.digest} is not a string")
                if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST) and depth < MAX_LINKS:
                    await visit(document.get("manifests", []), depth + 1)
                elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
                    image = await self._oci_image(document)
                    if image is not None:
                        images.append(image)

        await visit((await self._json(index)).get("manifests", []), 0)
        return images

    async def _oci_image(self, manifest: dict[str, Any]) -> Image | None:
        config_descriptor, layer_descriptors = manifest.get("config"), manifest.get("layers")
        if not isinstance(config_descriptor, dict) or not isinstance(layer_descriptors, list):
            raise FormatError("a manifest in its index.json is malformed")
        if not all(isinstance(layer, dict) for layer in layer_descriptors):
            raise FormatError("a manifest in its index.json is malformed")
        config = self._by_digest(config_descriptor.get("digest"))
        layers = [self._by_digest(layer.get("digest")) for layer in layer_descriptors]
        if config is None or None in layers:
            return None
        platform = (await self._config(config)).platform
        if platform.os == "unknown":  # an attestation, not an image
            return None
        return Image(platform, config, [layer for layer in layers if layer is not None])

    def _saved_entries(self, content: bytes, what: str) -> list[tuple[Blob, list[Blob]]]:
        """The config and layers of each image ``manifest.json`` lists, typed, and found in
        the tar (blocking: on a worker thread)."""
        entries = parse_array(content, what)
        if len(entries) > MAX_MANIFESTS:
            raise FormatError(f"its manifest.json lists more than {MAX_MANIFESTS} images")
        found = []
        for entry in entries:
            check_cancelled()
            if not isinstance(entry, dict):
                raise FormatError("its manifest.json is malformed: an entry is not an object")
            config, layers, tags = entry.get("Config"), entry.get("Layers"), entry.get("RepoTags")
            if not isinstance(config, str):
                raise FormatError(
                    f"its manifest.json is malformed: a Config is {kind_of(config)}, not a name"
                )
            if not strings(layers):
                raise FormatError("its manifest.json is malformed: Layers is not an array of names")
            if tags is not None and not strings(tags):  # null where an image has no tag
                raise FormatError(
                    "its manifest.json is malformed: RepoTags is not an array of tags"
                )
            found.append((self._named(config), [self._named(name) for name in layers]))
        return found

    async def _saved_images(self) -> list[Image]:
        """The images ``manifest.json`` lists (engines that write no index.json)."""
        manifest = self._member("manifest.json")
        if manifest is None:
            raise FormatError("no manifest.json: not a docker save tar")
        entries = await self._off_loop(self._saved_entries, manifest, "its manifest.json")
        return [
            Image((await self._config(config)).platform, config, layers)
            for config, layers in entries
        ]

    async def _images(self) -> list[Image]:
        """Every complete image the save holds: through its index.json, else manifest.json."""
        index = self._member("index.json")
        return await self._oci_images(index) if index else await self._saved_images()

    def _for(self, images: list[Image], wanted: Platform) -> Image:
        """The one image for ``wanted``."""
        matching = [image for image in images if wanted.matches(image.platform)]
        if len(matching) == 1:
            return matching[0]
        if not images:
            raise FormatError(
                "it holds no complete image: a blob its index names is missing. Docker's"
                " containerd image store does not fetch a pulled image's compressed layers"
                " when it holds their content unpacked already, from another image"
                " (moby/moby#49784): such an image runs, but cannot be exported"
            )
        if matching:
            raise FormatError(
                f"it holds {len(matching)} images for {wanted}, not exactly one image"
            )
        raise NotForPlatform(str(wanted), tuple(str(image.platform) for image in images))

    async def choose(
        self, platform: Platform | None, engine_platform: EnginePlatform | None
    ) -> Image:
        """The image to push, once the stream is read; its layers checked against its config.

        With ``platform=None``: the only image there is, or else the one for
        ``engine_platform()`` (asked only then: it is a request to the engine).
        Without an engine to ask (a caller's tarball), several images are an error.
        """
        images = await self._images()
        if platform is None and len(images) == 1:
            return await self._checked(images[0])
        if platform is None:
            if engine_platform is None:
                raise FormatError("it holds several images; give a tarball of exactly one image")
            platform = await engine_platform()
        return await self._checked(self._for(images, platform))

    async def choose_many(self, platforms: Platforms) -> list[Image]:
        """The images of a multi-platform push, once the stream is read: every complete
        one (``"all"``), or the one for each platform named; each checked as by ``choose``."""
        images = await self._images()
        if platforms == "all":
            chosen = images or [self._for(images, Platform("", ""))]  # none: the error says why
        else:
            chosen = [self._for(images, wanted) for wanted in platforms]
        return [await self._checked(image) for image in chosen]

    async def _checked(self, image: Image) -> Image:
        """``image``, once its layers are checked against its config's diff_ids."""
        diff_ids = (await self._config(image.config)).diff_ids
        if diff_ids is None:
            raise FormatError("its config names no rootfs.diff_ids (an array of strings)")
        if len(image.layers) != len(diff_ids):
            raise FormatError(f"{len(image.layers)} layers, but its config names {len(diff_ids)}")
        for layer, diff_id in zip(image.layers, diff_ids, strict=True):
            if layer.problem is not None:
                raise FormatError(f"a layer ({layer.digest}) {layer.problem}")
            if layer.diff_id != diff_id:
                raise FormatError(
                    f"a layer's content has the digest {layer.diff_id}, its config says {diff_id}"
                )
        return image
