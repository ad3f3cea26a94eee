"""The exception tree: every error this library raises on purpose.

```
EphemeralRegistryError
├── InvalidArgumentError        bad input, found before anything is created (also a ValueError)
├── DockerUnavailableError      no Docker engine answers
├── DockerEngineError           the engine answered a request with an error
├── ImageNotFoundError          an image is missing and may not be pulled
├── ImagePullError              pulling an image failed
├── RegistryNotReadyError       the registry did not answer ``GET /v2/`` in time, or exited
├── RegistryClosedError         the registry was used after its block had exited
└── CleanupError                resources could not be removed in time
```

Errors from aiodocker and httpx are translated into these once, where they are
caught (``_docker.py`` and ``_readiness.py``), with the original kept as
``__cause__``.
"""

from __future__ import annotations

from ._types import ContainerState


class EphemeralRegistryError(Exception):
    """The root of every error this library raises on purpose."""


class InvalidArgumentError(EphemeralRegistryError, ValueError):
    """Raised when an argument is invalid, before any resource is created."""

    def __init__(self, argument: str, value: object, problem: str) -> None:
        super().__init__(f"{argument}={value!r}: {problem}")
        self.argument = argument
        self.value = value
        self.problem = problem


class DockerUnavailableError(EphemeralRegistryError):
    """Raised when no Docker engine answers at the address the client uses.

    This covers a refused connection, a socket that does not exist, and an
    engine that accepted the connection but did not answer within the time
    allowed for one request.
    """

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(
            f"No Docker engine answered at {address}: {reason}. Start one (for example"
            " `sudo systemctl start docker`, or `dockerd &`), or point DOCKER_HOST at a"
            " running engine."
        )
        self.address = address
        self.reason = reason


class DockerEngineError(EphemeralRegistryError):
    """Raised when the engine answered a request with an error status."""

    def __init__(self, operation: str, status: int, message: str) -> None:
        super().__init__(f"Docker engine refused to {operation}: [{status}] {message}")
        self.operation = operation
        self.status = status
        self.message = message


class ImageNotFoundError(EphemeralRegistryError):
    """Raised when an image is not held by the engine and the pull policy forbids pulling it."""

    def __init__(self, image: str, pull: str) -> None:
        super().__init__(
            f"The image {image} is not held by the Docker engine, and pull={pull!r} forbids"
            " pulling it. Build or load it first (`docker pull`, `docker load`), or allow"
            ' pulling with pull="missing".'
        )
        self.image = image
        self.pull = pull


class ImagePullError(EphemeralRegistryError):
    """Raised when the engine could not pull an image."""

    def __init__(self, image: str, reason: str) -> None:
        super().__init__(f"Pulling {image} failed: {reason}")
        self.image = image
        self.reason = reason


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


class RegistryClosedError(EphemeralRegistryError, RuntimeError):
    """Raised when a ``Registry`` is used after its ``async with`` block has exited."""

    def __init__(self) -> None:
        super().__init__(
            "This registry has been removed: its `async with ephemeral_registry()` block has"
            " exited. Use it only inside the block."
        )


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
