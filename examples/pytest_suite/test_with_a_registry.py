"""A test suite using the plugin's fixtures, with pytest-asyncio.

pytest examples/pytest_suite --ephemeral-registry-pull=never
"""

from __future__ import annotations

import subprocess

import httpx
import pytest

from ephemeral_registry.pytest_plugin import RegistryFactory, RegistryHandle

IMAGE = "ephemeral-registry-testbed/sample:one"


@pytest.mark.asyncio
async def test_a_pushed_image_is_in_the_catalog(ephemeral_registry: RegistryHandle) -> None:
    pushed = await ephemeral_registry.push_image(IMAGE, "suite/app:v1")
    endpoints = ephemeral_registry.endpoints
    async with httpx.AsyncClient(trust_env=False) as client:
        catalog = await client.get(f"http://{endpoints.pull_endpoint}/v2/_catalog")
    assert "suite/app" in catalog.json()["repositories"]
    assert pushed.ref == f"{endpoints.pull_endpoint}/suite/app:v1"


@pytest.mark.asyncio
async def test_a_registry_of_its_own(ephemeral_registry_factory: RegistryFactory) -> None:
    private = await ephemeral_registry_factory(auth=True)
    endpoints = private.endpoints
    assert endpoints.credentials is not None
    async with httpx.AsyncClient(trust_env=False) as client:
        assert (await client.get(f"http://{endpoints.pull_endpoint}/v2/")).status_code == 401


def test_a_synchronous_test_hands_the_registry_to_a_tool(
    ephemeral_registry: RegistryHandle,
) -> None:
    endpoint = ephemeral_registry.endpoints.pull_endpoint
    done = subprocess.run(
        ["curl", "-sf", f"http://{endpoint}/v2/"], capture_output=True, check=False
    )
    assert done.returncode == 0
