"""The Kubernetes engine's pure parts: what a Pod is made of, what its status means, and
how the API server's refusals become the library's errors (the rest runs on the test
bed's cluster: tests/integration/kubernetes)."""

from __future__ import annotations

import dataclasses

import httpx
import pytest

from ephemeral_registry import (
    DockerEngineError,
    ForbiddenError,
    ImageNotFoundError,
    ImagePullError,
    InvalidArgumentError,
)
from ephemeral_registry._engine import ContainerSpec, kubernetes
from ephemeral_registry._options import resolve

OWNER = {"apiVersion": "v1", "kind": "Secret", "name": "r", "uid": "u"}
SPEC = ContainerSpec("r", "registry:3", {}, "default", publish_port=5000)


def made(
    env: dict[str, str] | None = None, files: dict[str, str] | None = None
) -> kubernetes._Made:
    spec = dataclasses.replace(SPEC, env=env or {})
    return kubernetes._Made(spec, {"l": "v"}, {}, "u", files or {})


def refusal(status: int, message: str) -> DockerEngineError:
    answer = httpx.Response(status, json={"kind": "Status", "message": message})
    return kubernetes._refusal("create the Secret r", answer)


def test_a_403_names_the_user_the_verb_the_resource_and_the_namespace() -> None:
    error = refusal(
        403,
        'secrets is forbidden: User "ci" cannot create resource "secrets" in API group ""'
        ' in the namespace "builds"',
    )
    assert isinstance(error, ForbiddenError)
    assert (error.user, error.verb, error.resource, error.namespace) == (
        "ci",
        "create",
        "secrets",
        "builds",
    )
    assert "ci may not create secrets in the namespace builds" in str(error)


def test_a_cluster_wide_403_and_other_refusals() -> None:
    error = refusal(
        403, 'nodes is forbidden: User "ci" cannot list resource "nodes" in API group ""'
    )
    assert isinstance(error, ForbiddenError)
    assert error.namespace is None
    other = refusal(422, "Secret is invalid")
    assert type(other) is DockerEngineError
    assert str(other).startswith("Kubernetes API server refused to create the Secret r: [422]")


def test_the_pod_is_the_registry_with_its_probe_limits_deadline_and_files() -> None:
    pod = kubernetes._pod(made(files={"file0": "/auth/htpasswd"}), {"l": "v"}, OWNER, "Never")
    spec = pod["spec"]
    (container,) = spec["containers"]
    assert container["imagePullPolicy"] == "Never"
    assert container["readinessProbe"]["httpGet"] == {
        "path": "/v2/",
        "port": 5000,
        "scheme": "HTTP",
    }
    assert container["resources"] == kubernetes.RESOURCES
    assert {
        "name": "files",
        "mountPath": "/auth/htpasswd",
        "subPath": "file0",
        "readOnly": True,
    } in (container["volumeMounts"])
    assert spec["activeDeadlineSeconds"] == kubernetes.ACTIVE_DEADLINE
    assert spec["restartPolicy"] == "Never"
    assert pod["metadata"]["ownerReferences"] == [OWNER]


@pytest.mark.parametrize(
    ("env", "probe"),
    [
        (
            {"REGISTRY_HTTP_TLS_CERTIFICATE": "c"},
            {"httpGet": {"path": "/v2/", "port": 5000, "scheme": "HTTPS"}},
        ),
        ({"REGISTRY_AUTH": "htpasswd"}, {"tcpSocket": {"port": 5000}}),
    ],
)
def test_the_probe_speaks_https_with_tls_and_only_connects_with_auth(
    env: dict[str, str], probe: dict[str, object]
) -> None:
    pod = kubernetes._pod(made(env), {}, OWNER, "IfNotPresent")
    (container,) = pod["spec"]["containers"]
    assert {k: v for k, v in container["readinessProbe"].items() if k in probe} == probe


def status(**state: object) -> dict[str, object]:
    return {
        "status": {
            "phase": "Pending",
            "containerStatuses": [{"image": "registry:3", "state": state}],
        }
    }


def test_a_pod_that_cannot_start_ends_the_wait_with_the_image_error() -> None:
    engine = kubernetes.KubernetesEngine.__new__(kubernetes.KubernetesEngine)
    with pytest.raises(ImageNotFoundError):
        engine._ended(status(waiting={"reason": "ErrImageNeverPull"}))
    with pytest.raises(ImagePullError):
        engine._ended(status(waiting={"reason": "ImagePullBackOff", "message": "no route"}))
    assert engine._ended(status(waiting={"reason": "ContainerCreating"})) is None
    assert engine._ended(status(terminated={"exitCode": 3})) == 3
    assert engine._ended(status(running={})) is None


def test_the_state_of_a_pod_in_the_engines_words() -> None:
    assert kubernetes._state(status(running={})).status == "running"
    ended = kubernetes._state(status(terminated={"exitCode": 137, "reason": "OOMKilled"}))
    assert (ended.status, ended.exit_code, ended.oom_killed) == ("exited", 137, True)
    waiting = kubernetes._state(status(waiting={"reason": "ErrImageNeverPull", "message": "m"}))
    assert (waiting.status, waiting.error) == ("created", "ErrImageNeverPull: m")


def test_labels_that_are_no_label_values_are_kept_as_annotations() -> None:
    labels, annotations = kubernetes._split_labels({"a": "ok", "b": "x" * 64, "c": "no spaces"})
    assert labels == {"a": "ok"}
    assert annotations == {"a": "ok", "b": "x" * 64, "c": "no spaces"}


def test_the_options_of_the_backend() -> None:
    assert resolve(backend="kubernetes").pusher == "native"
    assert resolve().pusher == "crane"
    for given, argument in (
        ({"backend": "kubernetes", "pusher": "crane"}, "pusher"),
        ({"backend": "kubernetes", "tunnel": True}, "tunnel"),
        ({"namespace": "builds"}, "namespace"),
        ({"backend": "kubernetes", "namespace": "Builds"}, "namespace"),
        ({"backend": "swarm"}, "backend"),
    ):
        with pytest.raises(InvalidArgumentError) as caught:
            resolve(**given)
        assert caught.value.argument == argument


def test_the_backend_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EPHEMERAL_REGISTRY_BACKEND", "kubernetes")
    assert resolve().backend == "kubernetes"
    monkeypatch.setenv("EPHEMERAL_REGISTRY_BACKEND", "k8s")
    with pytest.raises(InvalidArgumentError) as caught:
        resolve()
    assert caught.value.argument == "EPHEMERAL_REGISTRY_BACKEND"
