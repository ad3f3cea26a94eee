"""The pytest plugin, run by pytest itself (pytester), as a user's suite runs it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest

from ephemeral_registry import sweep

from ..support import testbed

pytestmark = pytest.mark.anyio

OPTIONS = (
    f"--ephemeral-registry-registry-image={testbed.REGISTRY3}",
    f"--ephemeral-registry-crane-image={testbed.CRANE}",
    "--ephemeral-registry-pull=never",
    "-p",
    "no:cacheprovider",
)

CONFTEST = """
import pytest

@pytest.fixture(scope="session")
def anyio_backend():
    return "asyncio"
"""

RECORDING_TESTS = """
import json, os, pytest

pytestmark = pytest.mark.anyio

@pytest.mark.parametrize("n", range(4))
async def test_push(ephemeral_registry, n):
    pushed = await ephemeral_registry.push_image("{image}", f"suite/app-{{n}}")
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    with open(os.path.join({out!r}, f"{{worker}}-{{n}}.json"), "w") as f:
        json.dump({{"session": ephemeral_registry.session_id, "ref": pushed.ref}}, f)
"""


def suite(pytester: pytest.Pytester, out: Path) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_suite=RECORDING_TESTS.format(image=testbed.SAMPLE, out=str(out)))


def recorded(out: Path) -> list[dict[str, str]]:
    return [json.loads(path.read_text()) for path in sorted(out.glob("*.json"))]


def test_the_session_fixture_is_one_ready_registry(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Every test of a session gets the same registry; it is gone after the run."""
    suite(pytester, tmp_path)
    result = pytester.runpytest_subprocess(*OPTIONS)
    result.assert_outcomes(passed=4)
    sessions = {entry["session"] for entry in recorded(tmp_path)}
    assert len(sessions) == 1
    assert testbed.labelled(f"{testbed.LABEL}={sessions.pop()}") == set()


def test_xdist_workers_each_get_their_own_registry(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Two workers, two registries, no collision, nothing left."""
    suite(pytester, tmp_path)
    result = pytester.runpytest_subprocess(*OPTIONS, "-n", "2")
    result.assert_outcomes(passed=4)
    entries = recorded(tmp_path)
    sessions = {entry["session"] for entry in entries}
    assert len(sessions) == 2
    assert len({entry["ref"].split("/")[0] for entry in entries}) == 2  # two endpoints
    for session in sessions:
        assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


def test_the_factory_gives_each_test_its_own(pytester: pytest.Pytester) -> None:
    """Registries from the factory differ, take options, and are removed after the test."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.anyio

        async def test_two(ephemeral_registry_factory):
            one = await ephemeral_registry_factory()
            two = await ephemeral_registry_factory(auth=True)
            assert one.session_id != two.session_id
            assert (await one.ready()).credentials is None
            assert (await two.ready()).credentials is not None
            print("SESSIONS", one.session_id, two.session_id)
        """
    )
    result = pytester.runpytest_subprocess(*OPTIONS, "-s")
    result.assert_outcomes(passed=1)
    sessions = next(line.split()[1:] for line in result.outlines if "SESSIONS" in line)
    for session in sessions:
        assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


async def test_keep_on_failure_leaves_the_registry_for_debugging(pytester: pytest.Pytester) -> None:
    """A failing test's registry stays; once the run's process is gone, sweep() removes it."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        """
        import pytest
        pytestmark = pytest.mark.anyio

        async def test_fails(ephemeral_registry_factory):
            registry = await ephemeral_registry_factory()
            print("SESSION", registry.session_id)
            assert False, "on purpose"
        """
    )
    result = pytester.runpytest_subprocess(*OPTIONS, "-s", "--ephemeral-registry-keep-on-failure")
    result.assert_outcomes(failed=1)
    session = next(line.split()[-1] for line in result.outlines if "SESSION" in line)
    kept = testbed.labelled(f"{testbed.LABEL}={session}")
    assert len(kept) == 2
    assert "kept for debugging" in "\n".join(result.errlines + result.outlines)
    removed = await sweep(sessions=[session])
    assert {leftover.id for leftover in removed} >= kept
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


PLUGIN_SUITE = """
import asyncio, json, os, pytest

{mark}

IMAGE = {image!r}
OUT = {out!r}


def record(name, **fields):
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(fields, f)


def loop_token():
    # Which loop runs this: a token of its own (an id() is reused once a loop is freed).
    loop = asyncio.get_running_loop()
    if not hasattr(loop, "test_token"):
        loop.test_token = os.urandom(8).hex()
    return loop.test_token


async def test_one_push_from_a_loop(ephemeral_registry):
    seen = []

    async def on_log(line):  # an async callback, run on the test's own loop
        seen.append((line.stream, str(line), asyncio.get_running_loop() is loop))

    loop = asyncio.get_running_loop()
    pushed = await ephemeral_registry.push_image(IMAGE, "suite/one", on_log=on_log)
    assert seen and all(on_test_loop for _, _, on_test_loop in seen)
    assert pushed.ref == ephemeral_registry.endpoints.pull_endpoint + "/suite/one:latest"
    record("one", loop=loop_token(), session=ephemeral_registry.session_id)


async def test_another_push_maybe_from_another_loop(ephemeral_registry):
    lines = []
    pushed = await ephemeral_registry.push_image(IMAGE, "suite/two", on_log=lines.append)
    assert any("digest" in line for line in lines)
    record("two", loop=loop_token(), session=ephemeral_registry.session_id,
           ref=pushed.ref)


async def test_a_registry_of_its_own(ephemeral_registry_factory):
    one, two = await asyncio.gather(ephemeral_registry_factory(), ephemeral_registry_factory())
    assert one.session_id != two.session_id
    pushed = await one.push_image(IMAGE, "own/app:1")
    assert pushed.ref.startswith(one.endpoints.pull_endpoint)
    record("factory", sessions=[one.session_id, two.session_id])


def test_a_synchronous_test_reads_the_endpoints(ephemeral_registry):
    assert ephemeral_registry.endpoints.pull_endpoint.startswith("127.0.0.1:")
"""

SETUPS = {
    # name: (the suite's marker line, pytest's arguments, whether tests share one loop)
    # With trio installed, anyio's plugin runs each test on every backend: this suite's
    # code is asyncio's (asyncio.gather), so it names its backend, as such suites do.
    # Trio tests: test_trio_tests_use_the_fixtures_as_asyncio_tests_do.
    "anyio": (
        "pytestmark = pytest.mark.anyio\n\n"
        "@pytest.fixture\ndef anyio_backend():\n    return 'asyncio'",
        ("-p", "no:asyncio"),
        False,
    ),
    "asyncio strict": ("pytestmark = pytest.mark.asyncio", ("--asyncio-mode=strict",), False),
    "asyncio auto": ("", ("--asyncio-mode=auto",), False),
    "asyncio auto, module loop": (
        "pytestmark = pytest.mark.asyncio(loop_scope='module')",
        ("--asyncio-mode=auto",),
        True,
    ),
    "asyncio strict, session loop": (
        "pytestmark = pytest.mark.asyncio(loop_scope='session')",
        ("--asyncio-mode=strict",),
        True,
    ),
}


@pytest.mark.parametrize("setup", SETUPS)
def test_the_fixtures_work_under_every_async_plugin(
    pytester: pytest.Pytester, tmp_path: Path, setup: str
) -> None:
    """anyio's plugin, pytest-asyncio strict and auto, per-test and shared loops, sync tests."""
    mark, arguments, one_loop = SETUPS[setup]
    pytester.makepyfile(
        test_suite=PLUGIN_SUITE.format(mark=mark, image=testbed.SAMPLE, out=str(tmp_path))
    )
    result = pytester.runpytest_subprocess(*OPTIONS, *arguments)
    result.assert_outcomes(passed=4)
    one, two, factory = (
        json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "two", "factory")
    )
    assert one["session"] == two["session"]  # the session registry, shared across loops
    assert (one["loop"] == two["loop"]) is one_loop
    for session in [one["session"], *factory["sessions"]]:
        assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


def test_the_example_suite_passes(pytester: pytest.Pytester) -> None:
    """examples/pytest_suite, as its docstring says to run it."""
    example = Path(__file__).parents[3] / "examples" / "pytest_suite"
    for path in example.glob("*.py"):
        pytester.makefile(path.suffix, **{path.stem: path.read_text()})
    result = pytester.runpytest_subprocess(*OPTIONS)
    result.assert_outcomes(passed=3)


NATIVE_TEST = """
import pytest

pytestmark = pytest.mark.anyio

async def test_push(ephemeral_registry):
    lines = []
    await ephemeral_registry.push_image("{image}", "plugin/native", on_log=lines.append)
    assert any(line.startswith("pushed blob: sha256:") for line in lines), lines
    lines.clear()
    await ephemeral_registry.push_image("{image}", "plugin/crane", on_log=lines.append,
                                        pusher="crane")
    assert not any(line.startswith("pushed blob: sha256:") for line in lines), lines
"""


def test_the_pusher_option_chooses_the_native_pusher(pytester: pytest.Pytester) -> None:
    """--ephemeral-registry-pusher=native; a test may still ask for crane per call."""
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_native=NATIVE_TEST.format(image=testbed.SAMPLE))
    result = pytester.runpytest_subprocess(*OPTIONS, "--ephemeral-registry-pusher=native")
    result.assert_outcomes(passed=1)


BAD_OPTIONS = {
    # name: (pytest's arguments, the environment, an ini file's addopts, what the error says)
    "a negative push timeout": (
        ["--ephemeral-registry-push-timeout", "-1"],
        {},
        "",
        "--ephemeral-registry-push-timeout=-1.0: must be a positive, finite number of seconds",
    ),
    "an endless push timeout": (
        ["--ephemeral-registry-push-timeout=inf"],
        {},
        "",
        "--ephemeral-registry-push-timeout=inf: must be a positive, finite",
    ),
    "a host name": (
        ["--ephemeral-registry-host-ip=localhost"],
        {},
        "",
        "--ephemeral-registry-host-ip='localhost': must be an IP address",
    ),
    "an address with a zone": (
        ["--ephemeral-registry-host-ip=::1%lo"],
        {},
        "",
        "--ephemeral-registry-host-ip='::1%lo': must be an address without a zone",
    ),
    "a space in an image's variable": (
        [],
        {"EPHEMERAL_REGISTRY_REGISTRY_IMAGE": "two words"},
        "",
        "ephemeral-registry: EPHEMERAL_REGISTRY_REGISTRY_IMAGE='two words': an image reference",
    ),
    "a bad value in the ini file's addopts": (
        [],
        {},
        "--ephemeral-registry-max-concurrent-pushes=0",
        "--ephemeral-registry-max-concurrent-pushes=0: must be a whole number, at least 1",
    ),
}

USING_THE_FIXTURES = """
def test_session(ephemeral_registry):
    pass

async def test_factory(ephemeral_registry_factory):
    await ephemeral_registry_factory()

def test_none():
    pass
"""


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_bad_options_are_a_usage_error_before_any_test_or_engine_call(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, case: str
) -> None:
    """From the command line, addopts or the environment, a bad option is pytest's usage
    error at start-up, checked by ephemeral_registry()'s rules: no test runs, no traceback,
    and the engine (a socket that only listens) is never connected to."""
    arguments, environment, addopts, message = BAD_OPTIONS[case]
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if addopts:
        pytester.makeini(f"[pytest]\naddopts = {addopts}\n")
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_suite="import pytest\npytestmark = pytest.mark.anyio\n" + USING_THE_FIXTURES
    )
    with socket.socket(socket.AF_UNIX) as engine:
        engine.bind(str(tmp_path / "engine.sock"))
        engine.listen()
        monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'engine.sock'}")
        result = pytester.runpytest_subprocess(
            "-p", "no:cacheprovider", "--ephemeral-registry-request-timeout=2", *arguments
        )
        engine.setblocking(False)
        with pytest.raises(BlockingIOError):
            engine.accept()  # no connection waits: the engine was never asked anything
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    # One error line (a dependency's own warnings may come before it, as pytest-asyncio's
    # at its floor).
    errors = [line for line in result.errlines if line.startswith("ERROR:")]
    assert len(errors) == 1, result.errlines
    assert f"ERROR: {message}" in errors[0]
    output = "\n".join(result.outlines + result.errlines)
    assert "Traceback" not in output
    assert "test_session" not in output  # nothing was collected, nothing set up


TRIO_AND_ASYNCIO_TESTS = """
import json, os, pytest
import anyio

pytestmark = pytest.mark.anyio

@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request):
    return request.param

async def test_push(ephemeral_registry, ephemeral_registry_factory, anyio_backend):
    lines = []

    async def on_log(line):
        await anyio.sleep(0)  # an await of the test's own loop, trio's or asyncio's
        lines.append(str(line))

    pushed = await ephemeral_registry.push_image(
        "{image}", f"suite/{{anyio_backend}}", pusher="crane", on_log=on_log
    )
    own = await ephemeral_registry_factory()
    again = await own.push_image("{image}", "suite/own", pusher="native")
    with anyio.move_on_after(0.05):  # a cancelled await cancels the push on the plugin's loop
        await own.push_image("{image}", "suite/cancelled", pusher="crane")
    with open(os.path.join({out!r}, anyio_backend + ".json"), "w") as f:
        json.dump(
            {{"sessions": [ephemeral_registry.session_id, own.session_id],
              "refs": [pushed.ref, again.ref], "lines": len(lines)}},
            f,
        )
"""


def test_trio_tests_use_the_fixtures_as_asyncio_tests_do(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    """Under anyio's plugin with the trio backend: pushes, on_log on the test's loop,
    a factory's registry, a cancelled push; then nothing is left."""
    pytester.makepyfile(
        test_suite=TRIO_AND_ASYNCIO_TESTS.format(image=testbed.SAMPLE, out=str(tmp_path))
    )
    result = pytester.runpytest_subprocess(*OPTIONS)
    result.assert_outcomes(passed=2)
    for backend in ("asyncio", "trio"):
        entry = json.loads((tmp_path / f"{backend}.json").read_text())
        assert entry["refs"][0].endswith(f"/suite/{backend}:latest")
        assert entry["lines"] > 0  # crane's output reached the trio test's callback
        for session in entry["sessions"]:
            assert testbed.labelled(f"{testbed.LABEL}={session}") == set()
