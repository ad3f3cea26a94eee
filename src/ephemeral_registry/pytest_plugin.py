"""pytest fixtures for test suites that need a registry: async or not, on any plugin.

Fixtures:

- ``ephemeral_registry`` (session scope): a ready registry shared by the
  whole session, as a ``RegistryHandle``.
- ``ephemeral_registry_factory`` (test scope): ``await factory(**options)``
  returns a ready registry of the test's own, removed when the test ends.

They work the same under anyio's pytest plugin (asyncio and trio tests), under
pytest-asyncio (strict or auto mode, with tests on function-, module- or
session-scoped loops), and in plain synchronous tests, which can read
``handle.endpoints``. Nothing is to be configured beyond installing the package.

How: both fixtures are synchronous, which every plugin accepts. The
registries live on the plugin's own event loop, in a background thread
(anyio's blocking portal), for the whole session. A registry is entered and
left in one task there, so its cancel scopes never cross tasks, whatever
task or loop the test runs in. A ``RegistryHandle``'s coroutines are awaited
from the test's loop, whichever it is: each runs on the plugin's loop, and
the test awaits its result through a worker thread of its own loop, so
that asyncio and trio tests alike can await it. Cancelling the test's await
cancels the call on the plugin's loop. ``on_log`` callbacks, plain or async,
are called on the test's loop, as if the registry ran there.

Options (command line, or ``addopts``): ``--ephemeral-registry-NAME`` for each
option of ``ephemeral_registry()`` the command line offers (``--ephemeral-registry-registry-image``,
``--ephemeral-registry-pull`` ``never`` for offline machines,
``--ephemeral-registry-docker-host``, ...), and
``--ephemeral-registry-keep-on-failure``. They, and the
``EPHEMERAL_REGISTRY_*_IMAGE`` environment variables, are checked at start-up
by ``ephemeral_registry()``'s rules: a bad one is a usage error before any
test runs, not an error at each fixture's setup.

pytest-xdist: each worker is its own process and gets its own registry.
Sharing one across workers would make one worker its owner, and its exit
would remove the registry under the others' feet. Names carry a random
session id, so workers never collide; each resource names its owner
process, so a worker's sweep never touches another live worker's.
"""

from __future__ import annotations

import functools
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import ExitStack, asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._discovery import discover
from ._errors import DockerUnavailableError, InvalidArgumentError
from ._options import (
    BY_NAME,
    OPTIONS,
    LayerCompression,
    Option,
    Pusher,
    check_against_engine,
    given_flags,
    resolve,
)
from ._pushers.report import call
from ._types import Endpoints, OnLog, OnProgress, PushResult

if TYPE_CHECKING:
    from ._registry import Registry

__all__ = ["RegistryFactory", "RegistryHandle"]

T = TypeVar("T")

_FAILED = pytest.StashKey[bool]()


class RegistryHandle:
    """A ready registry that lives on the plugin's event loop, usable from any other.

    It offers ``Registry``'s methods. Await them from a test on any event
    loop; read ``endpoints`` from any test, synchronous ones included.
    """

    def __init__(self, registry: Registry, endpoints: Endpoints, portal: BlockingPortal) -> None:
        self._registry = registry
        self._portal = portal
        self.endpoints = endpoints
        """Where the registry is reached: it is ready when the fixture hands it over."""
        self.session_id = registry.session_id
        """A random id, in every resource name and in the ``ephemeral-registry.session`` label."""
        self.name = registry.name
        """The name of the registry container and of its network."""

    def __repr__(self) -> str:
        return f"<RegistryHandle {self.name} at {self.endpoints.pull_endpoint}>"

    async def ready(self) -> Endpoints:
        """The registry's ``Endpoints`` (it is already ready)."""
        return self.endpoints

    async def push(
        self,
        source: str | os.PathLike[str],
        ref: str,
        *,
        on_log: OnLog | None = None,
        on_progress: OnProgress | None = None,
        pusher: Pusher | None = None,
        layer_compression: LayerCompression | None = None,
    ) -> PushResult:
        """``Registry.push``, run on the plugin's loop; callbacks run on the caller's."""
        return await self._run(
            self._registry.push,
            source,
            ref,
            on_log=_relay(on_log),
            on_progress=_relay(on_progress),
            pusher=pusher,
            layer_compression=layer_compression,
        )

    async def push_image(
        self,
        image: str,
        ref: str | None = None,
        *,
        on_log: OnLog | None = None,
        platform: str | None = None,
        platforms: str | Sequence[str] | None = None,
        pusher: Pusher | None = None,
        layer_compression: LayerCompression | None = None,
        on_progress: OnProgress | None = None,
    ) -> PushResult:
        """``Registry.push_image`` on the plugin's loop; callbacks run on the caller's."""
        return await self._run(
            self._registry.push_image,
            image,
            ref,
            on_log=_relay(on_log),
            on_progress=_relay(on_progress),
            platform=platform,
            platforms=platforms,
            pusher=pusher,
            layer_compression=layer_compression,
        )

    def keep(self) -> None:
        """``Registry.keep``: leave the registry in place at the end, for debugging."""
        self._portal.call(self._registry.keep)

    async def _run(self, call: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``call`` on the plugin's loop; await it from this one, asyncio's or trio's.

        A worker thread of this loop waits for the call's result, so that any
        event loop anyio runs on can await it.

        Cancellation: cancelling this await cancels the call there; its own
        cleanup (a crane container's removal) finishes on the plugin's loop.
        """
        future = self._portal.start_task_soon(functools.partial(call, *args, **kwargs))
        try:
            return await anyio.to_thread.run_sync(future.result, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            future.cancel()
            raise


RegistryFactory = Callable[..., Awaitable[RegistryHandle]]
"""``ephemeral_registry_factory``: ``await factory(**options)`` gives a ready registry."""


def _relay(callback: Callable[..., object] | None) -> Callable[..., Awaitable[None]] | None:
    """``callback`` (``on_log``, ``on_progress``), called on the caller's loop while the
    push runs on the plugin's: a worker thread of the plugin's loop calls into the
    caller's (asyncio's or trio's) and waits there."""
    if callback is None:
        return None
    callers_loop = anyio.lowlevel.current_token()

    async def relay(*args: Any) -> None:
        on_callers_loop = functools.partial(
            anyio.from_thread.run, call, callback, *args, token=callers_loop
        )
        # Abandoned when the push is cancelled: the caller's loop may have stopped
        # for good (its test cancelled the push and ended), and then never answers.
        await anyio.to_thread.run_sync(on_callers_loop, abandon_on_cancel=True)

    return relay


@asynccontextmanager
async def _ready_registry(options: dict[str, Any]) -> AsyncIterator[tuple[Registry, Endpoints]]:
    # Imported here: pytest loads this plugin in every run, registries or not.
    from ._lifecycle import ephemeral_registry

    async with ephemeral_registry(**options) as registry:
        yield registry, await registry.ready()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ephemeral-registry")
    for option in OPTIONS:
        if option.flag:
            option.add_to(group.addoption, plugin_flag(option))
    group.addoption(
        "--ephemeral-registry-keep-on-failure",
        action="store_true",
        help="leave registries in place when a test fails, for debugging",
    )


def plugin_flag(option: Option) -> str:
    """The plugin's flag for ``option``: ``--ephemeral-registry-`` and its name."""
    return f"--ephemeral-registry-{option.flag_name.removeprefix('--')}"


def pytest_configure(config: pytest.Config) -> None:
    """Refuse bad options at start-up, as ``pytest.UsageError``, not at a fixture's setup."""
    if config.getoption("help"):
        return  # help is shown whatever the options say
    try:
        _check_options(_options(config))
    except InvalidArgumentError as exc:
        raise pytest.UsageError(_usage(exc)) from None


def _check_options(given: dict[str, Any]) -> None:
    """Check the options given as ``ephemeral_registry()`` checks them on entering.

    Where the engine is matters to ``tunnel`` and ``host_ip`` only when given:
    a remote engine with the default ``host_ip`` fails a fixture's setup, not
    a run that may use no registry. An engine that cannot be found is left to
    the fixtures to report.

    Raises:
        InvalidArgumentError: as ``ephemeral_registry()`` would.
    """
    options = resolve(**given)
    if given.keys() & {"tunnel", "host_ip", "docker_host"}:
        try:
            engine = discover(docker_host=options.docker_host)
        except DockerUnavailableError:
            return
        check_against_engine(options, engine)


def _usage(exc: InvalidArgumentError) -> str:
    """The error, naming the plugin's flag rather than the library's argument."""
    option = BY_NAME.get(exc.argument)
    if option is None or not option.flag:  # an environment variable
        return f"ephemeral-registry: {exc}"
    return f"{plugin_flag(option)}={exc.value!r}: {exc.problem}"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.session.stash[_FAILED] = True
        item.stash[_FAILED] = True
    return report


def _options(config: pytest.Config) -> dict[str, Any]:
    return given_flags(config.getoption)


def _keep(config: pytest.Config, failed: bool) -> bool:
    return bool(config.getoption("ephemeral_registry_keep_on_failure")) and failed


@pytest.fixture(scope="session")
def _ephemeral_registry_portal() -> Iterator[BlockingPortal]:
    """The plugin's event loop, in a thread of its own, for the whole session."""
    with start_blocking_portal("asyncio") as portal:
        yield portal


@pytest.fixture(scope="session", name="ephemeral_registry")
def ephemeral_registry_fixture(
    request: pytest.FixtureRequest, _ephemeral_registry_portal: BlockingPortal
) -> Iterator[RegistryHandle]:
    """A ready registry for the whole test session (one per xdist worker)."""
    portal = _ephemeral_registry_portal
    with portal.wrap_async_context_manager(_ready_registry(_options(request.config))) as (
        registry,
        endpoints,
    ):
        handle = RegistryHandle(registry, endpoints, portal)
        yield handle
        if _keep(request.config, request.session.stash.get(_FAILED, False)):
            handle.keep()


@pytest.fixture
def ephemeral_registry_factory(
    request: pytest.FixtureRequest, _ephemeral_registry_portal: BlockingPortal
) -> Iterator[RegistryFactory]:
    """``await factory(**options)``: a ready registry of the test's own, removed after it.

    Options are those of ``ephemeral_registry()``; the command line's come first.
    """
    portal = _ephemeral_registry_portal
    made: list[RegistryHandle] = []
    with ExitStack() as stack:

        def enter(options: dict[str, Any]) -> RegistryHandle:
            # In a worker thread: the test's loop goes on while the registry comes up.
            context = portal.wrap_async_context_manager(_ready_registry(options))
            registry, endpoints = context.__enter__()
            # Recorded here, not by the awaiting test: a test cancelled meanwhile
            # would drop it, and the registry would outlive the test.
            stack.push(context)
            made.append(RegistryHandle(registry, endpoints, portal))
            return made[-1]

        async def factory(**options: Any) -> RegistryHandle:
            return await anyio.to_thread.run_sync(enter, {**_options(request.config), **options})

        yield factory
        if _keep(request.config, request.node.stash.get(_FAILED, False)):
            for handle in made:
                handle.keep()
