"""The locally built images (testbed/images.sh) and helpers for tests on the real engine."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import posixpath
import re
import socket
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ephemeral_registry._labels import process_start_time

PREFIX = "ephemeral-registry-testbed"
REGISTRY2 = f"{PREFIX}/registry:2"
REGISTRY3 = f"{PREFIX}/registry:3"
CRANE = f"{PREFIX}/crane"
REGISTRY_LATE = f"{PREFIX}/registry-late"
"""Starts listening 2 s after its container starts."""
REGISTRY_EXITS = f"{PREFIX}/registry-exits"
"""Prints an error and exits with code 3 at once."""
REGISTRY_SILENT = f"{PREFIX}/registry-silent"
"""Runs but never listens."""
REGISTRY_SMALL_DISK = f"{PREFIX}/registry-small-disk"
"""Keeps its storage in /dev/shm, a 64 MiB tmpfs: larger uploads fail as on a full disk."""
SAMPLE = f"{PREFIX}/sample:one"
SAMPLE_TWO = f"{PREFIX}/sample:two"
CRANE_HANGS = f"{PREFIX}/crane-hangs"
"""Writes one line to stderr, then never finishes."""
CRANE_CHATTY = f"{PREFIX}/crane-chatty"
"""Writes lines to stdout and stderr in turn, the last unfinished, then a digest line; exits 0."""
INTEROP = f"{PREFIX}/interop"
"""Many layers: hard links, symlinks, whiteouts, names over 100 bytes, an empty one, one > 1 MiB."""
BUSYBOX = f"{PREFIX}/busybox"
"""The relay of a tunnel through the engine's API: busybox, with nc and sleep."""
ALL_IMAGES = (
    REGISTRY2, REGISTRY3, CRANE, REGISTRY_LATE, REGISTRY_EXITS, REGISTRY_SILENT, CRANE_HANGS,
    CRANE_CHATTY, REGISTRY_SMALL_DISK, BUSYBOX,
    SAMPLE, SAMPLE_TWO, INTEROP,
)  # fmt: skip

LABEL = "ephemeral-registry.session"


ENGINE = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
"""The engine under test. The CLI helpers keep to it while a test points DOCKER_HOST elsewhere."""


def _cli_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": ENGINE}


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    """Run the docker CLI against the engine under test; return its stdout."""
    done = subprocess.run(
        ["docker", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=_cli_env(),
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def inspect(kind: str, ident: str) -> dict[str, Any]:
    data: list[dict[str, Any]] = json.loads(docker(kind, "inspect", ident))
    return data[0]


def forwards(port: str) -> bool:
    """Whether a host NAT rule (``iptables -t nat -S``) forwards ``port``, as engines that
    publish ports with DNAT do (Docker 20.10, Podman's netavark)."""
    rules = subprocess.run(["iptables", "-t", "nat", "-S"], capture_output=True, text=True)
    return re.search(rf"--dport {port}\b", rules.stdout) is not None


@functools.cache
def is_podman() -> bool:
    """Whether the engine under test (DOCKER_HOST) is Podman's Docker-compatible API."""
    return "Podman" in docker("version", "--format", "{{json .Server.Components}}")


@functools.cache
def is_rootless() -> bool:
    """Whether the engine under test runs without root (this test bed's second Podman).

    Asked over its socket: the docker CLI drops Podman's own ``Rootless`` field.
    """
    import httpx

    transport = httpx.HTTPTransport(uds=ENGINE.removeprefix("unix://"))
    with httpx.Client(transport=transport) as client:
        info = client.get("http://engine/info").json()
    return info.get("Rootless") is True or "name=rootless" in info.get("SecurityOptions", [])


def host_address() -> str:
    """An IPv4 address of this host other than loopback, as other machines reach it."""
    shown = subprocess.run(
        ["ip", "-4", "-o", "addr", "show", "scope", "global"], capture_output=True, text=True
    )
    found = re.search(r"inet (\d+\.\d+\.\d+\.\d+)/", shown.stdout)
    assert found is not None, shown.stdout
    return found[1]


@functools.cache
def has_containerd_store() -> bool:
    """Whether the engine under test keeps images in containerd (Docker 29's default)."""
    return "io.containerd.snapshotter" in docker("info", "--format", "{{json .DriverStatus}}")


def config_digest(image: str) -> str:
    """The digest of an image's config: the same image, on every engine.

    An image's id is its config's digest on Docker 20.10 and Podman, but its
    manifest's (or index's) with a containerd image store. Read from the
    engine's own ``docker save``, independently of the library's export.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "image.tar"
        docker("save", "-o", str(path), image)
        with tarfile.open(path) as tar:

            def read(name: str) -> bytes:
                member = tar.getmember(name)
                if member.issym():  # podman links layers; a config, rarely
                    target = posixpath.join(posixpath.dirname(name), member.linkname)
                    return read(posixpath.normpath(target))
                file = tar.extractfile(member)
                assert file is not None
                return file.read()

            entries = json.loads(read("manifest.json"))
            assert len(entries) == 1, f"docker save {image} holds {len(entries)} images"
            try:
                return "sha256:" + hashlib.sha256(read(entries[0]["Config"])).hexdigest()
            except KeyError:
                # Docker 29 leaves the config and layers of a pulled image with compressed
                # layers out of its save; the manifest it pulled names the config.
                (top,) = json.loads(read("index.json"))["manifests"]
                manifest = json.loads(read(f"blobs/sha256/{top['digest'].split(':')[1]}"))
                return str(manifest["config"]["digest"])


async def pulled_config_digest(ref: str) -> str:
    """Pull ``ref`` with the engine, return its config digest, and remove the pulled copy."""
    await adocker("pull", "-q", ref)
    try:
        return config_digest(ref)
    finally:
        await adocker("rmi", ref)


OWNER_PID_LABEL = "ephemeral-registry.owner.pid"


def labelled(label: str = LABEL) -> set[str]:
    """Ids of the containers and networks carrying ``label`` (``key`` or ``key=value``)."""
    containers = docker("ps", "-aq", "--no-trunc", "--filter", f"label={label}").split()
    networks = docker("network", "ls", "-q", "--no-trunc", "--filter", f"label={label}").split()
    return {*containers, *networks}


_OWNER = "\t".join(
    ["{{.ID}}"]
    + [f'{{{{.Label "ephemeral-registry.owner.{key}"}}}}' for key in ("host", "pid", "started")]
)
_THIS_RUN = (socket.gethostname(), os.getpid(), int(process_start_time(os.getpid()) or 0))


def labelled_by_this_run() -> set[str]:
    """Ids of the labelled containers and networks that this test run made.

    Made by this run: owned by this process, by a live process descended from
    it (a CLI or pytester run under way), or by a process of this host that
    started after this one and has ended (a CLI run that is over). What other
    sessions and people made is never counted, so never removed.
    """
    listing = ("--no-trunc", "--filter", f"label={LABEL}", "--format", _OWNER)
    found = docker("ps", "-a", *listing) + docker("network", "ls", *listing)
    ours = set()
    for line in found.splitlines():
        ident, host, pid, started = [*line.split("\t"), "", "", ""][:4]
        if _made_by_this_run(host, int(pid or 0), int(started or 0)):
            ours.add(ident)
    return ours


def _made_by_this_run(host: str, pid: int, started: int) -> bool:
    this_host, this_pid, this_started = _THIS_RUN
    if host != this_host or started < this_started:
        return False
    if pid == this_pid:
        return True
    if str(started) != process_start_time(pid):
        # Ended: a process of this host, younger than this run (and not from the future).
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return started <= uptime * os.sysconf("SC_CLK_TCK")
    while pid > 1:  # alive: ours if this process is among its ancestors
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rpartition(")")[2].split()[1])
        if pid == this_pid:
            return True
    return False


def remove(ids: Sequence[str]) -> None:
    for ident in ids:
        docker("rm", "-f", "-v", ident, check=False)
    for ident in ids:
        docker("network", "rm", ident, check=False)


async def adocker(*args: str) -> str:
    """Run the docker CLI without blocking the event loop; return its stdout."""
    import anyio

    done = await anyio.run_process(["docker", *args], check=False, env=_cli_env())
    if done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr.decode().strip()}")
    return done.stdout.decode()


async def archive_of(container: str, path: str) -> bytes:
    """``docker cp CONTAINER:PATH -``: what the container holds at PATH, as a tar."""
    import anyio

    done = await anyio.run_process(
        ["docker", "cp", f"{container}:{path}", "-"], check=False, env=_cli_env()
    )
    if done.returncode != 0:
        raise AssertionError(f"docker cp {container}:{path} failed: {done.stderr.decode()}")
    return done.stdout


async def oci_layout(image: str, layout: Path) -> None:
    """An OCI image layout of ``image`` (tag ``one``), made by skopeo from the engine's save."""
    import anyio

    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "image.tar"
        await adocker("save", "-o", str(tarball), image)
        await anyio.run_process(
            ["skopeo", "copy", "-q", f"docker-archive:{tarball}", f"oci:{layout}:one"]
        )


async def crane_push_cli(network: str, push_endpoint: str, image: str, ref: str) -> str:
    """Push a local image the way a shell script would: docker save, then crane in a container.

    Independent of the library's own push, to check the registry with a real client.
    Returns crane's final line, the pushed digest reference. The tarball is copied into
    crane's container (docker cp), as no path of this host need exist for the engine.
    """
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(tmp) / "image.tar"
        await adocker("save", "-o", str(tarball), image)
        tarball.chmod(0o644)  # crane runs as a non-root user
        crane = [CRANE, "push", "--insecure", "/image.tar", f"{push_endpoint}/{ref}"]
        container = (await adocker("create", "--network", network, *crane)).strip()
        try:
            await adocker("cp", str(tarball), f"{container}:/image.tar")
            out = await adocker("start", "--attach", container)
            state = inspect("container", container)["State"]
            assert state["ExitCode"] == 0, f"crane push failed: {out}"
        finally:
            await adocker("rm", "--force", container)
    return out.strip().splitlines()[-1]


def containers_created(session_id: str, since: float) -> list[str]:
    """Names of the containers of a session that the engine created since ``since`` (epoch s)."""
    import time

    out = docker(
        "events", "--since", f"{since:.3f}", "--until", f"{time.time() + 0.5:.3f}",
        "--filter", "type=container", "--filter", "event=create",
        "--filter", f"label={LABEL}={session_id}", "--format", "{{.Actor.Attributes.name}}",
    )  # fmt: skip
    return out.split()


ENGINES = dict(
    pair.split("=", 1) for pair in os.environ.get("EPHEMERAL_REGISTRY_TESTBED_ENGINES", "").split()
)
"""The test bed's engines by name (``NAME=DOCKER_HOST``), as scripts/test names them."""


def is_desktop_shaped() -> bool:
    """Whether the engine under test is one of the test bed's engines shaped like Docker
    Desktop's (testbed/desktop.sh): its networks and its /tmp are not this host's."""
    return any(name.startswith("desktop-") and host == ENGINE for name, host in ENGINES.items())
