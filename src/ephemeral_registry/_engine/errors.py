"""aiodocker's and aiohttp's errors, translated into ours: the one place.

==========================================  =======================================
raised below us                             raised to the library
==========================================  =======================================
the request's time limit passes             ``EngineTimeoutError`` (which limit)
``aiohttp.ClientError``,                    ``DockerUnavailableError``: the
``asyncio.IncompleteReadError``             connection broke off mid-request
``DockerError`` with status 900             ``DockerUnavailableError`` (aiodocker's
                                            pseudo status for a failed connection)
``DockerError`` 404, for a caller that      ``NotFound``, which never escapes
handles an absent resource (``absent_ok``)  this package
any other ``DockerError``                   ``DockerEngineError`` (status, message)
==========================================  =======================================

The original is kept as ``__cause__``. Two streams that the library reads
itself translate a broken connection on their own terms: a process's
attached stdio (``DockerUnavailableError``) and an image's export
(``ExportError``); both catch ``BROKEN_STREAM``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

import aiodocker
import aiohttp
import anyio

from .._errors import DockerEngineError, DockerUnavailableError, EngineTimeoutError

CANNOT_CONNECT = 900
"""The pseudo HTTP status aiodocker reports a failed connection with."""
NOT_FOUND = 404

BROKEN_CONNECTION = (aiohttp.ClientError, asyncio.IncompleteReadError)
"""What aiohttp raises when the connection is cut mid-answer: the engine stopped
(or restarted) while answering."""
BROKEN_STREAM = (aiohttp.ClientError, OSError, RuntimeError)
"""What a hijacked stream raises when it breaks off (RuntimeError: aiodocker's
write to a stream it has closed)."""


class NotFound(Exception):
    """The engine answered 404 to a caller that handles it (``absent_ok``). Never escapes."""


def refusal(
    exc: aiodocker.DockerError, address: str, operation: str, *, absent_ok: bool = False
) -> Exception:
    """Our error for the engine's refusal ``exc`` of ``operation``."""
    if exc.status == CANNOT_CONNECT:
        return DockerUnavailableError(address, exc.message)
    if exc.status == NOT_FOUND and absent_ok:
        return NotFound(exc.message)
    return DockerEngineError(operation, exc.status, exc.message)


@contextmanager
def translated(
    address: str,
    operation: str,
    *,
    limit: float,
    limit_name: str = "request_timeout",
    absent_ok: bool = False,
) -> Iterator[None]:
    """Bound a request to the engine at ``address`` by ``limit`` seconds (``limit_name``
    is the option that set it) and turn the errors below us into ours (the table above)."""
    try:
        with anyio.fail_after(limit):
            yield
    except TimeoutError as exc:
        raise EngineTimeoutError(address, operation, limit, limit_name) from exc
    except BROKEN_CONNECTION as exc:
        reason = f"the connection broke off during a request to {operation} ({exc!r})"
        raise DockerUnavailableError(address, reason) from exc
    except aiodocker.DockerError as exc:
        raise refusal(exc, address, operation, absent_ok=absent_ok) from exc
