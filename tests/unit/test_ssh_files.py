"""What asyncssh is given to read: checked copies of ~/.ssh, never a path that can block."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import anyio
import pytest

from ephemeral_registry import DockerUnavailableError
from ephemeral_registry._ssh import connected
from ephemeral_registry._ssh_files import ClientFiles, SshFileError, prepare

from .leftovers import no_thread_left

pytest.importorskip("asyncssh")


@pytest.fixture
def ssh_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home of the test's own, HOME pointing at it, no agent."""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("SSH_AUTH_SOCK", raising=False)
    (tmp_path / ".ssh").mkdir()
    return tmp_path / ".ssh"


def files(ssh_dir: Path) -> ClientFiles:
    return prepare("box", None, None, home=ssh_dir.parent)


def connect_fails(match: str) -> None:
    """``connected`` raises DockerUnavailableError matching ``match`` within 2 s, before any
    connection (port 1 of loopback would refuse it otherwise), and leaves no thread."""

    async def main() -> None:
        with anyio.fail_after(2), pytest.raises(DockerUnavailableError, match=match):
            async with connected("ssh://me@127.0.0.1:1", timeout=10):
                pass

    with no_thread_left():
        anyio.run(main)


def test_a_fifo_as_the_ssh_config_fails_at_once_and_leaves_no_thread(ssh_dir: Path) -> None:
    """asyncssh read it on an executor thread that never ended: the process never exited."""
    os.mkfifo(ssh_dir / "config")
    connect_fails("config: is not a regular file \\(it is a FIFO\\)")


def test_dev_zero_as_the_ssh_config_is_not_read(ssh_dir: Path) -> None:
    (ssh_dir / "config").symlink_to("/dev/zero")
    connect_fails("config: is not a regular file \\(it is a character device\\)")


def test_a_bad_option_in_the_ssh_config_is_named_in_the_users_file(ssh_dir: Path) -> None:
    """asyncssh's ConfigParseError, with the user's path rather than the copy's."""
    (ssh_dir / "config").write_text("Port notanumber\n")
    connect_fails(f"{ssh_dir / 'config'} line 1: Invalid Port integer value")


def test_a_config_that_includes_itself_is_refused_not_a_recursion_error(ssh_dir: Path) -> None:
    (ssh_dir / "config").write_text("Include config\n")
    connect_fails("includes nest over 16 deep")


def test_a_bad_identity_file_is_named(ssh_dir: Path) -> None:
    (ssh_dir / "config").write_text("IdentityFile ~/.ssh/bad\n")
    (ssh_dir / "bad").write_text("garbage\n")
    connect_fails("bad: is not a usable private key")


def test_known_hosts_that_are_not_text_are_named(ssh_dir: Path) -> None:
    (ssh_dir / "known_hosts").write_bytes(b"\xff\xfe garbage\n")
    connect_fails("known_hosts: is not a known hosts file")


def test_a_fifo_among_the_default_keys_is_refused(ssh_dir: Path) -> None:
    os.mkfifo(ssh_dir / "id_ed25519")
    connect_fails("id_ed25519: is not a regular file")


def test_a_nul_in_the_user_is_a_typed_error(ssh_dir: Path) -> None:
    """asyncssh's SASLPrepError, had the URL reached it."""

    async def main() -> None:
        with pytest.raises(DockerUnavailableError, match="SASLPrepError"):
            async with connected("ssh://us%00er@127.0.0.1:1", timeout=10):
                pass

    anyio.run(main)


def test_includes_are_copied_and_pointed_at_the_copies(ssh_dir: Path) -> None:
    """asyncssh reads only the copies: relative includes as ~/.ssh's, globbed, in order."""
    (ssh_dir / "conf.d").mkdir()
    (ssh_dir / "conf.d" / "b").write_text("Host b\n  Port 2\n")
    (ssh_dir / "conf.d" / "a").write_text("Host a\n  Port 1\n")
    (ssh_dir / "config").write_text("Include conf.d/*\nHost *\n  User me\n")
    prepared = files(ssh_dir)
    try:
        copies = sorted(prepared.directory.iterdir())
        assert [copy.name for copy in copies] == ["config-1", "config-2", "config-3"]
        top = (prepared.directory / "config-1").read_text()
        assert top.splitlines()[0] == (
            f"Include {prepared.directory / 'config-2'} {prepared.directory / 'config-3'}"
        )
        assert (prepared.directory / "config-2").read_text() == "Host a\n  Port 1\n"
        assert prepared.config == [str(prepared.directory / "config-1")]
    finally:
        prepared.remove()
    assert not prepared.directory.exists()


def test_keys_and_known_hosts_are_handed_over_as_values(ssh_dir: Path) -> None:
    """A key with a passphrase is skipped (the agent may hold it), as ssh without a terminal."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / "id_ed25519")],
        check=True,
    )
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ecdsa", "-N", "secret", "-f", str(ssh_dir / "id_ecdsa")],
        check=True,
    )
    public = (ssh_dir / "id_ed25519.pub").read_text().split()
    (ssh_dir / "known_hosts").write_text(f"box {public[0]} {public[1]}\n")
    (ssh_dir / "config").write_text("IdentitiesOnly yes\n")
    prepared = files(ssh_dir)
    prepared.remove()
    assert len(prepared.client_keys) == 1
    encrypted = _public_data(ssh_dir / "id_ecdsa.pub")
    # The skipped key's public half stays an identity: the agent may offer it.
    assert prepared.agent_identities == [prepared.client_keys[0].public_data, encrypted]
    assert prepared.known_hosts is not None
    options = prepared.options()
    assert options["x509_trusted_certs"] is None


def test_a_public_key_as_identity_file_is_the_agents_to_offer(ssh_dir: Path) -> None:
    """``IdentityFile ~/.ssh/key.pub`` with the private half in an agent (1Password's,
    Secretive's way) is an identity, not an error."""
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh_dir / "agent_key")],
        check=True,
    )
    (ssh_dir / "agent_key").unlink()  # only the agent holds it
    (ssh_dir / "config").write_text(
        f"Host box\n  IdentityFile {ssh_dir / 'agent_key.pub'}\n  IdentitiesOnly yes\n"
    )
    prepared = files(ssh_dir)
    prepared.remove()
    assert prepared.client_keys == []
    assert prepared.agent_identities == [_public_data(ssh_dir / "agent_key.pub")]


def _public_data(path: Path) -> bytes:
    import asyncssh

    return bytes(asyncssh.import_public_key(path.read_bytes()).public_data)


def test_a_file_over_its_limit_is_refused(ssh_dir: Path) -> None:
    (ssh_dir / "config").write_bytes(b"#" * ((1 << 20) + 1))
    with pytest.raises(SshFileError, match="over the"):
        files(ssh_dir)
