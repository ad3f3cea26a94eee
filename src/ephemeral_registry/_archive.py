"""A push source as a tar streamed from disk, for the engine's ``PUT /containers/{id}/archive``.

Where the engine does not see this host's files (see ``_host``), crane's
source reaches its container through the engine's API instead of a bind
mount: the container is created, this tar is unpacked at ``/`` in it, and
only then is it started. The tar is planned before anything is created
(``of_tarball``, ``of_layout``) and written a chunk at a time while the
request sends it (``write``), so memory stays constant whatever the size: a
2 GB tarball is never held.

What goes in:

- a ``docker save`` tarball: one member, the file itself;
- an OCI layout: exactly the files its check (``_oci.layout.read_layout``)
  validated, and nothing else of the directory: ``oci-layout``,
  ``index.json`` and the file of every descriptor it leads to, each opened
  again inside the layout as the check opened it (``open_inside``). A link
  that stays inside the layout is copied as the regular file it names; a
  link out of it, or a blob that is not a regular file, was refused by that
  check. Each file is hashed as it is copied, and its last chunk held back
  until it matches what was checked (a blob's digest, ``index.json``'s bytes
  as read): crane reads the copy, so it reads exactly what was checked.

Every member belongs to crane's user (``uid:gid``), files read-only, so that
crane reads the copies whatever the modes of the originals. A file whose size
changed since it was planned is an ``InvalidSourceError``, never a tar cut
short or padded: the engine would unpack whatever arrived.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

import anyio
import anyio.to_thread

# anyio imports its parts on first use. Imported here, with this module, they are
# not compiled first deep inside a running task, where CPython 3.11.7's compile()
# can fail under pytest's assertion rewriting (SystemError, CPython gh-106905).
from anyio import AsyncFile

from ._errors import InvalidSourceError
from ._oci.errors import FormatError
from ._oci.layout import Layout, blob_name, open_inside
from ._oci.stream import CHUNK
from ._oci.tar import BLOCK

FILE_MODE = 0o444
DIRECTORY_MODE = 0o755

Send = Callable[[bytes], Awaitable[None]]


@dataclass(frozen=True)
class Member:
    """A file of this host that goes into the tar."""

    name: str
    """Its path in the tar (relative: the tar is unpacked at ``/``)."""
    path: Path
    size: int
    """Its size when planned: what its header says, and exactly what is sent."""
    inside: str | None = None
    """A layout's file: its name in the layout, opened as the check opens it
    (``open_inside``)."""
    digest: str | None = None
    """The sha256 its bytes must have, where checked: they are hashed as they are sent."""


@dataclass(frozen=True)
class Archive:
    """A tar planned from a push source: its directories and files, and their owner."""

    source: Path
    """The source on this host, as errors name it."""
    directories: tuple[str, ...]
    members: tuple[Member, ...]
    uid: int
    gid: int

    @property
    def content_size(self) -> int:
        """The bytes of the files it holds."""
        return sum(member.size for member in self.members)


def of_tarball(path: Path, *, at: str, uid: int, gid: int) -> Archive:
    """The tar that puts the file ``path`` at the absolute path ``at``, owned by ``uid:gid``.

    Raises:
        InvalidSourceError: the file cannot be read.
    """
    name = _relative(at)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidSourceError(path, f"cannot be read: {exc.strerror}") from None
    return Archive(path, _parents(name), (Member(name, path, size),), uid, gid)


def of_layout(layout: Layout, *, at: str, uid: int, gid: int) -> Archive:
    """The tar that puts the files ``layout`` was checked by at the absolute path ``at``
    (a directory), owned by ``uid:gid``: see the module docstring.

    Raises:
        InvalidSourceError: its ``oci-layout`` or ``index.json`` cannot be read.
    """
    root = _relative(at)
    members = []
    for name in ("oci-layout", "index.json"):
        try:
            with open_inside(layout.root, name) as file:
                size = os.fstat(file.fileno()).st_size
        except FormatError as exc:
            raise InvalidSourceError(layout.root, f"changed since it was checked: {exc}") from None
        digest = f"sha256:{hashlib.sha256(layout.content).hexdigest()}"
        members.append(
            Member(
                f"{root}/{name}",
                layout.root / name,
                size,
                inside=name,
                digest=digest if name == "index.json" else None,
            )
        )
    descriptors = [entry.descriptor for entry in layout.documents()]
    descriptors += layout.blobs().values()
    directories = {root}
    for descriptor in {d.digest: d for d in descriptors}.values():
        algorithm, _, encoded = descriptor.digest.partition(":")
        directories.add(f"{root}/blobs/{algorithm}")
        members.append(
            Member(
                f"{root}/blobs/{algorithm}/{encoded}",
                layout.blob_path(descriptor),
                descriptor.size,
                inside=blob_name(descriptor),
                digest=descriptor.digest,
            )
        )
    directories |= {parent for directory in directories for parent in _parents(directory)}
    return Archive(layout.root, tuple(sorted(directories)), tuple(members), uid, gid)


def _relative(at: str) -> str:
    path = PurePosixPath(at)
    if not path.is_absolute() or ".." in path.parts or len(path.parts) < 2:
        raise ValueError(f"not an absolute path below /: {at!r}")
    return str(path.relative_to("/"))


def _parents(name: str) -> tuple[str, ...]:
    """The directories above ``name``, outermost first."""
    return tuple(str(parent) for parent in reversed(PurePosixPath(name).parents) if parent.name)


async def write(archive: Archive, send: Send) -> None:
    """Write ``archive`` as a tar to ``send``, a chunk of at most ``CHUNK`` bytes at a time.

    Raises:
        InvalidSourceError: a file cannot be read, or is not what was planned
            (its size changed; a layout's file fails the layout's checks, or its bytes
            are not those checked): the tar then ends before that file's last chunk.

    Cancellation: stops at the next chunk; the file open is closed.
    """
    for directory in archive.directories:
        await send(_header(archive, directory, tarfile.DIRTYPE, 0))
    for member in archive.members:
        async with _opened(archive, member) as file:
            header = _header(archive, member.name, tarfile.REGTYPE, member.size)
            digest = hashlib.sha256()
            held = b""  # the last chunk read, sent once the next one came, or the hash matched
            remaining = member.size
            while remaining:
                chunk = await file.read(min(CHUNK, remaining))
                if not chunk:
                    raise InvalidSourceError(
                        archive.source, f"{member.path} became shorter while it was copied"
                    )
                remaining -= len(chunk)
                if member.digest is not None:
                    await anyio.to_thread.run_sync(digest.update, chunk)
                if held:
                    await send(held)
                held = chunk
                if header:
                    held, header = header + held, b""
            if member.digest is not None and f"sha256:{digest.hexdigest()}" != member.digest:
                raise InvalidSourceError(
                    archive.source,
                    f"changed since it was checked: the bytes of {member.path} are not those"
                    " checked",
                )
            padding = -member.size % BLOCK
            if held or header or padding:
                await send(held + header + bytes(padding))
    await send(bytes(2 * BLOCK))  # the end of the archive


def _header(archive: Archive, name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    info.mode = DIRECTORY_MODE if kind == tarfile.DIRTYPE else FILE_MODE
    info.uid, info.gid = archive.uid, archive.gid
    # PAX: a blob's name is over the 100 bytes of a plain header, a file may be over 8 GiB.
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


@asynccontextmanager
async def _opened(archive: Archive, member: Member) -> AsyncIterator[AsyncFile[bytes]]:
    """``member``'s file, open, of the size planned; closed on exit even when cancelled."""
    file = AsyncFile(await anyio.to_thread.run_sync(_open, archive, member))
    try:
        yield file
    finally:
        with anyio.CancelScope(shield=True):
            await file.aclose()


def _open(archive: Archive, member: Member) -> IO[bytes]:
    """Open ``member`` (blocking): a blob as the layout's check does, any file at the size
    it had when planned."""
    try:
        if member.inside is not None:
            opened: IO[bytes] = open_inside(archive.source, member.inside)
        else:
            opened = member.path.open("rb")
    except FormatError as exc:
        raise InvalidSourceError(archive.source, f"changed since it was checked: {exc}") from None
    except OSError as exc:
        raise InvalidSourceError(archive.source, f"{member.path}: {exc.strerror}") from None
    size = os.fstat(opened.fileno()).st_size
    if size != member.size:
        opened.close()
        raise InvalidSourceError(
            archive.source,
            f"{member.path} has {size} bytes, {member.size} when it was checked: it changed",
        )
    return opened
