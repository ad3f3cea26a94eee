"""The ephemeral-registry command, run as a user or a script runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
from pathlib import Path

import anyio
import pytest

from ..support import testbed
from ..support.cli import ENV, cli
from ..support.engine_proxy import EngineProxy

pytestmark = pytest.mark.anyio


async def test_push_prints_the_references() -> None:
    """Without a command, push prints ref, digest_ref and digest, one per line."""
    code, out, err = await cli("push", testbed.SAMPLE)
    assert code == 0, err
    fields = dict(line.split(" ", 1) for line in out.splitlines())
    assert fields["ref"].endswith(f"/{testbed.SAMPLE}")
    assert fields["digest_ref"].endswith(fields["digest"])
    assert "crane stderr: " in err  # crane's lines, as they came


async def test_push_json_and_quiet_for_scripts() -> None:
    """--json prints one object; --quiet keeps stderr empty."""
    code, out, err = await cli(
        "push", "--json", "--quiet", "--as", "scripted/app:2", testbed.SAMPLE
    )
    assert code == 0
    assert err == ""
    result = json.loads(out)
    assert result["ref"].endswith("/scripted/app:2")
    assert result["digest"].startswith("sha256:")


async def test_push_runs_the_converter_and_passes_its_status_through() -> None:
    """{ref}, {digest_ref}, {digest} and {pull_endpoint} are replaced; the status is COMMAND's."""
    code, out, _ = await cli(
        "push", testbed.SAMPLE, "--", "sh", "-c", "echo $0 $1 $2 $3; exit 5",
        "{ref}", "{digest_ref}", "{digest}", "{pull_endpoint}",
    )  # fmt: skip
    assert code == 5
    ref, digest_ref, digest, endpoint = out.split()
    assert ref == f"{endpoint}/{testbed.SAMPLE}"
    assert digest_ref == f"{endpoint}/{testbed.SAMPLE.split(':')[0]}@{digest}"


async def test_push_with_tls_hands_the_command_its_ca_file() -> None:
    """--tls: {ca_file} is the CA's certificate, and the command pulls over HTTPS with it."""
    code, out, err = await cli(
        "push", "--tls", testbed.SAMPLE, "--", "sh", "-c",
        'skopeo inspect --cert-dir "$(dirname "$0")" "docker://$1" >/dev/null && echo "$0"',
        "{ca_file}", "{digest_ref}",
    )  # fmt: skip
    assert code == 0, err
    ca_file = Path(out.strip())
    assert ca_file.name == "ca.crt"
    assert not ca_file.parent.exists()  # removed with the registry


async def test_push_a_tarball_file(tmp_path: Path) -> None:
    """A path is pushed as a file; its name makes the default reference."""
    tarball = tmp_path / "My_Image.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.SAMPLE)
    code, out, err = await cli("push", "--json", str(tarball))
    assert code == 0, err
    assert json.loads(out)["ref"].endswith("/my-image:latest")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["push", "ephemeral-registry-testbed/absent:1"], 1, "is not held by the Docker engine"),
        (["push", testbed.SAMPLE, "--as", "Bad Ref"], 2, "ref='Bad Ref'"),
        (["push", testbed.SAMPLE, "--host-ip", "localhost"], 2, "not a host name"),
        (["push", testbed.SAMPLE, "--", "no-such-converter-here"], 127, "command not found"),
        (["push", testbed.SAMPLE, "--", "/dev/null"], 126, "cannot run /dev/null"),
        (["push", testbed.SAMPLE, "--", "echo", "{nope}"], 2, "unknown placeholder {nope}"),
        (["push"], 2, "the following arguments are required: SOURCE"),
        (["launch"], 2, "invalid choice"),
        (["serve", "--", "echo"], 2, "only push takes a COMMAND"),
    ],
)
async def test_failures_have_documented_exit_codes(
    args: list[str], status: int, message: str
) -> None:
    """1 for a library error, 126 for a converter that cannot run, 127 for a missing one,
    2 for usage and bad input."""
    code, _, err = await cli(*args)
    assert code == status
    assert message in err


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["push", "ephemeral-registry-testbed/absent:1"], 1, "is not held by the Docker engine"),
        (["push", testbed.SAMPLE, "--as", "Bad Ref"], 2, "ref='Bad Ref'"),
        (["push", "notes.txt"], 2, "notes.txt"),
        (["serve", "--push", "ephemeral-registry-testbed/absent:1"], 1, "is not held"),
    ],
)
async def test_a_bad_source_is_refused_before_anything_is_made(
    args: list[str], status: int, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine is asked whether it holds the image, and nothing is created."""
    (tmp_path / "notes.txt").write_text("not an image\n")
    monkeypatch.chdir(tmp_path)
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        code, _, err = await cli(*args, "--docker-host", proxy.url)
    assert (code, message in err) == (status, True), err
    assert not [request for request in proxy.requests if request.startswith("POST")], proxy.requests


LONG_NAME = "x" * 300


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["push", testbed.SAMPLE, "--", "sh", "-c", "echo ${HOME}"], "placeholder {HOME}"),
        (["push", testbed.SAMPLE, "--", "{nope}"], "unknown placeholder {nope}"),
        (["push", testbed.SAMPLE, "--", "echo", "{"], "stray '{'"),
        (["push", f"/tmp/{LONG_NAME}.tar"], "File name too long"),
        (["push", LONG_NAME], "File name too long"),
        (["push", "./missing.tar"], "source='./missing.tar': no such file or directory"),
        (["serve", "--push", "/no/such/image.tar"], "no such file or directory"),
        (["push", "--push-timeout", "-1", testbed.SAMPLE], "push_timeout=-1.0"),
        (["push", "--push-timeout", "inf", testbed.SAMPLE], "push_timeout=inf"),
        (["push", "--host-ip", "::1%lo", testbed.SAMPLE], "without a zone"),
        (["serve", "--registry-image", "two words"], "registry_image='two words'"),
    ],
)
async def test_bad_input_is_one_line_and_exit_2_before_the_engine_is_asked(
    args: list[str], message: str, tmp_path: Path
) -> None:
    """A stray brace or unknown placeholder in COMMAND, a bad path or option value: one
    line on stderr, no traceback, exit 2, and not one request to the engine."""
    async with EngineProxy.running(tmp_path / "engine.sock") as proxy:
        code, out, err = await cli(args[0], "--docker-host", proxy.url, *args[1:])
    assert code == 2, err
    assert err.startswith("ephemeral-registry: ")
    assert err.count("\n") == 1, err
    assert message in err
    assert out == ""
    assert proxy.requests == []


async def test_doubled_braces_are_literal_braces_in_the_command() -> None:
    """{{ and }} reach COMMAND as single braces, beside a replaced placeholder."""
    code, out, err = await cli(
        "push", "--quiet", testbed.SAMPLE, "--", "sh", "-c", 'echo "$0"', "{{ref}}={ref}"
    )
    assert code == 0, err
    literal, ref = out.strip().split("=")
    assert literal == "{ref}"
    assert ref.endswith(f"/{testbed.SAMPLE}")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
async def test_serve_removes_everything_on_a_signal(signum: signal.Signals, status: int) -> None:
    """serve stays up until SIGINT or SIGTERM, then cleans up and exits 128+signal."""
    process = await anyio.open_process(
        [sys.executable, "-m", "ephemeral_registry", "serve", "--json", "--push", testbed.SAMPLE],
        env=ENV,
    )
    async with process:
        assert process.stdout is not None
        buffered = b""
        with anyio.fail_after(30):
            while buffered.count(b"\n") < 2:
                buffered += await process.stdout.receive()
        endpoints, pushed = (json.loads(line) for line in buffered.splitlines()[:2])
        session = endpoints["session"]
        assert len(testbed.labelled(f"{testbed.LABEL}={session}")) == 2
        assert pushed["ref"].startswith(endpoints["pull_endpoint"])
        process.send_signal(signum)
        with anyio.fail_after(20):
            assert await process.wait() == status
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


async def test_a_signal_during_a_push_removes_the_crane_container_too(tmp_path: Path) -> None:
    """SIGTERM while crane runs: the registry, crane and network are all gone; exit 143."""
    tarball = tmp_path / "sample.tar"
    await testbed.adocker("save", "-o", str(tarball), testbed.SAMPLE)
    env = {**ENV, "EPHEMERAL_REGISTRY_CRANE_IMAGE": testbed.CRANE_HANGS}
    process = await anyio.open_process(
        [sys.executable, "-m", "ephemeral_registry", "push", str(tarball)], env=env
    )
    async with process:
        assert process.stderr is not None
        seen = b""
        try:
            with anyio.fail_after(30):
                while b"crane: starting" not in seen:
                    seen += await process.stderr.receive()
            names = testbed.docker(
                "ps", "-a", "--filter", f"label={testbed.LABEL}", "--format", "{{.Names}}"
            )
            assert "-push-" in names, names
            session = names.split("-push-")[0].rsplit("-", 1)[1]
            process.send_signal(signal.SIGTERM)
            with anyio.fail_after(20):
                assert await process.wait() == 143
        except BaseException:
            process.kill()  # else leaving the block would wait for it forever
            print(seen.decode(errors="replace"))
            raise
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


async def test_python_dash_m_is_the_same_command() -> None:
    """`python -m ephemeral_registry --help` lists the commands and exit statuses."""
    code, out, _ = await cli("--help")
    assert code == 0
    for word in ("push", "serve", "prune", "130 after SIGINT"):
        assert word in out


@pytest.mark.parametrize("columns", [80, 200])
async def test_on_a_terminal_progress_is_one_live_line(columns: int) -> None:
    """With stderr on a terminal, progress rewrites one line in place, shorter than the
    terminal is wide (a line that wraps would scroll); results stay on stdout."""
    import fcntl
    import pty
    import struct
    import termios

    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    try:
        with anyio.fail_after(60):
            done = await anyio.run_process(
                [sys.executable, "-m", "ephemeral_registry", "push", testbed.SAMPLE],
                env=ENV,
                stderr=terminal,
                check=False,
            )
        os.close(terminal)
        terminal = -1
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(controller)
        if terminal >= 0:
            os.close(terminal)
    assert done.returncode == 0
    assert b"\r\x1b[K" in shown
    assert b"crane stderr: " in shown
    assert re.search(rb"push \[#+\] \d+\.\d/\d+\.\d MB", shown)  # the bar, full at the end
    assert b"\n" not in shown  # no scrolling lines: one line, rewritten
    shown_lines = shown.split(b"\r\x1b[K")
    longest = max(len(line.decode()) for line in shown_lines)
    assert longest <= columns - 1
    if columns == 80:
        assert longest == 79  # crane's digest line is longer: cut to fit
    assert all(line.decode().isprintable() for line in shown_lines)
    assert done.stdout.decode().startswith("ref ")


async def test_push_with_the_native_pusher() -> None:
    """--pusher native: the same references, the pusher's lines on stderr, no crane."""
    code, out, err = await cli("push", "--pusher", "native", "--as", "native/cli", testbed.SAMPLE)
    assert code == 0, err
    fields = dict(line.split(" ", 1) for line in out.splitlines())
    assert fields["ref"].endswith("/native/cli:latest")
    assert "native stderr: pushed blob: sha256:" in err
    assert "crane" not in err


async def test_the_command_reaches_the_engine_given_by_h() -> None:
    """COMMAND's DOCKER_HOST is -H's engine, the one pushed to (a docker in COMMAND finds
    the image there), over a DOCKER_HOST of the caller's that names none."""
    env = {**ENV, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    command = [sys.executable, "-m", "ephemeral_registry", "push", "--quiet", "-H"]
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [*command, testbed.ENGINE, testbed.SAMPLE, "--", "sh", "-c", 'echo "$DOCKER_HOST"'],
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stderr.decode()
    assert done.stdout.decode().strip() == testbed.ENGINE


async def test_prune_asks_the_engine_given_by_h_over_docker_host() -> None:
    """-H names prune's engine too, over a DOCKER_HOST that names none (it is passed to
    sweep(), not put into the environment); without -H, that DOCKER_HOST is the error."""
    env = {**ENV, "DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    command = [sys.executable, "-m", "ephemeral_registry", "prune"]
    with anyio.fail_after(60):
        given = await anyio.run_process([*command, "-H", testbed.ENGINE], env=env, check=False)
        unset = await anyio.run_process(command, env=env, check=False)
    assert given.returncode == 0, given.stderr.decode()
    assert unset.returncode == 1
    assert "/nonexistent/docker.sock" in unset.stderr.decode()
