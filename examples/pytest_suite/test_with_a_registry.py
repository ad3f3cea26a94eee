"""An async test suite using the plugin's fixtures.

pytest examples/pytest_suite --ephemeral-registry-pull=never
"""

from __future__ import annotations

import httpx
import pytest

from ephemeral_registry import Registry
from ephemeral_registry.pytest_plugin import RegistryFactory

pytestmark = pytest.mark.anyio

IMAGE = "ephemeral-registry-testbed/sample:one"


async def test_a_pushed_image_is_in_the_catalog(ephemeral_registry: Registry) -> None:
    pushed = await ephemeral_registry.push_image(IMAGE, "suite/app:v1")
    endpoints = await ephemeral_registry.ready()
    async with httpx.AsyncClient(trust_env=False) as client:
        catalog = await client.get(f"http://{endpoints.pull_endpoint}/v2/_catalog")
    assert "suite/app" in catalog.json()["repositories"]
    assert pushed.ref == f"{endpoints.pull_endpoint}/suite/app:v1"


async def test_a_registry_of_its_own(ephemeral_registry_factory: RegistryFactory) -> None:
    private = await ephemeral_registry_factory(auth=True)
    endpoints = await private.ready()
    assert endpoints.credentials is not None
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"http://{endpoints.pull_endpoint}/v2/")).status_code == 401
