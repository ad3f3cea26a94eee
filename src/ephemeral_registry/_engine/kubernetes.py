"""The engine interface over the Kubernetes API: a registry as a Pod in a namespace.

How each part of a registry maps onto a cluster (``backend="kubernetes"``)::

    create_network      nothing: the namespace stands for the network (its id: ``namespace/NS``)
    create_container    a Secret named after the session, labelled: the anchor of the rest
    copy_in             the files of the tar (htpasswd, certificate) into that Secret
    start               a Service (for clients in the cluster: NAME.NS.svc:5000) and the
                        Pod (the registry, an emptyDir, a readiness probe on /v2/,
                        requests and limits, activeDeadlineSeconds), both owned by the Secret
    attachment          a port-forward through the API server to 127.0.0.1:PORT here
    remove_container    the port-forward closed; the Pod (no grace), Service and Secret deleted

Deleting the Secret alone would also do: the cluster's garbage collector removes
what it owns. The sweep finds sessions by their Secrets' labels (``list_containers``).

A cluster holds no images a caller can push from: ``push_image()`` reads them from a
Docker or Podman engine beside it (``images``), when one was found; its nodes pull
the registry's image themselves, so the bring-up checks none (``pulls_itself``) and a
missing one shows in the Pod's status, which ends the wait for it.

The port-forward (``_Forward``): each TCP connection accepted here becomes one
WebSocket to the Pod's ``portforward`` subresource (``v4.channel.k8s.io``: channel 0
carries the data, channel 1 the errors, each channel's first frame is its port).

Errors: the API server's refusals are ``DockerEngineError`` (403: ``ForbiddenError``,
which says which verb on which resource), no answer ``DockerUnavailableError``, a
request past ``request_timeout`` ``EngineTimeoutError``, each naming the API server.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import math
import re
import socket
import tarfile
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import httpx
import httpx_ws

from .._concurrency import serving
from .._errors import (
    DockerEngineError,
    DockerUnavailableError,
    EngineTimeoutError,
    ForbiddenError,
    ImageNotFoundError,
    ImagePullError,
    InvalidArgumentError,
)
from .._logs import Stream
from .._platform import Platform
from .._types import ContainerState
from .base import (
    Attached,
    Attachment,
    ContainerSpec,
    Engine,
    ExportStream,
    Labelled,
    OnFrame,
    WriteArchive,
)
from .quirks import Identity

logger = logging.getLogger("ephemeral_registry")

ENGINE = "Kubernetes API server"
"""How errors name it."""
ACTIVE_DEADLINE = 12 * 3600
"""Seconds a registry's Pod runs at most (``activeDeadlineSeconds``): one whose owner
died and was never swept ends by itself (its objects stay, for the sweep)."""
RESOURCES = {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "1Gi"}}
"""The registry's requests and limits: it holds blobs on disk (an ``emptyDir``), not
in memory."""
PULL_POLICIES = {"missing": "IfNotPresent", "never": "Never", "always": "Always"}
NEVER_STARTS = {
    "ErrImageNeverPull",
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}
"""A waiting container's reasons that mean it will not start without a change."""
FORBIDDEN = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>\S+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "(?P<group>[^"]*)")?(?: in the namespace "(?P<namespace>[^"]*)")?'
)
WATCH_SECONDS = 300
"""How long one watch of a Pod lasts before it is made again."""
FRAME = 1 << 20
"""The most bytes read from a forwarded connection for one WebSocket message."""


@dataclass(frozen=True)
class ClusterAddress:
    """Where the cluster is, as the bring-up's address rules see it: its published
    ports (the port-forwards) are on this host."""

    url: str
    found_by: str
    host: str | None = None
    is_remote: bool = False
    is_ssh: bool = False


class KubernetesEngine(Engine):
    """A namespace of a cluster, through its API server (see the module docstring)."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        namespace: str,
        found_by: str,
        request_timeout: float,
        pull: str,
        serving: anyio.abc.TaskGroup,
        images: Engine | None = None,
    ) -> None:
        self._client = client
        self.namespace = namespace
        self._found_by = found_by
        self._timeout = request_timeout
        self._pull = PULL_POLICIES[pull]
        self._serving = serving
        self.images = images
        self.where = ClusterAddress(str(client.base_url).rstrip("/"), found_by)
        self._identity: Identity | None = None
        self._made: dict[str, _Made] = {}
        """What each anchor Secret made here stands for, by its name."""
        self._forwards: dict[str, anyio.CancelScope] = {}
        self.reauthenticate: Callable[[], Awaitable[dict[str, str]]] | None = None
        """Reads the credentials again (an expired token), for one more try after a 401."""

    # The engine

    @property
    def address(self) -> str:
        return f"{self.where.url} (namespace {self.namespace})"

    @property
    def known_identity(self) -> Identity | None:
        return self._identity

    @property
    def pulls_itself(self) -> bool:
        return True

    def reached_as(self, name: str) -> str:
        return f"{name}.{self.namespace}.svc"

    def names_of(self, name: str) -> tuple[str, ...]:
        service = f"{name}.{self.namespace}"
        return (name, service, f"{service}.svc", f"{service}.svc.cluster.local")

    async def identify(self) -> Identity:
        if self._identity is None:
            version = await self._request("read the API server's version", "GET", "/version")
            assert version is not None
            major = int(re.sub(r"\D", "", str(version.get("major", "1"))) or 1)
            minor = int(re.sub(r"\D", "", str(version.get("minor", "0"))) or 0)
            self._identity = Identity(
                "kubernetes", (major, minor), f"Kubernetes/{version.get('gitVersion', '')}"
            )
        return self._identity

    async def rootless(self) -> bool:
        return False

    async def shares_files(self) -> bool:
        return False

    async def platform(self) -> Platform:
        """The platform of the engine beside the cluster that ``push_image()`` exports from
        (the only caller: the platform of an image it holds for several)."""
        return await self._image_engine("the engine's platform").platform()

    async def tunnel(self, host: str, port: int) -> int:
        raise DockerUnavailableError(
            self.address,
            "a cluster's registry is always reached through a port-forward; there is no"
            " tunnel to open",
            advice="Leave tunnel= unset with backend='kubernetes'.",
        )

    async def _user_name(self) -> str:
        """Who this client is, as the API server knows it (a SelfSubjectReview); as
        much as can be said where that cannot be asked."""
        try:
            review = await self._request(
                "ask who it is",
                "POST",
                "/apis/authentication.k8s.io/v1/selfsubjectreviews",
                body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
            )
            return str(review["status"]["userInfo"]["username"])
        except (DockerEngineError, KeyError, TypeError):
            return f"the user of {self._found_by}"

    # Images: a Docker or Podman engine beside the cluster holds them

    def _image_engine(self, image: str) -> Engine:
        if self.images is None:
            raise InvalidArgumentError(
                "image",
                image,
                "a cluster holds no images to push from: push_image() needs a Docker or Podman"
                " engine beside it (DOCKER_HOST or docker_host=), and none answered; push a"
                " docker save tarball or an OCI layout with push(path) instead",
            )
        return self.images

    async def has_image(self, image: str) -> bool:
        return await self._image_engine(image).has_image(image)

    async def pull(self, image: str, *, timeout: float) -> None:
        return None  # the node pulls the registry's image as its Pod starts

    def export(self, image: str, *, timeout: float) -> AbstractAsyncContextManager[ExportStream]:
        return self._image_engine(image).export(image, timeout=timeout)

    # Networks: the namespace is the network

    async def create_network(self, name: str, labels: Mapping[str, str]) -> str:
        return f"namespace/{self.namespace}"

    async def remove_network(self, network_id: str) -> None:
        return None

    async def disconnect(self, network_id: str, container_id: str) -> None:
        return None

    async def list_networks(self, label: str) -> list[Labelled]:
        return []

    # Containers: a Secret (the anchor), a Service and a Pod

    async def create_container(self, spec: ContainerSpec) -> str:
        """Create the anchor Secret, once the port-forward it will need is known to be
        allowed (the one right whose lack would otherwise show only as a registry that
        never answers)."""
        if spec.publish_port is not None:
            await self._check_allowed("create", "pods", "portforward")
        labels, annotations = _split_labels(spec.labels)
        body = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": spec.name, "labels": labels, "annotations": annotations},
            "type": "Opaque",
        }
        with anyio.CancelScope(shield=True):  # its name reaches the caller, for the removal
            made = await self._request(
                f"create the Secret {spec.name}", "POST", self._path("secrets"), body=body
            )
        uid = str(made.get("metadata", {}).get("uid", ""))
        self._made[spec.name] = _Made(spec, labels, annotations, uid)
        return spec.name

    async def _check_allowed(self, verb: str, resource: str, subresource: str = "") -> None:
        """Raise ForbiddenError unless the API server says this user may do ``verb`` on
        ``resource`` in the namespace (a SelfSubjectAccessReview, which anyone may ask)."""
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {
                "resourceAttributes": {
                    "namespace": self.namespace,
                    "verb": verb,
                    "resource": resource,
                    "subresource": subresource,
                }
            },
        }
        what = f"{resource}/{subresource}" if subresource else resource
        answer = await self._request(
            f"ask whether it may {verb} {what}",
            "POST",
            "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews",
            body=review,
        )
        if not answer.get("status", {}).get("allowed", False):
            raise ForbiddenError(
                f"{verb} {what}",
                str(answer.get("status", {}).get("reason", "")) or "not allowed",
                user=await self._user_name(),
                verb=verb,
                resource=what,
                namespace=self.namespace,
            )

    async def copy_in(self, container_id: str, archive: bytes) -> None:
        files: dict[str, str] = {}
        data: dict[str, str] = {}
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:  # our own archive (_auth)
            for number, member in enumerate(m for m in tar.getmembers() if m.isfile()):
                extracted = tar.extractfile(member)
                assert extracted is not None
                key = f"file{number}"
                files[key] = "/" + member.name.removeprefix("./").lstrip("/")
                data[key] = base64.b64encode(extracted.read()).decode()
        self._made[container_id].files.update(files)
        await self._request(
            f"put the files into the Secret {container_id}",
            "PATCH",
            self._path(f"secrets/{container_id}"),
            body={"data": data},
            content_type="application/merge-patch+json",
        )

    async def copy_archive_in(self, container_id: str, write: WriteArchive) -> None:
        raise DockerEngineError(
            "copy an archive into a Pod",
            501,
            "a cluster's containers take no archives",
            engine=ENGINE,
        )

    async def start(self, container_id: str) -> None:
        made = self._made[container_id]
        owner = {
            "apiVersion": "v1",
            "kind": "Secret",
            "name": container_id,
            "uid": made.uid,
            "blockOwnerDeletion": False,
        }
        labels, annotations = made.labels, made.annotations
        port = made.spec.publish_port
        selector = {_POD: container_id}
        if port is not None:
            service = {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": container_id,
                    "labels": labels,
                    "annotations": annotations,
                    "ownerReferences": [owner],
                },
                "spec": {"selector": selector, "ports": [{"port": port, "targetPort": port}]},
            }
            with anyio.CancelScope(shield=True):
                await self._request(
                    f"create the Service {container_id}",
                    "POST",
                    self._path("services"),
                    body=service,
                )
        pod = _pod(made, labels | selector, owner, self._pull)
        with anyio.CancelScope(shield=True):
            await self._request(
                f"create the Pod {container_id}", "POST", self._path("pods"), body=pod
            )

    def attached(
        self, container_id: str, command: Sequence[str]
    ) -> AbstractAsyncContextManager[Attached]:
        raise DockerEngineError(
            "run a process in a Pod", 501, "this library runs none in a cluster", engine=ENGINE
        )

    async def attachment(self, container_id: str, container_port: int, network: str) -> Attachment:
        pod = await self._pod(container_id)
        status = (pod or {}).get("status", {})
        if pod is None or status.get("phase") in ("Succeeded", "Failed"):
            return Attachment(host_port=None, address=None)
        forward = _Forward(
            self, container_id, container_port, self._made[container_id].spec.host_ip
        )
        port: int = await self._serving.start(forward.serve)
        self._forwards[container_id] = forward.scope
        return Attachment(host_port=port, address=status.get("podIP"))

    async def state(self, container_id: str) -> ContainerState:
        pod = await self._pod(container_id)
        if pod is None:
            return ContainerState("removed", None, "its Pod is gone")
        return _state(pod)

    async def wait(self, container_id: str) -> int:
        while True:  # a watch of the one Pod; again when the API server ends it
            pod = await self._pod(container_id)
            if pod is None:
                return 137  # deleted: as a killed container's
            code = self._ended(pod)
            if code is not None:
                return code
            params = {
                "watch": "1",
                "fieldSelector": f"metadata.name={container_id}",
                "resourceVersion": pod["metadata"]["resourceVersion"],
                # Ended by the server, and then watched again: a watch that a proxy
                # drops without a word cannot hold the wait for ever.
                "timeoutSeconds": str(WATCH_SECONDS),
            }
            async with self._stream(
                f"watch the Pod {container_id}", self._path("pods"), params
            ) as lines:
                async for line in lines:
                    event = json.loads(line)
                    if event.get("type") == "DELETED":
                        return 137
                    if event.get("type") in ("ADDED", "MODIFIED"):
                        code = self._ended(event["object"])
                        if code is not None:
                            return code

    def _ended(self, pod: dict[str, Any]) -> int | None:
        """The registry's exit code once it has ended; raises once it can never start."""
        status = pod.get("status", {})
        for container in status.get("containerStatuses", []):
            state = container.get("state", {})
            if "terminated" in state:
                return int(state["terminated"].get("exitCode", 1))
            waiting = state.get("waiting", {})
            if waiting.get("reason") in NEVER_STARTS:
                image = container.get("image", "")
                if waiting["reason"] == "ErrImageNeverPull":
                    raise ImageNotFoundError(image, "never", on_node=True)
                if waiting["reason"] in ("ErrImagePull", "ImagePullBackOff", "InvalidImageName"):
                    raise ImagePullError(
                        image,
                        "the cluster's node could not pull it: "
                        + str(waiting.get("message", waiting["reason"])),
                        option="registry_image",
                        env="EPHEMERAL_REGISTRY_REGISTRY_IMAGE",
                    )
                return 128
        if status.get("phase") in ("Succeeded", "Failed"):
            return 0 if status["phase"] == "Succeeded" else 1
        return None

    async def tail_logs(self, container_id: str, lines: int) -> tuple[str, ...]:
        try:
            text = await self._request(
                f"read the logs of {container_id}",
                "GET",
                self._path(f"pods/{container_id}/log"),
                params={"tailLines": str(lines)},
                text=True,
            )
        except DockerEngineError as exc:
            if exc.status in (400, 404):  # not started yet, or gone: nothing written
                return ()
            raise
        return tuple(str(text or "").splitlines())

    async def wait_for_output(self, container_id: str, text: str) -> None:
        found = False

        async def on_frame(stream: Stream, data: bytes) -> None:
            nonlocal found
            if text.encode() in data:
                found = True
                raise _Found

        while not found:
            with contextlib.suppress(_Found):
                await self._read_logs(container_id, on_frame, follow=True, timeout=math.inf)
            if not found:
                await anyio.sleep(0.2)  # not started yet, or the stream ended: again

    async def read_output(
        self, container_id: str, on_frame: OnFrame, *, follow: bool, timeout: float | None
    ) -> None:
        await self._read_logs(container_id, on_frame, follow=follow, timeout=timeout)

    async def _read_logs(
        self, container_id: str, on_frame: OnFrame, *, follow: bool, timeout: float | None
    ) -> None:
        """``read_output``'s work, which ``wait_for_output`` repeats until the container
        has started (one request of the interface, however many reads)."""
        params = {"follow": "true"} if follow else {}
        try:
            async with self._stream(
                f"read the logs of {container_id}",
                self._path(f"pods/{container_id}/log"),
                params,
                timeout=self._timeout if timeout is None else timeout,
            ) as lines:
                async for line in lines:
                    await on_frame("stderr", line.encode() + b"\n")
        except DockerEngineError as exc:
            if exc.status not in (400, 404):
                raise

    async def remove_container(self, container_id: str) -> None:
        forward = self._forwards.pop(container_id, None)
        if forward is not None:
            forward.cancel()
        gone = {"gracePeriodSeconds": 0, "propagationPolicy": "Background"}
        problem: Exception | None = None
        for kind in ("pods", "services", "secrets"):  # each tried, whatever the others did
            try:
                await self._request(
                    f"delete the {kind[:-1]} {container_id}",
                    "DELETE",
                    self._path(f"{kind}/{container_id}"),
                    body={"kind": "DeleteOptions", "apiVersion": "v1", **gone},
                    missing_ok=True,
                )
            except (DockerEngineError, DockerUnavailableError, EngineTimeoutError) as exc:
                problem = problem or exc
        if problem is not None:
            raise problem
        self._made.pop(container_id, None)

    async def list_containers(self, label: str) -> list[Labelled]:
        found = await self._request(
            "list the Secrets", "GET", self._path("secrets"), params={"labelSelector": label}
        )
        assert found is not None
        return [
            Labelled(
                "container",
                item["metadata"]["name"],
                item["metadata"]["name"],
                item["metadata"].get("labels", {}) | item["metadata"].get("annotations", {}),
            )
            for item in found.get("items", [])
        ]

    # Requests

    def _path(self, resource: str) -> str:
        return f"/api/v1/namespaces/{self.namespace}/{resource}"

    async def _pod(self, name: str) -> Any:
        return await self._request(
            f"read the Pod {name}", "GET", self._path(f"pods/{name}"), missing_ok=True
        )

    async def _request(
        self,
        operation: str,
        method: str,
        path: str,
        *,
        body: object = None,
        params: Mapping[str, str] | None = None,
        missing_ok: bool = False,
        text: bool = False,
        content_type: str = "application/json",
    ) -> Any:
        """One request, its errors ours; the answer's JSON (its text, with ``text``), or
        ``None`` for a 404 where ``missing_ok``."""
        headers = {"Content-Type": content_type} if body is not None else {}
        content = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            try:
                with anyio.fail_after(self._timeout):
                    answer = await self._client.request(
                        method, path, params=params, content=content, headers=headers
                    )
                    if answer.status_code == 401 and attempt == 1 and self.reauthenticate:
                        self._client.headers.update(await self.reauthenticate())
                        continue  # an expired token, read again: once more
            except TimeoutError:
                raise EngineTimeoutError(
                    self.address, operation, self._timeout, "request_timeout", engine=ENGINE
                ) from None
            except httpx.HTTPError as exc:
                raise self._unavailable(exc) from exc
            break
        if answer.status_code == 404 and missing_ok:
            return None
        if answer.is_error:
            raise _refusal(operation, answer)
        if text:
            return answer.text
        try:
            return answer.json()
        except ValueError:
            raise DockerEngineError(
                operation, answer.status_code, f"not JSON: {answer.text[:200]!r}", engine=ENGINE
            ) from None

    @asynccontextmanager
    async def _stream(
        self, operation: str, path: str, params: Mapping[str, str], *, timeout: float | None = None
    ) -> AsyncIterator[AsyncIterator[str]]:
        """A streamed GET's lines (a watch, logs); ``timeout`` bounds the wait for its answer."""
        limit = self._timeout if timeout is None else timeout
        try:
            with anyio.fail_after(limit if math.isfinite(limit) else None):
                request = self._client.build_request("GET", path, params=params)
                answer = await self._client.send(request, stream=True)
        except TimeoutError:
            raise EngineTimeoutError(
                self.address, operation, limit, "request_timeout", engine=ENGINE
            ) from None
        except httpx.HTTPError as exc:
            raise self._unavailable(exc) from exc
        try:
            if answer.is_error:
                await answer.aread()
                raise _refusal(operation, answer)

            async def lines() -> AsyncGenerator[str, None]:
                try:
                    async for line in answer.aiter_lines():
                        yield line
                except httpx.HTTPError as exc:
                    raise self._unavailable(exc) from exc

            async with contextlib.aclosing(lines()) as each:
                yield each
        finally:
            with anyio.CancelScope(shield=True):
                await answer.aclose()

    def _unavailable(self, exc: Exception) -> DockerUnavailableError:
        return DockerUnavailableError(
            f"{self.where.url} ({self._found_by})",
            f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__,
            engine=ENGINE,
            advice="Check that the cluster runs and that the kubeconfig's current context"
            " (KUBECONFIG, ~/.kube/config) names it.",
        )


class _Found(Exception):
    """The text waited for was written."""


_POD = "ephemeral-registry.pod"
"""The label that the Service selects its Pod by."""
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _split_labels(given: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """Labels that are valid Kubernetes label values, and every label as an annotation
    too (an owner's host name may be no label value)."""
    labels = {k: v for k, v in given.items() if len(v) <= 63 and _LABEL_VALUE.match(v)}
    return labels, dict(given)


@dataclass
class _Made:
    """An anchor Secret made here, and what its Pod is to be."""

    spec: ContainerSpec
    labels: dict[str, str]
    annotations: dict[str, str]
    uid: str
    files: dict[str, str] = field(default_factory=dict)
    """Where each file of the Secret goes in the container, by its key there."""


def _pod(
    made: _Made, labels: Mapping[str, str], owner: Mapping[str, object], pull: str
) -> dict[str, Any]:
    spec, files, name = made.spec, made.files, made.spec.name
    port = spec.publish_port
    env = dict(spec.env)
    container: dict[str, Any] = {
        "name": "registry",
        "image": spec.image,
        "imagePullPolicy": pull,
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "resources": RESOURCES,
        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/registry"}]
        + [
            {"name": "files", "mountPath": path, "subPath": key, "readOnly": True}
            for key, path in files.items()
        ],
    }
    if spec.command:
        container["args"] = list(spec.command)
    if port is not None:
        container["ports"] = [{"containerPort": port}]
        tls = "REGISTRY_HTTP_TLS_CERTIFICATE" in env
        auth = "REGISTRY_AUTH" in env
        # With auth, /v2/ answers 401, which a probe counts as a failure: a TCP probe then.
        probe = (
            {"tcpSocket": {"port": port}}
            if auth
            else {"httpGet": {"path": "/v2/", "port": port, "scheme": "HTTPS" if tls else "HTTP"}}
        )
        container["readinessProbe"] = probe | {"periodSeconds": 1, "failureThreshold": 3}
    volumes: list[dict[str, Any]] = [{"name": "data", "emptyDir": {}}]
    if files:
        volumes.append({"name": "files", "secret": {"secretName": name}})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": dict(labels),
            "annotations": made.annotations,
            "ownerReferences": [owner],
        },
        "spec": {
            "containers": [container],
            "volumes": volumes,
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "activeDeadlineSeconds": ACTIVE_DEADLINE,
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
        },
    }


def _state(pod: Mapping[str, Any]) -> ContainerState:
    status = pod.get("status", {})
    for container in status.get("containerStatuses", []):
        state = container.get("state", {})
        if "terminated" in state:
            ended = state["terminated"]
            return ContainerState(
                "exited",
                int(ended.get("exitCode", 1)),
                ended.get("message", "") or ended.get("reason", ""),
                oom_killed=ended.get("reason") == "OOMKilled",
            )
        if "waiting" in state:
            waiting = state["waiting"]
            return ContainerState(
                "created", None, f"{waiting.get('reason', '')}: {waiting.get('message', '')}"
            )
        if "running" in state:
            return ContainerState("running", None, "")
    # Not started: why, as the scheduler says (no node fits, say).
    said = [
        c.get("message", "") for c in status.get("conditions", []) if c.get("status") == "False"
    ]
    return ContainerState(
        str(status.get("phase", "Pending")).lower(),
        None,
        status.get("message", "") or "; ".join(m for m in said if m),
    )


def _refusal(operation: str, answer: httpx.Response) -> DockerEngineError:
    try:
        body = answer.json()
        message = str(body.get("message", "")) if isinstance(body, dict) else answer.text
    except ValueError:
        message = answer.text
    message = message.strip()[:1000]
    if answer.status_code == 403 and (match := FORBIDDEN.search(message)):
        return ForbiddenError(
            operation,
            message,
            user=match["user"],
            verb=match["verb"],
            resource=match["resource"],
            namespace=match["namespace"],
        )
    return DockerEngineError(operation, answer.status_code, message, engine=ENGINE)


@dataclass
class _Forward:
    """A port-forward to a Pod's port: a listener here, a WebSocket per connection.

    The WebSocket protocol (``v4.channel.k8s.io``) has no half-close: a client's end of
    sending ends its connection (HTTP clients close whole connections).
    """

    engine: KubernetesEngine
    pod: str
    port: int
    host_ip: str
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)

    async def serve(self, *, task_status: anyio.abc.TaskStatus[int]) -> None:
        """Serve until cancelled (``remove_container``, or the cluster's block's exit); a
        failure to accept ends the listener, never the block.

        Accepts by waiting until the socket is readable, then ``accept()``: a wait that
        is cancelled has accepted nothing (asyncio's ``sock_accept``, cancelled as a
        connection arrives, loses that connection's socket unclosed). Every socket
        accepted is closed by the time this returns, its relay run or not.
        """
        family = socket.AF_INET6 if ":" in self.host_ip else socket.AF_INET
        accepted: set[socket.socket] = set()
        with self.scope, socket.socket(family, socket.SOCK_STREAM) as listening:
            listening.setblocking(False)
            listening.bind((self.host_ip, 0))
            listening.listen(64)
            try:
                async with anyio.create_task_group() as tg:
                    task_status.started(listening.getsockname()[1])
                    while True:
                        await anyio.wait_readable(listening)
                        try:
                            connection, _ = listening.accept()
                        except BlockingIOError:
                            continue  # another reader took it
                        except OSError as exc:  # no file descriptors left, say
                            logger.warning("the port-forward to %s stopped: %r", self.pod, exc)
                            return
                        connection.setblocking(False)
                        accepted.add(connection)
                        tg.start_soon(self._serve_one, connection, accepted)
            finally:
                for connection in accepted:
                    connection.close()

    async def _serve_one(self, raw: socket.socket, accepted: set[socket.socket]) -> None:
        try:
            connection = await anyio.abc.SocketStream.from_socket(raw)
            await self._relay(connection)
        finally:
            raw.close()
            accepted.discard(raw)

    async def _relay(self, connection: anyio.abc.SocketStream) -> None:
        engine = self.engine
        path = engine._path(f"pods/{self.pod}/portforward")
        async with connection:
            try:
                ws: Any
                async with (
                    httpx_ws.aconnect_ws(
                        path,
                        engine._client,
                        params={"ports": str(self.port)},
                        subprotocols=["v4.channel.k8s.io"],
                        max_message_size_bytes=4 * FRAME,
                        # A client here that reads slowly stops the WebSocket's reader,
                        # and with it the pongs: no pings, so no cut for want of one.
                        keepalive_ping_interval_seconds=None,
                    ) as ws,
                    anyio.create_task_group() as tg,
                ):

                    async def upstream() -> None:
                        while True:
                            try:
                                data = await connection.receive(FRAME)
                            except (anyio.EndOfStream, anyio.BrokenResourceError):
                                break
                            await ws.send_bytes(b"\x00" + data)
                        tg.cancel_scope.cancel()

                    async def downstream() -> None:
                        seen: set[int] = set()
                        while True:
                            message = await ws.receive_bytes()
                            if not message:
                                continue
                            channel = message[0]
                            if channel not in seen:  # each channel's first frame: its port
                                seen.add(channel)
                                continue
                            if channel == 1:
                                logger.debug("port-forward to %s: %s", self.pod, message[1:])
                                break
                            await connection.send(message[1:])
                        tg.cancel_scope.cancel()

                    tg.start_soon(upstream)
                    tg.start_soon(downstream)
            except Exception as exc:  # one connection's failure is its client's to see
                logger.debug("port-forward to %s ended: %r", self.pod, exc)


SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
"""Where a Pod's service account is mounted."""


@asynccontextmanager
async def open_cluster(
    *, namespace: str | None, request_timeout: float, pull: str, images: Engine | None
) -> AsyncIterator[KubernetesEngine]:
    """The cluster of the kubeconfig's current context (``KUBECONFIG``, else
    ``~/.kube/config``), or of the in-cluster service account, for the block;
    ``images``, an engine beside it for ``push_image()``. Its client and its
    port-forwards are closed on exit.

    The namespace is ``namespace``, else the context's, else the service account's,
    else ``default``.

    Raises:
        DockerUnavailableError: no kubeconfig or service account applies, or it
            cannot be read.
    """
    from kr8s._auth import KubeAuth  # the kubeconfig's and the service account's rules

    try:
        with anyio.fail_after(request_timeout):
            auth = await KubeAuth(namespace=namespace)
            ssl_context = await auth.ssl_context()
    except TimeoutError:
        raise DockerUnavailableError(
            "the kubeconfig", f"reading it took over {request_timeout:g} s", engine=ENGINE
        ) from None
    except Exception as exc:  # kr8s's own errors, and the files': ours, with what was tried
        raise DockerUnavailableError(
            "the kubeconfig's current context",
            f"no cluster could be found ({type(exc).__name__}: {exc})",
            engine=ENGINE,
            tried=("KUBECONFIG", "~/.kube/config", "the in-cluster service account"),
            advice="Point KUBECONFIG at a kubeconfig whose current context names the cluster.",
        ) from exc
    finally:
        _forget_written_files(auth if "auth" in locals() else None)
    if not auth.server:
        raise DockerUnavailableError(
            "the kubeconfig's current context",
            "it names no API server",
            engine=ENGINE,
            tried=("KUBECONFIG", "~/.kube/config", "the in-cluster service account"),
            advice="Point KUBECONFIG at a kubeconfig whose current context names the cluster.",
        )
    found_by = (
        f"the kubeconfig's context {auth.active_context}"
        if auth.active_context
        else "the in-cluster service account"
    )

    async def reauthenticate() -> dict[str, str]:
        await auth.reauthenticate()  # reads the token again (a service account's, a plugin's)
        _forget_written_files(auth)
        return {"Authorization": f"Bearer {auth.token}"} if auth.token else {}

    client = httpx.AsyncClient(
        base_url=auth.server,
        headers={"Authorization": f"Bearer {auth.token}"} if auth.token else {},
        verify=ssl_context,
        timeout=httpx.Timeout(request_timeout, read=None),
        limits=httpx.Limits(max_keepalive_connections=8),
    )
    async with client, serving() as tasks:
        engine = KubernetesEngine(
            client,
            namespace=namespace or _namespace_of(auth),
            found_by=found_by,
            request_timeout=request_timeout,
            pull=pull,
            serving=tasks,
            images=images,
        )
        engine.reauthenticate = reauthenticate
        yield engine


def _namespace_of(auth: Any) -> str:
    """The kubeconfig context's namespace, else the service account's, else ``default``
    (kr8s says ``default`` for a service account whatever its namespace)."""
    if auth.active_context:
        return str(auth.namespace)
    try:
        return (SERVICE_ACCOUNT / "namespace").read_text().strip() or "default"
    except OSError:
        return "default"


def _forget_written_files(auth: Any) -> None:
    """Remove the files kr8s wrote of a kubeconfig's inline certificates and key (it
    leaves them in the temporary directory); the SSL context has read them."""
    if auth is None:
        return
    user = getattr(auth, "_user", {}) or {}
    cluster = getattr(auth, "_cluster", {}) or {}
    for inline, written in (
        ("client-key-data" in user, auth.client_key_file),
        ("client-certificate-data" in user, auth.client_cert_file),
        ("certificate-authority-data" in cluster, auth.server_ca_file),
    ):
        if inline and written:
            with contextlib.suppress(OSError):
                Path(written).unlink()
