"""Certificates for an engine over TLS, as ``dockerd --tlsverify`` is set up: a CA, a
server certificate for 127.0.0.1 and a client's, made with openssl."""

from __future__ import annotations

import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class EngineTls:
    """A CA, a server certificate for 127.0.0.1 and a client's: what a TLS engine is set up with."""

    client: Path
    """ca.pem, cert.pem and key.pem: what DOCKER_CERT_PATH names."""
    server: ssl.SSLContext
    """Verifies the client's certificate against the CA, as ``dockerd --tlsverify``."""

    @classmethod
    def made_in(cls, made: Path) -> EngineTls:
        """New certificates, in the empty directory ``made``."""
        key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
        _openssl(made, "req", "-x509", *key, "-keyout", "ca-key.pem", "-out", "ca.pem",
                 "-days", "1", "-subj", "/CN=engine CA")  # fmt: skip
        _signed(made, "server", "serverAuth")
        _signed(made, "client", "clientAuth")
        client = made / "client"
        client.mkdir()
        (client / "ca.pem").write_bytes((made / "ca.pem").read_bytes())
        (client / "cert.pem").write_bytes((made / "client-cert.pem").read_bytes())
        (client / "key.pem").write_bytes((made / "client-key.pem").read_bytes())
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=made / "ca.pem")
        server.verify_mode = ssl.CERT_REQUIRED
        server.load_cert_chain(made / "server-cert.pem", made / "server-key.pem")
        return cls(client, server)


def _openssl(directory: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True)


def _signed(directory: Path, name: str, usage: str) -> None:
    """NAME-key.pem and NAME-cert.pem, signed by the CA, for ``usage``."""
    (directory / f"{name}.ext").write_text(
        f"subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"
    )
    key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    _openssl(directory, "req", *key, "-keyout", f"{name}-key.pem", "-out", f"{name}.csr",
             "-subj", f"/CN={name}")  # fmt: skip
    _openssl(directory, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem",
             "-CAkey", "ca-key.pem", "-CAcreateserial", "-days", "1",
             "-extfile", f"{name}.ext", "-out", f"{name}-cert.pem")  # fmt: skip
