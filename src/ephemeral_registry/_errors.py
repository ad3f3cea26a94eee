"""The exception tree: every error this library raises on purpose.

```
EphemeralRegistryError
├── InvalidArgumentError           bad input, found before anything is created; also a ValueError
│   │                              (.argument, .value, .problem)
│   ├── InvalidReferenceError      a repository reference that the OCI rules do not allow
│   └── InvalidSourceError         a push source that is missing or not a tarball or OCI layout
├── EngineError                    the engine could not be reached, refused a request, or did
│   │                              not finish it in time
│   ├── DockerUnavailableError     no engine answers, or it went away mid-answer (.address,
│   │                              .reason, .tried)
│   ├── DockerEngineError          the engine answered a request with an error (.operation,
│   │   │                          .status, .message)
│   │   └── ForbiddenError         a Kubernetes API server refused for want of rights (.user,
│   │                              .verb, .resource, .namespace)
│   ├── ImagePullError             the engine could not pull an image (.image, .reason, .option)
│   └── EngineTimeoutError         the engine did not finish a request within the option's time
│                                  (.address, .operation, .limit, .limit_name); also a TimeoutError
├── ExportError                    the engine's docker save of an image is not usable (.image,
│                                  .problem)
├── ImageNotFoundError             an image is missing and may not be pulled (.image, .pull,
│                                  .platform, .available)
├── RegistryNotReadyError          no answer to GET /v2/ in time, or its container exited
│   │                              (.reason, .image, .url, .state, .logs)
│   └── RegistryUnreachableError   it listens, but its pull endpoint does not reach it from here
│                                  (.endpoint, .problem)
├── RegistryClosedError            the registry was used after its block had exited; also a
│                                  RuntimeError
├── AsyncioRequiredError           called on another event loop than asyncio's, trio's say
│                                  (.library)
├── PushError                      a push failed: crane's exit, the registry's answer, or the
│   │                              registry's exit (.ref, .reason, .exit_code, .output)
│   └── PushTimeoutError           the push ran out of push_timeout, in its check, its export or
│                                  its upload (.limit, .stage); also a TimeoutError
└── CleanupError                   resources could not be removed in time (.leftovers, .reason)
```

`except TimeoutError` catches every time limit that ran out: a push's
(`PushTimeoutError`, whatever stage it was in) and the engine's
(`EngineTimeoutError`: a request past `request_timeout`, a pull past
`pull_timeout`). `except EngineError` catches every failure of the engine
itself; `except PushError` every push that did not complete.

Errors from aiodocker, aiohttp and httpx are translated into these once,
where they are caught (``_engine/``, the readiness probe, the native
pusher), with the original kept as `__cause__`. Every
error pickles (a process pool can send it back): the copy has the same
type, message, attributes and notes (not its `__cause__`, which pickle never
keeps).
"""

from __future__ import annotations

from typing import Any, Literal

from ._types import ContainerState


class EphemeralRegistryError(Exception):
    """The root of every error this library raises on purpose."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle's default calls ``type(self)(*self.args)``, where ``args`` is the message
        # alone, which no constructor here takes: rebuild without calling ``__init__``,
        # then restore the attributes (notes included) from ``__dict__``.
        return _rebuilt, (type(self), self.args), self.__dict__


def _rebuilt(cls: type[EphemeralRegistryError], args: tuple[Any, ...]) -> EphemeralRegistryError:
    """An error of type ``cls`` with these ``args``, its ``__init__`` not called (see pickle)."""
    error = cls.__new__(cls, *args)
    error.args = args
    return error


class AsyncioRequiredError(EphemeralRegistryError):
    """Raised at once by ``ephemeral_registry()``, ``sweep()`` and ``find_leftovers()``
    when they are not called on an asyncio event loop (under trio, say).

    The engine's and the registry's clients (aiodocker, aiohttp) run on asyncio
    only. From trio, run the registry on an asyncio loop in a thread of its
    own, as the pytest plugin does for trio tests (the pytest plugin's page
    has the recipe)::

        with anyio.from_thread.start_blocking_portal("asyncio") as portal:
            block = portal.wrap_async_context_manager(ephemeral_registry())
            registry = await anyio.to_thread.run_sync(block.__enter__)
            ...
    """

    def __init__(self, what: str, library: str) -> None:
        super().__init__(
            f"{what} runs on asyncio, not on {library}: its engine and HTTP clients (aiodocker,"
            " aiohttp) are asyncio's. From trio, run it on an asyncio loop in a thread of its"
            ' own (anyio.from_thread.start_blocking_portal("asyncio")), as the pytest plugin'
            " does for trio tests."
        )
        self.library = library
        """The event loop library it was called under (``"trio"``, ...)."""


class InvalidArgumentError(EphemeralRegistryError, ValueError):
    """Raised when an argument is invalid, before any resource is created."""

    def __init__(self, argument: str, value: object, problem: str) -> None:
        super().__init__(f"{argument}={value!r}: {problem}")
        self.argument = argument
        self.value = value
        self.problem = problem


class InvalidReferenceError(InvalidArgumentError):
    """Raised by pushes when ``ref`` is not a valid ``repo[:tag]`` by the OCI distribution rules."""

    def __init__(self, ref: object, problem: str) -> None:
        super().__init__("ref", ref, problem)


class InvalidSourceError(InvalidArgumentError):
    """Raised by ``push()`` when the source is missing, unreadable, or of the wrong kind."""

    def __init__(self, source: object, problem: str) -> None:
        super().__init__("source", source, problem)


class EngineError(EphemeralRegistryError):
    """The group of the engine's failures: it could not be reached, refused a request
    (a pull included), or did not finish one in time.

    These are failures of the engine itself, whatever was asked of it: the
    same request may work once the engine is back, less busy, or given more
    time (see each error). Like httpx's ``TransportError``, it lets one
    ``except`` tell "the engine failed" from "the input was wrong" or "the
    registry failed": an engine that stops mid-request is a
    ``DockerUnavailableError``, one that hangs an ``EngineTimeoutError``.

    Not in it: ``ImageNotFoundError`` (the engine answered, and lacks the
    image), ``ExportError`` (the engine's export arrived but is not a usable
    image: a verdict on its bytes, as ``InvalidSourceError`` is on a
    caller's), and a push's own time limit, which is a ``PushTimeoutError``
    whichever stage it ended, the engine's export included.
    """


class DockerUnavailableError(EngineError):
    """Raised when no Docker engine answers at the address the client uses.

    This covers no engine address at all (``tried`` lists what discovery
    looked at), a refused connection, a socket that does not exist, and a
    connection cut while the engine answered (it stopped). An engine that
    answers too slowly is an ``EngineTimeoutError``.
    """

    def __init__(
        self,
        address: str,
        reason: str,
        *,
        tried: tuple[str, ...] = (),
        advice: str | None = None,
        engine: str = "Docker engine",
    ) -> None:
        super().__init__(
            f"No {engine} answered at {address}: {reason}. "
            + (
                advice
                or "Start one (for example `sudo systemctl start docker`, or `dockerd &`),"
                " or point DOCKER_HOST (or a docker context) at a running engine."
            )
        )
        self.address = address
        self.reason = reason
        self.tried = tried


class EngineTimeoutError(EngineError, TimeoutError):
    """Raised when the engine did not finish a request within its time limit.

    The engine was reached, so it is running, but is slow or stuck: a pull
    that took longer than ``pull_timeout``, or a request ``request_timeout``
    (``limit_name`` names the option). A push's export that runs past
    ``push_timeout`` is the push's timeout, a ``PushTimeoutError``.
    """

    def __init__(
        self,
        address: str,
        operation: str,
        limit: float,
        limit_name: str,
        *,
        engine: str = "Docker engine",
    ) -> None:
        look = "`docker info` and its log" if engine == "Docker engine" else "its log"
        super().__init__(
            f"The {engine} at {address} did not {operation} within {limit:g} s"
            f" ({limit_name}). It may be overloaded or stuck: see {look},"
            f" or allow more time with {limit_name}=."
        )
        self.address = address
        self.operation = operation
        self.limit = limit
        self.limit_name = limit_name


class DockerEngineError(EngineError):
    """Raised when the engine answered a request with an error status."""

    def __init__(
        self, operation: str, status: int, message: str, *, engine: str = "Docker engine"
    ) -> None:
        super().__init__(
            f"{engine[0].upper()}{engine[1:]} refused to {operation}: [{status}] {message}"
        )
        self.operation = operation
        self.status = status
        self.message = message


class ForbiddenError(DockerEngineError):
    """Raised when a Kubernetes API server refuses a request for want of rights (403):
    which user may not do which verb on which resource, in which namespace."""

    def __init__(
        self,
        operation: str,
        message: str,
        *,
        user: str,
        verb: str,
        resource: str,
        namespace: str | None,
    ) -> None:
        where = f" in the namespace {namespace}" if namespace else ""
        DockerEngineError.__init__(
            self,
            operation,
            403,
            f"{user} may not {verb} {resource}{where} ({message}). A registry needs, in its"
            " namespace: secrets (create, patch, list, delete), services (create, delete),"
            " pods (create, get, watch, delete), pods/log (get), pods/portforward (get,"
            " create): ask for a Role that allows it (docs/kubernetes.md has one), or"
            " choose another namespace with namespace=",
            engine="Kubernetes API server",
        )
        self.user = user
        self.verb = verb
        self.resource = resource
        self.namespace = namespace


class ExportError(EphemeralRegistryError):
    """Raised by ``push_image()`` when the engine's ``docker save`` of the image is not usable.

    The stream broke off, is not a tar, lacks what its manifest names, or
    holds a layer that does not match the image's config. ``problem`` says which.
    """

    def __init__(self, image: str, problem: str) -> None:
        super().__init__(f"The Docker engine's export of {image} is not usable: {problem}.")
        self.image = image
        self.problem = problem


class ImageNotFoundError(EphemeralRegistryError):
    """Raised when an image is not held by the engine and may not be pulled.

    That is: the registry or crane image under ``pull="never"``, or the local
    image given to ``push_image()`` (which is never pulled), or held but not
    for the ``platform`` asked for (``available`` lists the ones it has).
    """

    def __init__(
        self,
        image: str,
        pull: str | None = None,
        *,
        platform: str | None = None,
        available: tuple[str, ...] = (),
        on_node: bool = False,
    ) -> None:
        if on_node:  # a cluster's node, whose runtime the registry's Pod found without it
            message = (
                f"The image {image} is not held by the cluster's node that runs the registry,"
                f" and pull={pull!r} forbids pulling it. Import it into the node's container"
                " runtime (`ctr -n k8s.io images import`, `kind load docker-image`, `k3d image"
                ' import`), or allow pulling with pull="missing".'
            )
        elif platform is not None:
            held = ", ".join(available) or "none"
            message = (
                f"The Docker engine holds the image {image}, but not for the platform"
                f" {platform} (it holds: {held}). Name one of those with platform=."
            )
        elif pull is None:
            message = (
                f"The image {image} is not held by the Docker engine. Build or load it first"
                " (`docker build`, `docker load`)."
            )
        else:
            message = (
                f"The image {image} is not held by the Docker engine. pull={pull!r} forbids"
                " pulling it. Build or load it first (`docker pull`, `docker load`), or allow"
                ' pulling with pull="missing".'
            )
        super().__init__(message)
        self.image = image
        self.pull = pull
        self.platform = platform
        self.available = available


class ImagePullError(EngineError):
    """Raised when the engine could not pull an image.

    Offline, or behind a proxy the engine does not use, the first run fails
    here: the message names the option (and environment variable) that
    chooses another image, and how a machine without the internet gets this
    one (``docker save`` where it can be pulled, ``docker load`` here).
    """

    def __init__(
        self, image: str, reason: str, *, option: str | None = None, env: str | None = None
    ) -> None:
        message = f"Pulling {image} failed: {reason.rstrip('.')}."
        if option is not None:
            flag = "--" + option.replace("_", "-")
            env_text = f" or ${env}" if env else ""
            name = "saved/" + image.rpartition("/")[2].split("@")[0].split(":")[0]
            message += (
                f" It is the image {option} names: choose one the engine holds with {option}="
                f" (the command line's {flag}){env_text}. Without the internet: where it can"
                f" be pulled, `docker pull {image}`, `docker tag {image} {name}` and"
                f" `docker save {name} -o image.tar`; here, `docker load -i image.tar` and"
                f" {option}={name} (a loaded image is found by its name: the pull's digest"
                " is not kept)."
            )
        super().__init__(message)
        self.image = image
        self.reason = reason
        self.option = option
        """The option that chose the image (``"registry_image"``, ...), where one did."""


class RegistryNotReadyError(EphemeralRegistryError):
    """Raised by ``Registry.ready()`` when the registry never answered ``GET /v2/``.

    Either the readiness deadline passed, or the registry container exited
    first. ``state`` and ``logs`` say what the container was doing.
    """

    def __init__(
        self,
        reason: str,
        *,
        image: str,
        url: str | None,
        state: ContainerState | None,
        logs: tuple[str, ...],
    ) -> None:
        where = f" at {url}" if url else ""
        message = f"The registry ({image}) did not become ready{where}: {reason}."
        if state is not None:
            message += f" Container status: {state.status}"
            if state.exit_code is not None:
                message += f", exit code {state.exit_code}"
            if state.error:
                message += f", error {state.error!r}"
            message += "."
        if logs:
            message += " Its last log lines:\n" + "\n".join(f"    {line}" for line in logs)
        else:
            message += " It wrote no log lines."
        super().__init__(message)
        self.reason = reason
        self.image = image
        self.url = url
        self.state = state
        self.logs = logs


class RegistryUnreachableError(RegistryNotReadyError):
    """Raised by ``Registry.ready()`` when the registry listens in its container but
    nothing answers at its pull endpoint from this host.

    The engine's published ports are not forwarded here: an engine in a VM
    without port forwarding, or a remote engine whose ports this host cannot
    reach. Raised as soon as the registry says it listens and the endpoint
    still refuses connections, not after ``ready_timeout``. ``endpoint`` is
    the address that was tried.
    """

    def __init__(
        self,
        endpoint: str,
        problem: str,
        *,
        image: str,
        url: str,
        state: ContainerState | None,
        logs: tuple[str, ...],
    ) -> None:
        reason = (
            f"it listens in its container, but {endpoint} does not answer from this host"
            f" ({problem}): the engine's published ports do not reach this host (an engine"
            " in a VM without port forwarding, or a remote engine). Pass tunnel=True to"
            " reach it through the engine, or host_ip= an address of the engine's host"
            " that this host can reach"
        )
        super().__init__(reason, image=image, url=url, state=state, logs=logs)
        self.endpoint = endpoint
        self.problem = problem


class RegistryClosedError(EphemeralRegistryError, RuntimeError):
    """Raised when a ``Registry`` is used after its ``async with`` block has exited."""

    def __init__(self) -> None:
        super().__init__(
            "This registry has been removed: its `async with ephemeral_registry()` block has"
            " exited. Use it only inside the block."
        )


class PushError(EphemeralRegistryError):
    """Raised by ``push()`` and ``push_image()`` when a push fails or runs out of time
    (then a ``PushTimeoutError``).

    With crane: crane exited non-zero; ``exit_code`` is its code and ``output``
    holds its last lines, stderr and stdout, in the order they came. With the
    native pusher: the registry refused a request or the connection to it
    broke off; ``exit_code`` is ``None``, ``reason`` has the registry's answer,
    and ``output`` the push's last lines, then the registry's own error lines.
    With either, when the registry's container exited during the push (killed,
    out of memory), ``reason`` starts by saying so, with its exit code.
    """

    def __init__(
        self, ref: str, reason: str, *, exit_code: int | None, output: tuple[str, ...]
    ) -> None:
        message = f"Pushing {ref} failed: {reason}."
        if output:
            message += " Last lines:\n" + "\n".join(f"    {line}" for line in output)
        super().__init__(message)
        self.ref = ref
        self.reason = reason
        self.exit_code = exit_code
        self.output = output


class PushTimeoutError(PushError, TimeoutError):
    """Raised by ``push()`` and ``push_image()`` when the push ran past ``push_timeout``.

    Whatever it was doing then: ``stage`` is ``"check"`` (reading the source to
    check it, before crane starts), ``"export"`` (the engine's export of the
    image for crane) or ``"push"`` (the upload: crane's run, or the native
    pusher's, which reads the engine's export as it uploads). Anything the
    push had started is stopped and removed first (crane's container, the
    export's files). ``limit`` is ``push_timeout``, in seconds; ``output``
    holds the push's last lines, as for any ``PushError``; ``exit_code`` is
    ``None``. A ``TimeoutError`` too, as the engine's time limits are.
    """

    def __init__(
        self,
        ref: str,
        reason: str,
        *,
        limit: float,
        stage: Literal["check", "export", "push"],
        output: tuple[str, ...] = (),
    ) -> None:
        super().__init__(ref, reason, exit_code=None, output=output)
        self.limit = limit
        self.stage = stage


class CleanupError(EphemeralRegistryError):
    """Raised at exit when containers or networks could not be removed within ``cleanup_timeout``.

    ``leftovers`` names what may remain; it carries this library's labels, so
    a later sweep finds it.
    """

    def __init__(self, leftovers: tuple[str, ...], reason: str) -> None:
        super().__init__(
            f"Could not remove {', '.join(leftovers)}: {reason}. They carry the label"
            " ephemeral-registry.session; remove them with `docker rm -f` and"
            " `docker network rm`."
        )
        self.leftovers = leftovers
        self.reason = reason
