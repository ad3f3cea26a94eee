"""The public API: a sorted, complete __all__, and one exception tree."""

from __future__ import annotations

import functools
import inspect
import re
import subprocess
import sys

import ephemeral_registry


def test_all_is_sorted_and_complete() -> None:
    """Every public name is in __all__, and __all__ is sorted."""
    public = {
        name
        for name in dir(ephemeral_registry)
        if name.isidentifier()
        and not name.startswith("_")
        and not inspect.ismodule(getattr(ephemeral_registry, name))
    }
    assert set(ephemeral_registry.__all__) == public
    assert ephemeral_registry.__all__ == sorted(ephemeral_registry.__all__, key=_isort_order)


def _isort_order(name: str) -> tuple[int, str]:
    """Constants, then classes, then functions: the order ruff's RUF022 keeps."""
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_every_error_derives_from_the_root_and_says_when_it_is_raised() -> None:
    """One root, and a docstring for each error."""
    errors = [
        value
        for value in map(functools.partial(getattr, ephemeral_registry), dir(ephemeral_registry))
        if inspect.isclass(value) and issubclass(value, BaseException)
    ]
    assert len(errors) >= 8
    for error in errors:
        assert issubclass(error, ephemeral_registry.EphemeralRegistryError)
        assert error.__doc__


def test_returned_values_are_frozen() -> None:
    """Values handed to callers cannot be changed under them."""
    endpoints = ephemeral_registry.Endpoints("n", "n:5000", "127.0.0.1:1")
    try:
        endpoints.network = "other"  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("Endpoints is mutable")
    timeouts = ephemeral_registry.Timeouts()
    try:
        timeouts.push = 1.0  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("Timeouts is mutable")


def test_importing_the_package_leaves_the_engine_and_http_clients_unloaded() -> None:
    """aiodocker, aiohttp and httpx load on first use of what needs them, not at import."""
    heavy = ("aiodocker", "aiohttp", "httpx")
    script = f"""
import sys, ephemeral_registry, ephemeral_registry.pytest_plugin
print(*[m for m in {heavy!r} if m in sys.modules])
ephemeral_registry.ephemeral_registry, ephemeral_registry.sweep
print(*[m for m in {heavy!r} if m in sys.modules])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    at_import, after_use = done.stdout.splitlines()
    assert at_import == ""
    assert after_use.split() == list(heavy)


def test_the_plugins_handle_has_the_registrys_methods() -> None:
    """RegistryHandle's methods take exactly what Registry's take, in the same order."""
    from ephemeral_registry.pytest_plugin import RegistryHandle

    for name in ("ready", "push", "push_image", "keep"):
        handle = inspect.signature(getattr(RegistryHandle, name))
        registry = inspect.signature(getattr(ephemeral_registry.Registry, name))
        assert handle == registry, name


def test_every_type_in_a_public_signature_is_public() -> None:
    """The aliases the signatures use (Pusher, OnLog, ...) are exported, for callers to name."""
    outside = {"str", "int", "float", "bool", "None", "os", "PathLike", "aiodocker", "Docker"}
    outside |= {"AsyncIterator", "Collection", "Iterable", "Sequence", "list", "tuple", "dict"}
    functions = [
        ephemeral_registry.ephemeral_registry,
        ephemeral_registry.sweep,
        ephemeral_registry.find_leftovers,
        *(
            getattr(ephemeral_registry.Registry, name)
            for name in ("ready", "push", "push_image", "keep")
        ),
    ]
    for function in functions:
        annotations = [str(value) for value in function.__annotations__.values()]
        for name in re.findall(r"[A-Za-z_][A-Za-z_0-9]*", " ".join(annotations)):
            assert name in outside or name in ephemeral_registry.__all__, (function, name)


def test_the_version_is_the_installed_distributions() -> None:
    """``__version__`` is what pip reports, so a bug report can name the release."""
    import importlib.metadata

    assert ephemeral_registry.__version__ == importlib.metadata.version("ephemeral-registry")
    assert "__version__" not in ephemeral_registry.__all__


def test_the_command_line_says_its_version() -> None:
    """``ephemeral-registry --version`` prints the version and exits 0, as tools do."""
    done = subprocess.run(
        [sys.executable, "-m", "ephemeral_registry", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"ephemeral-registry {ephemeral_registry.__version__}\n"
