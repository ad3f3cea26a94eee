"""The GET /v2/ poll, against httpx.MockTransport: no server, no Docker."""

from __future__ import annotations

import gc
import itertools
import warnings
from collections.abc import Callable, Iterator

import anyio
import anyio.abc
import anyio.lowlevel
import httpx
import pytest

from ephemeral_registry._readiness import (
    TOKEN_HEADER,
    Clock,
    http_client,
    is_own_answer,
    poll_until_ready,
    token_env,
)

pytestmark = pytest.mark.anyio

URL = "http://127.0.0.1:5000/v2/"
Answer = Callable[[httpx.Request], httpx.Response]


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("connection refused", request=request)


def reset(request: httpx.Request) -> httpx.Response:
    # What docker-proxy does before the registry listens.
    raise httpx.ReadError("connection reset by peer", request=request)


def half_answer(request: httpx.Request) -> httpx.Response:
    raise httpx.RemoteProtocolError("server disconnected without sending a response")


def status(code: int) -> Answer:
    return lambda request: httpx.Response(code, json={})


class FakeClock(Clock):
    """Time that passes only when the poll sleeps: no wall clock in these tests."""

    def __init__(self) -> None:
        self.time = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.time += seconds
        await anyio.lowlevel.checkpoint()


def client_answering(*answers: Answer) -> tuple[httpx.AsyncClient, list[httpx.Request]]:
    """A client whose successive requests get ``answers``; the last one repeats."""
    seen: list[httpx.Request] = []
    queue: Iterator[Answer] = iter(answers)
    last = answers[-1]

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return next(queue, last)(request)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler)), seen


@pytest.mark.parametrize("code", [200, 401])
async def test_200_and_401_mean_ready(code: int) -> None:
    """An open registry answers 200; one with auth answers 401: both are up."""
    client, seen = client_answering(status(code))
    async with client:
        result = await poll_until_ready(client, URL, timeout=1)
    assert result.ready
    assert result.attempts == 1
    assert [(r.method, str(r.url)) for r in seen] == [("GET", URL)]


async def test_resets_and_refusals_are_retried_until_an_answer() -> None:
    """Connection errors mean "not yet": the poll goes on until the registry answers."""
    client, seen = client_answering(refuse, reset, half_answer, status(503), status(200))
    async with client:
        result = await poll_until_ready(client, URL, timeout=5, first_interval=0.001)
    assert result.ready
    assert result.attempts == 5
    assert result.last_problem == "answered HTTP 503"
    assert len(seen) == 5


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        (reset, "ReadError: connection reset by peer"),
        (refuse, "ConnectError: connection refused"),
        (status(404), "answered HTTP 404"),
    ],
)
async def test_the_deadline_ends_the_poll_with_the_last_problem(
    answer: Answer, problem: str
) -> None:
    """After ``timeout`` the poll gives up, saying what the last attempt saw."""
    client, seen = client_answering(answer)
    clock = FakeClock()
    async with client:
        result = await poll_until_ready(client, URL, timeout=0.3, first_interval=0.01, clock=clock)
    assert not result.ready
    assert result.last_problem == problem
    assert result.attempts == len(seen) > 3
    assert clock.time == pytest.approx(0.3)  # the last wait is cut to the deadline


async def test_intervals_grow_up_to_the_maximum() -> None:
    """First attempts come fast (a registry listens within ms); later ones back off."""
    client, _ = client_answering(refuse)
    clock = FakeClock()
    async with client:
        await poll_until_ready(
            client, URL, timeout=0.5, first_interval=0.01, max_interval=0.05, clock=clock
        )
    waits = clock.sleeps[:-1]  # the last one is cut short by the deadline
    assert waits[:3] == pytest.approx([0.01, 0.015, 0.0225])
    assert all(later >= earlier for earlier, later in itertools.pairwise(waits))
    assert max(waits) == pytest.approx(0.05)


async def test_cancelling_the_poll_stops_it() -> None:
    """Cancellation propagates out of the poll."""
    client, seen = client_answering(refuse)
    async with client:
        with anyio.move_on_after(0.1) as scope:
            await poll_until_ready(client, URL, timeout=10)
    assert scope.cancelled_caught
    count = len(seen)
    for _ in range(20):  # the poll's task, if it still ran, would get to send again
        await anyio.lowlevel.checkpoint()
    assert len(seen) == count


async def test_a_poll_cancelled_as_its_connection_opens_leaves_no_socket_open() -> None:
    """The poll is cancelled when the registry's container exits, at any moment, also just as
    a connection to docker-proxy (which accepts at once) has opened. anyio before 4.16 then
    dropped the connected socket unclosed (its connect_tcp: about 1 in 8 such cancellations
    here), and the garbage collector's ResourceWarning failed a later test; the floor is 4.16.
    No MockTransport here: the leak was in the real connect."""
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        polls: list[anyio.CancelScope] = []

        async def accept(stream: anyio.abc.SocketStream) -> None:
            polls[-1].cancel()  # the container exited: the poll is cancelled at this moment
            await stream.aclose()

        async with anyio.create_task_group() as tg, http_client() as client:
            tg.start_soon(listener.serve, accept)
            for _ in range(200):
                with anyio.CancelScope() as scope:
                    polls.append(scope)
                    await poll_until_ready(client, f"http://127.0.0.1:{port}/v2/", timeout=5)
            tg.cancel_scope.cancel()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    unclosed = [str(warning.message) for warning in caught if "unclosed" in str(warning.message)]
    assert unclosed == []


def with_token(code: int, token: str) -> Answer:
    return lambda request: httpx.Response(code, json={}, headers={TOKEN_HEADER: token})


@pytest.mark.parametrize("code", [200, 401])
async def test_with_a_token_only_the_registrys_own_answer_counts(code: int) -> None:
    """Another server that holds the port answers without the registry's token: not ready."""
    client, _ = client_answering(status(code), with_token(code, "other"), with_token(code, "t0k"))
    clock = FakeClock()
    async with client:
        result = await poll_until_ready(client, URL, timeout=5, clock=clock, token="t0k")
    assert result.ready
    assert result.attempts == 3
    assert "without this registry's Ephemeralregistrytoken" in result.last_problem


async def test_an_answer_without_the_token_is_never_ready() -> None:
    """A stranger's 200 keeps the poll going until its deadline, and says why."""
    client, _ = client_answering(status(200))
    async with client:
        result = await poll_until_ready(client, URL, timeout=0.3, clock=FakeClock(), token="t0k")
    assert not result.ready
    assert "another server answers there" in result.last_problem


def test_the_registry_is_told_its_token_in_its_http_headers_setting() -> None:
    """The environment sets http.headers (REGISTRY_HTTP_HEADERS_<name>) to a YAML list."""
    assert token_env("abc") == {"REGISTRY_HTTP_HEADERS_Ephemeralregistrytoken": "[abc]"}


def test_an_empty_token_proves_nothing() -> None:
    """An answer is never "own" against an empty token, even one that echoes it."""
    request = httpx.Request("GET", URL)
    answer = httpx.Response(200, headers={TOKEN_HEADER: ""}, request=request)
    assert not is_own_answer(answer, "")
    assert is_own_answer(httpx.Response(401, headers={TOKEN_HEADER: "x"}), "x")
    assert not is_own_answer(httpx.Response(404, headers={TOKEN_HEADER: "x"}), "x")
