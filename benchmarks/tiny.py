"""A tiny image converted end to end, with each pusher: in-process, and through the command line.

- in-process: from entering ``ephemeral_registry()`` to leaving it, with one
  ``push_image`` of the test bed's sample image (a few kB) in between: the
  bring-up, the push and the teardown;
- command line: ``ephemeral-registry push IMAGE --json`` as a new process,
  from its start to its exit (so with Python's start and the imports).

Usage: .venv/bin/python benchmarks/tiny.py [--runs N]   (after scripts/setup)
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

import anyio
from shell_baseline import CRANE, REGISTRY

from ephemeral_registry import ephemeral_registry
from ephemeral_registry._options import Pusher

SAMPLE = "ephemeral-registry-testbed/sample:one"
ENV = {
    **os.environ,
    "EPHEMERAL_REGISTRY_REGISTRY_IMAGE": REGISTRY,
    "EPHEMERAL_REGISTRY_CRANE_IMAGE": CRANE,
}


async def in_process(pusher: Pusher) -> float:
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=REGISTRY, crane_image=CRANE, pull="never", pusher=pusher
    ) as registry:
        await registry.push_image(SAMPLE, "tiny/sample")
    return time.perf_counter() - started


def command_line(pusher: Pusher) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ephemeral_registry", "push", "--json", "--quiet",
         "--pull", "never", "--pusher", pusher, SAMPLE],
        env=ENV, check=True, capture_output=True,
    )  # fmt: skip
    return time.perf_counter() - started


def import_time() -> float:
    done = subprocess.run(
        [sys.executable, "-c",
         "import time; t = time.perf_counter(); import ephemeral_registry;"
         " print(time.perf_counter() - t)"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return float(done.stdout)


def main(runs: int) -> None:
    rows: dict[str, list[float]] = {}
    for _ in range(runs):
        pushers: tuple[Pusher, ...] = ("crane", "native")
        for pusher in pushers:
            rows.setdefault(f"in-process, {pusher}", []).append(anyio.run(in_process, pusher))
            rows.setdefault(f"command line, {pusher}", []).append(command_line(pusher))
        rows.setdefault("import ephemeral_registry", []).append(import_time())
    targets = {
        "in-process, native": "<= 1.1 s",
        "command line, native": "<= 1.6 s",
        "import ephemeral_registry": "< 0.2 s",
    }
    print(f"median of {runs} runs, seconds")
    for name, values in rows.items():
        target = targets.get(name, "")
        print(
            f"  {name:28} {statistics.median(values):6.3f}   {'target ' + target if target else ''}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    main(parser.parse_args().runs)
