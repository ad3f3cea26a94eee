"""A throwaway OCI registry for async Python.

``ephemeral_registry()`` brings up a private Docker network with a registry
on it, published on a random loopback port, and removes both when its block
exits, whatever the reason.
"""

from ._errors import CleanupError as CleanupError
from ._errors import DockerEngineError as DockerEngineError
from ._errors import DockerUnavailableError as DockerUnavailableError
from ._errors import EngineTimeoutError as EngineTimeoutError
from ._errors import EphemeralRegistryError as EphemeralRegistryError
from ._errors import ExportError as ExportError
from ._errors import ImageNotFoundError as ImageNotFoundError
from ._errors import ImagePullError as ImagePullError
from ._errors import InvalidArgumentError as InvalidArgumentError
from ._errors import InvalidReferenceError as InvalidReferenceError
from ._errors import InvalidSourceError as InvalidSourceError
from ._errors import PushError as PushError
from ._errors import RegistryClosedError as RegistryClosedError
from ._errors import RegistryNotReadyError as RegistryNotReadyError
from ._options import DEFAULT_CRANE_IMAGE as DEFAULT_CRANE_IMAGE
from ._options import DEFAULT_REGISTRY_IMAGE as DEFAULT_REGISTRY_IMAGE
from ._options import PullPolicy as PullPolicy
from ._registry import Registry as Registry
from ._registry import ephemeral_registry as ephemeral_registry
from ._sweep import Leftover as Leftover
from ._sweep import find_leftovers as find_leftovers
from ._sweep import sweep as sweep
from ._types import ContainerState as ContainerState
from ._types import Credentials as Credentials
from ._types import Endpoints as Endpoints
from ._types import LogLine as LogLine
from ._types import PushResult as PushResult

__all__ = [
    "DEFAULT_CRANE_IMAGE",
    "DEFAULT_REGISTRY_IMAGE",
    "CleanupError",
    "ContainerState",
    "Credentials",
    "DockerEngineError",
    "DockerUnavailableError",
    "Endpoints",
    "EngineTimeoutError",
    "EphemeralRegistryError",
    "ExportError",
    "ImageNotFoundError",
    "ImagePullError",
    "InvalidArgumentError",
    "InvalidReferenceError",
    "InvalidSourceError",
    "Leftover",
    "LogLine",
    "PullPolicy",
    "PushError",
    "PushResult",
    "Registry",
    "RegistryClosedError",
    "RegistryNotReadyError",
    "ephemeral_registry",
    "find_leftovers",
    "sweep",
]
