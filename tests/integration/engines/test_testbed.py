"""The test bed leaves the machine's default engine as it found it."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest

from ..support import testbed

pytestmark = pytest.mark.integration

DEFAULT_ENGINE = "unix:///var/run/docker.sock"
"""Debian's Docker 20.10, beside which the other engines of the test bed run."""


def default_docker(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["docker", "-H", DEFAULT_ENGINE, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done.stdout


def test_the_default_engine_still_runs_and_builds_on_its_default_bridge(tmp_path: Path) -> None:
    """After the whole set-up (Docker 29 and Podman beside it), the default engine's docker0
    is there, and `docker run` and `docker build` on its default bridge work."""
    assert Path("/sys/class/net/docker0").exists(), "the default engine's docker0 is gone"
    shell = ["--entrypoint", "/bin/busybox", testbed.REGISTRY_LATE]
    address = default_docker("run", "--rm", "--network", "bridge", *shell, "hostname", "-i")
    assert address.strip(), "the container on the default bridge has no address"
    tag = f"{testbed.PREFIX}/built-on-the-bridge:{uuid.uuid4().hex[:12]}"
    dockerfile = f'FROM {testbed.REGISTRY_LATE}\nRUN ["/bin/busybox", "touch", "/built"]\n'
    (tmp_path / "Dockerfile").write_text(dockerfile)
    try:
        default_docker("build", "--network", "bridge", "-q", "-t", tag, str(tmp_path))
        default_docker("run", "--rm", "--entrypoint", "/bin/busybox", tag, "test", "-f", "/built")
    finally:
        subprocess.run(
            ["docker", "-H", DEFAULT_ENGINE, "rmi", tag], capture_output=True, check=False
        )
