"""What differs from one engine to another, in one place.

Each quirk is a property of the engine's ``Identity``, named after what the
library may do there, with the engine versions and the reports that decided
it. The engines this library knows:

- Docker 20.10 (API 1.41): containers join a network one at a time; a
  network is removed once its containers are gone (``joins_concurrently``,
  ``removes_concurrently``); it lists endpoints already gone (``ENDPOINTS_LEFT``).
- Docker 29 (API 1.52) and later: both overlap safely.
- Podman (4.3 and later): every interface is an empty ``HostIp``
  (``every_interface``); under load, it refuses some requests in passing
  (the refusals below, each tried again where its request is made).
- rootless engines (Podman's usual way, rootless Docker): ``Engine.rootless()``;
  a crane container runs as its root there (``_pushers.crane``), and Podman
  as root publishes over IPv4 only (``_options.podman_host_ip``).
- engines in a VM (Desktop, colima, Podman machine): they may not see this
  host's files (``Engine.shares_files()``, see ``_host``) nor their published
  ports from here (``tunnel=True``, see ``_relay``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

Product = Literal["docker", "podman", "kubernetes"]

CONCURRENT_REMOVAL_API = (1, 52)  # Docker 29.0


@dataclass(frozen=True)
class Identity:
    """Which engine answers, from the headers of its ``/_ping``."""

    product: Product
    api_version: tuple[int, int]
    """The newest Docker API version it speaks, e.g. ``(1, 41)``."""
    server: str
    """Its ``Server`` header, e.g. ``Docker/20.10.24 (linux)`` or ``Libpod/4.3.1 (linux)``."""

    @property
    def removes_concurrently(self) -> bool:
        """Whether a network may be removed while its containers are being removed.

        Only Docker 29 (API 1.52) and later. Docker 20.10 (API 1.41)
        deadlocked its network controller under load when a container's
        removal overlapped the disconnection of its endpoint and the removal
        of its network: every later request hung. Podman 4.3 left the
        container's port forwarding (netavark's DNAT rules) and the network's
        firewall chains behind, and a stale DNAT rule then hijacks that host
        port for whatever publishes on it next. Docker 29 held under load
        (tests/integration/engines/test_load.py) with nothing left behind.
        """
        return self.product == "docker" and self.api_version >= CONCURRENT_REMOVAL_API

    @property
    def joins_concurrently(self) -> bool:
        """Whether containers may join one network at the same moment.

        Not Docker before 29: libnetwork keeps a count of each network's
        endpoints whose concurrent updates can lose one (its endpoint_cnt
        object, moby/moby#42119). The network then answers every removal
        with "has active endpoints", with none listed, until the engine
        restarts. Seen on Docker 20.10 under the load test; newer engines no
        longer keep the count, and Podman never did.
        """
        return self.product != "docker" or self.api_version >= CONCURRENT_REMOVAL_API

    def every_interface(self, host_ip: str) -> str:
        """The ``HostIp`` of a port binding on ``host_ip``.

        Podman differs for every interface: given ``0.0.0.0`` (or ``::``), its
        netavark writes the address into the forwarding rule as a destination
        (``-d 0.0.0.0/32``), which no packet has, and the port answers nowhere
        (containers/podman#17407). An empty ``HostIp`` means every interface there,
        as ``podman run -p PORT`` sends it.
        """
        if self.product == "podman" and ipaddress.ip_address(host_ip).is_unspecified:
            return ""
        return host_ip

    @classmethod
    def from_headers(cls, headers: Mapping[str, str]) -> Identity:
        major, _, minor = headers.get("Api-Version", "1.24").partition(".")
        return cls(
            product="podman" if "Libpod-Api-Version" in headers else "docker",
            api_version=(int(major), int(minor or 0)),
            server=headers.get("Server", "?"),
        )


# Passing refusals: what an engine answers for a moment before it takes the same
# request again. Each is matched in the refusal's message and tried again (``retry``)
# by the request it names, in ``docker``.

NETWORK_INTERFACE_GONE = "no such network interface"
"""``create_network`` on Podman: it looks for a free subnet among the addresses of
the interfaces it sees, and one that goes away while it looks (another network's,
removed meanwhile) fails the request before anything is made."""

ENDPOINTS_LEFT = "active endpoints"
"""``remove_network`` on Docker 20.10: it sometimes still lists the endpoint of a
container it has just removed; the endpoints it names are forced off first."""

UNPACKER_PIPE_BROKE = "broken pipe"
"""``copy_archive_in`` on Podman: it unpacks through a helper process whose pipe
sometimes breaks under load; unpacking again is harmless."""

NOT_STOPPED_YET = "could not be stopped"
"""``remove_container`` on Podman under load: the container's processes were still
dying when it gave up waiting for them."""

REMOVAL_UNDER_WAY = "already in progress"
"""``remove_container`` (status 409) when another request is removing it (a retry
after the engine came back, say): that removal is waited for, not tried again."""

PORT_TAKEN = "address already in use"
"""``start`` on Podman under load: it picks the free host port itself, and two
containers sometimes get the same one. The bring-up makes that container again."""

# Podman 4 answers a container's logs with 200 and only then looks the container up;
# when that fails (it does under load), its error document is the body, before any
# frame. ``docker`` reads it as a passing refusal too (its ``_LateRefusal``).
