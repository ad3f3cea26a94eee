"""``ephemeral_registry()``: the life cycle of one registry.

Entering the block starts the bring-up (``_bring_up``) in the background and
hands back the ``Registry`` handle at once; ``await registry.ready()`` waits
for it. Beside it run the watch for the registry's exit (``_watch``), the
check of the crane image (``CraneImage``: at once when the block's pusher is
crane, else when a push first chooses crane) and, once the bring-up is done,
the sweep of dead processes' leftovers. Leaving the block, by any path,
cancels them and removes everything the bring-up and the pushes created
(``_teardown``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import aiodocker
import anyio
import anyio.lowlevel

from ._addresses import EngineLocation
from ._bring_up import BringUp
from ._concurrency import require_asyncio
from ._engine import Engine, find_engine_address, open_engine
from ._errors import DockerUnavailableError, RegistryClosedError
from ._options import (
    Backend,
    LayerCompression,
    Options,
    PullPolicy,
    Pusher,
    Timeouts,
    check_against_engine,
    check_engine_choice,
    resolve,
)
from ._pushers.crane import CraneImage
from ._registry import Registry
from ._session import Session
from ._sweep import live_sessions, sweep_in_background
from ._teardown import tear_down
from ._watch import Watch

logger = logging.getLogger("ephemeral_registry")

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
    timeouts: Timeouts | None = None,
    ready_timeout: float | None = None,
    cleanup_timeout: float | None = None,
    pull_timeout: float | None = None,
    request_timeout: float | None = None,
    push_timeout: float | None = None,
    max_concurrent_pushes: int = 4,
    auth: bool = False,
    tls: bool = False,
    tunnel: bool = False,
    pusher: Pusher | None = None,
    layer_compression: LayerCompression = "gzip",
    sweep_leftovers: bool = True,
    docker_host: str | None = None,
    docker: aiodocker.Docker | None = None,
    backend: Backend | None = None,
    namespace: str | None = None,
) -> AsyncIterator[Registry]:
    """Bring up a throwaway registry on a private Docker network (or as a Pod in a
    Kubernetes cluster), and remove it on exit.

    Entering returns a ``Registry`` at once, while the bring-up goes on in the
    background: do your own setup, then ``await registry.ready()``.

    Args:
        registry_image: the registry image; default ``$EPHEMERAL_REGISTRY_REGISTRY_IMAGE``,
            else registry 3.0.0 pinned by digest.
        crane_image: the crane image used for pushes; default
            ``$EPHEMERAL_REGISTRY_CRANE_IMAGE``, else crane pinned by digest.
            Checked (or pulled) beside the bring-up when ``pusher="crane"``; with
            ``"native"``, only if a push chooses crane (else a missing one fails nothing).
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
        timeouts: the time limits, as one ``Timeouts`` value; by default
            ``Timeouts()``. Not with any of the ``*_timeout`` arguments below.
        ready_timeout: seconds the registry has, from its container's start, to
            answer ``GET /v2/`` (``Timeouts.ready``, 30 by default).
        cleanup_timeout: seconds the removal on exit may take (``Timeouts.cleanup``, 15).
        pull_timeout: seconds one image pull may take (``Timeouts.pull``, 600).
        request_timeout: seconds any other single request to the engine may take
            (``Timeouts.request``, 30).
        push_timeout: seconds one push may take once a push slot is free: the
            wait for the registry, the check or export, the upload
            (``Timeouts.push``, 600); past it the push raises ``PushTimeoutError``.
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
        pusher: how pushes are made (by default crane on a Docker or Podman engine, and
            native on Kubernetes): ``"crane"`` (``crane push`` in a one-shot
            container on the registry's network) or ``"native"`` (over HTTP from
            this process, the export streamed into the registry in one pass, no
            container, no temporary files). Each push may choose otherwise.
        layer_compression: how layers that are not compressed are pushed,
            whichever the pusher: ``"gzip"`` (the default: what every puller
            reads) gzips them (ISA-L level 1: the native pusher as they stream;
            for crane, into the OCI layout of the export before crane pushes
            it, so both push the same image), and ``"none"`` pushes them as
            they are (faster, for a registry on this machine; some pullers
            insist on gzip). Layers that come compressed (gzip, zstd) are
            pushed as they are, and so is an OCI layout, whatever this says.
            Where a pusher cannot do what it says (crane: ``"none"`` for a
            tarball, whose layers it gzips itself), the push is refused with an
            ``InvalidArgumentError`` before anything is created, never pushed
            otherwise.
        sweep_leftovers: once the registry is up (or has failed), remove in the
            background what dead processes on this host left behind (see ``sweep()``).
        docker_host: the engine's address, as the docker CLI's ``-H`` takes it
            (``unix:///path``, ``tcp://host:port``, ``ssh://[user@]host``): it
            wins over ``DOCKER_HOST`` and every context; TLS is as for
            ``DOCKER_HOST`` (``DOCKER_TLS_VERIFY``, ``DOCKER_CERT_PATH``). Not
            with ``docker``.
        docker: an ``aiodocker.Docker`` client to use; it is left open. By
            default (and without ``docker_host``) the engine is found as the
            docker CLI finds it (``DOCKER_HOST``, ``DOCKER_CONTEXT`` or the
            current context, then the default, rootless and Podman sockets),
            and a client for it is made and closed.
        backend: where the registry runs: ``"docker"`` (the default, also from
            ``$EPHEMERAL_REGISTRY_BACKEND``: a Docker or Podman engine, as above) or
            ``"kubernetes"`` (needs ``ephemeral-registry[kubernetes]``): a Pod in
            the cluster of the kubeconfig's current context (``KUBECONFIG``, else
            ``~/.kube/config``) or of the in-cluster service account, with a
            Service (the push endpoint, ``NAME.NAMESPACE.svc:5000``, for clients
            in the cluster) and a port-forward through the API server to
            ``127.0.0.1:PORT`` here (the pull endpoint). Pushes are native;
            ``push_image()`` reads the image from a Docker or Podman engine
            beside the cluster, found as above, if one is. See the Kubernetes page.
        namespace: the Kubernetes namespace to run in; by default the
            context's (or the service account's), else ``default``.

    Raises:
        AsyncioRequiredError: at entry, when the event loop is not asyncio's (trio's, say).
        InvalidArgumentError: at entry, for a bad argument (a loopback ``host_ip``
            for an engine on another host, ``docker`` and ``docker_host``
            together, ``timeouts`` with a ``*_timeout``, say); from ``ready()``, for an IPv6
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
    cancellation and bounded by the cleanup timeout; the cancellation is then
    re-raised. Requests that create a resource are never abandoned half-way,
    so nothing the engine created escapes the removal.
    """
    require_asyncio("ephemeral_registry()")
    check_engine_choice(docker, docker_host)
    options = resolve(
        registry_image=registry_image,
        crane_image=crane_image,
        relay_image=relay_image,
        pull=pull,
        host_ip=host_ip,
        timeouts=timeouts,
        ready_timeout=ready_timeout,
        cleanup_timeout=cleanup_timeout,
        pull_timeout=pull_timeout,
        request_timeout=request_timeout,
        push_timeout=push_timeout,
        max_concurrent_pushes=max_concurrent_pushes,
        auth=auth,
        tls=tls,
        tunnel=tunnel,
        pusher=pusher,
        layer_compression=layer_compression,
        sweep_leftovers=sweep_leftovers,
        docker_host=docker_host,
        backend=backend,
        namespace=namespace,
    )
    if options.backend == "kubernetes":
        async with _on_kubernetes(docker, options) as registry:
            yield registry
        return
    address = await find_engine_address(docker, options.docker_host)
    check_against_engine(options, address)
    async with (
        open_engine(docker, address, request_timeout=options.timeouts.request) as engine,
        life_cycle(engine, options, address) as registry,
    ):
        yield registry


@asynccontextmanager
async def _on_kubernetes(
    docker: aiodocker.Docker | None, options: Options
) -> AsyncIterator[Registry]:
    """The block on a cluster, with the Docker or Podman engine beside it (if one is found)
    for ``push_image()``."""
    from ._engine.kubernetes import open_cluster  # its packages are an extra's

    async with AsyncExitStack() as stack:
        images: Engine | None = None
        try:
            address = await find_engine_address(docker, options.docker_host)
        except DockerUnavailableError:
            address = None  # push_image() then says that it needs one
        if address is not None or docker is not None:
            images = await stack.enter_async_context(
                open_engine(docker, address, request_timeout=options.timeouts.request)
            )
        engine = await stack.enter_async_context(
            open_cluster(
                namespace=options.namespace,
                request_timeout=options.timeouts.request,
                pull=options.pull,
                images=images,
            )
        )
        async with life_cycle(engine, options, engine.where) as registry:
            yield registry


@asynccontextmanager
async def life_cycle(
    engine: Engine, options: Options, address: EngineLocation
) -> AsyncIterator[Registry]:
    """One registry's life on ``engine``, reached at ``address``: the block of
    ``ephemeral_registry()`` once its options are resolved and its engine is open.

    What ``ephemeral_registry()`` says of its block, and of cancelling it, holds here.
    """
    session = Session.new(auth=options.auth, tls=options.tls)
    live_sessions.add(session.session_id)
    bring_up = BringUp(engine, options, session, engine_address=address)
    watch = Watch(engine, session, bring_up.running.get)
    crane = CraneImage(engine, options, name=session.name)
    registry = Registry(engine, options, session, bring_up, watch, crane)
    logger.debug("%s: bringing up %s", session.name, options.registry_image)
    body_error: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(bring_up.run)
            tg.start_soon(crane.run)
            if options.pusher == "crane":  # ready beside the registry, for the first push
                crane.want()
            tg.start_soon(watch.run, name=EXIT_WATCH)
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
    crane.close()
    problem = await tear_down(engine, session, timeout=options.timeouts.cleanup)
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
