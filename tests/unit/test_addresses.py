"""The rules for addresses: where a process here dials, what Podman publishes on."""

from __future__ import annotations

import pytest

from ephemeral_registry import InvalidArgumentError
from ephemeral_registry._addresses import host_address, podman_host_ip, tunnel_host


@pytest.mark.parametrize(
    ("host_ip", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("0.0.0.0", "127.0.0.1"),
        ("::1", "[::1]"),
        ("::", "[::1]"),
        ("192.0.2.7", "192.0.2.7"),
    ],
)
def test_host_address_is_what_a_host_process_dials(host_ip: str, address: str) -> None:
    """Unspecified addresses are reached through loopback; IPv6 is bracketed."""
    assert host_address(host_ip) == address


@pytest.mark.parametrize(
    ("host_ip", "rootless", "published"),
    [
        ("127.0.0.1", False, "127.0.0.1"),
        ("0.0.0.0", False, "0.0.0.0"),
        ("::", False, "0.0.0.0"),
        ("::", True, "0.0.0.0"),
        ("::1", True, "::1"),
    ],
)
def test_podman_publishes_ipv6_as_it_can(host_ip: str, rootless: bool, published: str) -> None:
    """:: is every interface, over IPv4; rootless Podman relays IPv6 itself."""
    assert podman_host_ip(host_ip, rootless=rootless) == published


@pytest.mark.parametrize("host_ip", ["::1", "fd00::2"])
def test_podman_as_root_refuses_other_ipv6_addresses(host_ip: str) -> None:
    """Its NAT rules cannot carry IPv6 to the IPv4 network: said plainly, with what to pass."""
    with pytest.raises(InvalidArgumentError, match=r"IPv4 only.*127\.0\.0\.1"):
        podman_host_ip(host_ip, rootless=False)


@pytest.mark.parametrize(
    ("host_ip", "far_end"),
    [("127.0.0.1", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("::", "::1"), ("10.0.0.5", "10.0.0.5")],
)
def test_a_tunnel_connects_to_the_address_or_to_loopback_for_every_interface(
    host_ip: str, far_end: str
) -> None:
    """A port published on every interface is reached on the engine host's loopback."""
    assert tunnel_host(host_ip) == far_end
