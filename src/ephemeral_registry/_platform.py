"""Platforms (``os/architecture[/variant]``), as images and engines name them.

A containerd image store may hold an image as an index of several platforms;
a push takes one of them (the one the caller names, or the engine's own), or
several (``platforms=``: every one it holds, or those named) as an index.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from ._errors import InvalidArgumentError
from ._oci.documents import kind_of
from ._oci.errors import FormatError

_PART = re.compile(r"[a-z0-9_.-]+")
MAX_PART = 128
"""The longest os, architecture or variant read from an image (``linux``, ``amd64``, ``v8``)."""


@dataclass(frozen=True)
class Platform:
    """An image's (or an engine's) operating system and CPU architecture."""

    os: str
    architecture: str
    variant: str = ""
    """Empty when unspecified: then any variant matches."""

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` is this platform; a variant counts only when this one names it."""
        return (
            self.os == other.os
            and self.architecture == other.architecture
            and (not self.variant or self.variant == other.variant)
        )

    def descriptor(self) -> dict[str, str]:
        """As an OCI descriptor's ``platform`` names it."""
        fields = {"architecture": self.architecture, "os": self.os}
        return fields | ({"variant": self.variant} if self.variant else {})

    @classmethod
    def of(cls, fields: Mapping[str, object]) -> Platform:
        """The platform named by an OCI descriptor's ``platform`` or an image config: each
        part a string of at most ``MAX_PART`` characters, or absent (or null), else a
        ``FormatError``."""
        parts = []
        for name in ("os", "architecture", "variant"):
            value = fields.get(name)
            if value is None:
                value = ""
            if not isinstance(value, str):
                raise FormatError(f"its {name} is not a string but {kind_of(value)}")
            if len(value) > MAX_PART:
                raise FormatError(f"its {name} has {len(value)} characters (at most {MAX_PART})")
            parts.append(value)
        return cls(*parts)


def parse(platform: str, *, option: str = "platform") -> Platform:
    """``os/architecture[/variant]``, such as ``linux/arm64`` or ``linux/arm/v7``."""
    parts = platform.split("/") if isinstance(platform, str) else []
    if not 2 <= len(parts) <= 3 or not all(_PART.fullmatch(part) for part in parts):
        raise InvalidArgumentError(
            option, platform, "must be os/architecture[/variant], such as linux/arm64"
        )
    return Platform(*parts)


Platforms = tuple[Platform, ...] | Literal["all"]
"""The platforms of a multi-platform push: those named, or ``"all"`` the engine holds."""


def parse_many(platforms: str | Sequence[str]) -> Platforms:
    """``"all"``, or a list of ``os/architecture[/variant]`` (at least one, each once)."""
    if platforms == "all":
        return "all"
    if isinstance(platforms, str) or not isinstance(platforms, Sequence) or not platforms:
        raise InvalidArgumentError(
            "platforms",
            platforms,
            'must be "all" or a non-empty list of os/architecture[/variant]',
        )
    parsed = tuple(parse(platform, option="platforms") for platform in platforms)
    if len(set(parsed)) != len(parsed):
        raise InvalidArgumentError("platforms", platforms, "names a platform twice")
    return parsed
