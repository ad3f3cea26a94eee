"""The OCI distribution client, against httpx.MockTransport: no registry, no Docker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from ephemeral_registry._pushers.distribution import Api, Refused

pytestmark = pytest.mark.anyio

DIGEST = "sha256:" + "a" * 64


def client(location: str, seen: list[httpx.Request]) -> httpx.AsyncClient:
    """A registry whose upload sessions say they continue at ``location``."""

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": location})
        if request.method == "PATCH":
            return httpx.Response(202, headers={"Location": location})
        if request.method == "PUT":
            return httpx.Response(201)
        return httpx.Response(204)

    return httpx.AsyncClient(
        base_url="http://127.0.0.1:5000",
        transport=httpx.MockTransport(handler),
        auth=httpx.BasicAuth("user", "secret"),
    )


async def chunks() -> AsyncIterator[bytes]:
    yield b"data"


@pytest.mark.parametrize(
    "location",
    [
        "/v2/app/blobs/uploads/1?_state=x",
        "http://127.0.0.1:5000/v2/app/blobs/uploads/1",
    ],
)
async def test_an_upload_continues_at_the_registrys_own_location(location: str) -> None:
    seen: list[httpx.Request] = []
    async with client(location, seen) as http:
        await Api(http, "app").upload(chunks(), lambda: DIGEST)
    assert [request.method for request in seen] == ["POST", "PATCH", "PUT"]
    assert {request.url.host for request in seen} == {"127.0.0.1"}


@pytest.mark.parametrize(
    "location",
    [
        "http://elsewhere.example/v2/app/blobs/uploads/1",
        "https://127.0.0.1:5000/v2/app/blobs/uploads/1",
        "http://127.0.0.1:5001/v2/app/blobs/uploads/1",
        "//elsewhere.example/upload",
    ],
)
async def test_an_upload_location_outside_the_registrys_origin_gets_nothing(location: str) -> None:
    """The credentials go with every request: none goes elsewhere, and the push fails."""
    seen: list[httpx.Request] = []
    async with client(location, seen) as http:
        with pytest.raises(Refused, match="outside its own origin"):
            await Api(http, "app").upload(chunks(), lambda: DIGEST)
    assert [request.method for request in seen] == ["POST"]


async def test_an_upload_without_a_location_is_refused() -> None:
    seen: list[httpx.Request] = []
    async with client("", seen) as http:
        with pytest.raises(Refused, match="without a Location"):
            await Api(http, "app").put_blob(b"x", DIGEST)
