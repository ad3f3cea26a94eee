"""Docker Desktop's port forwarding, for the test bed's Desktop-shaped engine (desktop.sh).

That engine runs in a network namespace of its own, as Desktop's runs in a VM: the ports
its containers publish on 127.0.0.1 are bound on the namespace's loopback, not on this
host's. Desktop forwards each of them to the host's loopback; this does the same. It
follows the engine's container events and, for every TCP port that a running container
publishes on 127.0.0.1 (or on every address), listens on this host's 127.0.0.1 at the same
port and relays each connection to the namespace's 127.0.0.1 at that port. It listens from
the container's start event on, stops at its die or destroy event, and takes up the ports
of the containers already running when it starts, or when the engine comes back after it
went away.

Usage: python3 desktop_forwarder.py --netns /run/netns/NAME --engine SOCKET --pidfile FILE

The pid file is written once the engine's events are followed. Standard library only (it
runs on Debian's python3, 3.11, which has no os.setns): the sockets to the namespace are
made by a thread that entered it with setns(2), which moves only the calling thread; a
socket stays in the namespace it was made in, whichever thread uses it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import functools
import json
import logging
import os
import socket
import struct
import sys
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

CLONE_NEWNET = 0x40000000
FORWARDED_ADDRESSES = {"127.0.0.1", "0.0.0.0", ""}
"""Published on these, a port answers on the namespace's loopback; on "::" it may not."""
CHUNK = 256 * 1024
EVENTS = {"type": ["container"], "event": ["start", "die", "destroy"]}
RETRY = 0.2
"""Seconds between attempts to reach the engine when it does not answer."""

log = logging.getLogger("desktop_forwarder")


def enter_namespace(path: str) -> None:
    """Move the calling thread (only it) into the network namespace at ``path``."""
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns({path}): {os.strerror(errno)}")
    finally:
        os.close(fd)


def thread_namespace() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat("/proc/thread-self/ns/net").st_ino


def write_pidfile(path: Path) -> None:
    if not path.exists():
        path.write_text(f"{os.getpid()}\n")


def published_ports(container: dict[str, Any]) -> set[int]:
    """The TCP ports a container (its inspect data) publishes on the namespace's loopback."""
    if not container.get("State", {}).get("Running"):
        return set()
    ports = set()
    for key, bindings in (container.get("NetworkSettings", {}).get("Ports") or {}).items():
        if not key.endswith("/tcp"):
            continue
        for binding in bindings or []:
            if binding.get("HostIp", "") in FORWARDED_ADDRESSES and binding.get("HostPort"):
                ports.add(int(binding["HostPort"]))
    return ports


class Forwarder:
    def __init__(self, engine: str, namespace: ThreadPoolExecutor) -> None:
        self.engine = engine
        self.namespace = namespace
        self.listeners: dict[str, dict[int, asyncio.Server]] = {}

    async def get(self, path: str) -> Any:
        """GET ``path`` from the engine's API; its JSON body, or None if it says 404."""
        reader, writer = await asyncio.open_unix_connection(self.engine)
        try:
            writer.write(f"GET {path} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            body = await reader.read()
        finally:
            writer.close()
        status = int(head.split(b" ", 2)[1])
        if status == 404:
            return None
        if status != 200:
            raise OSError(f"GET {path}: {head.splitlines()[0].decode()} {body[:200]!r}")
        return json.loads(body)

    async def subscribe(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The engine's stream of container events (HTTP/1.0: one JSON document a line)."""
        reader, writer = await asyncio.open_unix_connection(self.engine, limit=1 << 20)
        filters = urllib.parse.quote(json.dumps(EVENTS))
        writer.write(f"GET /events?filters={filters} HTTP/1.0\r\nHost: engine\r\n\r\n".encode())
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head.split(b" ", 2)[1]) != 200:
            writer.close()
            raise OSError(f"GET /events: {head.splitlines()[0].decode()}")
        return reader, writer

    async def follow(self, pidfile: Path) -> None:
        """Forward ports as the engine's events say, for ever; when the engine goes away,
        stop every listener and start again once it answers."""
        while True:
            try:
                events, stream = await self.subscribe()
            except OSError:
                await asyncio.sleep(RETRY)
                continue
            try:
                log.info("following the events of %s", self.engine)
                # Subscribed first, listed next: a container that starts in between is in
                # both, and forwarding it twice changes nothing.
                for container in await self.get("/containers/json") or []:
                    await self.started(container["Id"])
                write_pidfile(pidfile)
                while line := await events.readline():
                    event = json.loads(line)
                    if event.get("Action") == "start":
                        await self.started(event["id"])
                    else:
                        self.stopped(event["id"])
            except (OSError, ValueError) as exc:
                log.warning("lost the engine's events: %s", exc)
            finally:
                stream.close()
            log.info("the engine's events ended; no port is forwarded until it answers again")
            for ident in list(self.listeners):
                self.stopped(ident)
            await asyncio.sleep(RETRY)

    async def started(self, ident: str) -> None:
        container = await self.get(f"/containers/{ident}/json")
        if container is None:  # removed already
            return
        name = container.get("Name", ident[:12]).lstrip("/")
        listening = self.listeners.setdefault(ident, {})
        for port in sorted(published_ports(container) - set(listening)):
            try:
                listening[port] = await asyncio.start_server(
                    functools.partial(self.relay, port=port),
                    host="127.0.0.1",
                    port=port,
                    reuse_address=True,
                    limit=CHUNK,
                )
            except OSError as exc:
                log.warning("cannot forward port %d of %s: %s", port, name, exc)
            else:
                log.info("forwarding 127.0.0.1:%d to %s", port, name)
        if not listening:
            del self.listeners[ident]

    def stopped(self, ident: str) -> None:
        for port, server in self.listeners.pop(ident, {}).items():
            server.close()
            log.info("no longer forwarding 127.0.0.1:%d (%s)", port, ident[:12])

    async def relay(
        self, outer_reader: asyncio.StreamReader, outer_writer: asyncio.StreamWriter, port: int
    ) -> None:
        """Relay one connection to the namespace's 127.0.0.1:``port``, both ways, until both
        sides have finished or either breaks off."""
        loop = asyncio.get_running_loop()
        try:
            sock = await loop.run_in_executor(self.namespace, socket.socket)
            sock.setblocking(False)
            try:
                await loop.sock_connect(sock, ("127.0.0.1", port))
            except BaseException:
                sock.close()
                raise
            inner_reader, inner_writer = await asyncio.open_connection(sock=sock, limit=CHUNK)
        except OSError as exc:
            log.warning("cannot reach the namespace's 127.0.0.1:%d: %s", port, exc)
            reset(outer_writer)
            return
        pumps = [
            asyncio.ensure_future(pump(outer_reader, inner_writer)),
            asyncio.ensure_future(pump(inner_reader, outer_writer)),
        ]
        try:
            for finished in asyncio.as_completed(pumps):
                if not await finished:  # broken off: so is the other direction
                    reset(outer_writer)
                    reset(inner_writer)
        finally:
            for task in pumps:
                task.cancel()
            outer_writer.close()
            inner_writer.close()


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Copy until end of file, then half-close; whether it got there without an error."""
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        return False
    return True


def reset(writer: asyncio.StreamWriter) -> None:
    """Close with a reset (RST), as a peer that broke off does, not an orderly end of file."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument("--netns", required=True, help="the engine's network namespace file")
    parser.add_argument("--engine", required=True, help="the engine's API socket")
    parser.add_argument("--pidfile", required=True, type=Path)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr
    )
    loop = asyncio.get_running_loop()
    # One thread, in the namespace for its whole life, makes every inner socket.
    with ThreadPoolExecutor(1, "netns", enter_namespace, (args.netns,)) as namespace:
        inside = await loop.run_in_executor(namespace, thread_namespace)
        if inside != os.stat(args.netns).st_ino or inside == thread_namespace():
            raise SystemExit(f"desktop_forwarder: could not enter {args.netns}")
        await Forwarder(args.engine, namespace).follow(args.pidfile)


if __name__ == "__main__":
    asyncio.run(main())
