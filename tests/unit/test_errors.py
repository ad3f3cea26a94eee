"""The exception tree: its contracts, pickling, and its one drawing."""

from __future__ import annotations

import concurrent.futures
import inspect
import multiprocessing
import pickle
import re
from pathlib import Path

import pytest

import ephemeral_registry
from ephemeral_registry import (
    AsyncioRequiredError,
    CleanupError,
    ContainerState,
    DockerEngineError,
    DockerUnavailableError,
    EngineError,
    EngineTimeoutError,
    EphemeralRegistryError,
    ExportError,
    ForbiddenError,
    ImageNotFoundError,
    ImagePullError,
    InvalidArgumentError,
    InvalidReferenceError,
    InvalidSourceError,
    LogLine,
    PushError,
    PushTimeoutError,
    RegistryClosedError,
    RegistryNotReadyError,
    RegistryUnreachableError,
    _errors,
)

DOCS = Path(__file__).parents[2] / "docs"

PUBLIC_ERRORS = {
    value
    for value in (getattr(ephemeral_registry, name) for name in ephemeral_registry.__all__)
    if inspect.isclass(value) and issubclass(value, BaseException)
}

STATE = ContainerState("exited", 137, "killed", oom_killed=True)
OUTPUT = (LogLine("pushing layer", "stderr"), LogLine("done", "stdout"))

EXAMPLES: dict[type[EphemeralRegistryError], EphemeralRegistryError] = {
    error.__class__: error
    for error in (
        EphemeralRegistryError("something failed"),
        AsyncioRequiredError("ephemeral_registry()", "trio"),
        InvalidArgumentError("push_timeout", -1.0, "must be a positive number"),
        InvalidReferenceError("UPPER", "must be lower case"),
        InvalidSourceError(Path("/no/such.tar"), "does not exist"),
        EngineError("the engine failed"),
        DockerUnavailableError(
            "unix:///var/run/docker.sock",
            "connection refused",
            tried=("DOCKER_HOST", "/var/run/docker.sock"),
            advice="Start it.",
        ),
        DockerEngineError("start the container c0ffee", 500, "no space left"),
        ForbiddenError(
            "create the Secret ephemeral-registry-c0ffee",
            'secrets is forbidden: User "ci" cannot create resource "secrets" in API group ""'
            ' in the namespace "builds"',
            user="ci",
            verb="create",
            resource="secrets",
            namespace="builds",
        ),
        ImagePullError("registry:3", "timeout", option="registry_image", env="REGISTRY_IMAGE"),
        EngineTimeoutError("unix:///run/docker.sock", "pull registry:3", 1.5, "pull_timeout"),
        ExportError("app:1", "the stream broke off"),
        ImageNotFoundError("app:1", "never", platform="linux/arm64", available=("linux/amd64",)),
        RegistryNotReadyError(
            "it exited", image="registry:3", url="http://127.0.0.1:1", state=STATE, logs=("a",)
        ),
        RegistryUnreachableError(
            "127.0.0.1:1",
            "connection refused",
            image="registry:3",
            url="http://127.0.0.1:1",
            state=None,
            logs=(),
        ),
        RegistryClosedError(),
        PushError("app:1", "crane exited with code 1", exit_code=1, output=OUTPUT),
        PushTimeoutError("app:1", "too slow", limit=2.5, stage="export", output=OUTPUT),
        CleanupError(("container c0ffee", "network n"), "not done within 2 s"),
    )
}


def test_every_public_error_has_an_example_here() -> None:
    """The tests below cover every public error: a new one must be added to EXAMPLES."""
    assert set(EXAMPLES) == PUBLIC_ERRORS


@pytest.mark.parametrize("cls", sorted(EXAMPLES, key=str))
def test_every_public_error_survives_pickle(cls: type[EphemeralRegistryError]) -> None:
    """A round trip keeps the type, the message, every attribute, and the notes."""
    original = EXAMPLES[cls]
    original.add_note("while pushing app:1")
    try:
        copy = pickle.loads(pickle.dumps(original))
    finally:
        del original.__notes__
    assert type(copy) is cls
    assert str(copy) == str(EXAMPLES[cls])
    assert copy.args == EXAMPLES[cls].args
    assert vars(copy) == {**vars(EXAMPLES[cls]), "__notes__": ["while pushing app:1"]}
    if isinstance(copy, PushError):  # a line keeps the stream it came from
        assert [(type(line), getattr(line, "stream", None)) for line in copy.output] == [
            (LogLine, "stderr"),
            (LogLine, "stdout"),
        ]


def _raise_in_worker(error: EphemeralRegistryError) -> None:
    raise error


def test_an_error_raised_in_a_process_pool_comes_back_as_itself() -> None:
    """What the issue met: a PushTimeoutError raised in a worker process is re-raised here."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(_raise_in_worker, EXAMPLES[PushTimeoutError])
        with pytest.raises(PushTimeoutError) as caught:
            future.result(timeout=60)
    assert (caught.value.limit, caught.value.stage) == (2.5, "export")
    assert caught.value.output == OUTPUT


def test_every_push_timeout_is_a_push_error_and_a_timeout_error() -> None:
    """`except TimeoutError` catches every time limit, a push's and the engine's."""
    assert issubclass(PushTimeoutError, PushError)
    assert issubclass(PushTimeoutError, TimeoutError)
    assert issubclass(EngineTimeoutError, TimeoutError)
    timeouts = {cls for cls in PUBLIC_ERRORS if issubclass(cls, TimeoutError)}
    assert timeouts == {PushTimeoutError, EngineTimeoutError}


def test_the_engines_failures_are_one_group() -> None:
    """EngineError holds what the engine fails at: unreachable, refusing, pulling, too slow."""
    group = {cls for cls in PUBLIC_ERRORS if issubclass(cls, EngineError)}
    assert group == {
        EngineError,
        DockerUnavailableError,
        DockerEngineError,
        ForbiddenError,
        ImagePullError,
        EngineTimeoutError,
    }


# The tree, drawn once: in the docstring of _errors, which docs/errors.md renders.

LINE = re.compile(r"^(?P<prefix>[│ ]*)(?:[├└]── (?P<name>\w+))?(?P<text>.*)$")


def _drawn_tree() -> dict[str, tuple[str | None, str]]:
    """Each error the docstring draws: its parent there, and the text beside it (its
    lines joined)."""
    doc = _errors.__doc__
    assert doc is not None
    first, *lines = doc.split("```\n")[1].splitlines()
    root = first.split()[0]
    drawn: dict[str, tuple[str | None, str]] = {root: (None, first.removeprefix(root).strip())}
    path = [root]
    for line in lines:
        found = LINE.match(line)
        assert found is not None, line
        if found["name"] is None:  # the text of the last error, continued
            parent, text = drawn[path[-1]]
            drawn[path[-1]] = (parent, f"{text} {found['text'].strip()}")
            continue
        assert len(found["prefix"]) % 4 == 0, line
        del path[len(found["prefix"]) // 4 + 1 :]
        assert found["name"] not in drawn, f"{found['name']} is drawn twice"
        drawn[found["name"]] = (path[-1], found["text"].strip())
        path.append(found["name"])
    return drawn


def test_the_drawn_tree_is_the_class_hierarchy() -> None:
    """Every public error drawn once, under its own base, saying which built-ins it also is."""
    drawn = _drawn_tree()
    assert set(drawn) == {cls.__name__ for cls in PUBLIC_ERRORS}
    for cls in PUBLIC_ERRORS:
        parent, text = drawn[cls.__name__]
        ours = [base for base in cls.__bases__ if issubclass(base, EphemeralRegistryError)]
        builtins = {base.__name__ for base in cls.__bases__ if base not in ours}
        assert parent == (ours[0].__name__ if ours else None), cls
        assert len(ours) <= 1, cls
        assert set(re.findall(r"also an? (\w+)", text)) == builtins - {"Exception"}, cls


def test_the_drawn_tree_names_each_errors_attributes() -> None:
    """The attributes beside an error and its ancestors are exactly those it carries."""
    drawn = _drawn_tree()
    for cls, example in EXAMPLES.items():
        named: set[str] = set()
        for ancestor in cls.__mro__:
            if ancestor.__name__ in drawn:
                named |= set(re.findall(r"\.(\w+)", drawn[ancestor.__name__][1]))
        assert named == set(vars(example)), cls


def test_the_errors_page_renders_the_tree_instead_of_drawing_it() -> None:
    """docs/errors.md takes the tree from the docstring (mkdocstrings): no second copy."""
    page = (DOCS / "errors.md").read_text()
    assert "::: ephemeral_registry._errors" in page
    assert "├──" not in page
    assert "└──" not in page


def test_the_api_page_documents_every_public_error() -> None:
    """Each public error has its entry in the API reference."""
    page = (DOCS / "api.md").read_text()
    for cls in PUBLIC_ERRORS:
        assert f"::: ephemeral_registry.{cls.__name__}\n" in page, cls
