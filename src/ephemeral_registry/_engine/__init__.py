"""The container engine, as the rest of the library sees it.

``base`` is what the library asks of an engine (``Engine``) and the typed
values it hands over; ``docker`` implements it over the Docker API (Docker
and Podman), with ``errors`` (aiodocker's and aiohttp's errors translated
into ours, one table): the only modules that call aiodocker (the life cycle
and the sweep name ``aiodocker.Docker`` only as the type of the public
``docker=`` argument). ``retry`` tries
an engine's passing refusals again (one helper); ``quirks`` is what differs
from one engine to another.
"""

from .base import Attached as Attached
from .base import Attachment as Attachment
from .base import ContainerSpec as ContainerSpec
from .base import Engine as Engine
from .base import ExportStream as ExportStream
from .base import Labelled as Labelled
from .base import WriteArchive as WriteArchive
from .docker import DockerEngine as DockerEngine
from .docker import find_engine_address as find_engine_address
from .docker import open_engine as open_engine
from .quirks import Identity as Identity
