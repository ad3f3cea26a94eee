"""Platforms as callers name them: one (platform=), or several (platforms=)."""

from __future__ import annotations

import pytest

from ephemeral_registry import InvalidArgumentError
from ephemeral_registry._platform import Platform, parse, parse_many


def test_a_platform_is_os_architecture_and_an_optional_variant() -> None:
    assert parse("linux/arm/v7") == Platform("linux", "arm", "v7")
    assert Platform("linux", "arm64").descriptor() == {"architecture": "arm64", "os": "linux"}
    assert Platform("linux", "arm", "v7").descriptor()["variant"] == "v7"


@pytest.mark.parametrize("value", ["linux", "linux/", "Linux/amd64", "a/b/c/d", "", None])
def test_a_malformed_platform_is_refused(value: object) -> None:
    with pytest.raises(InvalidArgumentError) as caught:
        parse(value)  # type: ignore[arg-type]
    assert caught.value.argument == "platform"


def test_several_platforms_are_all_or_a_list() -> None:
    assert parse_many("all") == "all"
    assert parse_many(["linux/amd64", "linux/arm64"]) == (
        Platform("linux", "amd64"),
        Platform("linux", "arm64"),
    )


@pytest.mark.parametrize(
    "value",
    ["linux/amd64", [], ["linux/amd64", "linux/amd64"], ["linux"], [7], None, {"linux/amd64"}],
)
def test_several_platforms_of_the_wrong_shape_are_refused(value: object) -> None:
    """A bare string other than "all" too: it is easily meant as a list of one."""
    with pytest.raises(InvalidArgumentError) as caught:
        parse_many(value)  # type: ignore[arg-type]
    assert caught.value.argument == "platforms"
