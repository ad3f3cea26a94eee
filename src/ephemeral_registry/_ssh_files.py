"""What asyncssh is given to read: checked copies and values, never the user's paths.

Left to itself, asyncssh opens ``~/.ssh/config`` (and what it includes),
``known_hosts`` and the keys by path, on a thread of the event loop's
executor: a FIFO there blocks that thread for good (the process never
exits), ``/dev/zero`` is read until memory runs out, and a config that
includes itself recurses until ``RecursionError``. Here each of those files
is read as ``_files`` reads user files (a regular file, bounded, opened
without blocking); the config and every file it includes are copied into a
private directory, their ``Include`` lines pointed at the copies; known
hosts and keys are handed over as parsed values. asyncssh then reads
nothing of the user's but those copies, with one exception: where no key
file holds a usable private key (the agent holds them all), asyncssh is
given no keys, and then looks at the default key files itself, the files
just checked here (asyncssh's ``client_keys=None`` would turn the agent off
too). With ``IdentitiesOnly`` and no identity at all, the agent offers all
of its keys, where ``ssh`` would offer none.

Not read: X.509 certificates (``~/.ssh/ca-bundle.crt``, ``~/.ssh/crt``),
which the ``ssh`` command does not read either.
"""

from __future__ import annotations

import getpass
import inspect
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _scratch
from ._files import FileProblem, read_regular

if TYPE_CHECKING:
    import asyncssh

MAX_CONFIG = 1 << 20
"""The largest SSH config file read (each of the included ones too)."""
MAX_CONFIG_FILES = 256
"""The most config files read, the includes of includes counted."""
MAX_INCLUDE_DEPTH = 16
"""How deep includes may nest, as OpenSSH allows (``READCONF_MAX_DEPTH``)."""
MAX_KNOWN_HOSTS = 16 << 20
"""The largest known hosts file read."""
MAX_KEY = 1 << 20
"""The largest key or certificate file read."""
DEFAULT_KEYS = ("id_ed25519_sk", "id_ecdsa_sk", "id_ed448", "id_ed25519", "id_ecdsa", "id_rsa")
"""The keys ``ssh`` tries when the config names none, in its order (DSA is gone from it)."""
INCLUDE = re.compile(r"\s*include(?:\s*=\s*|\s+)(.*)", re.IGNORECASE)


class SshFileError(Exception):
    """A file of the user's SSH setup that cannot be used; the message names it and says why."""


@dataclass(frozen=True)
class ClientFiles:
    """What asyncssh is given instead of the user's paths; ``directory`` is ours to remove."""

    directory: Path
    config: list[str]
    """The checked copy of ``~/.ssh/config``, or none."""
    known_hosts: asyncssh.SSHKnownHosts | None
    """``None`` where the config says ``UserKnownHostsFile none``, as asyncssh reads it."""
    client_keys: list[asyncssh.SSHKeyPair]
    agent_identities: list[bytes] | None

    def options(self) -> dict[str, Any]:
        """asyncssh.connect's options that keep it off the user's paths."""
        return {
            "config": self.config,
            "known_hosts": self.known_hosts,
            "client_keys": self.client_keys,
            "agent_identities": self.agent_identities,
            "x509_trusted_certs": None,
            "x509_trusted_cert_paths": None,
        }

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def prepare(
    host: str, port: int | None, user: str | None, *, home: Path | None = None
) -> ClientFiles:
    """Read the user's SSH setup for a connection to ``host`` (blocking, bounded: a thread).

    The caller removes ``directory`` once asyncssh has connected (it reads the
    copied config while it connects).

    Raises:
        SshFileError: a file that is not a regular file, is too big, cannot be
            read or parsed, or a config whose includes nest too deep.
    """
    from asyncssh.config import SSHClientConfig

    ssh_dir = (Path.home() if home is None else home) / ".ssh"
    directory = _scratch.make("sshconfig", session=None)
    try:
        copies = _Copies(ssh_dir, directory)
        config_paths = copies.copy(ssh_dir / "config", depth=0)
        # asyncssh after 2.14 (the floor) takes two more flags first: canonical, final.
        newer = "canonical" in inspect.signature(SSHClientConfig).parameters
        flags = (False, False) if newer else ()
        try:
            config = SSHClientConfig.load(
                None, config_paths, False, *flags,
                getpass.getuser(), user or (), host, port or (),
            )  # fmt: skip
        except (ValueError, OSError, KeyError, RecursionError) as exc:
            raise SshFileError(copies.in_user_terms(str(exc))) from None
        return ClientFiles(
            directory,
            [str(path) for path in config_paths],
            _known_hosts(ssh_dir, config),
            (keys := _keys(ssh_dir, config))[0],
            keys[1] if config.get("IdentitiesOnly") else None,
        )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)
        raise


class _Copies:
    """The config and its includes, each read once, checked, and copied."""

    def __init__(self, ssh_dir: Path, directory: Path) -> None:
        self._ssh_dir = ssh_dir
        self._directory = directory
        self._count = 0
        self._origins: dict[str, str] = {}

    def copy(self, path: Path, *, depth: int) -> list[Path]:
        """The copy of ``path`` (none if it does not exist), includes rewritten to copies."""
        content = _read(path, MAX_CONFIG, optional=True)
        if content is None:
            return []
        self._count += 1
        copy = self._directory / f"config-{self._count}"  # numbered before its includes
        if self._count > MAX_CONFIG_FILES:
            raise SshFileError(f"{path}: over {MAX_CONFIG_FILES} config files are included")
        lines = []
        for line in content.decode("utf-8", "surrogateescape").splitlines():
            match = INCLUDE.fullmatch(line)
            if match is None:
                lines.append(line)
                continue
            if depth >= MAX_INCLUDE_DEPTH:
                raise SshFileError(
                    f"{path}: includes nest over {MAX_INCLUDE_DEPTH} deep (a file includes itself?)"
                )
            try:
                patterns = shlex.split(match.group(1))
            except ValueError:
                lines.append(line)  # asyncssh says what is wrong with it
                continue
            copies = [
                included_copy
                for included in self._matches(patterns)
                for included_copy in self.copy(included, depth=depth + 1)
            ]
            lines.append("Include " + " ".join(shlex.quote(str(name)) for name in copies))
        self._origins[str(copy)] = str(path)
        fd = os.open(copy, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as file:
            file.write("\n".join(lines) + "\n")
        return [copy]

    def in_user_terms(self, message: str) -> str:
        """``message`` (asyncssh's) with each copy's path replaced by its original's."""
        for copy, origin in sorted(self._origins.items(), reverse=True):  # config-10 first
            message = message.replace(copy, origin)
        return message

    def _matches(self, patterns: list[str]) -> list[Path]:
        """The files an Include names, as asyncssh finds them (relative to ``~/.ssh``), sorted."""
        found: list[Path] = []
        for pattern in patterns:
            path = Path(pattern).expanduser()
            try:
                if path.anchor:
                    matches = Path(path.anchor).glob(str(Path(*path.parts[1:])))
                else:
                    matches = self._ssh_dir.glob(pattern)
                found.extend(sorted(match for match in matches if not match.is_dir()))
            except (OSError, ValueError) as exc:
                raise SshFileError(f"Include {pattern}: {exc}") from None
        return found


def _known_hosts(ssh_dir: Path, config: Any) -> asyncssh.SSHKnownHosts | None:
    """The known hosts of the files the config names, or of ``~/.ssh/known_hosts``."""
    import asyncssh

    user_files = config.get("UserKnownHostsFile", ())
    if user_files == []:
        return None  # "UserKnownHostsFile none": asyncssh then checks no host key
    paths = [Path(name).expanduser() for name in user_files] or [ssh_dir / "known_hosts"]
    paths += [Path(name).expanduser() for name in config.get("GlobalKnownHostsFile", [])]
    text = []
    for path in paths:
        content = _read(path, MAX_KNOWN_HOSTS, optional=True)
        if content is None:
            continue
        try:
            text.append(content.decode())
        except UnicodeDecodeError as exc:
            raise SshFileError(f"{path}: is not a known hosts file ({exc})") from None
    try:
        return asyncssh.import_known_hosts("\n".join(text))
    except (ValueError, asyncssh.Error) as exc:
        names = ", ".join(str(path) for path in paths)
        raise SshFileError(f"{names}: is not a known hosts file ({exc})") from None


def _keys(ssh_dir: Path, config: Any) -> tuple[list[asyncssh.SSHKeyPair], list[bytes]]:
    """The keys the config names, or the default ones, and the public keys they stand for.

    A key that needs a passphrase is skipped (the agent may hold it), as ``ssh``
    without a terminal skips it; so is an ``IdentityFile`` that is a public key
    (the agent holds its private half: 1Password's, Secretive's way). Either
    one's public key (the file's own, or ``<file>.pub``) is still among the
    identities, which ``IdentitiesOnly`` lets the agent offer.
    """
    import asyncssh

    named = config.get("IdentityFile", ())
    paths = [Path(name).expanduser() for name in named] or [ssh_dir / key for key in DEFAULT_KEYS]
    certificates = [
        content
        for name in config.get("CertificateFile", ())
        if (content := _read(Path(name).expanduser(), MAX_KEY, optional=True)) is not None
    ]
    pairs: list[asyncssh.SSHKeyPair] = []
    identities: list[bytes] = []
    for path in paths:
        key = _read(path, MAX_KEY, optional=True)
        if key is None:
            continue
        certificate = _read(Path(f"{path}-cert.pub"), MAX_KEY, optional=True)
        try:
            loaded = asyncssh.load_keypairs(
                [(key, certificate) if certificate is not None else key],
                certlist=certificates,
                ignore_encrypted=True,
            )
        except (ValueError, asyncssh.Error) as exc:
            public = _public_key(key)
            if public is None:
                raise SshFileError(f"{path}: is not a usable private key ({exc})") from None
            identities.append(public)
            continue
        pairs += loaded
        identities += [pair.public_data for pair in loaded]
        if not loaded:  # needs a passphrase: its public half, for the agent
            public_file = _read(Path(f"{path}.pub"), MAX_KEY, optional=True)
            public = None if public_file is None else _public_key(public_file)
            if public is not None:
                identities.append(public)
    return pairs, identities


def _public_key(data: bytes) -> bytes | None:
    """The public key ``data`` holds (OpenSSH's one-line form, say), or ``None``."""
    import asyncssh

    try:
        return bytes(asyncssh.import_public_key(data).public_data)
    except (ValueError, asyncssh.Error):
        return None


def _read(path: Path, limit: int, *, optional: bool) -> bytes | None:
    try:
        return read_regular(path, limit=limit)
    except FileProblem as exc:
        if exc.missing and optional:
            return None
        raise SshFileError(str(exc)) from None
