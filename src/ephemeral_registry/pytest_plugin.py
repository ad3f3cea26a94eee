"""pytest fixtures for async test suites that need a registry (anyio's pytest plugin, asyncio).

Fixtures:

- ``ephemeral_registry`` (session scope): a ready ``Registry`` shared by the
  whole session. Like every higher-scoped async fixture under anyio's plugin,
  it needs the ``anyio_backend`` fixture at session scope, on asyncio::

      @pytest.fixture(scope="session")
      def anyio_backend() -> str:
          return "asyncio"

- ``ephemeral_registry_factory`` (test scope): ``await factory(**options)``
  returns a ready registry of the test's own, removed when the test ends.

Options (command line, or ``addopts``): ``--ephemeral-registry-image``,
``--ephemeral-registry-crane-image``, ``--ephemeral-registry-pull`` (``never``
for offline machines) and ``--ephemeral-registry-keep-on-failure``.

pytest-xdist: each worker is its own process and gets its own registry.
Sharing one across workers would make one worker its owner, and its exit
would remove the registry under the others' feet. Names carry a random
session id, so workers never collide; each resource names its owner
process, so a worker's sweep never touches another live worker's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from ._registry import Registry, ephemeral_registry

RegistryFactory = Callable[..., Awaitable[Registry]]

_FAILED = pytest.StashKey[bool]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ephemeral-registry")
    group.addoption(
        "--ephemeral-registry-image",
        help="the registry image (default: $EPHEMERAL_REGISTRY_REGISTRY_IMAGE or registry 2.8.3)",
    )
    group.addoption(
        "--ephemeral-registry-crane-image",
        help="the crane image (default: $EPHEMERAL_REGISTRY_CRANE_IMAGE or crane)",
    )
    group.addoption(
        "--ephemeral-registry-pull",
        choices=["missing", "never", "always"],
        default="missing",
        help='when to pull those images; "never" for offline machines (default: missing)',
    )
    group.addoption(
        "--ephemeral-registry-keep-on-failure",
        action="store_true",
        help="leave registries in place when a test fails, for debugging",
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed:
        item.session.stash[_FAILED] = True
        item.stash[_FAILED] = True
    return report


def _options(config: pytest.Config) -> dict[str, Any]:
    options: dict[str, Any] = {"pull": config.getoption("ephemeral_registry_pull")}
    if image := config.getoption("ephemeral_registry_image"):
        options["registry_image"] = image
    if crane := config.getoption("ephemeral_registry_crane_image"):
        options["crane_image"] = crane
    return options


def _keep(config: pytest.Config, failed: bool) -> bool:
    return bool(config.getoption("ephemeral_registry_keep_on_failure")) and failed


@pytest.fixture(scope="session", name="ephemeral_registry")
async def ephemeral_registry_fixture(request: pytest.FixtureRequest) -> AsyncIterator[Registry]:
    """A ready registry for the whole test session (one per xdist worker)."""
    async with ephemeral_registry(**_options(request.config)) as registry:
        await registry.ready()
        yield registry
        if _keep(request.config, request.session.stash.get(_FAILED, False)):
            registry.keep()


@pytest.fixture
async def ephemeral_registry_factory(
    request: pytest.FixtureRequest,
) -> AsyncIterator[RegistryFactory]:
    """``await factory(**options)``: a ready registry of the test's own, removed after it.

    Options are those of ``ephemeral_registry()``; the command line's come first.
    """
    async with AsyncExitStack() as stack:
        made: list[Registry] = []

        async def factory(**options: Any) -> Registry:
            registry = await stack.enter_async_context(
                ephemeral_registry(**{**_options(request.config), **options})
            )
            made.append(registry)
            await registry.ready()
            return registry

        yield factory
        if _keep(request.config, request.node.stash.get(_FAILED, False)):
            for registry in made:
                registry.keep()
