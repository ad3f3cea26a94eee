"""Each example runs, as a user would run it, and does what it says."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import anyio
import pytest

from ..support import testbed

pytestmark = pytest.mark.anyio

EXAMPLES = Path(__file__).parents[3] / "examples"
ENV = {
    **os.environ,
    "EPHEMERAL_REGISTRY_REGISTRY_IMAGE": testbed.REGISTRY3,
    "EPHEMERAL_REGISTRY_CRANE_IMAGE": testbed.CRANE,
    "EPHEMERAL_REGISTRY_RELAY_IMAGE": testbed.BUSYBOX,
}


async def run_example(name: str, *args: str) -> tuple[int, str, str]:
    with anyio.fail_after(60):
        done = await anyio.run_process(
            [sys.executable, str(EXAMPLES / name), *args], env=ENV, check=False
        )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


async def test_quickstart_pushes_pulls_back_and_prints_the_references() -> None:
    """The README's first example."""
    code, out, err = await run_example("quickstart.py", testbed.SAMPLE)
    assert code == 0, err
    fields = dict(line.split(maxsplit=1) for line in out.splitlines() if line[:1] != " ")
    assert fields["ref"].startswith("127.0.0.1:")
    assert fields["ref"].endswith("/demo/image:v1")
    assert fields["digest_ref"].split()[0] in fields["pulled"]
    assert "crane stderr: " in err


async def test_convert_image_hands_the_reference_to_the_converter() -> None:
    """The default converter (skopeo inspect) reads the pushed image from the registry."""
    code, out, err = await run_example("convert_image.py", testbed.SAMPLE)
    assert code == 0, err
    inspected = json.loads(out)
    assert inspected["Name"].endswith("/ephemeral-registry-testbed/sample")
    assert inspected["Labels"]["ephemeral-registry-testbed.variant"] == "one"


async def test_convert_image_passes_the_converters_exit_status_through() -> None:
    """{ref} and {digest_ref} are substituted; the converter's status is the script's."""
    code, out, _ = await run_example(
        "convert_image.py", testbed.SAMPLE, "--", "sh", "-c", "echo $0 $1; exit 3", "{ref}",
        "{digest_ref}",
    )  # fmt: skip
    assert code == 3
    ref, digest_ref = out.split()
    assert ref.endswith("/ephemeral-registry-testbed/sample:one")
    assert "/ephemeral-registry-testbed/sample@sha256:" in digest_ref


async def test_concurrent_conversions_convert_every_image() -> None:
    """Several images at once, each reported with its digest."""
    code, out, err = await run_example(
        "concurrent_conversions.py", testbed.SAMPLE, testbed.SAMPLE_TWO, testbed.REGISTRY3
    )
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == [
        testbed.SAMPLE,
        testbed.SAMPLE_TWO,
        testbed.REGISTRY3,
    ]
    assert all("sha256:" in line and "layer(s)" in line for line in lines)


async def test_the_agent_launcher_hands_its_sandbox_the_pushed_image() -> None:
    """The config names the image by digest, and the stand-in runtime could read it."""
    code, out, err = await run_example("agent_launcher.py", testbed.SAMPLE)
    assert code == 0, err
    config = json.loads(out)
    assert "/agents/demo@sha256:" in config["image"]
    assert int(config["layers"]) >= 2
