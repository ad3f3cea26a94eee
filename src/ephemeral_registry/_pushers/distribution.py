"""The client side of the OCI distribution API, as far as a push needs it.

Every request goes to the registry's own origin: an upload ``Location`` that
points elsewhere is refused (``Api._location``), as the credentials go with
every request. An error answer is ``Refused``; a connection that breaks is
httpx's own ``HTTPError``; the pusher turns both into a ``PushError``.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import AsyncIterator, Callable

import anyio
import httpx

from .._tls import trusting
from .._types import Endpoints

logger = logging.getLogger("ephemeral_registry")

UPLOAD_TIMEOUT = httpx.Timeout(60.0)
"""Per read or write of a request to the registry, not the whole upload."""
ABORT_TIMEOUT = 5.0
"""How long cancelling an upload session may take."""


def client(endpoints: Endpoints, target: str | None = None) -> httpx.AsyncClient:
    """A client for the registry at ``target`` (``host:port``; by default its
    ``pull_endpoint``), with its credentials, over HTTPS trusting the registry's CA alone
    when it has one."""
    credentials = endpoints.credentials
    auth = (
        httpx.BasicAuth(credentials.username, credentials.password)
        if credentials is not None
        else None
    )
    verify: ssl.SSLContext | bool = False  # plain HTTP: no CA bundle to load
    if endpoints.ca_certificate is not None:
        verify = trusting(endpoints.ca_certificate)
    return httpx.AsyncClient(
        base_url=f"{endpoints.scheme}://{target or endpoints.pull_endpoint}",
        auth=auth,
        trust_env=False,
        verify=verify,
        timeout=UPLOAD_TIMEOUT,
    )


class Refused(Exception):
    """The registry answered a request with an error."""


class Api:
    """The requests of the OCI distribution API that a push makes, for one repository."""

    def __init__(self, client: httpx.AsyncClient, repository: str) -> None:
        self._client = client
        self.repository = repository
        self._blobs = f"/v2/{repository}/blobs"

    @staticmethod
    def _check(response: httpx.Response, *expected: int) -> httpx.Response:
        if response.status_code not in expected:
            request = response.request
            raise Refused(
                f"the registry answered {request.method} {request.url.path} with"
                f" {response.status_code}: {response.text.strip()[:500]}"
            )
        return response

    def _location(self, response: httpx.Response, default: str | None = None) -> str:
        """Where an upload goes on: the answer's ``Location``, which must stay within the
        registry's own origin, as the credentials go with every request to it."""
        location = response.headers.get("Location", default)
        request = response.request
        if not location:
            raise Refused(
                f"the registry answered {request.method} {request.url.path} without a Location"
            )
        base = self._client.base_url
        try:
            url = base.join(location)
        except httpx.InvalidURL as exc:
            raise Refused(f"the registry sent an upload Location that is no URL ({exc})") from None
        if (url.scheme, url.host, url.port) != (base.scheme, base.host, base.port):
            raise Refused(
                f"the registry sent the upload elsewhere ({url.scheme}://{url.netloc.decode()}),"
                f" outside its own origin ({base.scheme}://{base.netloc.decode()}); nothing is"
                " sent there"
            )
        return str(url)

    async def has(self, digest: str) -> bool:
        response = await self._client.head(f"{self._blobs}/{digest}")
        return self._check(response, 200, 404).status_code == 200

    async def mount(self, digest: str, source: str) -> bool:
        """Mount a blob of another repository; False where the registry would not."""
        response = self._check(
            await self._client.post(
                f"{self._blobs}/uploads/", params={"mount": digest, "from": source}
            ),
            201,
            202,
        )
        if response.status_code == 201:
            return True
        await self._abort(self._location(response))  # it opened an upload instead
        return False

    async def upload(self, chunks: AsyncIterator[bytes], digest: Callable[[], str]) -> None:
        """Upload a blob from ``chunks`` in one streamed request; ``digest()`` is asked after."""
        url = self._location(self._check(await self._client.post(f"{self._blobs}/uploads/"), 202))
        try:
            patched = await self._client.patch(
                url, content=chunks, headers={"Content-Type": "application/octet-stream"}
            )
            url = self._location(self._check(patched, 202, 204), url)
            self._check(await self._client.put(with_digest(url, digest())), 201)
        except BaseException:
            await self._abort(url)
            raise

    async def put_blob(self, data: bytes, digest: str) -> None:
        started = self._check(await self._client.post(f"{self._blobs}/uploads/"), 202)
        location = self._location(started)
        response = await self._client.put(
            with_digest(location, digest),
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._check(response, 201)

    async def put_manifest(self, tag: str, manifest: bytes, media_type: str) -> None:
        response = await self._client.put(
            f"/v2/{self.repository}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": media_type},
        )
        self._check(response, 201)

    async def _abort(self, url: str) -> None:
        """Cancel an upload session; best effort, shielded and bounded."""
        with anyio.move_on_after(ABORT_TIMEOUT, shield=True):
            try:
                await self._client.delete(url)
            except httpx.HTTPError as exc:
                logger.debug("could not cancel the upload %s: %s", url, exc)


def with_digest(location: str, digest: str) -> httpx.URL:
    """An upload's location, which carries the registry's own state, with ``digest=`` added."""
    return httpx.URL(location).copy_add_param("digest", digest)
