"""The ``ephemeral-registry`` command: a thin layer over the public API.

Exit status: 0 on success; the converter's own status when ``push`` runs one;
1 when the library raised an error (its message is printed); 2 for a usage
error, a bad option value, SOURCE or ``--as`` (the library's
``InvalidArgumentError``), said in one line; 126 when the converter command
cannot be run (permission denied), 127 when it is not found, as in the shell;
130 after SIGINT and 143 after SIGTERM, once everything has been removed.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TextIO

import anyio
import anyio.abc

from . import (
    Endpoints,
    EphemeralRegistryError,
    ImageNotFoundError,
    InvalidArgumentError,
    Leftover,
    LogLine,
    PushResult,
    Registry,
    __version__,
    _reference,
    _source,
    ephemeral_registry,
    find_leftovers,
    sweep,
)
from ._addresses import check_docker_host
from ._engine import find_engine_address, open_engine
from ._options import BY_NAME, OPTIONS, check_against_engine, given_flags, resolve

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 126
EXIT_NOT_FOUND = 127
SIGNALS = (signal.SIGINT, signal.SIGTERM)
CHECK_TIMEOUT = 30.0
"""Seconds the engine has to say whether it holds a SOURCE image."""
DEFAULT_COLUMNS = 80
"""The status line's width when the terminal does not say."""
PLACEHOLDERS = ("ref", "digest_ref", "digest", "pull_endpoint", "ca_file")
"""What ``push -- COMMAND`` replaces in COMMAND, written ``{ref}`` and so on."""
_BRACES = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
"""A doubled brace, a placeholder, or a brace on its own, as ``str.format`` reads them."""


class Output:
    """Results go to stdout; progress to stderr, as one live line on a terminal."""

    def __init__(self, *, json_output: bool, quiet: bool, stderr: TextIO | None = None) -> None:
        self.json = json_output
        self.quiet = quiet
        self._stderr = sys.stderr if stderr is None else stderr  # the one of now, not of import
        self._live = self._stderr.isatty() and not quiet and not json_output
        self._status_shown = False
        self._progress_started: float | None = None

    def status(self, text: str) -> None:
        """A progress line: rewritten in place on a terminal, a plain line elsewhere."""
        if self.quiet:
            return
        if self._live:
            # Shorter than the terminal, asked each time (it may be resized):
            # a line that wraps is not cleared by \x1b[K, and scrolls.
            text = "".join(c if c.isprintable() else " " for c in text)
            self._stderr.write("\r\x1b[K" + text[: self._width() - 1])
            self._status_shown = True
        else:
            self._stderr.write(text + "\n")
        self._stderr.flush()

    def progress(self, done: int, total: int | None) -> None:
        """A push's progress as a bar, with bytes and rate, on a terminal; nothing elsewhere."""
        if not self._live:
            return
        now = time.monotonic()
        if self._progress_started is None:
            self._progress_started = now
        elapsed = now - self._progress_started
        self.status(progress_line(done, total, elapsed, self._width() - 1))

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._stderr.fileno()).columns
        except (OSError, ValueError):
            return DEFAULT_COLUMNS

    def done_with_status(self) -> None:
        if self._status_shown:
            self._stderr.write("\r\x1b[K")
            self._stderr.flush()
            self._status_shown = False

    def error(self, text: str) -> None:
        self.done_with_status()
        self._stderr.write(f"ephemeral-registry: {text}\n")
        self._stderr.flush()

    def result(self, fields: dict[str, Any]) -> None:
        """A result on stdout: one JSON object per line, or ``key value`` lines."""
        self.done_with_status()
        if self.json:
            print(json.dumps(fields), flush=True)
        else:
            for key, value in fields.items():
                print(f"{key} {value}", flush=True)

    def push_line(self, pusher: str, line: LogLine) -> None:
        self.status(f"{pusher} {line.stream}: {line}")


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f}"


def progress_line(done: int, total: int | None, elapsed: float, width: int) -> str:
    """``push [#####-----] 12.3/45.6 MB 80 MB/s``, fitted to ``width`` columns.

    Without a total (an export, whose size is known only at its end): bytes and rate only.
    """
    rate = f"{done / elapsed / 1e6:.0f} MB/s" if elapsed > 0 else ""
    if total is None:
        return f"push {_megabytes(done)} MB {rate}".rstrip()[:width]
    figures = f"{_megabytes(done)}/{_megabytes(total)} MB {rate}".rstrip()
    bar_width = max(0, min(30, width - len(figures) - len("push [] ")))
    filled = bar_width * min(done, total) // total if total else bar_width
    return f"push [{'#' * filled}{'-' * (bar_width - filled)}] {figures}"[:width]


def fill(part: str, values: Mapping[str, str]) -> str:
    """One word of COMMAND with each ``{name}`` replaced by ``values[name]``, and ``{{`` and
    ``}}`` by a brace.

    Raises:
        ValueError: a placeholder that is not one of ``values``, or a brace on its own;
            the message names it.
    """

    def replace(match: re.Match[str]) -> str:
        token, name = match[0], match[1]
        if token in ("{{", "}}"):
            return token[0]
        if name is None:
            raise ValueError(
                f"COMMAND has a stray {token!r} in {part!r}: write a literal brace as {token * 2}"
            )
        if name not in values:
            known = ", ".join(f"{{{key}}}" for key in values)
            raise ValueError(
                f"COMMAND has an unknown placeholder {token} in {part!r}: it may hold {known};"
                " write a literal brace as {{ or }}"
            )
        return values[name]

    return _BRACES.sub(replace, part)


def check_command(command: Sequence[str]) -> None:
    """Refuse COMMAND's unknown placeholders and stray braces before anything is made.

    Raises:
        ValueError: as ``fill`` does.
    """
    for part in command:
        fill(part, dict.fromkeys(PLACEHOLDERS, ""))


def _usage_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the command line that argparse does not see, if anything."""
    try:
        check_command(getattr(args, "command", []))
    except ValueError as exc:
        return str(exc)
    if args.docker_host is not None:
        try:
            check_docker_host(args.docker_host)
        except InvalidArgumentError as exc:
            return f"--docker-host: {exc.problem}"
    return None


def _command_env(args: argparse.Namespace) -> dict[str, str] | None:
    """COMMAND's environment: this process's, with ``DOCKER_HOST`` set to ``-H``'s engine
    if one was given, so that a ``docker`` in COMMAND reaches the engine pushed to."""
    if args.docker_host is None:
        return None
    return {**os.environ, "DOCKER_HOST": args.docker_host}


def _registry_options(args: argparse.Namespace) -> dict[str, Any]:
    return given_flags(functools.partial(getattr, args))


async def _check_options(args: argparse.Namespace) -> None:
    """Refuse a bad option value as ``ephemeral_registry()`` would, but before the engine is
    asked anything (SOURCE's check asks it).

    Raises:
        InvalidArgumentError: a bad value, or one that does not fit where the engine is.
        DockerUnavailableError: no engine address applies.
    """
    options = resolve(**_registry_options(args))
    if options.backend == "docker":
        check_against_engine(options, await find_engine_address(None, options.docker_host))


def is_file(source: str) -> bool:
    """Whether SOURCE names a file or directory, rather than a local image.

    It does when it exists, or when it is written as a path (``/``, ``./``,
    ``../`` or ``~`` first, where no image name may start, or ``.tar`` last,
    which an image name may end with but hardly does): a missing one is then
    a bad SOURCE, not an image to look for. A name the system cannot
    look up (too long, holding a NUL, under a directory this process may not
    read) counts as a file too, for the check to say what is wrong with it.
    """
    if (
        source.startswith(("/", "./", "../", "~"))
        or source in (".", "..")
        or source.endswith(".tar")
    ):
        return True
    try:
        os.stat(source)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except (OSError, ValueError):
        return True
    return True


def _file_ref(path: Path) -> str:
    """A ``repo:latest`` made from a file or directory name, for ``push FILE`` without ``--as``."""
    name = re.sub(r"[^a-z0-9]+", "-", path.name.removesuffix(".tar").lower()).strip("-")
    return f"{name if len(name) >= 2 else 'image'}:latest"


async def _check_sources(sources: Sequence[str], ref: str | None, docker_host: str | None) -> None:
    """Refuse a bad SOURCE or ``--as`` before anything is made, as the library refuses options.

    The library checks them when the push starts, by which time the registry's
    bring-up is under way; here, with nothing to overlap, the check comes first:
    a local image is looked for in the engine (one request).
    """
    if ref is not None:
        _reference.parse(ref)
    images = []
    for source in sources:
        if is_file(source):
            _source.check(source)
        else:
            images.append(_reference.local_image(source))
    if images:
        address = await find_engine_address(None, docker_host)
        async with open_engine(None, address, request_timeout=CHECK_TIMEOUT) as engine:
            for image in images:
                if not await engine.has_image(image):
                    raise ImageNotFoundError(image)


async def _push_source(
    registry: Registry, source: str, ref: str | None, output: Output
) -> PushResult:
    path = Path(source)
    output.status(f"pushing {source}")
    on_log = functools.partial(output.push_line, registry.pusher)
    on_progress = output.progress
    if is_file(source):
        reference = ref or _file_ref(path)
        return await registry.push(path, reference, on_log=on_log, on_progress=on_progress)
    return await registry.push_image(source, ref, on_log=on_log, on_progress=on_progress)


def _endpoint_fields(endpoints: Endpoints) -> dict[str, Any]:
    """What ``serve`` prints of the endpoints: the CA as its file, not its bytes."""
    fields = asdict(endpoints)
    del fields["ca_certificate"]
    fields["ca_file"] = None if endpoints.ca_file is None else str(endpoints.ca_file)
    return fields


def _push_fields(result: PushResult) -> dict[str, str]:
    return {"ref": result.ref, "digest_ref": result.digest_ref, "digest": result.digest}


async def _push(args: argparse.Namespace, output: Output) -> int:
    await _check_options(args)
    await _check_sources([args.source], args.ref, args.docker_host)
    async with ephemeral_registry(**_registry_options(args)) as registry:
        output.status("bringing up the registry")
        result = await _push_source(registry, args.source, args.ref, output)
        if not args.command:
            output.result(_push_fields(result))
            return 0
        endpoints = await registry.ready()
        values = {
            **_push_fields(result),
            "pull_endpoint": endpoints.pull_endpoint,
            "ca_file": "" if endpoints.ca_file is None else str(endpoints.ca_file),
        }
        command = [fill(part, values) for part in args.command]  # checked by main()
        output.status(f"running {' '.join(command)}")
        output.done_with_status()
        try:
            done = await anyio.run_process(
                command, check=False, stdout=None, stderr=None, env=_command_env(args)
            )
        except FileNotFoundError:
            output.error(f"command not found: {command[0]}")
            return EXIT_NOT_FOUND
        except PermissionError as exc:  # not executable, or a PATH directory is not readable
            output.error(f"cannot run {command[0]}: {exc.strerror}")
            return EXIT_CANNOT_RUN
        return done.returncode


async def _serve(args: argparse.Namespace, output: Output) -> int:
    await _check_options(args)
    await _check_sources(args.push, None, args.docker_host)
    async with ephemeral_registry(**_registry_options(args)) as registry:
        output.status("bringing up the registry")
        endpoints = await registry.ready()
        output.result({"session": registry.session_id, **_endpoint_fields(endpoints)})
        for source in args.push:
            output.result(_push_fields(await _push_source(registry, source, None, output)))
        output.status(f"serving at {endpoints.pull_endpoint}; Ctrl-C to remove it")
        await anyio.sleep_forever()
    return 0  # not reached: only a signal ends serve


def _leftover_fields(leftover: Leftover) -> dict[str, Any]:
    return asdict(leftover)


async def _prune(args: argparse.Namespace, output: Output) -> int:
    if args.all:
        found = await find_leftovers(
            all_owners=True,
            sessions=args.sessions,
            docker_host=args.docker_host,
            backend=args.backend,
            namespace=args.namespace,
        )
        if not found:
            output.status("nothing labelled by ephemeral-registry")
            return 0
        output.status(f"will remove every resource labelled by ephemeral-registry ({len(found)}):")
        for leftover in found:
            output.status(f"  {leftover.kind} {leftover.name} (owner pid {leftover.owner_pid})")
    removed = await sweep(
        all_owners=args.all,
        sessions=args.sessions,
        docker_host=args.docker_host,
        backend=args.backend,
        namespace=args.namespace,
    )
    for leftover in removed:
        output.result(_leftover_fields(leftover))
    if not removed and not args.all:
        output.status("no leftovers of dead processes")
    return 0


async def _run(command: Callable[[], Awaitable[int]], output: Output) -> int:
    """Run ``command``; turn SIGINT and SIGTERM into its cancellation, errors into exit codes."""
    received: list[int] = []
    code = 0
    async with anyio.create_task_group() as tg:

        async def watch_signals(*, task_status: anyio.abc.TaskStatus[None]) -> None:
            with anyio.open_signal_receiver(*SIGNALS) as signals:
                task_status.started()
                async for signum in signals:
                    received.append(signum)
                    output.status(f"got {signal.Signals(signum).name}: removing everything")
                    tg.cancel_scope.cancel()
                    return

        await tg.start(watch_signals)
        try:
            code = await command()
        except InvalidArgumentError as exc:  # bad input: a SOURCE, --as, an option's value
            output.error(str(exc))
            code = EXIT_USAGE
        except EphemeralRegistryError as exc:
            output.error(str(exc))
            code = EXIT_ERROR
        tg.cancel_scope.cancel()
    output.done_with_status()
    if received:
        return 128 + received[0]
    return code


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="results as JSON lines on stdout")
    common.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    BY_NAME["docker_host"].add_to(common.add_argument, "--docker-host", "-H")  # prune's too
    for name in ("backend", "namespace"):  # prune's too
        BY_NAME[name].add_to(common.add_argument, BY_NAME[name].flag_name)
    images = argparse.ArgumentParser(add_help=False)
    for option in OPTIONS:
        if option.flag and option.name not in ("docker_host", "backend", "namespace"):
            option.add_to(images.add_argument, option.flag_name)

    top = argparse.ArgumentParser(
        prog="ephemeral-registry",
        description="A throwaway OCI registry: push an image, hand its reference to a converter.",
        epilog="Exit status: 0 ok; the COMMAND's own status; 1 error; 2 usage (a bad option,"
        " SOURCE or --as); 127 COMMAND not found; 130 after SIGINT, 143 after SIGTERM (after"
        " everything is removed).",
    )
    top.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = top.add_subparsers(dest="name", required=True, metavar="COMMAND")
    push = commands.add_parser(
        "push",
        parents=[common, images],
        help="push a local image, tarball or OCI layout; run COMMAND with its reference",
        usage="ephemeral-registry push [options] SOURCE [-- COMMAND ...]",
        description="Bring up a registry, push SOURCE, run COMMAND with {ref}, {digest_ref},"
        " {digest}, {pull_endpoint} and {ca_file} (with --tls) replaced, then remove everything."
        " A literal brace in COMMAND is written {{ or }}; any other brace is refused before"
        " anything is made. Without COMMAND, print the references.",
    )
    push.add_argument(
        "source", metavar="SOURCE", help="a local image name, a tarball or an OCI layout"
    )
    push.add_argument("--as", dest="ref", metavar="REPO:TAG", help="the reference to push as")
    # COMMAND is split off at "--" by main(), so that options may follow SOURCE.
    push.set_defaults(command=[])
    serve = commands.add_parser(
        "serve",
        parents=[common, images],
        help="bring up a registry, print its endpoints, keep it up until Ctrl-C",
    )
    serve.add_argument(
        "--push",
        action="append",
        default=[],
        metavar="SOURCE",
        help="push SOURCE first (repeatable)",
    )
    prune = commands.add_parser(
        "prune",
        parents=[common],
        help="remove what dead processes left behind",
        description=(
            "Remove the containers, networks and temporary directories whose owner process is gone."
        ),
    )
    prune.add_argument(
        "--all",
        action="store_true",
        help="remove everything this library labelled, whoever owns it",
    )
    prune.add_argument(
        "--session",
        action="append",
        dest="sessions",
        metavar="ID",
        help="only this session's resources, e.g. a registry kept for debugging (repeatable)",
    )
    return top


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in argv:
        argv, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    args = parser().parse_args(argv)
    if command:
        if args.name != "push":
            parser().error("only push takes a COMMAND after --")
        args.command = command
    output = Output(json_output=args.json, quiet=args.quiet)
    problem = _usage_problem(args)
    if problem is not None:
        output.error(problem)
        return EXIT_USAGE
    commands = {"push": _push, "serve": _serve, "prune": _prune}
    return anyio.run(_run, lambda: commands[args.name](args, output), output)


def entry_point() -> None:
    sys.exit(main())
