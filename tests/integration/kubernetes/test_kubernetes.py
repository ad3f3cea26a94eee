"""backend="kubernetes" on a real one-node cluster: the registry as a Pod with a Service,
pushed to through a port-forward, everything removed on every way out."""

from __future__ import annotations

import json
import os
import signal
import ssl
import sys
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from ephemeral_registry import (
    ForbiddenError,
    ImageNotFoundError,
    InvalidArgumentError,
    Registry,
    ephemeral_registry,
    sweep,
)
from ephemeral_registry._engine.kubernetes import KubernetesEngine

from ..lifecycle.test_cancellation import CancelAtCall
from ..support import cluster, testbed
from ..support.helpers import ROOT, get, saved

pytestmark = pytest.mark.anyio


def on_the_cluster(**options: Any) -> AbstractAsyncContextManager[Registry]:
    """ephemeral_registry() on the test bed's cluster, with the image its node holds."""
    return ephemeral_registry(backend="kubernetes", pull="never", **options)


async def test_the_registry_runs_as_a_pod_with_a_service_and_leaves_nothing() -> None:
    """Ready means GET /v2/ answered through the port-forward; the push endpoint is the
    Service's name; on exit the Pod, the Service and the Secret are gone."""
    async with on_the_cluster() as registry:
        endpoints = await registry.ready()
        session = registry.session_id
        assert endpoints.pull_endpoint.startswith("127.0.0.1:")
        name = endpoints.push_endpoint.split(".")[0]
        assert endpoints.push_endpoint == f"{name}.{cluster.NAMESPACE}.svc:5000"
        assert (await get(endpoints.pull_endpoint, "/v2/")).status_code == 200
        assert cluster.labelled(session) == {f"pods/{name}", f"services/{name}", f"secrets/{name}"}
        with cluster.client() as api:
            pod = api.get(cluster.path("pods", name)).json()
        spec = pod["spec"]
        assert spec["activeDeadlineSeconds"] > 0
        (container,) = spec["containers"]
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/"
        assert container["resources"]["limits"]["memory"]
        assert {"name": "data", "emptyDir": {}} in spec["volumes"]
    assert cluster.labelled(session) == set()


async def test_a_tarball_and_an_oci_layout_are_pushed_through_the_port_forward(
    tmp_path: Path,
) -> None:
    tarball = await saved(testbed.SAMPLE, tmp_path)
    layout = tmp_path / "layout"
    await testbed.oci_layout(testbed.SAMPLE_TWO, layout)
    async with on_the_cluster() as registry:
        from_tarball = await registry.push(tarball, "sample:tarball")
        from_layout = await registry.push(layout, "sample:layout")
        endpoint = (await registry.ready()).pull_endpoint
        for result in (from_tarball, from_layout):
            answer = await get(
                endpoint,
                f"/v2/sample/manifests/{result.digest}",
                Accept="application/vnd.oci.image.manifest.v1+json,"
                "application/vnd.docker.distribution.manifest.v2+json",
            )
            assert answer.status_code == 200, answer.text


async def test_push_image_reads_the_image_from_the_docker_engine_beside_the_cluster() -> None:
    async with on_the_cluster() as registry:
        result = await registry.push_image(testbed.SAMPLE, "sample:from-engine")
        endpoint = (await registry.ready()).pull_endpoint
        answer = await get(
            endpoint,
            "/v2/sample/manifests/from-engine",
            Accept="application/vnd.oci.image.manifest.v1+json,"
            "application/vnd.docker.distribution.manifest.v2+json",
        )
        assert answer.status_code == 200
        assert answer.headers["Docker-Content-Digest"] == result.digest


async def test_crane_is_refused_on_a_cluster_before_anything_is_made(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgumentError, match="native") as caught:
        async with on_the_cluster(pusher="crane"):
            pytest.fail("entered")
    assert caught.value.argument == "pusher"
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with on_the_cluster() as registry:
        with pytest.raises(InvalidArgumentError, match="port-forward"):
            await registry.push(tarball, "sample:one", pusher="crane")


async def test_the_cluster_pulls_back_what_was_pushed_by_the_services_address() -> None:
    """docs/kubernetes.md's recipe: a hosts.toml for the Service's address, the
    ConfigMap of KEP-1755 saying where the registry is; then a Pod of the cluster runs
    the image pushed, named by the address the ConfigMap gives the container runtime,
    and the node's containerd pulls it from the registry."""
    async with on_the_cluster() as registry:
        await registry.push_image(testbed.BUSYBOX, "pulled/back:one")
        endpoints = await registry.ready()
        name = endpoints.push_endpoint.split(".")[0]
        address = f"{cluster.service_ip(name)}:5000"
        hosts = cluster.CERTS_D / address
        hosts.mkdir(parents=True, exist_ok=True)
        (hosts / "hosts.toml").write_text(
            f'server = "http://{address}"\n\n[host."http://{address}"]\n'
            '  capabilities = ["pull", "resolve"]\n'
        )
        hosting = (
            f'host: "{endpoints.pull_endpoint}"\n'
            f'hostFromClusterNetwork: "{endpoints.push_endpoint}"\n'
            f'hostFromContainerRuntime: "{address}"\n'
        )
        configmaps = "/api/v1/namespaces/kube-public/configmaps"
        with cluster.client() as api:
            api.post(
                configmaps,
                json={
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": "local-registry-hosting"},
                    "data": {"localRegistryHosting.v1": hosting},
                },
            ).raise_for_status()
        try:
            with cluster.client() as api:
                published = api.get(f"{configmaps}/local-registry-hosting").json()
            said = published["data"]["localRegistryHosting.v1"]
            runtime_host = said.split("hostFromContainerRuntime: ")[1].split()[0].strip('"')
            phase, log = await anyio.to_thread.run_sync(
                lambda: cluster.run_pod(
                    f"pulled-back-{registry.session_id}",
                    f"{runtime_host}/pulled/back:one",
                    ["sh", "-c", "echo pulled back"],
                )
            )
        finally:
            with cluster.client() as api:
                api.delete(f"{configmaps}/local-registry-hosting")
            (hosts / "hosts.toml").unlink()
            hosts.rmdir()
        assert (phase, log.strip()) == ("Succeeded", "pulled back")


async def test_auth_and_tls_files_go_to_the_pod_in_its_secret(tmp_path: Path) -> None:
    tarball = await saved(testbed.SAMPLE, tmp_path)
    async with on_the_cluster(auth=True, tls=True) as registry:
        endpoints = await registry.ready()
        assert endpoints.credentials is not None
        assert endpoints.ca_file is not None
        name = endpoints.push_endpoint.split(".")[0]
        trusted = ssl.create_default_context(cafile=endpoints.ca_file)
        async with httpx.AsyncClient(verify=trusted, trust_env=False) as client:
            url = f"https://{endpoints.pull_endpoint}/v2/"
            assert (await client.get(url)).status_code == 401
            creds = endpoints.credentials
            answer = await client.get(url, auth=(creds.username, creds.password))
            assert answer.status_code == 200
        await registry.push(tarball, "sample:secret")
        with cluster.client() as api:
            secret = api.get(cluster.path("secrets", name)).json()
        assert len(secret["data"]) == 3  # the htpasswd file, the certificate, its key


async def test_a_registry_image_the_node_lacks_is_image_not_found() -> None:
    with pytest.raises(ImageNotFoundError):
        async with on_the_cluster(registry_image="ephemeral-registry-testbed/absent:1") as registry:
            await registry.ready()


async def test_a_namespace_without_rights_is_a_forbidden_error_naming_verb_and_resource(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(cluster.NO_RIGHTS_KUBECONFIG))
    with pytest.raises(ForbiddenError) as caught:
        async with on_the_cluster(namespace=cluster.NO_RIGHTS_NAMESPACE) as registry:
            await registry.ready()
    error = caught.value
    assert (error.user, error.verb, error.resource, error.namespace) == (
        "ertb-norights",
        "create",
        "pods/portforward",
        cluster.NO_RIGHTS_NAMESPACE,
    )
    assert "ertb-norights may not create pods/portforward in the namespace" in str(error)
    assert cluster.labelled(namespace=cluster.NO_RIGHTS_NAMESPACE) == set()


@pytest.mark.parametrize("delay", [0.0, 0.05, 0.2, 0.5, 1.0, 2.0])
async def test_cancelled_at_any_moment_the_block_leaves_nothing(delay: float) -> None:
    """Cancelled ``delay`` seconds after entering: during the Secret's, the Service's or
    the Pod's creation, the port-forward's start, the readiness poll, or once ready."""
    session = ""
    with anyio.CancelScope() as scope:
        async with on_the_cluster() as registry:
            session = registry.session_id
            scope.deadline = anyio.current_time() + delay
            await registry.ready()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert cluster.labelled(session) == set()


async def test_cancellation_before_and_after_every_call_to_the_cluster(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A bring-up, a push and the exit, cancelled before and after each request of the
    engine interface to the cluster, in turn: cancelled, and nothing left."""
    cancel_at = CancelAtCall(monkeypatch, KubernetesEngine)
    tarball = await saved(testbed.SAMPLE, tmp_path)
    sessions: list[str] = []

    async def run_once() -> bool:
        async with on_the_cluster(sweep_leftovers=False) as registry:
            sessions.append(registry.session_id)
            await registry.push(tarball, "cancel/tarball")
        return True

    cancel_at.arm(0, after=False)
    assert await run_once()
    calls = list(cancel_at.calls)
    assert len(calls) >= 6, calls
    cancelled_before: set[str] = set()
    for target in range(1, len(calls) + 1):
        for after in (False, True):
            finished = False
            with cancel_at.arm(target, after=after) as scope:
                finished = await run_once()
            if cancel_at.hit:
                if cancel_at.hit.startswith("before"):
                    cancelled_before.add(cancel_at.hit.rsplit("(", 1)[1].rstrip(")"))
                assert scope.cancelled_caught, f"cancellation swallowed {cancel_at.hit}"
                assert not finished, f"the block ran on after cancellation {cancel_at.hit}"
            leftovers = cluster.labelled(sessions[-1])
            assert leftovers == set(), f"left {leftovers} when cancelled {cancel_at.hit}"
    # Every kind of request was cancelled before it at least once. Under load, a slow
    # registry adds the check of its log and state (the wait beyond 0.5 s of
    # _bring_up._unreachable), so the call numbered N is not always the same one.
    slow_path = {"wait_for_output", "read_output", "tail_logs", "state"}
    assert set(calls) - slow_path <= cancelled_before, (calls, cancelled_before)


async def test_a_killed_owners_registry_is_removed_by_the_sweep() -> None:
    """SIGKILL leaves the Pod, Service and Secret; sweep(backend=...) removes them."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    async with await anyio.open_process(
        [sys.executable, "-m", "tests.integration.support.owner_process", "--kubernetes"],
        cwd=ROOT,
        env=env,
    ) as owner:
        assert owner.stdout is not None
        with anyio.fail_after(60):
            line = b""
            async for chunk in owner.stdout:
                line += chunk
                if b"\n" in line:
                    break
        session = json.loads(line)["session"]
        assert cluster.labelled(session)
        owner.send_signal(signal.SIGKILL)
        await owner.wait()
    assert len(cluster.labelled(session)) == 3
    removed = await sweep(backend="kubernetes", sessions=[session])
    assert {leftover.session for leftover in removed if leftover.kind == "container"} == {session}
    assert cluster.labelled(session) == set()


async def test_the_command_line_pushes_into_a_pod_with_backend_kubernetes(tmp_path: Path) -> None:
    """``push --backend kubernetes SOURCE -- COMMAND``: COMMAND gets the reference, which
    a process here pulls through the port-forward while the registry runs."""
    tarball = await saved(testbed.SAMPLE, tmp_path)
    script = 'echo "$0"; wget -q -O - "http://$1/v2/" && echo " answered"'
    with anyio.fail_after(120):
        done = await anyio.run_process(
            [sys.executable, "-m", "ephemeral_registry", "push", "--backend", "kubernetes",
             "--pull", "never", str(tarball), "--as", "cli/app:one",
             "--", "sh", "-c", script, "{ref}", "{pull_endpoint}"],
            env=dict(os.environ),
            check=False,
        )  # fmt: skip
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr.decode()
    ref = out.splitlines()[0]
    assert ref.startswith("127.0.0.1:")
    assert ref.endswith("/cli/app:one")
    assert out.splitlines()[1] == "{} answered"


def test_the_pytest_plugin_serves_tests_from_a_pod(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """--ephemeral-registry-backend=kubernetes: the suite's pushes land in a Pod, which
    is gone after the run."""
    pytester.makeconftest(
        "import pytest\n\n@pytest.fixture(scope='session')\ndef anyio_backend():\n"
        "    return 'asyncio'\n"
    )
    tarball = tmp_path / "sample.tar"
    testbed.docker("save", "-o", str(tarball), testbed.SAMPLE)
    pytester.makepyfile(
        test_suite=f"""
import json, pytest
pytestmark = pytest.mark.anyio

async def test_push(ephemeral_registry):
    pushed = await ephemeral_registry.push({str(tarball)!r}, "suite/app:one")
    endpoints = await ephemeral_registry.ready()
    with open({str(tmp_path / "out.json")!r}, "w") as f:
        json.dump({{"session": ephemeral_registry.session_id, "ref": pushed.ref,
                   "push": endpoints.push_endpoint}}, f)
"""
    )
    result = pytester.runpytest_subprocess(
        "--ephemeral-registry-backend=kubernetes",
        "--ephemeral-registry-pull=never",
        f"--ephemeral-registry-registry-image={testbed.REGISTRY3}",
        "-p",
        "no:cacheprovider",
    )
    result.assert_outcomes(passed=1)
    recorded = json.loads((tmp_path / "out.json").read_text())
    assert recorded["push"].endswith(f".{cluster.NAMESPACE}.svc:5000")
    assert cluster.labelled(recorded["session"]) == set()
