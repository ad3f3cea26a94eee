"""Fuzz targets: each reader of bytes from outside, fed anything, ends in a result or in the
error it promises. ``run.py`` drives them with atheris; ``tests/unit/test_fuzz_corpus.py``
replays every input kept in ``corpus/<target>/``.

A target raises ``AssertionError`` (or lets an unexpected exception out) on a broken promise.
"""

from __future__ import annotations

import functools
import hashlib
import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import IO
from unittest import mock

import anyio
import asyncssh  # noqa: F401 - imported here, not first in a recorded call: see below

from ephemeral_registry import DockerUnavailableError, EphemeralRegistryError, _archive
from ephemeral_registry._archive import of_layout, write
from ephemeral_registry._discovery import EngineAddress, discover
from ephemeral_registry._engine import open_engine
from ephemeral_registry._logs import MAX_LINE, FrameError, Frames, Lines
from ephemeral_registry._oci import layout as _oci_layout
from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._oci.layout import read_layout_blocking
from ephemeral_registry._oci.save import CheckStore, Unpacker
from ephemeral_registry._platform import Platform
from ephemeral_registry._pushers.crane import check_source
from ephemeral_registry._pushers.report import Report
from ephemeral_registry._reference import parse as parse_reference
from ephemeral_registry._source import MOUNT_POINT
from ephemeral_registry._source import check as check_source_path

from . import filesystem, watch

# asyncssh is imported lazily by ``_ssh``; its first import looks for system libraries
# (ctypes' find_library: /dev/null, a temporary file), which no input made it open.

SEPARATOR = b"\n--\n"
DEADLINE = 4.0
"""How long one input's reading may take (``run.py`` gives libFuzzer 5 s an input)."""
READ_RATE = 32 << 20
"""Bytes a second that a layout's reading may take beyond ``DEADLINE`` (it reads a layout
twice, parsing and hashing: about 60 MiB/s here, for 60 manifests of 8 MiB)."""
MAX_DOCUMENTS = 128


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

        unpacker = Unpacker(read_exactly, CheckStore(1 << 20))
        try:
            await unpacker.run()
            await unpacker.choose(None, engine_platform)
        except FormatError:  # the one error a reader raises
            pass

    watch.within(DEADLINE, functools.partial(anyio.run, read), lambda: None)


def _opened_inside(open_inside: Callable[[Path, str], IO[bytes]]) -> Callable[..., IO[bytes]]:
    """``open_inside``, and then a look at where the file it opened is: the audit hook sees
    each component opened relative to a directory descriptor, not where it leads, so the
    file's own descriptor is asked (``/proc/self/fd``) that it lies inside the root."""

    def checked(root: Path, name: str) -> IO[bytes]:
        file = open_inside(root, name)
        where = Path(os.readlink(f"/proc/self/fd/{file.fileno()}"))
        if not where.is_relative_to(Path(root).resolve()):
            file.close()
            raise AssertionError(f"open_inside({root}, {name!r}) opened {where}")
        return file

    return checked


def layout(data: bytes) -> None:
    """An OCI layout: ``index.json`` and the documents it may name, parts split by SEPARATOR,
    each document under its digest, then a script of what else the layout holds (see
    ``filesystem``: links in it and out of it, chains of them, FIFOs and devices, files under
    a digest that is not theirs). Read as a push reads it (``read_layout_as_pushed``), it ends
    within ``DEADLINE`` and a second per ``READ_RATE`` bytes the layout holds (time linear in
    the input), and opens no file outside the layout, links resolved."""
    with filesystem.tree("layout") as tree:
        lay_out_layout(tree, data)
        deadline = DEADLINE + _bytes_in(tree.root) / READ_RATE
        with (
            mock.patch.object(_oci_layout, "open_inside", _opened_inside(_oci_layout.open_inside)),
            mock.patch.object(_archive, "open_inside", _opened_inside(_oci_layout.open_inside)),
            watch.recording(tree.root) as opened,
        ):
            call = functools.partial(read_layout_as_pushed, tree.root)
            watch.within(deadline, call, tree.unblock)
        assert not (out := watch.outside(opened, tree.root, follow_links=True)), out


def lay_out_layout(tree: filesystem.Tree, data: bytes) -> None:
    """The layout of ``data`` in ``tree``: its ``oci-layout``, its ``index.json`` (document
    1), its other documents under their sha256 digests, then its script's files."""
    index, *parts = data.split(SEPARATOR)
    documents, commands = filesystem.split(parts)
    index, *documents = filesystem.transform([index, *documents[:MAX_DOCUMENTS]], commands)
    (tree.root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    (tree.root / "index.json").write_bytes(index)
    blobs = tree.root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for document in documents:
        (blobs / hashlib.sha256(document).hexdigest()).write_bytes(document)
    filesystem.build(tree, [index, *documents], commands)


def read_layout_as_pushed(root: Path) -> None:
    """Read the layout at ``root`` as a push does, twice: ``read_layout`` (a ``FormatError``
    or a layout whose files are inside it), then through the library's checks (``push``'s
    ``_source.check``, crane's ``check_source``) and the copy of every file they let through
    (``_archive``), read to its end (an ``InvalidSourceError``, or all of it)."""
    try:
        found = read_layout_blocking(root)
    except FormatError:
        pass
    else:
        for manifest in found.manifests():
            for blob in manifest.blobs:
                assert found.blob_path(blob).resolve().is_relative_to(root.resolve())

    async def push_reading() -> None:
        async def discard(chunk: bytes) -> None:
            pass

        try:
            source = check_source_path(root)
            report = Report("crane", parse_reference("fuzz"), None, None)
            checked = await check_source(source, report)
            if checked.layout is not None:
                await write(of_layout(checked.layout, at=MOUNT_POINT, uid=0, gid=0), discard)
        except EphemeralRegistryError:
            pass

    anyio.run(push_reading)


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
    """``config.json``, a context's ``meta.json`` and ``DOCKER_HOST``, split by SEPARATOR, then
    a script of what else the home directory holds (see ``filesystem``): FIFOs, devices and
    links where the files are, ``certs/ca.pem`` (``DOCKER_CERT_PATH``), ``.ssh/config``. Each
    way of finding the engine ends in an address or a ``DockerUnavailableError`` within
    ``DEADLINE``, and so does making a client for a TLS address or an SSH connection; no file
    is opened outside the home directory (as named: a link to a user's own file elsewhere is
    the user's to make, and so is an ``Include`` of an absolute path in ``~/.ssh/config``,
    which ssh reads too)."""
    with filesystem.tree("home") as tree:
        host = lay_out_home(tree, data)
        with watch.recording(tree.root) as opened:
            call = functools.partial(find_engine, tree.root, host)
            watch.within(DEADLINE, call, tree.unblock)
        named = _included(tree.root / ".ssh" / "config")
        out = [entry for entry in watch.outside(opened, tree.root, follow_links=False)]
        assert not (out := [o for o in out if o.split(" (")[0] not in named]), out


def _included(config: Path) -> set[str]:
    """The absolute paths that ``Include`` lines of an SSH config name (as it is, if it is a
    regular file the test can read)."""
    try:
        if not config.is_file() or config.stat().st_size > 1 << 20:
            return set()
        text = config.read_text(errors="replace")
    except OSError:
        return set()
    return {
        word
        for line in text.splitlines()
        if (words := line.split()) and words[0].lower() == "include"
        for word in words[1:]
        if word.startswith("/")
    }


CONTEXT = "fuzz"
"""The context the docker_config target's ``meta.json`` is of."""
CONTEXT_META = f"contexts/meta/{hashlib.sha256(CONTEXT.encode()).hexdigest()}/meta.json"
SSH_URL = "ssh://fuzz@127.0.0.1:1"
"""An SSH engine whose connection is refused at once, once ``~/.ssh/config`` is read."""


def lay_out_home(tree: filesystem.Tree, data: bytes) -> str:
    """The home directory of ``data`` in ``tree``: ``config.json`` (document 1) and the
    context's ``meta.json`` (document 2), then its script's files; returns ``DOCKER_HOST``."""
    documents, commands = filesystem.split(data.split(SEPARATOR))
    config, meta, host = [*filesystem.transform(documents, commands), b"", b"", b""][:3]
    (tree.root / "config.json").write_bytes(config)
    (tree.root / CONTEXT_META).parent.mkdir(parents=True)
    (tree.root / CONTEXT_META).write_bytes(meta)
    filesystem.build(tree, documents, commands)
    return host.decode("utf-8", "replace").replace("\0", "")


def find_engine(home: Path, host: str) -> None:
    """Find the engine every way the home directory and ``host`` give, and make a client
    where that reads files: a TLS address's certificates, ``~/.ssh/config``."""
    config = {"DOCKER_CONFIG": str(home)}
    environments = [config, {**config, "DOCKER_CONTEXT": CONTEXT}]
    if host:
        environments.append({"DOCKER_HOST": host})
    if (home / "certs").exists():
        tls = {"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(home / "certs")}
        environments.append({"DOCKER_HOST": "tcp://127.0.0.1:2376", **tls})
    if (home / ".ssh").exists():
        environments.append({"DOCKER_HOST": SSH_URL})
    for environment in environments:
        try:
            address = discover(environment, home=home)
        except DockerUnavailableError:
            continue
        assert isinstance(address.url, str)
        assert address.is_remote in (True, False)
        address.client_url  # noqa: B018 - must not raise
        if address.tls is not None or address.url == SSH_URL:
            anyio.run(_make_client, address, home)


async def _make_client(address: EngineAddress, home: Path) -> None:
    """A client for ``address``, as a registry's block makes one; no request is made."""
    variables = {"HOME": str(home), "SSH_AUTH_SOCK": ""}  # asyncssh reads ~ from HOME
    with mock.patch.dict(os.environ, variables):
        try:
            async with open_engine(None, address, request_timeout=2):
                pass
        except DockerUnavailableError:
            pass


TARGETS: dict[str, Callable[[bytes], None]] = {
    "save": save,
    "layout": layout,
    "frames": frames,
    "docker_config": docker_config,
}

CORPUS = Path(__file__).parent / "corpus"


def _bytes_in(root: Path) -> int:
    """The bytes of the regular files under ``root``, links not followed."""
    return sum(
        path.lstat().st_size for path in root.rglob("*") if path.is_file() and not path.is_symlink()
    )
