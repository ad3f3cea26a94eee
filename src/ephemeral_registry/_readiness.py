"""Knowing when a registry answers: an HTTP ``GET /v2/`` poll.

A TCP connect proves nothing here: docker-proxy accepts connections on a
published port before the process in the container listens, then resets
them. Only an HTTP answer from the registry itself counts: 200 (no auth) or
401 (auth required, with a ``Www-Authenticate`` challenge).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import anyio
import httpx

from ._tls import Authority

READY_STATUSES = frozenset({200, 401})

TOKEN_HEADER = "Ephemeralregistrytoken"
"""A header every answer of the registry carries, set to its session's secret token
(``token_env``): an address that answers without it is not this registry. One word:
the registry reads it from an environment variable's name, and a shell entrypoint
(the official registry 2 image has one) drops variables whose names hold a dash."""


def token_env(token: str) -> dict[str, str]:
    """The registry's environment that makes it send ``TOKEN_HEADER: token`` in every
    answer (its ``http.headers`` setting; 401s included)."""
    return {f"REGISTRY_HTTP_HEADERS_{TOKEN_HEADER}": f"[{token}]"}


def is_own_answer(response: httpx.Response, token: str) -> bool:
    """Whether ``response`` is a ready answer of the registry whose token is ``token``."""
    return (
        response.status_code in READY_STATUSES
        and bool(token)
        and secrets.compare_digest(response.headers.get(TOKEN_HEADER, ""), token)
    )


FIRST_INTERVAL = 0.01
"""Seconds between the first attempts: a registry starts listening within tens of ms."""
MAX_INTERVAL = 0.1
"""The interval grows by half after each failed attempt, up to this."""
ATTEMPT_TIMEOUT = 2.0
"""The most one attempt may take, so that a hung connection does not eat the deadline."""


@dataclass(frozen=True)
class PollResult:
    """How a readiness poll ended."""

    ready: bool
    attempts: int
    last_problem: str
    """What the last failed attempt saw; empty when ready at the first attempt."""


def http_client(authority: Authority | None = None) -> httpx.AsyncClient:
    """A client for a registry on the host: plain HTTP, or HTTPS trusting ``authority`` alone.

    ``trust_env=False``: proxy variables must not divert requests to 127.0.0.1.
    Without TLS, ``verify=False``: loading the CA bundle for nothing costs
    20-50 ms on the bring-up's critical path.
    """
    verify = False if authority is None else authority.ssl_context()
    return httpx.AsyncClient(trust_env=False, verify=verify)


class Clock:
    """The time the poll goes by: anyio's event loop clock."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep(self, seconds: float) -> None:
        await anyio.sleep(seconds)


async def poll_until_ready(
    client: httpx.AsyncClient,
    url: str,
    *,
    timeout: float,
    first_interval: float = FIRST_INTERVAL,
    max_interval: float = MAX_INTERVAL,
    clock: Clock | None = None,
    token: str | None = None,
) -> PollResult:
    """Send ``GET url`` until it answers 200 or 401, or until ``timeout`` seconds have passed.

    With ``token``, only an answer that carries it in ``TOKEN_HEADER`` counts:
    another server that holds the port answers without it.

    Connection errors, resets and other statuses count as "not yet". Returns
    a ``PollResult``; never raises for an unanswered poll.

    ``clock`` tells the time and waits (anyio's by default; tests pass one of
    their own).

    Cancellation: cancelling this cancels the request in flight and returns
    nothing; nothing is left behind.
    """
    clock = clock or Clock()
    deadline = clock.now() + timeout
    interval = first_interval
    attempts = 0
    problem = ""
    while True:
        attempts += 1
        remaining = deadline - clock.now()
        try:
            response = await client.get(url, timeout=max(0.001, min(ATTEMPT_TIMEOUT, remaining)))
        except httpx.TransportError as exc:
            problem = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            ready = (
                response.status_code in READY_STATUSES
                if token is None
                else is_own_answer(response, token)
            )
            if ready:
                return PollResult(ready=True, attempts=attempts, last_problem=problem)
            problem = f"answered HTTP {response.status_code}"
            if response.status_code in READY_STATUSES:
                problem += f" without this registry's {TOKEN_HEADER}: another server answers there"
        remaining = deadline - clock.now()
        if remaining <= 0:
            return PollResult(ready=False, attempts=attempts, last_problem=problem)
        await clock.sleep(min(interval, remaining))
        interval = min(interval * 1.5, max_interval)
