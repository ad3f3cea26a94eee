"""Security defaults: loopback unless asked, a warning for every interface, and auth=True:
htpasswd credentials made per registry, used by crane, required of pullers; and tls=True:
a CA made per registry, trusted by both pushers, handed to pullers."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import anyio
import httpx
import pytest

from ephemeral_registry import InvalidArgumentError

from ..support import testbed
from ..support.helpers import get, registry_under_test, session_resources

pytestmark = pytest.mark.anyio


async def skopeo_inspect(ref: str, *creds: str) -> tuple[int, str]:
    done = await anyio.run_process(
        ["skopeo", "inspect", "--tls-verify=false", *creds, f"docker://{ref}"], check=False
    )
    return done.returncode, (done.stdout + done.stderr).decode()


@pytest.mark.parametrize("image", [testbed.REGISTRY2, testbed.REGISTRY3])
async def test_an_authenticated_registry_takes_pushes_and_refuses_strangers(
    image: str, tmp_path: Path
) -> None:
    """401 without credentials; crane pushes with them; pullers need them."""
    tarball = tmp_path / "sample.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.SAMPLE)
    async with registry_under_test(registry_image=image, auth=True) as registry:
        endpoints = await registry.ready()
        credentials = endpoints.credentials
        assert credentials is not None
        assert credentials.password not in repr(endpoints)

        anonymous = await get(endpoints.pull_endpoint, "/v2/")
        assert anonymous.status_code == 401
        assert anonymous.headers["Www-Authenticate"].startswith("Basic ")
        async with httpx.AsyncClient(trust_env=False) as client:
            signed = await client.get(
                f"http://{endpoints.pull_endpoint}/v2/",
                auth=(credentials.username, credentials.password),
            )
        assert signed.status_code == 200

        pushed = await registry.push(tarball, "private/app:v1")
        also = await registry.push_image(testbed.SAMPLE_TWO, "private/two")

        code, output = await skopeo_inspect(pushed.ref)
        assert code != 0
        assert "unauthorized" in output.lower() or "authentication required" in output.lower()
        creds = f"--creds={credentials.username}:{credentials.password}"
        for ref in (pushed.digest_ref, also.ref):
            code, output = await skopeo_inspect(ref, creds)
            assert code == 0, output

        refused = await anyio.run_process(["docker", "pull", pushed.ref], check=False)
        assert refused.returncode != 0
        assert b"no basic auth credentials" in refused.stderr or b"unauthorized" in refused.stderr


async def test_every_registry_gets_its_own_credentials() -> None:
    """Two registries, two passwords; neither opens the other."""
    async with registry_under_test(auth=True) as one, registry_under_test(auth=True) as two:
        first, second = await one.ready(), await two.ready()
        assert first.credentials is not None
        assert second.credentials is not None
        assert first.credentials.password != second.credentials.password
        async with httpx.AsyncClient(trust_env=False) as client:
            crossed = await client.get(
                f"http://{second.pull_endpoint}/v2/",
                auth=(first.credentials.username, first.credentials.password),
            )
        assert crossed.status_code == 401


async def test_without_auth_there_are_no_credentials() -> None:
    """The default registry is open on loopback, and says so."""
    async with registry_under_test() as registry:
        endpoints = await registry.ready()
        assert endpoints.credentials is None
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200


async def test_the_port_is_published_on_loopback_only_by_default() -> None:
    """Nobody else on the network can reach a default registry."""
    async with registry_under_test() as registry:
        await registry.ready()
        bindings = testbed.inspect("container", registry.name)["NetworkSettings"]["Ports"]
        assert {binding["HostIp"] for binding in bindings["5000/tcp"]} == {"127.0.0.1"}


@pytest.mark.parametrize("host_ip", ["0.0.0.0", "::"])
async def test_every_interface_works_but_is_warned_about(
    host_ip: str, caplog: pytest.LogCaptureFixture
) -> None:
    """0.0.0.0 or :: publishes everywhere, logs a warning, and pulls still go to loopback.

    Podman is asked for an empty HostIp instead (its netavark takes 0.0.0.0
    literally), and is reached over IPv4 for :: too.
    """
    loopback = "127.0.0.1" if host_ip == "0.0.0.0" or testbed.is_podman() else "[::1]"
    with caplog.at_level(logging.WARNING, logger="ephemeral_registry"):
        async with registry_under_test(host_ip=host_ip) as registry:
            endpoints = await registry.ready()
            bindings = testbed.inspect("container", registry.name)["NetworkSettings"]["Ports"]
            published_on = {binding["HostIp"] for binding in bindings["5000/tcp"]}
            assert published_on <= {"0.0.0.0", "::", ""}
            host, _, port = endpoints.pull_endpoint.rpartition(":")
            assert host == loopback
            assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
            if loopback == "127.0.0.1":  # Docker's :: is IPv6 only, and the network IPv4
                elsewhere = f"{testbed.host_address()}:{port}"
                assert (await get(elsewhere, "/v2/")).status_code == 200
    assert "every interface" in caplog.text


async def test_an_ipv6_loopback_is_published_on_or_refused_before_anything_is_made() -> None:
    """host_ip=::1: Docker relays IPv6 with docker-proxy, rootless Podman with rootlessport;
    Podman as root cannot, and says so."""
    async with registry_under_test(host_ip="::1") as registry:
        if not testbed.is_podman() or testbed.is_rootless():
            endpoints = await registry.ready()
            assert endpoints.pull_endpoint.startswith("[::1]:")
            assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
            return
        with pytest.raises(InvalidArgumentError, match=r"Podman as root .* IPv4 only"):
            await registry.ready()
        assert session_resources(registry) == set()


@pytest.mark.parametrize(
    ("pusher", "image"),
    [("crane", testbed.REGISTRY3), ("native", testbed.REGISTRY3), ("crane", testbed.REGISTRY2)],
)
async def test_a_tls_registry_takes_pushes_and_is_trusted_with_its_ca_alone(
    tarball: Path, pusher: str, image: str
) -> None:
    """tls=True: both pushers push over HTTPS; a verifying client needs the CA, and only it."""
    async with registry_under_test(registry_image=image, tls=True, pusher=pusher) as registry:
        endpoints = await registry.ready()
        assert endpoints.scheme == "https"
        assert endpoints.ca_certificate is not None
        assert endpoints.ca_file is not None
        assert endpoints.ca_file.read_bytes() == endpoints.ca_certificate
        pushed = await registry.push(tarball, "secure/app:v1")
        also = await registry.push_image(testbed.SAMPLE_TWO, "secure/two")

        cert_dir = f"--cert-dir={endpoints.ca_file.parent}"
        for result in (pushed, also):
            code, output = await skopeo_inspect_verified(result.digest_ref, cert_dir)
            assert code == 0, output
            assert json.loads(output)["Digest"] == result.digest
        code, output = await skopeo_inspect_verified(pushed.ref)  # the system's CAs only
        assert code != 0
        assert "x509" in output or "certificate" in output, output
        plain = await get(endpoints.pull_endpoint, "/v2/")  # HTTP to an HTTPS port
        assert plain.status_code == 400
    assert not endpoints.ca_file.parent.exists()
    assert session_resources(registry) == set()


async def test_a_tls_registry_with_auth_needs_both(tarball: Path) -> None:
    """tls=True with auth=True: crane gets the CA and the credentials; pullers need both."""
    async with registry_under_test(tls=True, auth=True) as registry:
        endpoints = await registry.ready()
        assert endpoints.credentials is not None
        assert endpoints.ca_file is not None
        pushed = await registry.push(tarball, "private/secure:v1")
        cert_dir = f"--cert-dir={endpoints.ca_file.parent}"
        creds = f"--creds={endpoints.credentials.username}:{endpoints.credentials.password}"
        code, output = await skopeo_inspect_verified(pushed.digest_ref, cert_dir, creds)
        assert code == 0, output
        code, output = await skopeo_inspect_verified(pushed.digest_ref, cert_dir)
        assert code != 0
        assert "unauthorized" in output.lower() or "authentication required" in output.lower()
    assert session_resources(registry) == set()


async def skopeo_inspect_verified(ref: str, *flags: str) -> tuple[int, str]:
    """skopeo inspect, verifying the registry's certificate (its default for any host)."""
    done = await anyio.run_process(
        ["skopeo", "inspect", "--tls-verify=true", *flags, f"docker://{ref}"], check=False
    )
    return done.returncode, (done.stdout + done.stderr).decode()
