"""Checking options before anything is created."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import logging
import math
import re
from pathlib import Path
from typing import Any

import pytest

from ephemeral_registry import (
    DEFAULT_CRANE_IMAGE,
    DEFAULT_REGISTRY_IMAGE,
    DEFAULT_RELAY_IMAGE,
    InvalidArgumentError,
    Timeouts,
)
from ephemeral_registry._discovery import EngineAddress
from ephemeral_registry._options import (
    OPTIONS,
    TIMEOUT_OPTIONS,
    Option,
    Options,
    check_against_engine,
    check_tunnel,
    given_flags,
    resolve,
)

GOOD: dict[str, Any] = {
    "registry_image": None,
    "crane_image": None,
    "pull": "missing",
    "host_ip": "127.0.0.1",
    "ready_timeout": 30.0,
    "cleanup_timeout": 15.0,
    "pull_timeout": 600.0,
    "request_timeout": 30.0,
    "push_timeout": 600.0,
    "max_concurrent_pushes": 4,
    "auth": False,
}


def resolved(**changes: Any) -> Options:
    return resolve(**{**GOOD, **changes})


def test_defaults_are_the_pinned_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without arguments or environment, the images are pinned by digest."""
    monkeypatch.delenv("EPHEMERAL_REGISTRY_REGISTRY_IMAGE", raising=False)
    monkeypatch.delenv("EPHEMERAL_REGISTRY_CRANE_IMAGE", raising=False)
    monkeypatch.delenv("EPHEMERAL_REGISTRY_RELAY_IMAGE", raising=False)
    options = resolved()
    assert options.registry_image == DEFAULT_REGISTRY_IMAGE
    assert options.crane_image == DEFAULT_CRANE_IMAGE
    assert options.relay_image == DEFAULT_RELAY_IMAGE
    for image in (DEFAULT_REGISTRY_IMAGE, DEFAULT_CRANE_IMAGE, DEFAULT_RELAY_IMAGE):
        assert "@sha256:" in image


def test_environment_overrides_defaults_and_arguments_override_both(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Arguments beat the environment, which beats the defaults."""
    monkeypatch.setenv("EPHEMERAL_REGISTRY_REGISTRY_IMAGE", "env/registry:2")
    monkeypatch.setenv("EPHEMERAL_REGISTRY_CRANE_IMAGE", "env/crane")
    monkeypatch.setenv("EPHEMERAL_REGISTRY_RELAY_IMAGE", "env/busybox")
    assert resolved().registry_image == "env/registry:2"
    assert resolved().crane_image == "env/crane"
    assert resolved().relay_image == "env/busybox"
    assert resolved(registry_image="arg/registry").registry_image == "arg/registry"
    assert resolved(crane_image="arg/crane").crane_image == "arg/crane"
    assert resolved(relay_image="arg/busybox").relay_image == "arg/busybox"


@pytest.mark.parametrize(
    ("argument", "value", "problem"),
    [
        ("pull", "sometimes", "missing"),
        ("pull", None, "missing"),
        ("host_ip", "localhost", "not a host name"),
        ("host_ip", "127.0.0.256", "IP address"),
        ("host_ip", "", "IP address"),
        ("ready_timeout", 0, "positive"),
        ("ready_timeout", -1, "positive"),
        ("cleanup_timeout", math.inf, "finite"),
        ("pull_timeout", math.nan, "positive"),
        ("request_timeout", "30", "number of seconds"),
        ("ready_timeout", True, "number of seconds"),
        ("registry_image", "", "empty"),
        ("crane_image", "crane image", "spaces"),
        ("relay_image", " busybox", "spaces"),
        ("push_timeout", 0.0, "positive"),
        ("max_concurrent_pushes", 0, "at least 1"),
        ("max_concurrent_pushes", 2.5, "whole number"),
        ("auth", "yes", "True or False"),
        ("layer_compression", None, '"gzip" or "none"'),
        ("layer_compression", "zstd", '"gzip" or "none"'),
        ("docker_host", "nonsense", "is not an engine address"),
        ("docker_host", "tcp://", "names no host"),
        ("timeouts", 30.0, "must be a Timeouts"),
    ],
)
def test_bad_arguments_are_refused(argument: str, value: object, problem: str) -> None:
    """Each bad value gives InvalidArgumentError (also a ValueError) naming the argument."""
    with pytest.raises(InvalidArgumentError) as caught:
        resolved(**{argument: value})
    assert caught.value.argument == argument
    assert caught.value.value == value or value != value  # NaN is not equal to itself
    assert problem in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("host_ip", "problem"),
    [
        ("::1%lo", "without a zone (%lo)"),
        ("fe80::1%eth0", "pass fe80::1"),
        (2130706433, "written as text"),  # ipaddress reads it as 127.0.0.1
        (b"\x7f\x00\x00\x01", "written as text"),  # and this too
        ("127.1", "not a host name"),
        (" 127.0.0.1", "not a host name"),
    ],
)
def test_a_host_ip_must_be_a_literal_address_without_a_zone(host_ip: object, problem: str) -> None:
    """A zone, or an address that is not written out, is refused up front: the engine would
    publish on none of them, and the bring-up would wait out ready_timeout."""
    with pytest.raises(InvalidArgumentError, match=re.escape(problem)) as caught:
        resolved(host_ip=host_ip)
    assert caught.value.argument == "host_ip"


def test_a_bad_image_in_the_environment_names_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The error points at where the bad value came from."""
    monkeypatch.setenv("EPHEMERAL_REGISTRY_CRANE_IMAGE", "two words")
    with pytest.raises(InvalidArgumentError) as caught:
        resolved()
    assert caught.value.argument == "EPHEMERAL_REGISTRY_CRANE_IMAGE"


def test_publishing_on_every_interface_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    """host_ip=0.0.0.0 works, but says the registry is open to the network."""
    with caplog.at_level(logging.WARNING, logger="ephemeral_registry"):
        assert resolved(host_ip="0.0.0.0").host_ip == "0.0.0.0"
    assert "every interface" in caplog.text


def test_loopback_publishing_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """The default stays quiet."""
    with caplog.at_level(logging.WARNING, logger="ephemeral_registry"):
        resolved()
    assert caplog.text == ""


def test_options_are_checked_against_where_the_engine_is() -> None:
    """A remote engine needs a host_ip not on loopback, unless a tunnel reaches it."""
    local = EngineAddress("unix:///var/run/docker.sock", "the default socket")
    remote = EngineAddress("tcp://build-box:2376", "DOCKER_HOST")
    check_against_engine(resolved(tunnel=True), local)
    check_against_engine(resolved(tunnel=True), remote)
    with pytest.raises(InvalidArgumentError, match="on another host") as caught:
        check_against_engine(resolved(), remote)
    assert caught.value.argument == "host_ip"
    check_against_engine(resolved(), local)
    check_against_engine(resolved(host_ip="10.0.0.5"), remote)


def test_auth_without_bcrypt_is_refused_before_anything_is_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """auth=True needs the [auth] extra; without it, a clear error at entry."""
    import sys

    monkeypatch.setitem(sys.modules, "bcrypt", None)
    with pytest.raises(InvalidArgumentError, match=r"ephemeral-registry\[auth\]"):
        resolved(auth=True)


@pytest.mark.parametrize(
    "url", ["unix:///var/run/docker.sock", "tcp://127.0.0.1:2375", "tcp://box.example:2376"]
)
def test_a_tunnel_is_had_for_every_engine_not_over_ssh(url: str) -> None:
    """Through the engine's API: nothing to check here, whether the engine is local or not."""
    check_tunnel(EngineAddress(url, "DOCKER_HOST"))


def test_a_tunnel_over_ssh_without_asyncssh_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SSH tunnel needs the [ssh] extra; without it, a clear error at entry."""
    import sys

    monkeypatch.setitem(sys.modules, "asyncssh", None)
    with pytest.raises(InvalidArgumentError, match=r"ephemeral-registry\[ssh\]") as caught:
        check_tunnel(EngineAddress("ssh://box", "DOCKER_HOST"))
    assert caught.value.argument == "tunnel"


def options_table() -> str:
    """The documentation's table of options, made from ``OPTIONS``."""
    rows = ["| option | default | meaning | command line |", "| --- | --- | --- | --- |"]
    for option in OPTIONS:
        choices = f" (`{'`, `'.join(option.choices)}`)" if option.choices else ""
        flag = f"`{option.flag_name}`" if option.flag else ""
        rows.append(
            f"| `{option.name}` | {option.default_said} | {option.help}{choices} | {flag} |"
        )
    return "\n".join(rows) + "\n"


TABLE_START = (
    "<!-- the options: made from _options.OPTIONS, checked by tests/unit/test_options.py -->\n"
)
TABLE_END = "<!-- end of the options -->\n"


def test_the_documentation_shows_every_option_as_defined() -> None:
    """The guide's table is the one OPTIONS makes (python -m tests.unit.test_options prints it)."""
    guide = (Path(__file__).parents[2] / "docs" / "guide.md").read_text()
    shown = guide.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    assert shown == options_table()


def test_ephemeral_registry_takes_exactly_the_options() -> None:
    """Its keyword arguments are OPTIONS, in order and with their defaults, and docker;
    its docstring says what each does; Options has a field for each but the *_timeout
    options, which its timeouts hold."""
    from ephemeral_registry import ephemeral_registry

    parameters = inspect.signature(ephemeral_registry).parameters
    assert [name for name in parameters if name != "docker"] == [o.name for o in OPTIONS]
    for option in OPTIONS:
        assert parameters[option.name].default == option.default, option.name
        assert parameters[option.name].kind is inspect.Parameter.KEYWORD_ONLY
        assert f"        {option.name}: " in (ephemeral_registry.__doc__ or ""), option.name
    fields = [field.name for field in dataclasses.fields(Options)]
    assert fields == [o.name for o in OPTIONS if o.name not in TIMEOUT_OPTIONS]


BAD: dict[str, Any] = {
    "registry_image": "",
    "crane_image": "two words",
    "relay_image": " busybox",
    "pull": "sometimes",
    "host_ip": "localhost",
    "timeouts": 30,
    "ready_timeout": -1,
    "cleanup_timeout": 0,
    "pull_timeout": math.inf,
    "request_timeout": "30",
    "push_timeout": -2.0,
    "max_concurrent_pushes": 0,
    "auth": "yes",
    "tls": 1,
    "tunnel": "no",
    "pusher": "docker",
    "layer_compression": "zstd",
    "sweep_leftovers": None,
    "docker_host": "nonsense",
    "backend": "swarm",
    "namespace": "Not_A_Namespace",
}
"""A value of each option that resolve() refuses."""


@pytest.mark.anyio
@pytest.mark.parametrize("name", [option.name for option in OPTIONS])
async def test_ephemeral_registry_hands_each_argument_to_the_checks(
    name: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Each argument reaches resolve() as itself: a bad value of it is refused at entry,
    named, before the engine (a socket that does not exist) is looked for."""
    from ephemeral_registry import ephemeral_registry

    assert set(BAD) == {option.name for option in OPTIONS}  # a bad value for each
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    with pytest.raises(InvalidArgumentError) as caught:
        async with ephemeral_registry(**{name: BAD[name]}):
            pytest.fail("entered with a bad argument")
    assert caught.value.argument == name


def test_timeouts_hold_one_limit_for_each_timeout_option() -> None:
    """Timeouts' fields are the *_timeout options' names; each option's default text is
    its field's default; an option sets its limit, the rest keep theirs."""
    assert {field.name for field in dataclasses.fields(Timeouts)} == set(TIMEOUT_OPTIONS.values())
    for name, field in TIMEOUT_OPTIONS.items():
        default = getattr(Timeouts(), field)
        assert f"{default:g} s" in next(o for o in OPTIONS if o.name == name).default_said
        assert getattr(resolved().timeouts, field) == default
        changed = resolve(**{name: 7}).timeouts
        assert changed == dataclasses.replace(Timeouts(), **{field: 7.0})


def test_timeouts_are_a_checked_value() -> None:
    """Timeouts(...) refuses a limit that is not a positive, finite number of seconds,
    naming the field; an int is kept as a float; it is frozen."""
    assert Timeouts(push=60).push == 60.0
    assert isinstance(Timeouts(push=60).push, float)
    for value in (0, -1, math.inf, math.nan, "5", True):
        with pytest.raises(InvalidArgumentError) as caught:
            Timeouts(ready=value)  # type: ignore[arg-type]
        assert caught.value.argument == "timeouts.ready"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Timeouts().ready = 1.0  # type: ignore[misc]


def test_timeouts_are_given_one_way_only() -> None:
    """timeouts= is the limits; with any *_timeout beside it, an InvalidArgumentError
    naming both."""
    limits = Timeouts(ready=5, push=50)
    assert resolve(timeouts=limits).timeouts is limits
    with pytest.raises(InvalidArgumentError, match="ready_timeout=, push_timeout=") as caught:
        resolve(timeouts=limits, ready_timeout=5.0, push_timeout=1.0)
    assert caught.value.argument == "timeouts"
    assert "dataclasses.replace(timeouts, ready=...)" in str(caught.value)


def test_layer_compression_is_gzip_by_default() -> None:
    """One default whichever the pusher: gzip, what every puller reads."""
    assert resolve(pusher="crane").layer_compression == "gzip"
    assert resolve(pusher="native").layer_compression == "gzip"


def test_resolve_gives_the_defaults_and_refuses_what_is_no_option() -> None:
    """Nothing given: every default; a name that is not an option is an InvalidArgumentError."""
    options = resolve()
    for option in OPTIONS:
        if option.env is None and option.name not in {"timeouts", *TIMEOUT_OPTIONS}:
            # The pusher's default depends on the backend: crane on the default one.
            default = "crane" if option.name == "pusher" else option.default
            assert getattr(options, option.name) == default, option.name
    assert options.timeouts == Timeouts()
    with pytest.raises(InvalidArgumentError) as caught:
        resolve(ready_timeuot=3)
    assert caught.value.argument == "ready_timeuot"


def _sample(option: Option) -> tuple[list[str], object]:
    """Flags that give the option a value, and the value they give."""
    if option.kind is bool:
        return [option.flag_name], True
    if option.choices:
        return [option.flag_name, option.choices[-1]], option.choices[-1]
    value = option.kind("2")
    return [option.flag_name, "2"], value


def test_the_command_line_offers_every_option() -> None:
    """``push`` and ``serve`` take a flag for each option, parsed to its type; an option
    not given is left to the library's default. ``--docker-host`` is ``-H`` too."""
    from ephemeral_registry._cli import parser

    flagged = [option for option in OPTIONS if option.flag]
    argv = [flag for option in flagged for flag in _sample(option)[0]]
    expected = {option.name: _sample(option)[1] for option in flagged}
    for command in ("push", "serve"):
        args = parser().parse_args([command, *argv, *(["img"] if command == "push" else [])])
        assert given_flags(functools.partial(getattr, args)) == expected
        unset = parser().parse_args([command, *(["img"] if command == "push" else [])])
        assert given_flags(functools.partial(getattr, unset)) == {}
    short = parser().parse_args(["prune", "-H", "unix:///x.sock"])
    assert short.docker_host == "unix:///x.sock"


class _Group:
    """What pytest_addoption is handed, recording the options added (pure logic)."""

    def __init__(self) -> None:
        self.added: dict[str, tuple[str, ...]] = {}

    def getgroup(self, name: str) -> _Group:
        return self

    def addoption(self, *names: str, dest: str | None = None, **kwargs: object) -> None:
        self.added[dest or names[0]] = names


def test_the_pytest_plugin_offers_every_option() -> None:
    """--ephemeral-registry-NAME for each option that has a flag, and no other name."""
    from ephemeral_registry.pytest_plugin import pytest_addoption

    group = _Group()
    pytest_addoption(group)  # type: ignore[arg-type]
    for option in OPTIONS:
        if option.flag:
            assert group.added[option.name] == (f"--ephemeral-registry{option.flag_name[1:]}",)
        else:
            assert option.name not in group.added


def test_the_plugin_checks_where_the_engine_is_only_for_options_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """At start-up, a remote engine with the default host_ip is left to a fixture's setup
    (the run may use no registry), but a loopback host_ip given for it is refused; an
    engine that cannot be found is left to the fixtures to report."""
    from ephemeral_registry.pytest_plugin import _check_options

    monkeypatch.setenv("DOCKER_HOST", "tcp://build-box:2376")
    _check_options({})
    _check_options({"host_ip": "10.0.0.5"})
    with pytest.raises(InvalidArgumentError, match="on another host"):
        _check_options({"host_ip": "127.0.0.1"})
    with pytest.raises(InvalidArgumentError, match="push_timeout"):
        _check_options({"push_timeout": -1.0})
    monkeypatch.setenv("DOCKER_HOST", "nonsense")
    _check_options({"tunnel": True})


if __name__ == "__main__":
    print(options_table(), end="")
