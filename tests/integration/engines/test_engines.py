"""The engines compared: the same image comes out of each.

scripts/test names the test bed's engines in EPHEMERAL_REGISTRY_TESTBED_ENGINES
(``NAME=DOCKER_HOST`` pairs); this runs once, against all of them.
"""

from __future__ import annotations

import aiodocker
import pytest

from ..support import testbed
from ..support.helpers import get, registry_under_test

pytestmark = pytest.mark.anyio

ENGINES = {name: host for name, host in testbed.ENGINES.items() if name != "desktop-isolated"}
"""The engines whose published ports reach this host (test_desktop.py tests the one that not)."""


@pytest.mark.skipif(len(ENGINES) < 2, reason="scripts/test names the engines to compare")
async def test_every_engine_pushes_the_same_image() -> None:
    """push_image of the sample gives the same config digest from Docker 20.10, 29 and Podman."""
    configs: dict[str, str] = {}
    for name, host in ENGINES.items():
        async with aiodocker.Docker(url=host) as client:
            async with registry_under_test(docker=client) as registry:
                result = await registry.push_image(testbed.SAMPLE, "same/sample:1")
                endpoints = await registry.ready()
                response = await get(
                    endpoints.pull_endpoint,
                    f"/v2/same/sample/manifests/{result.digest}",
                    Accept="application/vnd.oci.image.manifest.v1+json",
                )
                configs[name] = response.json()["config"]["digest"]
            label = f"{testbed.LABEL}={registry.session_id}"
            assert await client.containers.list(all=True, filters={"label": [label]}) == []
            assert await client.networks.list(filters={"label": [label]}) == []
    assert set(configs) == set(ENGINES)
    assert set(configs.values()) == {testbed.config_digest(testbed.SAMPLE)}, configs
