"""This host's interface addresses: which engine networks count as this host's."""

from __future__ import annotations

import ipaddress
import subprocess

import pytest

from ephemeral_registry._interfaces import interface_addresses, is_interface_address


def test_loopback_is_an_interface_address() -> None:
    """lo holds 127.0.0.1 on every Linux host."""
    assert ipaddress.IPv4Address("127.0.0.1") in interface_addresses()
    assert is_interface_address("127.0.0.1")


def test_every_address_ip_lists_is_found() -> None:
    """The list is what `ip -4 addr` shows, aliases included."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show"], capture_output=True, text=True, check=True
    ).stdout
    listed = {ipaddress.IPv4Address(line.split()[3].split("/")[0]) for line in shown.splitlines()}
    assert listed == set(interface_addresses())


@pytest.mark.parametrize("address", ["127.0.0.2", "203.0.113.7", "::1", "not an address", ""])
def test_other_addresses_are_not(address: str) -> None:
    """An address of the loopback range that no interface holds, a stranger's, IPv6, junk."""
    assert not is_interface_address(address)
