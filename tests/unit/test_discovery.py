"""Finding the engine as the docker CLI does: DOCKER_HOST, contexts, then the known sockets."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from ephemeral_registry import DockerUnavailableError, InvalidArgumentError, _discovery
from ephemeral_registry._addresses import host_address
from ephemeral_registry._discovery import EngineAddress, TlsFiles, discover
from ephemeral_registry._engine import open_engine
from ephemeral_registry._files import FileProblem
from ephemeral_registry._options import check_engine_choice, resolve
from ephemeral_registry._ssh import Target

from .leftovers import no_thread_left


@pytest.fixture(autouse=True)
def no_system_sockets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine's own sockets stay out of these tests."""
    monkeypatch.setattr(_discovery, "DEFAULT_SOCKET", str(tmp_path / "none" / "docker.sock"))
    monkeypatch.setattr(_discovery, "PODMAN_SOCKET", str(tmp_path / "none" / "podman.sock"))


@pytest.fixture
def listening() -> Iterator[list[socket.socket]]:
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def make_socket(path: Path, sockets: list[socket.socket]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(path))
    sockets.append(sock)
    return path


def write_context(config_dir: Path, name: str, host: str, *, tls: bool = False) -> None:
    key = hashlib.sha256(name.encode()).hexdigest()
    meta = config_dir / "contexts" / "meta" / key / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": host, "SkipTLSVerify": False}
    meta.write_text(json.dumps({"Name": name, "Endpoints": {"docker": endpoint}}))
    if tls:
        (config_dir / "contexts" / "tls" / key / "docker").mkdir(parents=True)


def test_docker_host_comes_first(tmp_path: Path) -> None:
    """DOCKER_HOST wins over DOCKER_CONTEXT and the current context, as in the docker CLI."""
    write_context(tmp_path / ".docker", "other", "unix:///other.sock")
    env = {"DOCKER_HOST": "unix:///from-env.sock", "DOCKER_CONTEXT": "other"}
    assert discover(env, home=tmp_path) == EngineAddress("unix:///from-env.sock", "DOCKER_HOST")


def test_docker_host_over_tls(tmp_path: Path) -> None:
    """DOCKER_TLS_VERIFY turns TLS on, with certificates from DOCKER_CERT_PATH."""
    env = {"DOCKER_HOST": "tcp://build:2376", "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/c"}
    address = discover(env, home=tmp_path)
    assert address.tls == TlsFiles(Path("/c"), verify=True)
    assert address.client_url == "https://build:2376"
    plain = discover({"DOCKER_HOST": "tcp://build:2375"}, home=tmp_path)
    assert plain.tls is None
    assert plain.client_url == "http://build:2375"


def test_the_cert_path_defaults_to_dot_docker(tmp_path: Path) -> None:
    """Without DOCKER_CERT_PATH, ~/.docker holds ca.pem, cert.pem and key.pem."""
    env = {"DOCKER_HOST": "tcp://build:2376", "DOCKER_TLS_VERIFY": "1"}
    tls = discover(env, home=tmp_path).tls
    assert tls is not None
    assert tls.directory == tmp_path / ".docker"


def test_docker_context_names_the_context(tmp_path: Path) -> None:
    """DOCKER_CONTEXT picks contexts/meta/<sha256>/meta.json, and its TLS directory."""
    write_context(tmp_path / ".docker", "remote", "tcp://10.0.0.5:2376", tls=True)
    address = discover({"DOCKER_CONTEXT": "remote"}, home=tmp_path)
    assert address.url == "tcp://10.0.0.5:2376"
    assert address.found_by == "context remote"
    assert address.tls is not None
    assert address.tls.directory.parent.name == hashlib.sha256(b"remote").hexdigest()


def test_the_current_context_of_the_config_file(tmp_path: Path) -> None:
    """Without DOCKER_CONTEXT, config.json's currentContext; DOCKER_CONFIG moves the directory."""
    config_dir = tmp_path / "elsewhere"
    write_context(config_dir, "colima", "unix:///home/me/.colima/docker.sock")
    write_context(config_dir, "other", "unix:///other.sock")
    (config_dir / "config.json").write_text(json.dumps({"currentContext": "colima"}))
    env = {"DOCKER_CONFIG": str(config_dir)}
    assert discover(env, home=tmp_path).url == "unix:///home/me/.colima/docker.sock"
    assert discover({**env, "DOCKER_CONTEXT": "other"}, home=tmp_path).url == "unix:///other.sock"


def test_a_context_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    """As the docker CLI: a named context must exist; nothing falls back silently."""
    with pytest.raises(DockerUnavailableError, match=r"'gone' .* does not exist"):
        discover({"DOCKER_CONTEXT": "gone"}, home=tmp_path)


@pytest.mark.parametrize("present", ["default", "rootless", "rootless podman", "podman"])
def test_the_first_socket_that_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listening: list[socket.socket], present: str
) -> None:
    """The default socket, then rootless Docker's, rootless Podman's, and Podman's."""
    runtime = tmp_path / "run"
    paths = {
        "default": tmp_path / "var" / "docker.sock",
        "rootless": runtime / "docker.sock",
        "rootless podman": runtime / "podman" / "podman.sock",
        "podman": tmp_path / "podman" / "podman.sock",
    }
    monkeypatch.setattr(_discovery, "DEFAULT_SOCKET", str(paths["default"]))
    monkeypatch.setattr(_discovery, "PODMAN_SOCKET", str(paths["podman"]))
    order = list(paths)
    for name in order[order.index(present) :]:  # this one and every later one exist
        make_socket(paths[name], listening)
    env = {"XDG_RUNTIME_DIR": str(runtime), "DOCKER_CONTEXT": "default"}
    assert discover(env, home=tmp_path).url == f"unix://{paths[present]}"


def test_nothing_found_lists_what_was_tried(tmp_path: Path) -> None:
    """DockerUnavailableError says every place it looked."""
    with pytest.raises(DockerUnavailableError) as caught:
        discover({"XDG_RUNTIME_DIR": "/run/user/1000"}, home=tmp_path)
    tried = caught.value.tried
    assert tried[0] == "DOCKER_HOST (not set)"
    assert "docker context" in tried[1]
    assert [entry.split()[0] for entry in tried[2:]] == [
        _discovery.DEFAULT_SOCKET,
        "/run/user/1000/docker.sock",
        "/run/user/1000/podman/podman.sock",
        _discovery.PODMAN_SOCKET,
    ]
    assert "/run/user/1000/docker.sock" in str(caught.value)


@pytest.mark.parametrize(
    ("url", "remote"),
    [
        ("unix:///var/run/docker.sock", False),
        ("tcp://127.0.0.1:2375", False),
        ("tcp://127.0.0.2:2375", False),
        ("tcp://localhost:2375", False),
        ("tcp://[::1]:2375", False),
        ("tcp://10.1.2.3:2376", True),
        ("tcp://build-box:2376", True),
        ("https://build-box.example:2376", True),
    ],
)
def test_an_engine_is_remote_when_its_address_is_another_hosts(url: str, remote: bool) -> None:
    """Loopback and sockets are here; any other address, or a name, is another host."""
    assert EngineAddress(url, "test").is_remote is remote


def test_a_remote_engine_refuses_loopback_and_is_pulled_from_at_its_address() -> None:
    """host_ip must be an address of that host; 0.0.0.0 pulls from the engine's own address."""
    remote = EngineAddress("tcp://build-box:2376", "DOCKER_HOST")
    with pytest.raises(InvalidArgumentError, match="pass host_ip="):
        host_address("127.0.0.1", remote)
    assert host_address("0.0.0.0", remote) == "build-box"
    assert host_address("10.0.0.5", remote) == "10.0.0.5"
    assert host_address("::", EngineAddress("tcp://[fd00::5]:2376", "DOCKER_HOST")) == "[fd00::5]"
    local = EngineAddress("tcp://127.0.0.1:2375", "DOCKER_HOST")
    assert host_address("0.0.0.0", local) == "127.0.0.1"
    assert host_address("127.0.0.1", local) == "127.0.0.1"


@pytest.mark.parametrize("config", [b"[]", b'"x"', b"null", b"7", b'{"currentContext": 3}', b"{"])
def test_a_docker_config_of_the_wrong_shape_is_a_typed_error(tmp_path: Path, config: bytes) -> None:
    """Never an AttributeError from a config.json that is a list, a string or null."""
    (tmp_path / "config.json").write_bytes(config)
    with pytest.raises(DockerUnavailableError, match="docker config"):
        discover({"DOCKER_CONFIG": str(tmp_path)}, home=tmp_path)


@pytest.mark.parametrize(
    ("host", "problem"),
    [
        ("tcp://[::1", "not an engine address"),
        ("tcp://host:99999", "not an engine address"),
        ("ssh://", "names no host"),
        ("ssh://me@box:0x16", "not an engine address"),
        ("box:2375", "reaches"),
        ("tcp://", "names no host"),
        ("unix://", "names no socket"),
        # What the system would choke on: a host DNS cannot carry, a NUL in the user or
        # the socket's path. Refused here, not a UnicodeError later.
        ("ssh://" + "a" * 64 + ".example", "no DNS name"),
        ("tcp://" + "a" * 64 + ".example:2375", "no DNS name"),
        ("tcp://" + "a." * 127 + "example:2375", "no DNS name"),
        ("ssh://us%00er@box", "control character"),
        ("ssh://me@box/run/a%0Ab.sock", "control character"),
        ("unix:///run/a\0b.sock", "control character"),
        ("tcp://box%ff:2375", "not an engine address"),
    ],
)
def test_a_docker_host_that_is_no_engine_address_is_a_typed_error(
    tmp_path: Path, host: str, problem: str
) -> None:
    """The same verdict, by the same rules (_addresses), whether the address comes from
    DOCKER_HOST or from the docker_host= argument (an InvalidArgumentError there)."""
    with pytest.raises(DockerUnavailableError, match=problem):
        discover({"DOCKER_HOST": host}, home=tmp_path)
    with pytest.raises(InvalidArgumentError, match=problem) as caught:
        resolve(docker_host=host)
    assert caught.value.argument == "docker_host"


def test_docker_host_wins_over_the_environment_and_contexts_as_the_clis_h(
    tmp_path: Path,
) -> None:
    """docker_host= is the engine whatever DOCKER_HOST and DOCKER_CONTEXT say; TLS is as
    the environment says for DOCKER_HOST."""
    env = {
        "DOCKER_HOST": "unix:///elsewhere.sock",
        "DOCKER_CONTEXT": "no-such-context",
        "DOCKER_TLS_VERIFY": "1",
        "DOCKER_CERT_PATH": str(tmp_path / "certs"),
    }
    found = discover(env, home=tmp_path, docker_host="tcp://box:2376")
    assert (found.url, found.found_by) == ("tcp://box:2376", "the docker_host= argument")
    assert found.tls == TlsFiles(tmp_path / "certs", verify=True)
    assert found.client_url == "https://box:2376"
    socket = discover(env, home=tmp_path, docker_host="unix:///run/x.sock")
    assert (socket.url, socket.tls) == ("unix:///run/x.sock", None)


def test_docker_and_docker_host_are_not_given_together() -> None:
    """A client names its engine already: both at once is an InvalidArgumentError."""
    check_engine_choice(None, "unix:///x.sock")
    check_engine_choice(object(), None)
    with pytest.raises(InvalidArgumentError, match="docker= cannot both be given") as caught:
        check_engine_choice(object(), "unix:///x.sock")
    assert caught.value.argument == "docker_host"


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ({"Host": "tcp://box:2376", "SkipTLSVerify": "false"}, "SkipTLSVerify"),
        ({"Host": "tcp://box:2376", "SkipTLSVerify": 1}, "SkipTLSVerify"),
        ({"Host": 7}, "Host is not a string"),
        ({"Host": "tcp://[::1"}, "not an engine address"),
        ([], "cannot read"),
    ],
)
def test_a_context_is_read_strictly(tmp_path: Path, endpoint: object, problem: str) -> None:
    """A string "false" never turns TLS verification off: it is refused."""
    key = hashlib.sha256(b"box").hexdigest()
    meta = tmp_path / "contexts" / "meta" / key / "meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text(json.dumps({"Name": "box", "Endpoints": {"docker": endpoint}}))
    with pytest.raises(DockerUnavailableError, match=problem):
        discover({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "box"}, home=tmp_path)


@pytest.mark.parametrize(
    ("url", "host", "port", "user", "socket"),
    [
        ("ssh://box", "box", None, None, "/var/run/docker.sock"),
        ("ssh://me@box:2222", "box", 2222, "me", "/var/run/docker.sock"),
        ("ssh://me@box/run/podman/podman.sock", "box", None, "me", "/run/podman/podman.sock"),
        ("ssh://[::1]:22/", "::1", 22, None, "/var/run/docker.sock"),
    ],
)
def test_an_ssh_engine_is_a_host_and_a_socket_there(
    tmp_path: Path, url: str, host: str, port: int | None, user: str | None, socket: str
) -> None:
    """As the docker CLI writes it, or with the socket's path as Podman's connections do."""
    address = discover({"DOCKER_HOST": url}, home=tmp_path)
    assert (address.url, address.is_ssh, address.tls) == (url, True, None)
    assert address.is_remote is (host not in ("::1",))
    assert Target.of(url) == Target(host, port, user, socket)


def test_an_ssh_context_is_an_ssh_engine(tmp_path: Path) -> None:
    key = hashlib.sha256(b"box").hexdigest()
    meta = tmp_path / "contexts" / "meta" / key / "meta.json"
    meta.parent.mkdir(parents=True)
    endpoint = {"Host": "ssh://me@box", "SkipTLSVerify": False}
    meta.write_text(json.dumps({"Name": "box", "Endpoints": {"docker": endpoint}}))
    address = discover({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "box"}, home=tmp_path)
    assert (address.url, address.found_by, address.tls) == ("ssh://me@box", "context box", None)


def test_a_nul_in_a_contexts_host_is_a_typed_error(tmp_path: Path) -> None:
    write_context(tmp_path, "box", "unix:///a\0b.sock")
    with pytest.raises(DockerUnavailableError, match="control character"):
        discover({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "box"}, home=tmp_path)


def test_a_context_name_that_is_not_utf8_is_a_typed_error(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text('{"currentContext": "\\ud800"}')
    with pytest.raises(DockerUnavailableError, match="not UTF-8"):
        discover({"DOCKER_CONFIG": str(tmp_path)}, home=tmp_path)


def test_a_fifo_as_the_docker_config_is_refused_at_once(tmp_path: Path) -> None:
    """No writer ever comes: the open does not wait for one."""
    os.mkfifo(tmp_path / "config.json")
    with pytest.raises(DockerUnavailableError, match="not a regular file"):
        discover({"DOCKER_CONFIG": str(tmp_path)}, home=tmp_path)


def test_a_device_as_the_docker_config_is_refused_not_read(tmp_path: Path) -> None:
    (tmp_path / "config.json").symlink_to("/dev/zero")
    with pytest.raises(DockerUnavailableError, match="character device"):
        discover({"DOCKER_CONFIG": str(tmp_path)}, home=tmp_path)


def test_a_fifo_as_a_contexts_meta_is_refused_at_once(tmp_path: Path) -> None:
    meta = tmp_path / "contexts" / "meta" / hashlib.sha256(b"box").hexdigest() / "meta.json"
    meta.parent.mkdir(parents=True)
    os.mkfifo(meta)
    with pytest.raises(DockerUnavailableError, match="not a regular file"):
        discover({"DOCKER_CONFIG": str(tmp_path), "DOCKER_CONTEXT": "box"}, home=tmp_path)


def test_a_fifo_as_the_ca_is_refused_off_the_event_loop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the public path (``open_engine``): a typed error under a deadline, no thread left."""
    os.mkfifo(tmp_path / "ca.pem")
    env = {"DOCKER_HOST": "tcp://127.0.0.1:1", "DOCKER_TLS_VERIFY": "1"}
    env["DOCKER_CERT_PATH"] = str(tmp_path)
    for name in ("DOCKER_CONTEXT", "DOCKER_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    async def main() -> None:
        with anyio.fail_after(2), pytest.raises(DockerUnavailableError, match="a FIFO"):
            async with open_engine(None, request_timeout=1):
                pass

    with no_thread_left():
        anyio.run(main)


def test_tls_files_are_read_as_checked_bytes(tmp_path: Path) -> None:
    """A CA that is no certificate fails in ssl, typed by ``open_engine``; a missing CA is none."""
    assert TlsFiles(tmp_path).context() is not None
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        TlsFiles(tmp_path).context()
    (tmp_path / "ca.pem").write_bytes(b"x" * (_discovery.MAX_TLS_FILE + 1))
    with pytest.raises(FileProblem, match="over the"):
        TlsFiles(tmp_path).context()
