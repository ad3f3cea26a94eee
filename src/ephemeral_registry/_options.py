"""The options of ``ephemeral_registry()``: defaults, the environment, and checks.

Every option is checked here, before anything is created, so that bad input
fails with an ``InvalidArgumentError`` and leaves nothing behind.
"""

from __future__ import annotations

import ipaddress
import logging
import math
import os
from dataclasses import dataclass
from typing import Literal, cast, get_args

from ._auth import require_bcrypt
from ._discovery import EngineAddress
from ._errors import InvalidArgumentError

logger = logging.getLogger("ephemeral_registry")

PullPolicy = Literal["missing", "never", "always"]
Pusher = Literal["crane", "native"]
LayerCompression = Literal["gzip", "none"]

DEFAULT_REGISTRY_IMAGE = (
    "registry@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373"
)
"""registry 2.8.3, pinned by digest."""
DEFAULT_CRANE_IMAGE = (
    "gcr.io/go-containerregistry/crane@sha256:"
    "0ae17ecb34315aa7cbff28f6eddee3b7adae0b2f90101260d990804db1eb0084"
)
"""crane, pinned by digest."""

REGISTRY_IMAGE_ENV = "EPHEMERAL_REGISTRY_REGISTRY_IMAGE"
CRANE_IMAGE_ENV = "EPHEMERAL_REGISTRY_CRANE_IMAGE"


@dataclass(frozen=True)
class Options:
    """Checked options of one registry."""

    registry_image: str
    crane_image: str
    pull: PullPolicy
    host_ip: str
    ready_timeout: float
    cleanup_timeout: float
    pull_timeout: float
    request_timeout: float
    push_timeout: float
    max_concurrent_pushes: int
    auth: bool
    pusher: Pusher = "crane"
    layer_compression: LayerCompression | None = None
    """``None``: each pusher's own default."""


def _image(argument: str, given: str | None, env: str, default: str) -> str:
    image = given if given is not None else (os.environ.get(env) or default)
    if not image or image != image.strip() or any(c.isspace() for c in image):
        source = argument if given is not None else env
        raise InvalidArgumentError(
            source, image, "an image reference may not be empty or hold spaces"
        )
    return image


def _seconds(argument: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(argument, value, "must be a number of seconds")
    if not (value > 0 and math.isfinite(value)):
        raise InvalidArgumentError(argument, value, "must be a positive, finite number of seconds")
    return float(value)


def _count(argument: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(argument, value, "must be a whole number, at least 1")
    return value


def check_pusher(value: str) -> Pusher:
    """Check a ``pusher`` argument."""
    if value not in get_args(Pusher):
        raise InvalidArgumentError("pusher", value, 'must be "crane" or "native"')
    return cast(Pusher, value)


def check_layer_compression(value: str) -> LayerCompression:
    """Check a ``layer_compression`` argument."""
    if value not in get_args(LayerCompression):
        raise InvalidArgumentError("layer_compression", value, 'must be "gzip" or "none"')
    return cast(LayerCompression, value)


def _host_ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except (ValueError, TypeError):
        raise InvalidArgumentError(
            "host_ip", value, "must be an IP address such as 127.0.0.1 (not a host name)"
        ) from None
    if address.is_unspecified:
        logger.warning(
            "host_ip=%s publishes the registry on every interface: anyone who can reach this"
            " machine can push to it and pull from it.",
            value,
        )
    return str(address)


def resolve(
    *,
    registry_image: str | None,
    crane_image: str | None,
    pull: str,
    host_ip: str,
    ready_timeout: float,
    cleanup_timeout: float,
    pull_timeout: float,
    request_timeout: float,
    push_timeout: float,
    max_concurrent_pushes: int,
    auth: bool,
    pusher: str = "crane",
    layer_compression: str | None = None,
) -> Options:
    """Check every option; raise ``InvalidArgumentError`` for the first bad one."""
    if not isinstance(auth, bool):
        raise InvalidArgumentError("auth", auth, "must be True or False")
    if auth:
        require_bcrypt()
    if pull not in get_args(PullPolicy):
        raise InvalidArgumentError("pull", pull, 'must be "missing", "never" or "always"')
    return Options(
        registry_image=_image(
            "registry_image", registry_image, REGISTRY_IMAGE_ENV, DEFAULT_REGISTRY_IMAGE
        ),
        crane_image=_image("crane_image", crane_image, CRANE_IMAGE_ENV, DEFAULT_CRANE_IMAGE),
        pull=cast(PullPolicy, pull),  # checked above
        host_ip=_host_ip(host_ip),
        ready_timeout=_seconds("ready_timeout", ready_timeout),
        cleanup_timeout=_seconds("cleanup_timeout", cleanup_timeout),
        pull_timeout=_seconds("pull_timeout", pull_timeout),
        request_timeout=_seconds("request_timeout", request_timeout),
        push_timeout=_seconds("push_timeout", push_timeout),
        max_concurrent_pushes=_count("max_concurrent_pushes", max_concurrent_pushes),
        auth=auth,
        pusher=check_pusher(pusher),
        layer_compression=(
            None if layer_compression is None else check_layer_compression(layer_compression)
        ),
    )


def host_address(host_ip: str, engine: EngineAddress | None = None) -> str:
    """The address a process here uses to reach a port the engine published on ``host_ip``.

    On this host, loopback stands for every interface. An engine on another
    host (``engine.is_remote``) is reached at its own address; publishing on
    its loopback is refused, as nothing here could reach it.

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
