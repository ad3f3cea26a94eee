"""The container engine, as the rest of the library sees it.

``docker`` is the implementation for the Docker API (Docker and Podman),
the only module that imports aiodocker.
"""

from .docker import (
    Attached as Attached,
)
from .docker import (
    ContainerSpec as ContainerSpec,
)
from .docker import (
    Engine as Engine,
)
from .docker import (
    Identity as Identity,
)
from .docker import (
    Labelled as Labelled,
)
from .docker import (
    WriteArchive as WriteArchive,
)
from .docker import (
    find_engine_address as find_engine_address,
)
from .docker import (
    open_engine as open_engine,
)
