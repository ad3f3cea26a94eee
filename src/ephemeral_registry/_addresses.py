"""The rules for addresses: engine addresses (``DOCKER_HOST``, ``docker_host=``, a
context's endpoint) and the host addresses a registry's port is published on and
reached at.

Every check of an address is here, so that the same value gets the same verdict
wherever it comes from; ``_discovery`` finds the engine's address and
``_options`` the options, both by these rules.

- An engine address is ``unix:///path``, ``tcp://``/``http://``/``https://``
  ``host:port`` or ``ssh://[user@]host[:port][/socket]``, as the docker CLI
  spells it; anything else, a control character or a host that DNS cannot
  carry, is refused here, never later by the system (``check_address``).
- An engine reached by any host but ``localhost`` or a loopback address is on
  another host (``is_remote_host``).
- ``host_ip`` is an IP address written out, without a zone
  (``check_host_ip``); a process here reaches a port published on it at
  ``host_address``; Podman as root publishes on it as ``podman_host_ip`` says;
  a tunnel's far end connects to ``tunnel_host``.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Protocol
from urllib.parse import unquote, urlsplit

from ._errors import DockerUnavailableError, InvalidArgumentError

logger = logging.getLogger("ephemeral_registry")

SCHEMES = ("unix", "tcp", "http", "https", "ssh")
"""The engine addresses understood, as the docker CLI spells them."""
MAX_HOST_NAME = 253
"""The longest DNS name (RFC 1035)."""


class EngineLocation(Protocol):
    """What these rules need to know of where the engine is (``_discovery.EngineAddress``,
    or a cluster's ``ClusterAddress``, whose port-forwards are on this host)."""

    @property
    def url(self) -> str: ...
    @property
    def found_by(self) -> str: ...
    @property
    def host(self) -> str | None: ...
    @property
    def is_remote(self) -> bool: ...
    @property
    def is_ssh(self) -> bool: ...


def check_address(url: str, found_by: str) -> None:
    """Raise DockerUnavailableError unless ``url`` is an engine address this library reaches.

    Any value is checked without another exception escaping: a control
    character (a NUL, say), written or percent-encoded, and a host name
    that DNS cannot carry (a label over 63 bytes) are refused here, not
    found later by the system, ``idna`` or asyncssh as untyped errors.
    """
    if not isinstance(url, str):
        raise DockerUnavailableError(found_by, f"{url!r} is not a string", tried=(found_by,))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is the check (ValueError when out of range)
        decoded = unquote(url, errors="strict")
    except (ValueError, UnicodeError) as exc:
        raise DockerUnavailableError(
            found_by, f"{url!r} is not an engine address ({exc})", tried=(found_by,)
        ) from None
    if any(ord(character) < 0x20 or ord(character) == 0x7F for character in url + decoded):
        raise DockerUnavailableError(
            found_by,
            f"{url!r} is not an engine address: it holds a control character",
            tried=(found_by,),
        )
    if parts.scheme not in SCHEMES:
        raise DockerUnavailableError(
            found_by,
            f"{url!r} is not an engine address this library reaches: it takes "
            + ", ".join(f"{scheme}://" for scheme in SCHEMES),
            tried=(found_by,),
        )
    if parts.scheme == "unix" and not parts.path:
        raise DockerUnavailableError(found_by, f"{url!r} names no socket", tried=(found_by,))
    if parts.scheme != "unix" and not parts.hostname:
        raise DockerUnavailableError(found_by, f"{url!r} names no host", tried=(found_by,))
    if parts.scheme != "unix" and (problem := _host_problem(parts.hostname or "")):
        raise DockerUnavailableError(
            found_by, f"{url!r} is not an engine address: its host {problem}", tried=(found_by,)
        )


def check_docker_host(value: object) -> str:
    """Check a ``docker_host`` argument: an engine address, as ``check_address`` says.

    Raises:
        InvalidArgumentError: it is not one.
    """
    try:
        check_address(value, "docker_host")  # type: ignore[arg-type]  # any value is checked
    except DockerUnavailableError as exc:
        raise InvalidArgumentError("docker_host", value, exc.reason) from None
    return value  # type: ignore[return-value]  # a str: checked above


def _host_problem(host: str) -> str | None:
    """What makes ``host`` no name or address that a connection can be opened to, if anything."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    try:
        encoded = host.encode("idna")  # what the resolver is given, by asyncio and asyncssh
    except UnicodeError as exc:
        return f"is no DNS name ({exc.__cause__ or exc})"
    if len(encoded) > MAX_HOST_NAME:
        return f"is no DNS name (over {MAX_HOST_NAME} bytes)"
    return None


def is_remote_host(host: str | None) -> bool:
    """Whether an engine at ``host`` (``None``: a socket) is on another host, as far as
    its address says: any name but ``localhost``, any address but loopback."""
    if host is None or host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True  # a name: how another host is reached


def check_host_ip(value: object) -> str:
    """The one check of ``host_ip``: an IP address written out, without a zone.

    ``ipaddress`` also takes an integer, bytes, or an IPv6 address with a zone
    (``::1%lo``); the engine publishes a port on none of these (on a zoned
    address it publishes nothing, and the bring-up waits out the ready timeout).
    An unspecified address (every interface) is allowed, with a warning.

    Raises:
        InvalidArgumentError: anything else.
    """
    if not isinstance(value, str):
        raise InvalidArgumentError(
            "host_ip", value, "must be an IP address written as text, such as '127.0.0.1'"
        )
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidArgumentError(
            "host_ip", value, "must be an IP address such as 127.0.0.1 (not a host name)"
        ) from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        raise InvalidArgumentError(
            "host_ip",
            value,
            f"must be an address without a zone (%{address.scope_id}): an engine publishes a"
            f" port on an address alone; pass {value.partition('%')[0]}",
        )
    if address.is_unspecified:
        logger.warning(
            "host_ip=%s publishes the registry on every interface: anyone who can reach this"
            " machine can push to it and pull from it.",
            value,
        )
    return str(address)


def host_address(host_ip: str, engine: EngineLocation | None = None) -> str:
    """The address a process here uses to reach a port the engine published on ``host_ip``.

    On this host, loopback stands for every interface. An engine on another
    host (``engine.is_remote``) is reached at its own address; publishing on
    its loopback is refused, as nothing here could reach it (but a tunnel).

    Raises:
        InvalidArgumentError: a remote engine and a loopback ``host_ip``.
    """
    address = ipaddress.ip_address(host_ip)
    if engine is not None and engine.is_remote:
        if address.is_loopback:
            raise InvalidArgumentError(
                "host_ip",
                host_ip,
                f"the engine at {engine.url} (from {engine.found_by}) is on another host, where"
                " a port published on loopback cannot be reached from here; pass host_ip= the"
                " address on that host to publish on (0.0.0.0 for every interface)",
            )
        if address.is_unspecified:
            host = str(engine.host)
            return f"[{host}]" if ":" in host else host
    if address.is_unspecified:
        address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
    return f"[{address}]" if address.version == 6 else str(address)


def tunnel_host(host_ip: str) -> str:
    """Where a tunnel's far end connects to reach a port published on ``host_ip``: that
    address, or the engine host's loopback for every interface."""
    address = ipaddress.ip_address(host_ip)
    if address.is_unspecified:
        return "::1" if address.version == 6 else "127.0.0.1"
    return str(address)


def podman_host_ip(host_ip: str, *, rootless: bool) -> str:
    """``host_ip`` as Podman can publish on it: it differs from Docker for IPv6.

    The registry's network is IPv4 only. Docker's docker-proxy, and rootless
    Podman's rootlessport, relay a connection that arrives over IPv6; Podman
    as root forwards a published port with netavark's NAT rules alone, which
    cannot turn IPv6 into IPv4. There ``::`` is every interface, reached over
    IPv4, and any other IPv6 address is refused.

    Raises:
        InvalidArgumentError: an IPv6 address other than ``::``, on Podman as root.
    """
    address = ipaddress.ip_address(host_ip)
    if address.is_unspecified:
        return "0.0.0.0"
    if address.version == 4 or rootless:
        return host_ip
    raise InvalidArgumentError(
        "host_ip",
        host_ip,
        "Podman as root forwards a published port over IPv4 only (no process relays IPv6 to"
        " the registry's IPv4 network): pass an IPv4 address, such as 127.0.0.1, or :: for"
        " every interface",
    )
