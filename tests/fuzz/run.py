"""Run a fuzz target with atheris (coverage-guided, libFuzzer), seeded with its corpus.

    python -m tests.fuzz.run TARGET [--seconds N] [--seed S] [--keep DIR]

The corpus is copied to a scratch directory, so a run never writes into the
checkout; an input that breaks a promise (an unexpected exception, or over
``--timeout`` seconds) is written to ``--keep`` (by default a scratch
directory, printed) and the run fails. Keep such an input in
``tests/fuzz/corpus/TARGET/`` once it is fixed: the unit tests replay it.
Prints the executions made.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# Not ``tests.fuzz.targets``, which imports the library: the child must import it first inside
# ``atheris.instrument_imports``, or the fuzzer runs without coverage (one input in its corpus).
CORPUS = Path(__file__).parent / "corpus"
TARGETS = sorted(path.name for path in CORPUS.iterdir())
REPLAY_ONLY = {
    "layout": {"sixty-manifests-of-8-mib", "one-layer-1000-times-through-30-links"},
}
"""Kept inputs too big to seed a fuzzer with (hundreds of MiB, or seconds a run once
instrumented): the unit tests replay them, with a deadline that grows with their size."""


def _child(target: str, argv: list[str]) -> None:
    import atheris

    with atheris.instrument_imports(include=["ephemeral_registry"]):
        from tests.fuzz import targets

    atheris.Setup([sys.argv[0], *argv], targets.TARGETS[target])
    atheris.Fuzz()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", choices=TARGETS)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=int, default=5, help="per input, in seconds")
    parser.add_argument("--keep", type=Path, help="where inputs that break a promise go")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        _child(args.target, rest)
        return 0
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as scratch:
        corpus = Path(scratch) / "corpus"
        shutil.copytree(
            CORPUS / args.target,
            corpus,
            ignore=lambda _, names: [n for n in names if n in REPLAY_ONLY.get(args.target, ())],
        )
        keep = args.keep or Path(scratch) / "found"
        keep.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, "-m", "tests.fuzz.run", args.target, "--child",
            f"-max_total_time={args.seconds}", f"-seed={args.seed}", f"-timeout={args.timeout}",
            "-rss_limit_mb=2048", "-max_len=65536", f"-artifact_prefix={keep}/", str(corpus),
        ]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        runs = re.findall(r"Done (\d+) runs", done.stderr)
        found = sorted(keep.iterdir())
        print(f"{args.target}: {runs[-1] if runs else '?'} executions in {args.seconds} s")
        if done.returncode != 0 or found:
            sys.stderr.write(done.stderr[-5000:])
            if args.keep is None and found:
                saved = Path(tempfile.mkdtemp(prefix=f"fuzz-{args.target}-"))
                for path in found:
                    shutil.copy(path, saved)
                print(f"{args.target}: inputs that break a promise, in {saved}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
