"""The command line: its progress bar, its COMMAND's placeholders, its refusal of bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ephemeral_registry._cli import PLACEHOLDERS, check_command, fill, is_file, main, progress_line


def test_a_known_total_draws_a_bar_with_bytes_and_rate() -> None:
    line = progress_line(12_300_000, 45_600_000, 0.5, 79)
    assert line == "push [########----------------------] 12.3/45.6 MB 25 MB/s"


def test_an_unknown_total_shows_bytes_and_rate() -> None:
    assert progress_line(12_300_000, None, 2.0, 79) == "push 12.3 MB 6 MB/s"


@pytest.mark.parametrize("width", [10, 30, 40, 79])
def test_the_line_fits_the_terminal(width: int) -> None:
    assert len(progress_line(999_000_000, 1_000_000_000, 3.0, width)) <= width


def test_the_bar_is_full_at_the_end_and_no_time_gives_no_rate() -> None:
    assert progress_line(10, 10, 0.0, 79).startswith("push [" + "#" * 30 + "]")
    assert "MB/s" not in progress_line(10, 10, 0.0, 79)


VALUES = {"ref": "r:1", "digest_ref": "r@sha256:0", "digest": "sha256:0", "pull_endpoint": "h:5"}


@pytest.mark.parametrize(
    ("part", "filled"),
    [
        ("--from={ref}", "--from=r:1"),
        ("{pull_endpoint}/{digest}", "h:5/sha256:0"),
        ("{{ref}}", "{ref}"),
        ("{{{ref}}}", "{r:1}"),
        ("awk '{{print $1}}'", "awk '{print $1}'"),
        ("no braces", "no braces"),
    ],
)
def test_placeholders_are_replaced_and_doubled_braces_are_braces(part: str, filled: str) -> None:
    """{name} is its value; {{ and }} are literal braces, as in str.format."""
    assert fill(part, VALUES) == filled


@pytest.mark.parametrize(
    ("part", "named"),
    [
        ("echo ${HOME}", "unknown placeholder {HOME}"),
        ("{nope}", "unknown placeholder {nope}"),
        ("{}", "unknown placeholder {}"),
        ("{0}", "unknown placeholder {0}"),
        ("{ref!r}", "unknown placeholder {ref!r}"),
        ("{ref.upper}", "unknown placeholder {ref.upper}"),
        ("{", "stray '{'"),
        ("}", "stray '}'"),
        ("{ref", "stray '{'"),
        ("{{ref}", "stray '}'"),
    ],
)
def test_unknown_placeholders_and_stray_braces_are_named(part: str, named: str) -> None:
    """Each is a ValueError naming what is wrong and how to write a literal brace."""
    with pytest.raises(ValueError, match=re.escape(named)) as caught:
        check_command(["converter", part])
    assert "write a literal brace as" in str(caught.value)


def test_every_placeholder_the_command_replaces_is_known() -> None:
    """{ca_file} too: it is empty without --tls."""
    check_command([f"{{{name}}}" for name in PLACEHOLDERS])
    assert set(PLACEHOLDERS) == {*VALUES, "ca_file"}


def test_a_source_written_as_a_path_is_a_file_even_when_missing(tmp_path: Path) -> None:
    """/, ./, ../ and ~ start no image name; an existing path is a file; a name the
    system cannot look up is a file, for the source check to say why."""
    (tmp_path / "app").write_text("")
    for source in (
        "/no/such.tar",
        "./missing.tar",
        "../x",
        "~/x",
        "app.tar",
        ".",
        str(tmp_path / "app"),
    ):
        assert is_file(source), source
    assert is_file("x" * 300)  # ENAMETOOLONG
    assert is_file("a\0b")
    for source in ("alpine", "library/alpine:3.20", "registry.example:5000/app@sha256:0"):
        assert not is_file(source), source


def test_a_good_h_is_not_blamed_for_another_options_fault(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """-H is checked as an engine address alone: a bad image variable is named as itself
    (and only where it is used), not as --docker-host's fault."""
    monkeypatch.setenv("EPHEMERAL_REGISTRY_CRANE_IMAGE", "bad image")
    engine = f"unix://{tmp_path}/no-engine.sock"
    assert main(["push", "-H", engine, "app"]) == 2
    _, err = capsys.readouterr()
    assert "--docker-host" not in err
    assert "EPHEMERAL_REGISTRY_CRANE_IMAGE" in err or "crane_image" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["push", "app", "--", "sh", "-c", "echo ${HOME}"], "unknown placeholder {HOME}"),
        (["push", "app", "--", "{"], "stray '{'"),
        (["push", "-H", "nonsense", "app"], "--docker-host: 'nonsense' is not an engine address"),
        (["prune", "-H", "nonsense"], "--docker-host: 'nonsense' is not an engine address"),
        (["push", "--push-timeout", "-1", "app"], "push_timeout=-1.0: must be a positive"),
        (["push", "--push-timeout", "inf", "app"], "push_timeout=inf"),
        (["push", "--host-ip", "::1%lo", "app"], "without a zone"),
        (["serve", "--max-concurrent-pushes", "0"], "at least 1"),
        (["push", "./missing.tar"], "source='./missing.tar': no such file or directory"),
        (["push", "build/app.tar"], "source='build/app.tar': no such file or directory"),
        (["push", "/" + "x" * 300], "File name too long"),
        (["push", "image\0.tar"], "holds a NUL character"),
        (["push", "app", "--as", "Bad Ref"], "ref='Bad Ref'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2_before_the_engine_is_asked(
    argv: list[str],
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    """No traceback: one line on stderr; the engine (a socket that does not exist) is
    never asked anything, else the exit would be 1 with DockerUnavailableError."""
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1, err
    assert err.startswith("ephemeral-registry: ")
    assert message in err
