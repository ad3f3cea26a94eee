"""The pytest plugin, run by pytest itself (pytester), as a user's suite runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ephemeral_registry import sweep

from . import testbed

pytestmark = pytest.mark.anyio

OPTIONS = (
    f"--ephemeral-registry-image={testbed.REGISTRY2}",
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
        """
    )
    pytester.runpytest_subprocess(*OPTIONS).assert_outcomes(passed=1)
    assert testbed.labelled() == set()


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
    removed = await sweep()
    assert {leftover.id for leftover in removed} >= kept
    assert testbed.labelled(f"{testbed.LABEL}={session}") == set()


def test_the_example_suite_passes(pytester: pytest.Pytester) -> None:
    """examples/pytest_suite, as its docstring says to run it."""
    example = Path(__file__).parents[2] / "examples" / "pytest_suite"
    for path in example.glob("*.py"):
        pytester.makefile(path.suffix, **{path.stem: path.read_text()})
    result = pytester.runpytest_subprocess(*OPTIONS)
    result.assert_outcomes(passed=2)
