"""An async test suite's conftest: anyio on asyncio, at session scope for the shared registry."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"
