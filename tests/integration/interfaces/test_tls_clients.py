"""Clients that verify certificates by default pull from a tls=True registry given only its CA.

Each client is the real one on this host: httpx, skopeo, oras, containerd's
ctr (the default engine's containerd), and the Docker engine (its
``certs.d``). None is told ``--insecure`` or given a registry configuration.

The registry is published on this host's own address, not on loopback:
containerd's ctr, the Docker engine and oras take a loopback registry for a
plain-HTTP one (or skip verifying it), and would prove nothing there.
"""

from __future__ import annotations

import json
import secrets
import shutil
import ssl
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import anyio
import httpx
import pytest

from ephemeral_registry import Endpoints, PushResult

from ..support import testbed
from ..support.helpers import registry_under_test, session_resources

pytestmark = pytest.mark.anyio

CONTAINERD = "/run/docker/containerd/containerd.sock"
"""The containerd of the test bed's Docker 20.10 (the default engine), which ctr talks to;
the registry may be on any engine, as long as this host reaches its pull endpoint."""


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def pushed() -> AsyncIterator[tuple[Endpoints, PushResult]]:
    """One TLS registry for the module, holding the sample image."""
    async with registry_under_test(tls=True, host_ip=testbed.host_address()) as registry:
        endpoints = await registry.ready()
        result = await registry.push_image(testbed.SAMPLE, "clients/sample:v1")
        yield endpoints, result
    assert session_resources(registry) == set()


async def run(command: Sequence[str]) -> tuple[int, str]:
    done = await anyio.run_process(list(command), check=False)
    return done.returncode, (done.stdout + done.stderr).decode()


def ca_file(endpoints: Endpoints) -> Path:
    assert endpoints.ca_file is not None
    return endpoints.ca_file


async def test_httpx(pushed: tuple[Endpoints, PushResult]) -> None:
    endpoints, result = pushed
    url = f"https://{endpoints.pull_endpoint}/v2/clients/sample/manifests/{result.digest}"
    accept = {
        "Accept": "application/vnd.oci.image.manifest.v1+json,"
        " application/vnd.docker.distribution.manifest.v2+json"
    }
    trusted = ssl.create_default_context(cafile=ca_file(endpoints))
    async with httpx.AsyncClient(verify=trusted, trust_env=False) as client:
        answer = await client.get(url, headers=accept)
    assert answer.status_code == 200
    assert answer.headers["Docker-Content-Digest"] == result.digest
    async with httpx.AsyncClient(trust_env=False) as client:  # the system's CAs only
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url, headers=accept)


async def test_skopeo(pushed: tuple[Endpoints, PushResult]) -> None:
    endpoints, result = pushed
    cert_dir = f"--cert-dir={ca_file(endpoints).parent}"
    code, output = await run(["skopeo", "inspect", cert_dir, f"docker://{result.digest_ref}"])
    assert code == 0, output
    assert json.loads(output)["Digest"] == result.digest
    code, output = await run(["skopeo", "inspect", f"docker://{result.digest_ref}"])
    assert code != 0
    assert "x509" in output, output


async def test_oras(pushed: tuple[Endpoints, PushResult]) -> None:
    endpoints, result = pushed
    code, output = await run(
        ["oras", "manifest", "fetch", "--ca-file", str(ca_file(endpoints)), result.digest_ref]
    )
    assert code == 0, output
    assert json.loads(output)["config"]["digest"] == testbed.config_digest(testbed.SAMPLE)
    code, output = await run(["oras", "manifest", "fetch", result.digest_ref])
    assert code != 0
    assert "x509" in output, output


async def test_containerd_ctr(pushed: tuple[Endpoints, PushResult]) -> None:
    """ctr pulls into a namespace of its own, removed afterwards with all it holds."""
    endpoints, result = pushed
    namespace = f"ephemeral-registry-test-{secrets.token_hex(4)}"
    ctr = ["ctr", "--address", CONTAINERD, "--namespace", namespace]
    try:
        pull = [*ctr, "images", "pull", "--tlscacert", str(ca_file(endpoints)), result.ref]
        code, output = await run(pull)
        assert code == 0, output
        code, output = await run([*ctr, "images", "ls", "-q"])
        assert output.split() == [result.ref]
        code, output = await run([*ctr, "images", "pull", result.ref])
        assert code != 0
        assert "x509" in output, output
    finally:
        await run([*ctr, "images", "rm", "--sync", result.ref])
        code, digests = await run([*ctr, "content", "ls", "-q"])
        if digests.split():
            await run([*ctr, "content", "rm", *digests.split()])
        code, output = await run(["ctr", "--address", CONTAINERD, "namespaces", "rm", namespace])
        assert code == 0, output


async def test_the_docker_engine_with_its_certs_d(pushed: tuple[Endpoints, PushResult]) -> None:
    """The engine reads the CA from /etc/docker/certs.d/HOST:PORT/ca.crt; without it, it
    refuses the registry's certificate."""
    endpoints, result = pushed
    refused = await anyio.run_process(["docker", "pull", result.digest_ref], check=False)
    assert refused.returncode != 0
    assert b"x509" in refused.stderr or b"certificate" in refused.stderr, refused.stderr
    certs = Path("/etc/docker/certs.d") / endpoints.pull_endpoint
    certs.mkdir(parents=True)
    try:
        shutil.copy(ca_file(endpoints), certs / "ca.crt")
        assert await testbed.pulled_config_digest(result.digest_ref) == testbed.config_digest(
            testbed.SAMPLE
        )
    finally:
        shutil.rmtree(certs)
