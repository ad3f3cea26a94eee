"""Shared pytest set-up: async tests (marked ``anyio``) run on asyncio only."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.fixture
def anyio_backend() -> str:
    """aiodocker runs on asyncio only (anyio would otherwise run each test on trio too)."""
    return "asyncio"
