"""Repository references inside the ephemeral registry: ``repo[:tag]``.

The rules are the OCI distribution spec's: a repository is path components
of lowercase letters and digits, joined by ``.``, ``_``, ``__`` or runs of
``-``, separated by ``/``; a tag is up to 128 characters of ``[A-Za-z0-9_.-]``
not starting with ``.`` or ``-``. crane adds one rule: a repository has at
least two characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ._errors import InvalidArgumentError, InvalidReferenceError

_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
_REPOSITORY = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_IMAGE_ID = re.compile(r"(?:sha256:)?[0-9a-f]{12,64}")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = rf"(?:{_LABEL}(?:\.{_LABEL})*|\[[0-9A-Fa-f:]+\])(?::[0-9]+)?"
_DIGEST = r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}"
_LOCAL_IMAGE = re.compile(
    rf"(?:{_DOMAIN}/)?{_REPOSITORY.pattern}(?::{_TAG.pattern})?(?:@{_DIGEST})?"
)
"""An image name as the docker CLI takes it: ``[host[:port]/]repo[:tag][@digest]``."""
_MIN_REPOSITORY = 2
_MAX_REPOSITORY = 255
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class Reference:
    """A repository and tag inside the registry."""

    repository: str
    tag: str

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


def parse(ref: str) -> Reference:
    """Parse ``repo[:tag]``; raise InvalidReferenceError naming what is wrong."""
    if not isinstance(ref, str):
        raise InvalidReferenceError(ref, "must be a string such as 'app/image:tag'")
    if "@" in ref:
        raise InvalidReferenceError(
            ref, "give a tag, not a digest: the registry reports the digest"
        )
    repository, colon, tag = ref.rpartition(":")
    if not colon or "/" in tag:  # no tag, or the colon was part of a host:port
        repository, tag = ref, DEFAULT_TAG
    if colon and "/" not in tag and not _TAG.fullmatch(tag):
        raise InvalidReferenceError(
            ref, f"the tag {tag!r} must be 1-128 of [A-Za-z0-9_.-], not starting with '.' or '-'"
        )
    if not _REPOSITORY.fullmatch(repository):
        raise InvalidReferenceError(
            ref,
            f"the repository {repository!r} must be lowercase path components of letters and"
            " digits, joined by '.', '_', '__' or '-', separated by '/' (and no registry host:"
            " the registry is this one)",
        )
    if len(repository) < _MIN_REPOSITORY:
        raise InvalidReferenceError(ref, "crane refuses repository names shorter than 2 characters")
    if len(repository) > _MAX_REPOSITORY:
        raise InvalidReferenceError(
            ref, f"the repository is longer than {_MAX_REPOSITORY} characters"
        )
    return Reference(repository, tag)


def local_image(image: str) -> str:
    """The one local image ``image`` names, as Docker reads it: ``app`` is ``app:latest``.

    A name with a tag or a digest, and an image id, stand as they are. The
    engine's export of a name without a tag would hold every tag of it.
    """
    if not isinstance(image, str) or not image or any(c.isspace() for c in image):
        raise InvalidArgumentError("image", image, "must be an image name, reference or id")
    if _IMAGE_ID.fullmatch(image):
        return image
    if not _LOCAL_IMAGE.fullmatch(image):
        raise InvalidArgumentError(
            "image", image, "is not an image name ([host[:port]/]repo[:tag][@digest]) or id"
        )
    if "@" in image or ":" in image.rpartition("/")[2]:
        return image
    return f"{image}:{DEFAULT_TAG}"


def from_image_name(image: str) -> Reference:
    """The reference a local image is pushed as by default: its name without a registry host.

    ``docker.io/library/alpine:3.20`` -> ``library/alpine:3.20``; ``app`` -> ``app:latest``.
    """
    if _IMAGE_ID.fullmatch(image):
        raise InvalidReferenceError(
            image, "an image id has no name to push it under; pass ref='repo:tag'"
        )
    name = image.split("@", 1)[0]
    first, slash, rest = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        name = rest
    try:
        return parse(name)
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(
            image, f"cannot be pushed under its own name ({exc.problem}); pass ref='repo:tag'"
        ) from None
