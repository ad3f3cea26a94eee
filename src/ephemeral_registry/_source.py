"""What can be pushed: a ``docker save`` tarball or an OCI image layout directory.

Checked before any container starts, a tarball by its first block only.
Whether a tarball is a usable ``docker save`` of one image, and a layout's
files what its descriptors say, is found as the source is read, with either
pusher (crane's ``check_source`` reads it with the native pusher's readers
first): an InvalidSourceError then too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._errors import InvalidSourceError
from ._oci.errors import FormatError
from ._oci.tar import BLOCK, parse_header

MOUNT_POINT = "/ephemeral-registry/source"
"""Where the source appears inside the crane container: bind-mounted read-only, or copied
(see ``_pushers.crane``)."""


@dataclass(frozen=True)
class Source:
    """A checked push source on the host."""

    path: Path
    """Absolute, with symlinks resolved (the engine bind-mounts, or this process copies,
    the real file)."""
    is_layout: bool
    user: str
    """``uid:gid`` of the source's owner: crane runs as that user (see
    ``_pushers.crane.crane_spec``), so it can read exactly what the owner can, a mode-0600
    ``docker save -o`` tarball included."""


def check(source: str | os.PathLike[str]) -> Source:
    """Check that ``source`` is a readable tarball or OCI layout, or raise InvalidSourceError."""
    if not isinstance(source, str | os.PathLike):
        raise InvalidSourceError(source, "must be a path to a tarball or an OCI layout directory")
    if "\0" in os.fspath(source):  # else a ValueError from the first system call
        raise InvalidSourceError(source, "is no path: it holds a NUL character")
    path = Path(source)
    try:
        path = path.resolve(strict=True)
        stat = path.stat()
    except FileNotFoundError:
        raise InvalidSourceError(source, "no such file or directory") from None
    except OSError as exc:
        raise InvalidSourceError(source, f"cannot be read: {exc.strerror}") from None
    if path.is_dir():
        if not (path / "oci-layout").is_file() or not (path / "index.json").is_file():
            raise InvalidSourceError(
                source,
                "is a directory but not an OCI image layout (it needs the files oci-layout and"
                " index.json); give a `docker save` tarball or an OCI layout",
            )
        is_layout = True
    elif path.is_file():
        is_layout = False
    else:
        raise InvalidSourceError(source, "is neither a regular file nor a directory")
    if not os.access(path, os.R_OK):
        raise InvalidSourceError(source, "this process cannot read it")
    if not is_layout and not _starts_as_tar(path):
        raise InvalidSourceError(
            source,
            "is not a tar archive (its first block is no tar header): give a `docker save`"
            " tarball (uncompressed) or an OCI layout",
        )
    return Source(path=path, is_layout=is_layout, user=f"{stat.st_uid}:{stat.st_gid}")


def _starts_as_tar(path: Path) -> bool:
    """Whether the file's first 512 bytes are a tar header, as the one tar reader reads it."""
    with path.open("rb") as file:
        block = file.read(BLOCK)
    if len(block) < BLOCK:
        return False
    try:
        parse_header(block)
    except FormatError:
        return False
    return True
