"""Platforms as callers name them: one (platform=), or several (platforms=)."""

from __future__ import annotations

import pytest

from ephemeral_registry import InvalidArgumentError
from ephemeral_registry._oci.errors import FormatError
from ephemeral_registry._platform import MAX_PART, Platform, parse, parse_many


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


def test_a_platform_is_read_from_an_image_config_or_a_descriptor() -> None:
    """Absent and null parts are empty."""
    assert Platform.of({"os": "linux", "architecture": "arm", "variant": "v7"}) == parse(
        "linux/arm/v7"
    )
    assert Platform.of({"os": "linux", "architecture": "amd64", "variant": None}) == Platform(
        "linux", "amd64"
    )
    assert Platform.of({}) == Platform("", "")


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"os": 7}, "its os is not a string but the number 7"),
        ({"os": "linux", "architecture": ["amd64"]}, "its architecture is not a string but an"),
        ({"os": "linux", "variant": {"v": 8}}, "its variant is not a string but an object"),
        ({"os": [1.5] * 1_500_000}, "its os is not a string but an array"),
        ({"os": "l" * (MAX_PART + 1)}, f"its os has {MAX_PART + 1} characters"),
    ],
)
def test_a_platform_of_the_wrong_types_is_a_format_error(
    fields: dict[str, object], problem: str
) -> None:
    """Never str() of whatever the config holds (1.5 million floats took 441 ms)."""
    with pytest.raises(FormatError, match=problem):
        Platform.of(fields)
