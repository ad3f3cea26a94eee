"""The interface every pusher implements, and what a push is asked to do.

A pusher gets a ``Job`` (what to push, where to, how to report it) and
returns a ``PushResult`` or raises one of the library's errors. What is the
same for every pusher (the push slot, the time limit, the registry's exit
while a push runs, the closed registry) is the ``Registry``'s, written once
around ``push()``; what differs is here, one implementation per module:
``crane`` (``crane push`` in a one-shot container) and ``native`` (over HTTP
from this process).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from .._options import LayerCompression
from .._platform import Platform, Platforms
from .._reference import Reference
from .._running import Running
from .._source import Source
from .._types import PushResult
from .report import Report

Ready = Callable[[], Awaitable[Running]]
"""Waits for the registry to answer (a pusher may start its work before)."""


@dataclass(frozen=True)
class FromFile:
    """A caller's ``docker save`` tarball or OCI layout (``push()``), checked by name only."""

    source: Source


@dataclass(frozen=True)
class FromEngine:
    """An image the engine holds (``push_image()``), exported for the push."""

    image: str
    platform: Platform | None
    platforms: Platforms | None = None
    """Several platforms, pushed as an index (``platform`` is then ``None``)."""


@dataclass(frozen=True)
class Job:
    """One push: what, as which reference, how its layers are sent, and its report."""

    what: FromFile | FromEngine
    reference: Reference
    layer_compression: LayerCompression
    """For layers that are not compressed: one meaning whichever the pusher (see
    ``ephemeral_registry()``); a pusher that cannot do it refuses the job in ``check``."""
    report: Report


class BasePusher(Protocol):
    """Puts one image into the registry."""

    def check(self, job: Job) -> None:
        """Refuse a job this pusher cannot do, before anything is waited for or made;
        set ``job.report.phase`` to what ``push`` does first.

        Raises:
            InvalidArgumentError: an option this pusher cannot honour for it.
        """
        ...

    async def push(self, job: Job) -> PushResult:
        """Push ``job.what`` as ``job.reference``, telling ``job.report`` as it goes.

        Sets ``job.report.phase`` as it goes on from checking or exporting the
        source to pushing it, so that a time limit's error says which.

        Raises:
            InvalidSourceError: a caller's source that is not usable.
            ExportError, ImageNotFoundError: the engine's export is not usable,
                or holds no image for the platform.
            PushError: the registry refused the push, or could not be reached.
            Any error of the registry's bring-up, from ``Ready``.

        Cancellation: what the push started (a container, an upload) is
        stopped and removed, shielded and bounded, then the cancellation
        propagates.
        """
        ...
