"""The watch on a running registry: its exit told to the pushes, and its own errors
picked out of its log for a push's PushError."""

from __future__ import annotations

import anyio
import pytest

from ephemeral_registry import DockerEngineError, Endpoints, PushError, RegistryNotReadyError
from ephemeral_registry._running import Running
from ephemeral_registry._session import Session
from ephemeral_registry._types import ContainerState
from ephemeral_registry._watch import REGISTRY_ERROR_LINES, Watch, _server_error

PAYLOAD = (
    'time="2026-11-28T13:44:38Z" level=error msg="unknown error reading request payload: write'
    ' /dev/shm/registry/x/data: no space left on device" go.version=go1.19.8'
    " http.request.method=PATCH"
)


def test_a_server_side_error_gives_its_message() -> None:
    assert _server_error(PAYLOAD) == (
        "unknown error reading request payload: write /dev/shm/registry/x/data:"
        " no space left on device"
    )


def test_quotes_inside_the_message_are_unescaped() -> None:
    line = 'level=error msg="bad \\"name\\" given" go.version=1 http.response.status=500'
    assert _server_error(line) == 'bad "name" given'


def test_answers_to_client_mistakes_and_other_levels_are_left_out() -> None:
    assert _server_error('level=error msg="blob unknown" http.response.status=404') is None
    assert _server_error('level=info msg="listening on [::]:5000"') is None


class _Engine:
    """Answers the three questions the watch asks, about one container."""

    def __init__(self, logged: tuple[str, ...] = (), state: ContainerState | None = None) -> None:
        self.logged = logged
        self.unreadable: DockerEngineError | None = None
        self.state_now = state or ContainerState("running", None, "")
        self.exits = anyio.Event()

    async def tail_logs(self, container_id: str, lines: int) -> tuple[str, ...]:
        if self.unreadable is not None:
            raise self.unreadable
        return self.logged[-lines:]

    async def state(self, container_id: str) -> ContainerState:
        return self.state_now

    async def wait(self, container_id: str) -> int:
        await self.exits.wait()
        return self.state_now.exit_code or 0


def _watch(engine: _Engine, *, running: bool = True) -> Watch:
    session = Session.new(auth=False)
    session.created.registry = "registry-id"

    async def up() -> Running:
        if not running:
            raise RegistryNotReadyError(
                "it never answered", image="registry", url=None, state=None, logs=()
            )
        return Running(Endpoints(session.name, "push:5000", "127.0.0.1:1"), "registry-id", None)

    return Watch(engine, session, up)  # type: ignore[arg-type]  # the questions it asks


FAILURE = PushError("a/b:c", "the connection was closed", exit_code=None, output=("one line",))


@pytest.mark.anyio
async def test_a_failed_push_gets_the_registrys_last_error_lines() -> None:
    """Only errors of its own, the last REGISTRY_ERROR_LINES of them, after the push's lines."""
    errors = [f'level=error msg="disk full {n}"' for n in range(REGISTRY_ERROR_LINES + 2)]
    engine = _Engine(('level=info msg="up"', *errors, "level=error http.response.status=404"))
    failure = await _watch(engine).with_registry_errors(FAILURE)
    kept = [f"registry: disk full {n}" for n in range(2, REGISTRY_ERROR_LINES + 2)]
    assert failure.output == ("one line", *kept)
    assert (failure.ref, failure.reason, failure.exit_code) == (FAILURE.ref, FAILURE.reason, None)


@pytest.mark.anyio
async def test_a_registry_that_logged_no_error_leaves_the_failure_as_it_is() -> None:
    assert await _watch(_Engine(('level=info msg="up"',))).with_registry_errors(FAILURE) is FAILURE
    unreadable = _Engine()
    unreadable.unreadable = DockerEngineError("read the logs", 404, "gone")
    assert await _watch(unreadable).with_registry_errors(FAILURE) is FAILURE


@pytest.mark.anyio
async def test_the_registrys_exit_is_told_to_the_pushes() -> None:
    """Once it is up, its exit (out of memory, say) is set in ``exited``, and said at once."""
    engine = _Engine()
    watch = _watch(engine)
    assert await watch.exit_now() is None
    async with anyio.create_task_group() as tg:
        tg.start_soon(watch.run)
        await anyio.wait_all_tasks_blocked()
        assert not watch.exited.done
        engine.state_now = ContainerState("exited", 137, "", oom_killed=True)
        engine.exits.set()
    said = f"the registry container {watch._session.name} exited with code 137 (out of memory)"
    assert await watch.exited.get() == said
    assert await watch.exit_now() == said


@pytest.mark.anyio
async def test_a_registry_that_never_came_up_is_not_watched() -> None:
    engine = _Engine()
    watch = _watch(engine, running=False)
    with anyio.fail_after(1):
        await watch.run()
    assert not watch.exited.done
