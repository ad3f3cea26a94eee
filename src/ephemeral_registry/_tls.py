"""Optional TLS: a certificate authority made per registry, handed to its clients and callers.

With ``tls=True`` a registry gets its own CA (an ECDSA P-256 key, valid for a
day) and a server certificate from it for every name it is reached by: the
pull endpoint's host, ``localhost``, ``127.0.0.1`` and ``::1`` from this
host, and the container's name (the push endpoint) from the network. The
registry serves HTTPS with it; crane and the native pusher trust only that
CA; the caller gets it in ``Endpoints`` (PEM bytes and a file), so that any
client that verifies certificates by default (containerd, Podman, skopeo,
oras, httpx) pulls with no configuration but the CA, as with
go-containerregistry's ``registry.TLS()``.

The key and certificates are copied into the containers before they start,
as the htpasswd file is (see ``_auth``): nothing but the CA's certificate is
written on the host.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

DIRECTORY = "/ephemeral-registry/tls"
CERTIFICATE = f"{DIRECTORY}/registry.crt"
KEY = f"{DIRECTORY}/registry.key"
CA = f"{DIRECTORY}/ca.crt"
"""Where crane finds the CA (``SSL_CERT_FILE``: Go reads its roots from there)."""
VALIDITY = timedelta(days=1)
"""Long enough for any block; a certificate found later is useless."""
CA_FILE_NAME = "ca.crt"


@dataclass(frozen=True)
class Authority:
    """A registry's own certificate authority: its certificate and key, in PEM."""

    certificate: bytes
    key: bytes = field(repr=False)

    @classmethod
    def generate(cls, name: str) -> Authority:
        """A new CA named after the registry (a few milliseconds)."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{name} CA")])
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))  # clocks of other hosts
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    def issue(self, hosts: list[str]) -> tuple[bytes, bytes]:
        """A server certificate for ``hosts`` (names or addresses) and its key, in PEM."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_certificate = x509.load_pem_x509_certificate(self.certificate)
        ca_key = serialization.load_pem_private_key(self.key, password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = []
        for host in dict.fromkeys(hosts):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host.strip("[]"))))
            except ValueError:
                names.append(x509.DNSName(host))
        now = datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(ca_certificate.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
            )
            .sign(ca_key, hashes.SHA256())
        )
        return (
            certificate.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this CA alone."""
        return trusting(self.certificate)


def trusting(ca_certificate: bytes) -> ssl.SSLContext:
    """A client context that trusts the CA of ``ca_certificate`` (PEM) alone."""
    return ssl.create_default_context(cadata=ca_certificate.decode())


def server_hosts(pull_host: str, *names: str) -> list[str]:
    """Every name a registry is reached by: from this host first, then from its network
    (``names``: its container's, or a cluster's names of its Service)."""
    return list(dict.fromkeys([pull_host, "localhost", "127.0.0.1", "::1", *names]))


def registry_env() -> dict[str, str]:
    """What makes the registry (2 or 3) serve HTTPS with the files of ``registry_files``."""
    return {"REGISTRY_HTTP_TLS_CERTIFICATE": CERTIFICATE, "REGISTRY_HTTP_TLS_KEY": KEY}


def registry_files(certificate: bytes, key: bytes) -> dict[str, bytes]:
    """The server certificate and key, for the registry container."""
    return {CERTIFICATE: certificate, KEY: key}


CRANE_ENV = {"SSL_CERT_FILE": CA}
"""Go's TLS takes its roots from this file alone when it is set."""
