"""Optional htpasswd authentication: credentials made per registry, handed to crane and to callers.

The registry gets an htpasswd file, crane a Docker ``config.json``; both are
copied into their containers before they start, so nothing is written on the
host and a remote engine works too.
"""

from __future__ import annotations

import io
import json
import tarfile

from ._types import Credentials

DIRECTORY = "/ephemeral-registry"
HTPASSWD = f"{DIRECTORY}/htpasswd"
DOCKER_CONFIG = f"{DIRECTORY}/docker"
REALM = "ephemeral-registry"

# The password is 32 random bytes: a slow hash adds nothing against guessing
# it, while the registry checks the hash on every request. 4 is bcrypt's least.
BCRYPT_ROUNDS = 4


def registry_env() -> dict[str, str]:
    """What configures the registry (2 or 3) for htpasswd authentication."""
    return {
        "REGISTRY_AUTH": "htpasswd",
        "REGISTRY_AUTH_HTPASSWD_REALM": REALM,
        "REGISTRY_AUTH_HTPASSWD_PATH": HTPASSWD,
    }


def htpasswd_files(credentials: Credentials) -> dict[str, bytes]:
    """The htpasswd file, for the registry container."""
    import bcrypt

    digest = bcrypt.hashpw(credentials.password.encode(), bcrypt.gensalt(rounds=BCRYPT_ROUNDS))
    line = f"{credentials.username}:{digest.decode()}\n".encode()
    return {HTPASSWD: line}


def crane_files(credentials: Credentials, registry: str) -> dict[str, bytes]:
    """A Docker ``config.json`` with the credentials for ``registry``, for crane's container."""
    config = {"auths": {registry: {"auth": credentials.basic}}}
    return {f"{DOCKER_CONFIG}/config.json": json.dumps(config).encode()}


def archive(files: dict[str, bytes], *, uid: int, gid: int) -> bytes:
    """A tar of ``files`` (absolute paths), owned by ``uid:gid``, mode 0600, to copy to ``/``."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        directories = sorted({path.rsplit("/", 1)[0] for path in files})
        for directory in directories:
            info = tarfile.TarInfo(directory.lstrip("/"))
            info.type, info.mode, info.uid, info.gid = tarfile.DIRTYPE, 0o755, uid, gid
            tar.addfile(info)
        for path, content in files.items():
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.uid, info.gid = len(content), 0o600, uid, gid
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
