"""Integration tests: the real engine, the real registry, the real crane.

Every test under this folder is marked ``integration``: ``pytest -m "not integration"``
runs the rest with no engine.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest

from .support import testbed

HERE = Path(__file__).parent


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test collected under tests/integration, and only those."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session", autouse=True)
def _testbed_images() -> None:
    """Fail early, and say what to do, when the test bed is not set up."""
    missing = [
        image
        for image in testbed.ALL_IMAGES
        if not testbed.docker("image", "ls", "-q", image).strip()
    ]
    if missing:
        pytest.fail(f"test bed images missing: {missing}; run scripts/setup first")


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Fail a test that leaves a container or network it made; remove those, and only those."""
    before = testbed.labelled_by_this_run()
    yield
    leaked = testbed.labelled_by_this_run() - before
    if leaked:
        testbed.remove(sorted(leaked))
        pytest.fail(f"the test left {len(leaked)} labelled resources behind: {sorted(leaked)}")


@pytest.fixture(autouse=True)
def no_unclosed_answers() -> Iterator[None]:
    """Fail a test that leaves an engine's answer open, not whichever test comes later.

    An answer never closed holds its connection until the garbage collector
    finds it, which then warns (``Unclosed connection``): collecting here
    makes pytest report that warning on the test that made it.
    """
    yield
    gc.collect()


@pytest.fixture
async def tarball(tmp_path: Path) -> Path:
    """The sample image, as `docker save -o` writes it (mode 0600)."""
    path = tmp_path / "sample.tar"
    await testbed.adocker("save", "-o", str(path), testbed.SAMPLE)
    return path
