"""Repository references by the OCI distribution rules."""

from __future__ import annotations

import pytest

from ephemeral_registry import InvalidArgumentError, InvalidReferenceError
from ephemeral_registry._reference import Reference, from_image_name, local_image, parse


@pytest.mark.parametrize(
    ("ref", "repository", "tag"),
    [
        ("app", "app", "latest"),
        ("app:v1", "app", "v1"),
        ("team/app:1.2.3", "team/app", "1.2.3"),
        ("a/b/c/d:_x", "a/b/c/d", "_x"),
        ("a__b-c.d---e:T-1.x_y", "a__b-c.d---e", "T-1.x_y"),
        ("x" * 255, "x" * 255, "latest"),
        ("app:" + "t" * 128, "app", "t" * 128),
    ],
)
def test_valid_references(ref: str, repository: str, tag: str) -> None:
    """Repositories and tags the spec allows; the tag defaults to latest."""
    assert parse(ref) == Reference(repository, tag)
    assert str(parse(ref)) == f"{repository}:{tag}"


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("", "repository"),
        ("App", "lowercase"),
        ("a//b", "repository"),
        ("/a", "repository"),
        ("a/", "repository"),
        ("-a", "repository"),
        ("a_-b", "repository"),
        ("a___b", "repository"),
        ("a:", "tag"),
        ("a:-x", "tag"),
        ("a:.x", "tag"),
        ("a:" + "t" * 129, "tag"),
        ("a:b c", "tag"),
        ("a@sha256:" + "0" * 64, "digest"),
        ("localhost:5000/app", "no registry host"),
        ("127.0.0.1:5000/app:v1", "no registry host"),
        ("x" * 256, "longer than 255"),
        ("x:1", "shorter than 2"),
    ],
)
def test_invalid_references(ref: str, problem: str) -> None:
    """Each is an InvalidReferenceError that says what is wrong."""
    with pytest.raises(InvalidReferenceError) as caught:
        parse(ref)
    assert problem in str(caught.value)
    assert caught.value.argument == "ref"


def test_a_reference_must_be_a_string() -> None:
    """Not a path, not bytes."""
    with pytest.raises(InvalidReferenceError):
        parse(b"app")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("app", "app:latest"),
        ("team/app:v1", "team/app:v1"),
        ("docker.io/library/alpine:3.20", "library/alpine:3.20"),
        ("localhost/app:1", "app:1"),
        ("127.0.0.1:5000/team/app", "team/app:latest"),
        ("team/app:v1@sha256:" + "a" * 64, "team/app:v1"),
    ],
)
def test_a_local_image_is_pushed_under_its_name_without_a_host(image: str, expected: str) -> None:
    """push_image()'s default ref."""
    assert str(from_image_name(image)) == expected


@pytest.mark.parametrize("image", ["sha256:" + "b" * 64, "b" * 12, "Team/App"])
def test_an_image_without_a_usable_name_asks_for_a_ref(image: str) -> None:
    """Image ids and names the registry would refuse."""
    with pytest.raises(InvalidReferenceError, match="pass ref="):
        from_image_name(image)


@pytest.mark.parametrize(
    ("image", "exported"),
    [
        ("my-app", "my-app:latest"),
        ("library/alpine", "library/alpine:latest"),
        ("localhost:5000/app", "localhost:5000/app:latest"),
        ("my-app:v1", "my-app:v1"),
        ("localhost:5000/app:v1", "localhost:5000/app:v1"),
        (f"app@sha256:{'a' * 64}", f"app@sha256:{'a' * 64}"),
        (f"sha256:{'b' * 64}", f"sha256:{'b' * 64}"),
        ("0123456789ab", "0123456789ab"),
    ],
)
def test_a_local_image_without_a_tag_means_latest(image: str, exported: str) -> None:
    """As in Docker: exporting `app` must not export every tag of app."""
    assert local_image(image) == exported


@pytest.mark.parametrize(
    "image", ["", "my app", None, "/tmp/app.tar", "./app", "~/app", "app:", "app@", "a//b", "App"]
)
def test_a_local_image_must_be_a_name(image: object) -> None:
    """InvalidArgumentError, before anything is asked of the engine."""
    with pytest.raises(InvalidArgumentError, match="image="):
        local_image(image)  # type: ignore[arg-type]
