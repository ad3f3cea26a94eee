"""Finding the Docker engine, as the docker CLI does.

In this order, the first that applies wins:

1. the ``docker=`` argument (an ``aiodocker.Docker`` client), or the
   ``docker_host=`` argument (an address, as the docker CLI's ``-H``), with
   TLS as for ``DOCKER_HOST``;
2. ``DOCKER_HOST`` (``unix://``, ``tcp://`` or ``ssh://``), with TLS when
   ``DOCKER_TLS_VERIFY`` is set (certificates from ``DOCKER_CERT_PATH``, by
   default ``~/.docker``);
3. the context named by ``DOCKER_CONTEXT``, or else the ``currentContext`` of
   ``$DOCKER_CONFIG/config.json`` (``~/.docker`` by default): its endpoint
   from ``contexts/meta/<sha256 of the name>/meta.json``, its TLS files from
   ``contexts/tls/<sha256 of the name>/docker/``; the context ``default``
   means the steps below;
4. the first of these sockets that exists: the default
   ``/var/run/docker.sock``, rootless Docker's ``$XDG_RUNTIME_DIR/docker.sock``,
   Podman's ``$XDG_RUNTIME_DIR/podman/podman.sock`` and ``/run/podman/podman.sock``.

An engine reached over TCP or SSH by any name but ``localhost`` or a
loopback address is on another host: what it publishes on its loopback
cannot be reached from here (but through a tunnel, over SSH), and its
registry is pulled from at that host's address. ``ssh://`` engines are
reached as ``_ssh`` says. What an engine address may be is ``_addresses``'.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from . import _scratch
from ._addresses import check_address, is_remote_host
from ._errors import DockerUnavailableError
from ._files import FileProblem, read_regular

if TYPE_CHECKING:
    import ssl

DEFAULT_SOCKET = "/var/run/docker.sock"
PODMAN_SOCKET = "/run/podman/podman.sock"
DEFAULT_CONTEXT = "default"
DOCKER_HOST_ARGUMENT = "the docker_host= argument"
MAX_CONFIG = 1 << 20
"""The largest docker config or context file read."""
MAX_TLS_FILE = 1 << 20
"""The largest TLS file (CA, certificate, key) read."""


@dataclass(frozen=True)
class TlsFiles:
    """Where the client's TLS material is, and whether to verify the engine's certificate."""

    directory: Path
    ca: str = "ca.pem"
    cert: str = "cert.pem"
    key: str = "key.pem"
    verify: bool = True

    def context(self) -> ssl.SSLContext:
        """The client's TLS context (blocking, bounded: on a worker thread).

        Each file is read as ``_files`` reads user files: a regular file of
        at most ``MAX_TLS_FILE`` bytes; a missing CA means the system's, a
        missing certificate or key means no client certificate.

        Raises:
            FileProblem: a file that is there but not a readable regular file,
                or too big.
            ssl.SSLError, ValueError: a file that holds no certificate or key.
        """
        import ssl  # here: only a TLS engine needs it, and it is slow to import

        ca = _optional(self.directory / self.ca)
        if self.verify:
            context = ssl.create_default_context()
            if ca is not None:  # the CA alone, as the docker CLI trusts it alone
                context = ssl.create_default_context(cadata=ca.decode("ascii", "replace"))
        else:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        cert = _optional(self.directory / self.cert)
        key = _optional(self.directory / self.key)
        if cert is not None and key is not None:
            # ssl loads a chain from a path only: the checked bytes go to a private
            # file, removed at once, rather than letting ssl open the user's path.
            with _scratch.made("tls", session=None) as directory:
                chain = directory / "chain.pem"
                fd = os.open(chain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(cert + b"\n" + key)
                context.load_cert_chain(chain)
        return context


def _optional(path: Path) -> bytes | None:
    """The content of a TLS file, or ``None`` where there is none."""
    try:
        return read_regular(path, limit=MAX_TLS_FILE)
    except FileProblem as exc:
        if exc.missing:
            return None
        raise


@dataclass(frozen=True)
class EngineAddress:
    """Where the engine is, and how it was found."""

    url: str
    """``unix:///path``, ``tcp://host:port`` (``https://`` with TLS), or
    ``ssh://[user@]host[:port][/socket]``."""
    found_by: str
    """``DOCKER_HOST``, ``context NAME``, ``the default socket``, ..."""
    tls: TlsFiles | None = None

    @property
    def host(self) -> str | None:
        """The engine's host name or address, for a TCP engine; ``None`` for a socket."""
        parts = urlsplit(self.url)
        return None if parts.scheme in ("unix", "npipe") else parts.hostname

    @property
    def is_ssh(self) -> bool:
        return self.url.startswith("ssh://")

    @property
    def is_remote(self) -> bool:
        """Whether the engine is on another host, as far as its address says."""
        return is_remote_host(self.host)

    @property
    def client_url(self) -> str:
        """The URL for aiodocker: ``tcp://`` spelt as the HTTP scheme it means."""
        scheme = "https" if self.tls is not None else "http"
        for prefix in ("tcp://", "http://", "https://"):
            if self.url.startswith(prefix):
                return f"{scheme}://{self.url.removeprefix(prefix)}"
        return self.url


def discover(
    environ: Mapping[str, str] | None = None,
    *,
    home: Path | None = None,
    docker_host: str | None = None,
) -> EngineAddress:
    """The engine the docker CLI would talk to (with ``docker_host``, as ``docker -H``);
    see the module docstring for the order.

    Raises:
        DockerUnavailableError: a named context does not exist, or no engine
            address applies and no socket exists; it lists what was tried.
            ``docker_host`` is no engine address (``_addresses.check_docker_host``
            says so as an InvalidArgumentError, before this).
    """
    env = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    if docker_host is not None:
        check_address(docker_host, DOCKER_HOST_ARGUMENT)
        return EngineAddress(docker_host, DOCKER_HOST_ARGUMENT, _env_tls(env, home, docker_host))
    tried: list[str] = []
    if host := env.get("DOCKER_HOST"):
        check_address(host, "DOCKER_HOST")
        return EngineAddress(host, "DOCKER_HOST", _env_tls(env, home, host))
    tried.append("DOCKER_HOST (not set)")
    config_dir = Path(env.get("DOCKER_CONFIG") or home / ".docker")
    context, source = _context_name(env, config_dir)
    if context != DEFAULT_CONTEXT:
        return _context(config_dir, context, source)
    tried.append(f"the docker context ({source})")
    runtime = env.get("XDG_RUNTIME_DIR")
    sockets = [
        (DEFAULT_SOCKET, "the default socket"),
        *(
            [
                (f"{runtime}/docker.sock", "rootless Docker's socket"),
                (f"{runtime}/podman/podman.sock", "rootless Podman's socket"),
            ]
            if runtime
            else []
        ),
        (PODMAN_SOCKET, "Podman's socket"),
    ]
    for path, name in sockets:
        if Path(path).is_socket():
            return EngineAddress(f"unix://{path}", name)
        tried.append(f"{path} (no socket)")
    raise DockerUnavailableError(
        "no engine address", "none of these applies: " + "; ".join(tried), tried=tuple(tried)
    )


def _read_json(path: Path) -> object:
    """A docker config or context file as JSON (FileNotFoundError where there is none).

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: it is no regular file of at most ``MAX_CONFIG`` bytes (see
            ``_files``), or not JSON.
    """
    try:
        content = read_regular(path, limit=MAX_CONFIG)
    except FileProblem as exc:
        if exc.missing:
            raise FileNotFoundError(str(path)) from None
        raise ValueError(exc.problem) from None
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("it nests too deep") from None


def _env_tls(env: Mapping[str, str], home: Path, host: str) -> TlsFiles | None:
    if host.startswith(("unix://", "ssh://")):
        return None
    verify = bool(env.get("DOCKER_TLS_VERIFY"))
    cert_path = env.get("DOCKER_CERT_PATH")
    if not verify and not cert_path:
        return None
    return TlsFiles(Path(cert_path or home / ".docker"), verify=verify)


def _context_name(env: Mapping[str, str], config_dir: Path) -> tuple[str, str]:
    if name := env.get("DOCKER_CONTEXT"):
        return name, "DOCKER_CONTEXT"
    config = config_dir / "config.json"
    try:
        document = _read_json(config)
    except FileNotFoundError:
        return DEFAULT_CONTEXT, f"no {config}"
    except (OSError, ValueError) as exc:
        raise DockerUnavailableError(str(config), f"cannot read the docker config: {exc}") from None
    if not isinstance(document, dict):
        raise DockerUnavailableError(str(config), "the docker config is not a JSON object")
    current = document.get("currentContext")
    if current is not None and not isinstance(current, str):
        raise DockerUnavailableError(
            str(config), f"the docker config's currentContext is not a string: {current!r:.80}"
        )
    if not current:
        return DEFAULT_CONTEXT, f"no currentContext in {config}"
    return str(current), f"currentContext in {config}"


def _context(config_dir: Path, name: str, source: str) -> EngineAddress:
    try:
        key = hashlib.sha256(name.encode()).hexdigest()
    except UnicodeEncodeError:  # a lone surrogate, from the environment or JSON
        raise DockerUnavailableError(
            f"context {name!r}", f"the context name (from {source}) is not UTF-8"
        ) from None
    meta = config_dir / "contexts" / "meta" / key / "meta.json"
    try:
        document = _read_json(meta)
        endpoint = document["Endpoints"]["docker"]  # type: ignore[index]
        host = endpoint["Host"]
        skip_verify = endpoint.get("SkipTLSVerify", False)
    except FileNotFoundError:
        raise DockerUnavailableError(
            f"context {name}",
            f"the docker context {name!r} (from {source}) does not exist: no {meta}",
            tried=(f"context {name} ({source})",),
        ) from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise DockerUnavailableError(f"context {name}", f"cannot read {meta}: {exc!r}") from None
    if not isinstance(host, str):
        raise DockerUnavailableError(f"context {name}", f"{meta}: its Host is not a string")
    if not isinstance(skip_verify, bool):  # a string "false" must not turn verification off
        problem = f"{meta}: its SkipTLSVerify is not true or false: {skip_verify!r:.40}"
        raise DockerUnavailableError(f"context {name}", problem)
    check_address(host, f"context {name}")
    tls_dir = config_dir / "contexts" / "tls" / key / "docker"
    tls = None
    if not host.startswith(("unix://", "ssh://")) and (tls_dir.is_dir() or skip_verify):
        tls = TlsFiles(tls_dir, verify=not skip_verify)
    return EngineAddress(host, f"context {name}", tls)
