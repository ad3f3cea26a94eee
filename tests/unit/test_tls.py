"""The registry's certificate authority: certificates that real TLS clients accept, and
only for the names given. A local TLS server; no Docker."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import anyio.streams.tls
import httpx
import pytest

from ephemeral_registry._tls import Authority, server_hosts

pytestmark = pytest.mark.anyio

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


@asynccontextmanager
async def https_server(certificate: bytes, key: bytes, tmp_path: Path) -> AsyncIterator[int]:
    """A server on 127.0.0.1 that answers every request with 200, over TLS; yields its port."""
    (tmp_path / "cert.pem").write_bytes(certificate)
    (tmp_path / "key.pem").write_bytes(key)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def answer(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            try:
                await stream.receive()
                await stream.send(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                )
            except (anyio.BrokenResourceError, anyio.EndOfStream, ssl.SSLError):
                pass

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    tls = anyio.streams.tls.TLSListener(listener, context, standard_compatible=False)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with tls, anyio.create_task_group() as tg:
        tg.start_soon(tls.serve, answer)
        yield port
        tg.cancel_scope.cancel()


async def test_a_certificate_for_the_registry_is_trusted_with_its_ca_alone(
    tmp_path: Path,
) -> None:
    authority = Authority.generate("ephemeral-registry-test")
    certificate, key = authority.issue(server_hosts("127.0.0.1", "ephemeral-registry-test"))
    async with https_server(certificate, key, tmp_path) as port:
        for host in ("127.0.0.1", "localhost"):
            async with httpx.AsyncClient(verify=authority.ssl_context(), trust_env=False) as c:
                assert (await c.get(f"https://{host}:{port}/v2/")).status_code == 200
        # The system's CAs do not know it; another registry's CA does not either.
        for verify in (ssl.create_default_context(), Authority.generate("other").ssl_context()):
            async with httpx.AsyncClient(verify=verify, trust_env=False) as client:
                with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                    await client.get(f"https://127.0.0.1:{port}/v2/")


async def test_a_certificate_is_good_for_the_names_it_was_issued_for_only(tmp_path: Path) -> None:
    authority = Authority.generate("ephemeral-registry-test")
    certificate, key = authority.issue(["192.0.2.7", "registry-name"])
    async with (
        https_server(certificate, key, tmp_path) as port,
        httpx.AsyncClient(verify=authority.ssl_context(), trust_env=False) as client,
    ):
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(f"https://127.0.0.1:{port}/v2/")


def test_the_names_cover_this_host_and_the_network() -> None:
    hosts = server_hosts("10.0.0.5", "ephemeral-registry-abc")
    assert hosts[0] == "10.0.0.5"
    assert {"localhost", "127.0.0.1", "::1", "ephemeral-registry-abc"} <= set(hosts)


def test_the_key_is_never_shown() -> None:
    authority = Authority.generate("ephemeral-registry-test")
    assert b"PRIVATE KEY" in authority.key
    assert "PRIVATE" not in repr(authority)
