"""Finding and removing what dead processes left behind.

A process that is killed (SIGKILL, a crash, a power cut) cannot remove its
registry. Its containers and networks carry their owner's host name, process
id and process start time, so a later process can tell that the owner is
gone: same host, and that process id is no longer alive, or is alive but
started at another time (the id was reused). Resources of a live owner, of
another host, or without this library's labels are never touched.

The directories it made on this host (a CA certificate's, a push's export,
an SSH socket's: see ``_scratch``) carry the same owner in their names and
are judged the same way.

Within this process, a session whose block has exited (its removal failed,
say, because the engine was down) counts as gone too; a directory of no
session (an SSH connection's) is in use for as long as this process lives.
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import AsyncIterator, Collection, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import aiodocker
import anyio.to_thread

from . import _labels, _scratch
from ._addresses import check_docker_host
from ._concurrency import require_asyncio, run_all
from ._engine import Engine, Labelled, find_engine_address, open_engine
from ._options import Backend, check_engine_choice, resolve
from ._resources import remove

logger = logging.getLogger("ephemeral_registry")

DEFAULT_REQUEST_TIMEOUT = 30.0

live_sessions: set[str] = set()
"""The sessions of this process whose ``async with`` block has not exited."""


@dataclass(frozen=True)
class Leftover:
    """A container or network this library created, found by its labels; or a directory
    it made on this host, found by its name."""

    kind: str
    """``"container"``, ``"network"`` or ``"directory"``."""
    id: str
    """The engine's id; a directory's full path."""
    name: str
    session: str
    """``""`` for a directory of no session (an SSH connection's)."""
    owner_host: str
    owner_pid: int | None
    """``None`` when the label is missing or not a number."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    # A zombie (dead, not yet reaped by its parent) still answers kill(0).
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return True


def owner_is_gone(labels: Mapping[str, str], here: _labels.Owner) -> bool:
    """Whether the process that owns a resource with these labels is gone, as far as we can tell.

    Only owners on this host can be judged; anything unclear counts as alive.
    """
    if labels.get(_labels.OWNER_HOST) != here.host:
        return False
    try:
        pid = int(labels.get(_labels.OWNER_PID, ""))
    except ValueError:
        return False
    started = labels.get(_labels.OWNER_STARTED, "")
    return _process_is_gone(pid, started, labels.get(_labels.SESSION), here)


def directory_owner_is_gone(scratch: _scratch.Scratch, here: _labels.Owner) -> bool:
    """Whether the process that made this directory is gone: as ``owner_is_gone``."""
    if scratch.host != _scratch.host_digest(here.host):
        return False
    return _process_is_gone(scratch.pid, scratch.started, scratch.session, here)


def _in_use_here(scratch: _scratch.Scratch, here: _labels.Owner) -> bool:
    """A directory of this process that its owner still uses (and will remove)."""
    return (
        scratch.pid == here.pid
        and scratch.started == here.started
        and (scratch.session is None or scratch.session in live_sessions)
    )


def _process_is_gone(pid: int, started: str, session: str | None, here: _labels.Owner) -> bool:
    if pid == here.pid and started == here.started:
        return session is not None and session not in live_sessions
    if not _pid_alive(pid):
        return True
    now_started = _labels.process_start_time(pid)
    return bool(started and now_started and started != now_started)


def _leftover(resource: Labelled) -> Leftover:
    labels = resource.labels
    pid = labels.get(_labels.OWNER_PID, "")
    return Leftover(
        kind=resource.kind,
        id=resource.id,
        name=resource.name,
        session=labels.get(_labels.SESSION, ""),
        owner_host=labels.get(_labels.OWNER_HOST, ""),
        owner_pid=int(pid) if pid.isdigit() else None,
    )


def _directory_leftover(scratch: _scratch.Scratch, here: _labels.Owner) -> Leftover:
    return Leftover(
        kind="directory",
        id=str(scratch.path),
        name=scratch.path.name,
        session=scratch.session or "",
        owner_host=here.host,  # only this host's are ever chosen
        owner_pid=scratch.pid,
    )


def _find_directories(
    *, all_owners: bool, sessions: Collection[str] | None = None
) -> list[_scratch.Scratch]:
    """Our directories on this host whose owner is gone (``all_owners``: every one but
    those this process still uses). Blocking: a thread's work."""
    here = _labels.Owner.current()
    found = [
        scratch
        for scratch in _scratch.find()
        if scratch.host == _scratch.host_digest(here.host)
        and (sessions is None or scratch.session in sessions)
    ]
    if all_owners:
        return [scratch for scratch in found if not _in_use_here(scratch, here)]
    return [scratch for scratch in found if directory_owner_is_gone(scratch, here)]


def _sweep_directories(*, all_owners: bool, sessions: Collection[str] | None) -> list[Leftover]:
    """Remove our directories whose owner is gone; return those removed. Blocking."""
    here = _labels.Owner.current()
    removed = [
        scratch
        for scratch in _find_directories(all_owners=all_owners, sessions=sessions)
        if _scratch.remove(scratch)
    ]
    for scratch in removed:
        logger.info("swept directory %s", scratch.path)
    return [_directory_leftover(scratch, here) for scratch in removed]


async def _find(
    engine: Engine, *, all_owners: bool, sessions: Collection[str] | None = None
) -> list[Labelled]:
    found: list[Labelled] = []

    async def containers() -> None:
        found.extend(await engine.list_containers(_labels.SESSION))

    async def networks() -> None:
        found.extend(await engine.list_networks(_labels.SESSION))

    await run_all(containers, networks)
    here = _labels.Owner.current()
    if sessions is not None:
        found = [r for r in found if r.labels.get(_labels.SESSION) in sessions]
    chosen = [r for r in found if all_owners or owner_is_gone(r.labels, here)]
    # Containers first: a network goes only once nothing is attached to it.
    return sorted(chosen, key=lambda r: (r.kind != "container", r.name))


async def _remove(engine: Engine, resources: Iterable[Labelled]) -> None:
    resources = list(resources)
    await remove(
        engine,
        [r.id for r in resources if r.kind == "container"],
        [r.id for r in resources if r.kind == "network"],
    )


def _check_engine(docker: aiodocker.Docker | None, docker_host: str | None) -> None:
    """Refuse ``docker_host`` when it is no engine address or comes with ``docker``."""
    check_engine_choice(docker, docker_host)
    if docker_host is not None:
        check_docker_host(docker_host)


@asynccontextmanager
async def _engine(
    docker: aiodocker.Docker | None,
    docker_host: str | None,
    request_timeout: float,
    backend: Backend | None,
    namespace: str | None,
) -> AsyncIterator[Engine]:
    _check_engine(docker, docker_host)
    options = resolve(backend=backend, namespace=namespace)
    if options.backend == "kubernetes":
        from ._engine.kubernetes import open_cluster  # its packages are an extra's

        async with open_cluster(
            namespace=options.namespace,
            request_timeout=request_timeout,
            pull="missing",
            images=None,
        ) as cluster:
            yield cluster
        return
    address = await find_engine_address(docker, docker_host)
    async with open_engine(docker, address, request_timeout=request_timeout) as engine:
        yield engine


async def find_leftovers(
    *,
    all_owners: bool = False,
    sessions: Collection[str] | None = None,
    docker: aiodocker.Docker | None = None,
    docker_host: str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    backend: Backend | None = None,
    namespace: str | None = None,
) -> list[Leftover]:
    """List what ``sweep()`` would remove, removing nothing.

    With ``all_owners=True``: every container and network this library
    labelled, whoever owns it, and every directory it made on this host but
    those this process uses. With ``sessions``: only those sessions'. The engine is
    ``docker``'s, ``docker_host``'s or found as for ``ephemeral_registry()``, or a
    cluster's namespace with ``backend="kubernetes"`` (as for ``sweep()``).

    Raises:
        InvalidArgumentError: ``docker_host`` is no engine address, or is given
            with ``docker``.
    """
    require_asyncio("find_leftovers()")
    async with _engine(docker, docker_host, request_timeout, backend, namespace) as engine:
        found = await _find(engine, all_owners=all_owners, sessions=sessions)
    here = _labels.Owner.current()
    directories = await anyio.to_thread.run_sync(
        functools.partial(_find_directories, all_owners=all_owners, sessions=sessions)
    )
    return [_leftover(r) for r in found] + [_directory_leftover(d, here) for d in directories]


async def sweep(
    *,
    all_owners: bool = False,
    sessions: Collection[str] | None = None,
    docker: aiodocker.Docker | None = None,
    docker_host: str | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    backend: Backend | None = None,
    namespace: str | None = None,
) -> list[Leftover]:
    """Remove the containers, networks and directories whose owner process is gone; return
    what was removed.

    The owner is gone when it ran on this host and its process id is no
    longer alive, or alive with another start time; or when it is this
    process and its block has exited. Resources of live owners, of other
    hosts, and resources without this library's labels are never touched.
    The directories are those this library made in the temporary directory
    (a TLS registry's CA certificate, crane's export of an image, an SSH
    connection's socket), named after their owner; only this user's are
    looked at, and no symbolic link is followed.
    With ``all_owners=True``, every resource this library labelled is
    removed, whoever owns it, and every directory of this host but those
    this process uses: only for when nothing of this library runs.
    With ``sessions`` (``Registry.session_id`` values), only those sessions'
    resources are considered, as for a registry kept for debugging.
    The engine is ``docker``'s, ``docker_host``'s (as the docker CLI's ``-H``),
    or found as for ``ephemeral_registry()``; with ``backend="kubernetes"``
    (or ``$EPHEMERAL_REGISTRY_BACKEND``), the namespace ``namespace`` of the
    kubeconfig's cluster, as for ``ephemeral_registry()``, where a session's
    Secret, Service and Pod are removed together.

    Raises:
        InvalidArgumentError: ``docker_host`` is no engine address, or is given
            with ``docker``; nothing is removed.
        DockerUnavailableError, DockerEngineError: the engine failed. The
            directories, which need no engine, are removed first all the same.

    Cancellation: what was removed stays removed; the rest stays for the
    next sweep.
    """
    require_asyncio("sweep()")
    _check_engine(docker, docker_host)
    directories = await anyio.to_thread.run_sync(
        functools.partial(_sweep_directories, all_owners=all_owners, sessions=sessions)
    )
    async with _engine(docker, docker_host, request_timeout, backend, namespace) as engine:
        found = await _find(engine, all_owners=all_owners, sessions=sessions)
        await _remove(engine, found)
    for resource in found:
        logger.info("swept %s %s (session %s)", resource.kind, resource.name, resource.id[:12])
    return [_leftover(r) for r in found] + directories


async def sweep_in_background(engine: Engine) -> None:
    """The sweep ``ephemeral_registry()`` runs on entry; logs, never raises."""
    try:
        await anyio.to_thread.run_sync(
            functools.partial(_sweep_directories, all_owners=False, sessions=None)
        )
        found = await _find(engine, all_owners=False)
        await _remove(engine, found)
    except Exception as exc:  # a background chore: its failure must not fail the registry
        logger.debug("background sweep failed: %s", exc)
        return
    for resource in found:
        logger.info("swept %s %s left by a dead process", resource.kind, resource.name)
