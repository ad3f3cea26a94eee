"""The test bed's one-node Kubernetes cluster (testbed/kubernetes.sh), as the tests see it.

Its kubeconfig's path is ``$EPHEMERAL_REGISTRY_TESTBED_KUBECONFIG`` (scripts/test sets
it from the script's output); a second one, beside it, is a user with no rights.
Requests here go straight to the API server with the admin's certificate, to look
at what the library made and to run what a user of the cluster would.
"""

from __future__ import annotations

import base64
import os
import ssl
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import yaml  # type: ignore[import-untyped]

KUBECONFIG = Path(
    os.environ.get(
        "EPHEMERAL_REGISTRY_TESTBED_KUBECONFIG",
        "/run/ephemeral-registry-testbed/kubernetes/kubeconfig",
    )
)
NO_RIGHTS_KUBECONFIG = KUBECONFIG.with_name("kubeconfig-norights")
NO_RIGHTS_NAMESPACE = "ertb-norights"
NAMESPACE = "default"
CERTS_D = Path("/etc/ephemeral-registry-testbed/kubernetes/certs.d")
"""The node's containerd reads a registry's hosts.toml from here (config_path)."""
SESSION = "ephemeral-registry.session"
KINDS = ("pods", "services", "secrets")


def _file(entry: dict[str, Any], key: str, directory: Path) -> str | None:
    if f"{key}-data" in entry:
        path = directory / key
        path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(path)
    return entry.get(key)


def client(kubeconfig: Path = KUBECONFIG) -> httpx.Client:
    """An HTTP client for the API server, as the kubeconfig's current context's user."""
    config = yaml.safe_load(kubeconfig.read_text())
    context = next(c for c in config["contexts"] if c["name"] == config["current-context"])
    cluster = next(c for c in config["clusters"] if c["name"] == context["context"]["cluster"])
    user = next(u for u in config["users"] if u["name"] == context["context"]["user"])
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        ca = _file(cluster["cluster"], "certificate-authority", folder)
        cert = _file(user["user"], "client-certificate", folder)
        key = _file(user["user"], "client-key", folder)
        context_ssl = ssl.create_default_context(cafile=ca)
        if cert and key:
            context_ssl.load_cert_chain(cert, key)
    headers = (
        {"Authorization": f"Bearer {user['user']['token']}"} if "token" in user["user"] else {}
    )
    return httpx.Client(
        base_url=cluster["cluster"]["server"], verify=context_ssl, headers=headers, timeout=30
    )


def path(kind: str, name: str = "", namespace: str = NAMESPACE) -> str:
    return f"/api/v1/namespaces/{namespace}/{kind}" + (f"/{name}" if name else "")


def labelled(session: str | None = None, namespace: str = NAMESPACE) -> set[str]:
    """Every Pod, Service and Secret with the library's session label (that session's)."""
    selector = SESSION if session is None else f"{SESSION}={session}"
    found = set()
    with client() as api:
        for kind in KINDS:
            answer = api.get(path(kind, namespace=namespace), params={"labelSelector": selector})
            answer.raise_for_status()
            found |= {f"{kind}/{item['metadata']['name']}" for item in answer.json()["items"]}
    return found


def remove(objects: set[str], namespace: str = NAMESPACE) -> None:
    with client() as api:
        for each in objects:
            kind, name = each.split("/")
            api.delete(path(kind, name, namespace), params={"gracePeriodSeconds": "0"})


def service_ip(name: str) -> str:
    with client() as api:
        answer = api.get(path("services", name))
        answer.raise_for_status()
        return str(answer.json()["spec"]["clusterIP"])


def run_pod(name: str, image: str, command: list[str], *, timeout: float = 120) -> tuple[str, str]:
    """Run a Pod of ``image`` to its end; its phase and its log. The Pod is removed."""
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"ephemeral-registry-tests": "pulled-back"}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 0,
            "containers": [
                {"name": "main", "image": image, "command": command, "imagePullPolicy": "Always"}
            ],
        },
    }
    with client() as api:
        api.post(path("pods"), json=pod).raise_for_status()
        try:
            deadline = time.monotonic() + timeout
            phase = ""
            while time.monotonic() < deadline:
                status = api.get(path("pods", name)).json()["status"]
                phase = status.get("phase", "")
                if phase in ("Succeeded", "Failed"):
                    break
                time.sleep(0.5)
            log = api.get(path("pods", name) + "/log").text
            if phase not in ("Succeeded", "Failed"):
                events = api.get(
                    f"/api/v1/namespaces/{NAMESPACE}/events",
                    params={"fieldSelector": f"involvedObject.name={name}"},
                ).json()["items"]
                log += "\n".join(e.get("message", "") for e in events)
            return phase, log
        finally:
            api.delete(path("pods", name), params={"gracePeriodSeconds": "0"})
