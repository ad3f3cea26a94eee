"""The same measurements of two versions of the library, interleaved in one run.

For a change meant to leave behaviour and speed alone (a refactoring): the
version checked out here ("after") against the one at ``--before COMMIT``,
checked out into a temporary git worktree. Each measurement runs in a new
process that imports one version or the other (``PYTHONPATH``), and the two
alternate, round after round and each first in every other round, so that a
slow moment of the machine falls on both:

- bring-up: entering ``ephemeral_registry()`` until ``ready()`` returns;
- teardown: from there to the block's exit;
- tiny push: entering, one ``push_image`` of the test bed's sample image, leaving
  (each pusher);
- conversion: the same with a 200 MB image (``benchmarks/images.sh``), until pushed
  (each pusher).

Each push names its layer compression, crane's ``"none"`` and the native pusher's
``"gzip"`` (each pusher's default before issue 25 made ``"gzip"`` both's), so that
both versions push the same layers.

Usage: .venv/bin/python benchmarks/before_after.py --before COMMIT [--runs N]
(after scripts/setup and benchmarks/images.sh; DOCKER_HOST picks the engine)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from shell_baseline import CRANE, REGISTRY

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = "ephemeral-registry-testbed/sample:one"
BULK = "ephemeral-registry-benchmark/bulk-0:200"

MEASURE = """
import json, sys, time, anyio
from ephemeral_registry import ephemeral_registry

async def main(what, pusher, image, registry_image, crane_image):
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=registry_image, crane_image=crane_image, pull="never", pusher=pusher
    ) as registry:
        if what == "bring-up":
            await registry.ready()
        else:
            # The same layers both times: each pusher's compression named, as crane's
            # default changed (issue 25: "gzip" for both; crane's was "none").
            compression = "none" if pusher == "crane" else "gzip"
            await registry.push_image(
                image, "before-after/image", layer_compression=compression
            )
        done = time.perf_counter()
    print(json.dumps([done - started, time.perf_counter() - done]))

anyio.run(main, *sys.argv[1:])
"""

CASES = [
    ("bring-up", "crane", SAMPLE),
    ("tiny push", "crane", SAMPLE),
    ("tiny push", "native", SAMPLE),
    ("conversion", "crane", BULK),
    ("conversion", "native", BULK),
]


def measure(src: Path, what: str, pusher: str, image: str) -> tuple[float, float]:
    """One measurement in a new process that imports the library from ``src``."""
    done = subprocess.run(
        [sys.executable, "-c", MEASURE, what, pusher, image, REGISTRY, CRANE],
        env={**os.environ, "PYTHONPATH": str(src)},
        check=True,
        capture_output=True,
        text=True,
    )
    first, second = json.loads(done.stdout)
    return first, second


def main(before: str, runs: int) -> None:
    with tempfile.TemporaryDirectory(prefix="before-after-") as scratch:
        worktree = Path(scratch) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(worktree), before],
            check=True,
        )
        try:
            versions = {"before": worktree / "src", "after": ROOT / "src"}
            figures: dict[tuple[str, str, str], list[float]] = {}
            for run in range(runs):
                for what, pusher, image in CASES:
                    # Each goes first in every other round: a measurement right after
                    # another's teardown can be slower (the engine is still tidying up).
                    order = list(versions.items())[:: -1 if run % 2 else 1]
                    for version, src in order:
                        first, second = measure(src, what, pusher, image)
                        label = "bring-up" if what == "bring-up" else f"{what}, {pusher}"
                        figures.setdefault((label, version, "main"), []).append(first)
                        if what == "bring-up":
                            figures.setdefault(("teardown", version, "main"), []).append(second)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(worktree)],
                check=True,
            )
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    print(f"median of {runs} runs, seconds; before {before}, after {head} (+ working tree)")
    print(f"  {'what':24} {'before':>8} {'after':>8} {'after/before':>13}")
    labels = dict.fromkeys(label for label, _, _ in figures)
    for label in labels:
        old = statistics.median(figures[(label, "before", "main")])
        new = statistics.median(figures[(label, "after", "main")])
        print(f"  {label:24} {old:8.3f} {new:8.3f} {new / old:13.2f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, help="the commit to compare with")
    parser.add_argument("--runs", type=int, default=5)
    arguments = parser.parse_args()
    main(arguments.before, arguments.runs)
