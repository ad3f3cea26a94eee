"""The one table that turns aiodocker's and aiohttp's errors into ours."""

from __future__ import annotations

import asyncio

import aiodocker
import aiohttp
import anyio
import anyio.lowlevel
import pytest

from ephemeral_registry import DockerEngineError, DockerUnavailableError, EngineTimeoutError
from ephemeral_registry._engine.errors import NotFound, translated

pytestmark = pytest.mark.anyio

ADDRESS = "unix:///fake/engine.sock"


async def raised_through(exc: BaseException, *, absent_ok: bool = False) -> BaseException:
    """What comes out of a translated request that raises ``exc``."""
    request = translated(ADDRESS, "start the container abc", limit=5, absent_ok=absent_ok)
    with pytest.raises(Exception) as caught, request:  # noqa: PT011 (each test says which)
        await anyio.lowlevel.checkpoint()
        raise exc
    assert caught.value.__cause__ is exc
    return caught.value


async def test_a_refusal_is_the_engines_error_with_its_status_and_message() -> None:
    error = await raised_through(aiodocker.DockerError(409, "name already in use"))
    assert isinstance(error, DockerEngineError)
    assert (error.status, error.message) == (409, "name already in use")
    assert "start the container abc" in str(error)


async def test_a_404_is_not_found_only_where_the_caller_handles_it() -> None:
    gone = aiodocker.DockerError(404, "No such container")
    assert isinstance(await raised_through(gone, absent_ok=True), NotFound)
    error = await raised_through(aiodocker.DockerError(404, "No such container"))
    assert isinstance(error, DockerEngineError)
    assert error.status == 404


async def test_aiodockers_failed_connection_is_the_engine_unavailable() -> None:
    error = await raised_through(aiodocker.DockerError(900, "Cannot connect to Docker Engine"))
    assert isinstance(error, DockerUnavailableError)
    assert ADDRESS in str(error)


@pytest.mark.parametrize(
    "broken",
    [aiohttp.ServerDisconnectedError(), asyncio.IncompleteReadError(b"", 10)],
    ids=["disconnected", "incomplete"],
)
async def test_a_connection_cut_mid_answer_is_the_engine_unavailable(broken: BaseException) -> None:
    error = await raised_through(broken)
    assert isinstance(error, DockerUnavailableError)
    assert "broke off during a request to start the container abc" in str(error)


async def test_a_request_past_its_limit_names_the_option_that_set_it() -> None:
    request = translated(ADDRESS, "pull x", limit=0.01, limit_name="pull_timeout")
    with pytest.raises(EngineTimeoutError, match="pull_timeout"), request:
        await anyio.sleep(1)


async def test_other_errors_pass_as_themselves() -> None:
    with pytest.raises(KeyError), translated(ADDRESS, "inspect", limit=5):
        raise KeyError("Ports")
