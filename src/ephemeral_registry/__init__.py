"""A throwaway OCI registry for async Python.

``ephemeral_registry()`` brings up a private Docker network with a registry
on it, published on a random loopback port, and removes both when its block
exits, whatever the reason.

Importing the package is quick: the engine and HTTP clients it drives
(aiodocker, aiohttp, httpx) load when ``ephemeral_registry``, ``Registry``,
``sweep``, ``find_leftovers`` or ``Leftover`` is first looked up, so a test
suite that merely has the pytest plugin installed, or ``ephemeral-registry
--help``, does not pay for them.
"""

import typing
from importlib import metadata as _metadata

from ._errors import AsyncioRequiredError as AsyncioRequiredError
from ._errors import CleanupError as CleanupError
from ._errors import DockerEngineError as DockerEngineError
from ._errors import DockerUnavailableError as DockerUnavailableError
from ._errors import EngineError as EngineError
from ._errors import EngineTimeoutError as EngineTimeoutError
from ._errors import EphemeralRegistryError as EphemeralRegistryError
from ._errors import ExportError as ExportError
from ._errors import ForbiddenError as ForbiddenError
from ._errors import ImageNotFoundError as ImageNotFoundError
from ._errors import ImagePullError as ImagePullError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import InvalidReferenceError as InvalidReferenceError
from ._errors import InvalidSourceError as InvalidSourceError
from ._errors import PushError as PushError
from ._errors import PushTimeoutError as PushTimeoutError
from ._errors import RegistryClosedError as RegistryClosedError
from ._errors import RegistryNotReadyError as RegistryNotReadyError
from ._errors import RegistryUnreachableError as RegistryUnreachableError
from ._options import DEFAULT_CRANE_IMAGE as DEFAULT_CRANE_IMAGE
from ._options import DEFAULT_REGISTRY_IMAGE as DEFAULT_REGISTRY_IMAGE
from ._options import DEFAULT_RELAY_IMAGE as DEFAULT_RELAY_IMAGE
from ._options import REGISTRY_2_IMAGE as REGISTRY_2_IMAGE
from ._options import Backend as Backend
from ._options import LayerCompression as LayerCompression
from ._options import PullPolicy as PullPolicy
from ._options import Pusher as Pusher
from ._options import Timeouts as Timeouts
from ._types import ContainerState as ContainerState
from ._types import Credentials as Credentials
from ._types import Endpoints as Endpoints
from ._types import LogLine as LogLine
from ._types import OnLog as OnLog
from ._types import OnProgress as OnProgress
from ._types import PushResult as PushResult

if typing.TYPE_CHECKING:
    from ._lifecycle import ephemeral_registry as ephemeral_registry
    from ._registry import Registry as Registry
    from ._sweep import Leftover as Leftover
    from ._sweep import find_leftovers as find_leftovers
    from ._sweep import sweep as sweep

try:
    __version__ = _metadata.version("ephemeral-registry")
    """The installed distribution's version, as ``pip show ephemeral-registry`` gives it."""
except _metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"

_LOADED_ON_USE = {
    "Registry": "_registry",
    "ephemeral_registry": "_lifecycle",
    "Leftover": "_sweep",
    "find_leftovers": "_sweep",
    "sweep": "_sweep",
}


def __getattr__(name: str) -> object:
    """Load the names that need the engine and HTTP clients on first use (PEP 562)."""
    if name not in _LOADED_ON_USE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{_LOADED_ON_USE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "DEFAULT_CRANE_IMAGE",
    "DEFAULT_REGISTRY_IMAGE",
    "DEFAULT_RELAY_IMAGE",
    "REGISTRY_2_IMAGE",
    "AsyncioRequiredError",
    "Backend",
    "CleanupError",
    "ContainerState",
    "Credentials",
    "DockerEngineError",
    "DockerUnavailableError",
    "Endpoints",
    "EngineError",
    "EngineTimeoutError",
    "EphemeralRegistryError",
    "ExportError",
    "ForbiddenError",
    "ImageNotFoundError",
    "ImagePullError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "InvalidSourceError",
    "LayerCompression",
    "Leftover",
    "LogLine",
    "OnLog",
    "OnProgress",
    "PullPolicy",
    "PushError",
    "PushResult",
    "PushTimeoutError",
    "Pusher",
    "Registry",
    "RegistryClosedError",
    "RegistryNotReadyError",
    "RegistryUnreachableError",
    "Timeouts",
    "ephemeral_registry",
    "find_leftovers",
    "sweep",
]
