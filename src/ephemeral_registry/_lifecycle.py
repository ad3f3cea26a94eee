"""``ephemeral_registry()``: the life cycle of one registry.

Entering the block starts the bring-up (``_bring_up``) in the background and
hands back the ``Registry`` handle at once; ``await registry.ready()`` waits
for it. Beside it run the check of the crane image, the watch for the
registry's exit and, once the bring-up is done, the sweep of dead processes'
leftovers. Leaving the block, by any path, cancels them and removes
everything the bring-up and the pushes created (``_teardown``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiodocker
import anyio
import anyio.lowlevel

from ._bring_up import BringUp
from ._concurrency import require_asyncio
from ._discovery import EngineAddress
from ._engine import Engine, find_engine_address, open_engine
from ._errors import RegistryClosedError
from ._options import (
    OPTIONS,
    LayerCompression,
    Options,
    PullPolicy,
    Pusher,
    check_against_engine,
    resolve,
)
from ._registry import Registry
from ._session import Session
from ._sweep import live_sessions, sweep_in_background
from ._teardown import tear_down

logger = logging.getLogger("ephemeral_registry")

OPTION_NAMES = tuple(option.name for option in OPTIONS)
EXIT_WATCH = "ephemeral-registry: the watch for the registry's exit"
"""The name of the task that watches the registry's container."""


@asynccontextmanager
async def ephemeral_registry(
    *,
    registry_image: str | None = None,
    crane_image: str | None = None,
    relay_image: str | None = None,
    pull: PullPolicy = "missing",
    host_ip: str = "127.0.0.1",
    ready_timeout: float = 30.0,
    cleanup_timeout: float = 15.0,
    pull_timeout: float = 600.0,
    request_timeout: float = 30.0,
    push_timeout: float = 600.0,
    max_concurrent_pushes: int = 4,
    auth: bool = False,
    tls: bool = False,
    tunnel: bool = False,
    pusher: Pusher = "crane",
    layer_compression: LayerCompression | None = None,
    sweep_leftovers: bool = True,
    docker: aiodocker.Docker | None = None,
) -> AsyncIterator[Registry]:
    """Bring up a throwaway registry on a private Docker network, and remove it on exit.

    Entering returns a ``Registry`` at once, while the bring-up goes on in the
    background: do your own setup, then ``await registry.ready()``.

    Args:
        registry_image: the registry image; default ``$EPHEMERAL_REGISTRY_REGISTRY_IMAGE``,
            else registry 3.0.0 pinned by digest.
        crane_image: the crane image used for pushes; default
            ``$EPHEMERAL_REGISTRY_CRANE_IMAGE``, else crane pinned by digest.
        relay_image: the image of a tunnel's relay container, for ``tunnel=True``
            on an engine not reached over SSH (any image with busybox's ``sh``,
            ``nc`` and ``sleep``); default ``$EPHEMERAL_REGISTRY_RELAY_IMAGE``, else
            busybox 1.37.0 pinned by digest.
        pull: ``"missing"`` pulls images the engine lacks, ``"never"`` fails with
            ``ImageNotFoundError`` instead, ``"always"`` pulls every time.
        host_ip: the address, on the engine's host, that the registry's port is
            published on. The default, loopback, keeps it private to that
            machine; an engine on another host (``tcp://`` by name or by a
            non-loopback address) needs an address of that host, and the pull
            endpoint is then that address (or the engine's, for 0.0.0.0).
        ready_timeout: seconds the registry has, from its container's start, to
            answer ``GET /v2/``.
        cleanup_timeout: seconds the removal on exit may take.
        pull_timeout: seconds one image pull may take.
        request_timeout: seconds any other single request to the engine may take.
        push_timeout: seconds one push (crane's run) or one export may take.
        max_concurrent_pushes: how many pushes run at once; more wait their turn.
        auth: protect the registry with a generated user name and password
            (htpasswd, needs ``ephemeral-registry[auth]``): pushes use them by
            themselves; ``Endpoints.credentials`` has them for pullers, and
            without them ``GET /v2/`` answers 401.
        tls: serve HTTPS (needs ``ephemeral-registry[tls]``), with a certificate
            for every name the registry is reached by, from a certificate
            authority made for this registry alone: pushes trust it by
            themselves; ``Endpoints.ca_certificate`` (PEM) and
            ``Endpoints.ca_file`` hand it to pullers, which then need no
            ``--insecure`` or registry configuration.
        tunnel: reach the registry through a port on this host's loopback, so
            that the pull endpoint is ``127.0.0.1:PORT`` here, wherever the
            engine is and whether or not its published ports can be reached
            from here; ``host_ip`` may then stay loopback. For an engine
            reached over SSH (``ssh://``; needs ``ephemeral-registry[ssh]``),
            the port is forwarded over the same SSH connection; for any other
            engine, each connection is relayed through the engine's API to a
            relay container on the registry's network (``relay_image``),
            which the teardown removes with the rest. Closed with the block.
        pusher: how pushes are made: ``"crane"`` (``crane push`` in a one-shot
            container on the registry's network) or ``"native"`` (over HTTP from
            this process, the export streamed into the registry in one pass, no
            container, no temporary files). Each push may choose otherwise.
        layer_compression: how layers that the engine keeps uncompressed are
            pushed: ``"gzip"`` (what every client reads) or ``"none"`` (faster;
            some pullers insist on gzip). By default, each pusher's own way: the
            native pusher gzips them (ISA-L, level 1), crane pushes an image of
            the engine's as they are (crane would gzip each layer twice) and a
            tarball's gzipped (crane's own way). Layers that come compressed
            (gzip, zstd) are pushed as they are, and so is an OCI layout.
        sweep_leftovers: once the registry is up (or has failed), remove in the
            background what dead processes on this host left behind (see ``sweep()``).
        docker: an ``aiodocker.Docker`` client to use; it is left open. By
            default the engine is found as the docker CLI finds it
            (``DOCKER_HOST``, ``DOCKER_CONTEXT`` or the current context, then
            the default, rootless and Podman sockets), and a client for it is
            made and closed.

    Raises:
        AsyncioRequiredError: at entry, when the event loop is not asyncio's (trio's, say).
        InvalidArgumentError: at entry, for a bad argument (a loopback ``host_ip``
            for an engine on another host, say); from ``ready()``, for an IPv6
            ``host_ip`` that Podman as root cannot publish on. Nothing is created.
        DockerUnavailableError: at entry, when no engine address applies (it
            lists what was tried) or an ``ssh://`` engine cannot be reached (the
            reason says why: an unknown host key, failed authentication, no
            engine at the socket); later, from ``ready()``, when the engine
            does not answer.
        CleanupError: at exit, if something could not be removed in time and
            no other exception is on its way out (else it is added to that
            exception as a note).
        EphemeralRegistryError: at exit, the bring-up's error, if the block
            finished without ever seeing it from ``ready()``.

    Cancellation: cancelling the block, at any point, cancels the bring-up and
    then removes the network and containers created so far, shielded from the
    cancellation and bounded by ``cleanup_timeout``; the cancellation is then
    re-raised. Requests that create a resource are never abandoned half-way,
    so nothing the engine created escapes the removal.
    """
    given = dict(locals())  # the arguments, by name: each is one of OPTIONS (but docker)
    require_asyncio("ephemeral_registry()")
    options = resolve(**{name: given[name] for name in OPTION_NAMES})
    address = await find_engine_address(docker)
    check_against_engine(options, address)
    async with (
        open_engine(docker, address, request_timeout=options.request_timeout) as engine,
        life_cycle(engine, options, address) as registry,
    ):
        yield registry


@asynccontextmanager
async def life_cycle(
    engine: Engine, options: Options, address: EngineAddress
) -> AsyncIterator[Registry]:
    """One registry's life on ``engine``, reached at ``address``: the block of
    ``ephemeral_registry()`` once its options are resolved and its engine is open.

    What ``ephemeral_registry()`` says of its block, and of cancelling it, holds here.
    """
    session = Session.new(auth=options.auth, tls=options.tls)
    live_sessions.add(session.session_id)
    bring_up = BringUp(engine, options, session, engine_address=address)
    registry = Registry(engine, options, session, bring_up)
    logger.debug("%s: bringing up %s", session.name, options.registry_image)
    body_error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bring_up.run)
            tg.start_soon(bring_up.prepare_crane_image)
            tg.start_soon(bring_up.watch_for_exit, name=EXIT_WATCH)
            if options.sweep_leftovers:
                tg.start_soon(_sweep_after, bring_up, engine)
            try:
                yield registry
            except anyio.get_cancelled_exc_class():
                raise  # the task group must see it; it comes out as itself
            except BaseException as exc:
                # The block's own exception, kept out of the task group (which
                # would wrap it in a group) and re-raised below as the very
                # object raised, once the removal is done.
                body_error = exc
            finally:
                tg.cancel_scope.cancel()
    except BaseException as exc:
        # A cancellation, re-raised below once the removal is done.
        body_error = exc
    session.closed = True
    bring_up.close()
    problem = await tear_down(engine, session, timeout=options.cleanup_timeout)
    if body_error is None:
        try:
            # A cancellation that arrived during the (shielded) removal is
            # raised here, at the exit, not at the caller's next await.
            await anyio.lowlevel.checkpoint_if_cancelled()
        except BaseException:
            if problem is not None:
                logger.error("%s", problem)  # noqa: TRY400 (the traceback is the cancellation's)
            raise
    if problem is not None:
        if body_error is None:
            raise problem
        body_error.add_note(str(problem))
        logger.error("%s", problem)
    if body_error is not None:
        raise body_error
    _raise_unseen_failure(session, bring_up)


async def _sweep_after(bring_up: BringUp, engine: Engine) -> None:
    """Remove dead processes' leftovers, once the bring-up no longer needs the engine."""
    with contextlib.suppress(Exception):
        await bring_up.running.get()
    await sweep_in_background(engine)


def _raise_unseen_failure(session: Session, bring_up: BringUp) -> None:
    """Raise the bring-up's error if the block ended without ever seeing it."""
    failure = bring_up.running.error
    if (
        failure is not None
        and not session.failure_seen
        and not isinstance(failure, RegistryClosedError)
    ):
        raise failure
