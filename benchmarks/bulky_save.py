"""Peak memory of pushing a bulky ``docker save`` tarball: a small image beside many members
that nothing refers to, the shape that used to be held in memory whole.

Builds the tarball (the test bed's sample image saved by the engine, plus ``--members``
files of 1 MiB of random bytes, and as many that start with ``{``), then pushes it with
each pusher in a fresh process, and prints that process's peak resident memory (VmHWM)
and the time the push took. Usage, after scripts/setup:

    .venv/bin/python benchmarks/bulky_save.py [--members 300]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SAMPLE = "ephemeral-registry-testbed/sample:one"
REGISTRY = "ephemeral-registry-testbed/registry:3"
CRANE = "ephemeral-registry-testbed/crane"

PUSH = """
import sys, time, anyio
from ephemeral_registry import ephemeral_registry

def peak():
    lines = open("/proc/self/status").read().splitlines()
    return next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))

async def main():
    before = peak()
    async with ephemeral_registry(
        registry_image=sys.argv[1], crane_image=sys.argv[2], pusher=sys.argv[4], pull="never"
    ) as registry:
        await registry.ready()
        started = time.monotonic()
        await registry.push(sys.argv[3], "bench/bulky")
        took = time.monotonic() - started
    print(before // 1024, peak() // 1024, f"{took:.2f}")

anyio.run(main)
"""


def bulky_tarball(path: Path, members: int) -> None:
    save = subprocess.run(["docker", "save", SAMPLE], capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(save)) as source, tarfile.open(path, "w") as out:
        for member in source.getmembers():
            out.addfile(member, source.extractfile(member) if member.isreg() else None)
        for n in range(members):
            for prefix, kind in ((b"", "junk"), (b"{", "json")):
                data = prefix + os.urandom((1 << 20) - len(prefix))
                info = tarfile.TarInfo(f"unreferenced/{kind}-{n}")
                info.size = len(data)
                out.addfile(info, io.BytesIO(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "bulky.tar"
        bulky_tarball(tarball, args.members)
        size = tarball.stat().st_size >> 20
        print(f"tarball: {size} MiB, {2 * args.members} unreferenced members of 1 MiB")
        print("pusher | peak RSS before (MiB) | peak RSS after (MiB) | push (s)")
        for pusher in ("native", "crane"):
            done = subprocess.run(
                [sys.executable, "-c", PUSH, REGISTRY, CRANE, str(tarball), pusher],
                capture_output=True,
                text=True,
                check=True,
            )
            print(pusher, "|", " | ".join(done.stdout.split()))


if __name__ == "__main__":
    main()
