"""This host's own addresses: which engine networks are this host's.

A local Docker engine puts its bridge networks on this host: each network's
gateway is an address of one of this host's interfaces, and the container
addresses behind it are reached directly. An engine in a VM (Docker Desktop,
colima, OrbStack) or on another machine has networks of its own: their
addresses may be routed anywhere from here, to the user's default gateway
and a stranger's server. So a container's own address is used only when its
network's gateway is an interface address here; that is decided from this
host's interface list, without sending anything.

An address merely routed to this host (``ip route add local ...``) is not an
interface address: only what an interface holds counts.

Linux only (``SIOCGIFCONF``); elsewhere the list is empty, and every
network counts as not this host's: the published port is then always used,
which is always correct.
"""

from __future__ import annotations

import array
import fcntl
import ipaddress
import socket
import struct
import sys

SIOCGIFCONF = 0x8912
"""Linux's ioctl that lists every IPv4 address held by an interface."""
_IFREQ_SIZE = 40
"""``struct ifreq`` on 64-bit Linux: a 16-byte name, then the address (and padding)."""
_MAX_INTERFACES = 4096


def interface_addresses() -> frozenset[ipaddress.IPv4Address]:
    """The IPv4 addresses this host's interfaces hold (every one, aliases included)."""
    if not sys.platform.startswith("linux") or struct.calcsize("P") != 8:
        return frozenset()
    buffer = array.array("B", bytes(_IFREQ_SIZE * _MAX_INTERFACES))
    pointer, _ = buffer.buffer_info()
    request = struct.pack("iL", len(buffer), pointer)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            answer = fcntl.ioctl(sock.fileno(), SIOCGIFCONF, request)
    except OSError:
        return frozenset()
    length, _ = struct.unpack("iL", answer)
    data = buffer.tobytes()[:length]
    addresses = set()
    for offset in range(0, len(data) - _IFREQ_SIZE + 1, _IFREQ_SIZE):
        # struct sockaddr_in after the name: family (2 bytes), port (2), address (4).
        family = struct.unpack_from("H", data, offset + 16)[0]
        if family == socket.AF_INET:
            addresses.add(ipaddress.IPv4Address(data[offset + 20 : offset + 24]))
    return frozenset(addresses)


def is_interface_address(address: str) -> bool:
    """Whether ``address`` is held by one of this host's interfaces (IPv4 only)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return False
    return isinstance(parsed, ipaddress.IPv4Address) and parsed in interface_addresses()
