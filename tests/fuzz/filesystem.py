"""Hostile file systems for the fuzz targets: a short script, the last part of an input, lays
out what a reader may meet where it expects a plain file.

A script starts with ``#fs`` on a line of its own; each further line is one
command, its words separated by spaces. Paths are relative to the tree the
reader is given (the layout, the docker configuration's home); a path that
is absolute or climbs out with ``..`` is skipped, and so is any line that is
not a command, so every mutation of a script is still a script::

    repeat K N          document K: the text between << and >> repeated N times, by commas
    pad K SIZE          document K: spaces added up to SIZE bytes (JSON still, if it was)
    write PATH K        document K at PATH (under a name that need not be its digest)
    link PATH TARGET    PATH is a symbolic link to TARGET
    chain PATH N TARGET PATH is the first of N links, each to the next, the last to TARGET
    fifo PATH           PATH is a FIFO (an open for reading blocks until a writer comes)

Documents are the parts of the input before the script, numbered from 1.
``repeat`` and ``pad`` change a document before it is written anywhere (and
named by its digest, where the target does so); the other commands run in
order, each replacing what was at its path. A ``TARGET`` is a path in the
tree (the link is made relative), or ``@outside`` (a regular file outside the
tree, whose content is ``SENTINEL``), ``@outside-dir`` (the directory that
holds it), ``@null`` or ``@zero`` (``/dev/null``, ``/dev/zero``).
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

SCRIPT = b"#fs\n"
"""How the part of an input that is a script starts."""
SENTINEL = b'{"schemaVersion":2,"manifests":[],"currentContext":"outside"}'
"""The file outside the tree: JSON that both a layout's index and a docker config would take,
so that a reader that follows a link to it goes on as if nothing were wrong."""
MAX_CHAIN = 40
"""The longest chain of links made (Linux follows at most 40)."""
MAX_REPEAT = 4096
MAX_PAD = (8 << 20) + 1
"""One byte over the largest JSON document a reader takes (``_oci.documents.MAX_DOCUMENT``)."""
MAX_WRITTEN = 600 << 20
"""The most bytes one input may have written (60 documents of 8 MiB, and some)."""

_REPEATED = re.compile(rb"<<(.*?)>>", re.DOTALL)


@dataclass(frozen=True)
class Tree:
    """A temporary directory for a reader, and a sentinel file beside it, outside it."""

    root: Path
    outside: Path
    """The sentinel file; its directory is outside ``root`` too."""

    def path(self, name: str) -> Path | None:
        """``name`` inside the tree, or ``None`` for a name that is not a plain relative path."""
        parts = PurePosixPath(name).parts
        if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\0" in name:
            return None
        return self.root.joinpath(*parts)

    def unblock(self) -> None:
        """Wake a reader blocked on opening or reading one of the tree's FIFOs: each is opened
        for writing (which completes a reader's open) and closed (its reads then end). A
        reader of ``/dev/zero`` never ends on its own: this process's descriptors of it are
        closed (its next read fails), or it would read until memory runs out."""
        with contextlib.suppress(OSError):
            for descriptor in os.listdir("/proc/self/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/self/fd/{descriptor}") == "/dev/zero":
                        os.close(int(descriptor))
        for directory, _, files in os.walk(self.root):
            for name in files:
                path = os.path.join(directory, name)
                with contextlib.suppress(OSError):
                    if os.path.isfile(path) or not os.path.exists(path):
                        continue
                    os.close(os.open(path, os.O_RDWR | os.O_NONBLOCK))


@contextlib.contextmanager
def tree(name: str) -> Iterator[Tree]:
    """A new ``Tree`` whose root is called ``name``; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="fuzz-") as directory:
        base = Path(directory).resolve()
        (base / "outside").mkdir()
        sentinel = base / "outside" / "sentinel"
        sentinel.write_bytes(SENTINEL)
        root = base / name
        root.mkdir()
        yield Tree(root, sentinel)


def split(parts: list[bytes]) -> tuple[list[bytes], list[list[str]]]:
    """The documents of an input's parts, and the commands of its script (if it has one)."""
    if not parts or not parts[-1].startswith(SCRIPT):
        return parts, []
    text = parts[-1][len(SCRIPT) :].decode("utf-8", "replace")
    return parts[:-1], [line.split() for line in text.splitlines() if line.split()]


def script(*lines: str) -> bytes:
    """A script of these command lines (for the corpus and the property tests)."""
    return SCRIPT + "".join(f"{line}\n" for line in lines).encode()


def _number(word: str, most: int) -> int | None:
    return int(word) if word.isdecimal() and len(word) < 10 and int(word) <= most else None


def transform(documents: list[bytes], commands: list[list[str]]) -> list[bytes]:
    """The documents once ``repeat`` and ``pad`` are applied, within ``MAX_WRITTEN``."""
    documents = list(documents)
    written = sum(len(document) for document in documents)
    for command in commands:
        if len(command) != 3 or command[0] not in ("repeat", "pad"):
            continue
        index = _number(command[1], len(documents))
        most = MAX_REPEAT if command[0] == "repeat" else MAX_PAD
        count = _number(command[2], most)
        if not index or count is None:
            continue
        old = documents[index - 1]
        if command[0] == "repeat":
            new = _REPEATED.sub(functools.partial(_repeat, count=count), old)
        else:
            new = old.ljust(count)
        if written + len(new) - len(old) > MAX_WRITTEN:
            continue
        written += len(new) - len(old)
        documents[index - 1] = new
    return documents


def _repeat(found: re.Match[bytes], count: int) -> bytes:
    return b",".join([found[1]] * count)


def build(tree: Tree, documents: list[bytes], commands: list[list[str]]) -> None:
    """Run the commands that make files (``write``, ``link``, ``chain``, ``fifo``), in order."""
    for number, command in enumerate(commands):
        if not command or command[0] not in ("write", "link", "chain", "fifo"):
            continue
        path = tree.path(command[1]) if len(command) > 1 else None
        if path is None or path == tree.root:
            continue
        if command[0] == "write" and len(command) == 3:
            index = _number(command[2], len(documents))
            if index and _clear(tree, path):
                path.write_bytes(documents[index - 1])
        elif command[0] == "link" and len(command) == 3:
            target = _target(tree, command[2])
            if target is not None and _clear(tree, path):
                _link(path, target)
        elif command[0] == "chain" and len(command) == 4:
            length, target = _number(command[2], MAX_CHAIN), _target(tree, command[3])
            if not length or target is None or not _clear(tree, path):
                continue
            links = [path, *(tree.root / ".chains" / f"{number}-{n}" for n in range(1, length))]
            if all(_clear(tree, link) for link in links[1:]):
                for link, following in zip(links, [*links[1:], target], strict=True):
                    _link(link, following)
        elif command[0] == "fifo" and len(command) == 2 and _clear(tree, path):
            os.mkfifo(path)


def _target(tree: Tree, word: str) -> Path | None:
    special = {
        "@outside": tree.outside,
        "@outside-dir": tree.outside.parent,
        "@null": Path("/dev/null"),
        "@zero": Path("/dev/zero"),
    }
    return special.get(word) or tree.path(word)


def _link(path: Path, target: Path) -> None:
    """A link at ``path`` to ``target``: relative (``../../outside/sentinel``), but to a device."""
    is_device = target.is_relative_to("/dev")
    path.symlink_to(target if is_device else os.path.relpath(target, path.parent))


def _clear(tree: Tree, path: Path) -> bool:
    """Make room at ``path`` (its directories made, what was there removed); False where a
    directory, or something not a directory where one is needed, is in the way, or where its
    directory is a link out of the tree (nothing is ever written outside it)."""
    try:
        if not path.parent.resolve().is_relative_to(tree.root):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            if path.is_dir() and not path.is_symlink():
                return False
            path.unlink()
    except OSError:  # a file or a link where a directory is needed
        return False
    return True
