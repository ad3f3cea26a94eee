"""Registry 2 against registry 3, in the same run: why registry 3 is the default.

For registry 2 and registry 3, and for registry 3 with the native pusher's
requests sent through the published port instead of to the container's own
address (the way a rootless engine's are), alternating which goes first in
every round:

- one native conversion (layer compression none) of a ~200 MB image, from
  entering the block to the push landed;
- four such conversions into one registry at once;
- beside them, the engine's own ``docker save`` of the same image to
  /dev/null, and the ratio of one conversion to it.

Usage, after scripts/setup and benchmarks/images.sh (the images are on the
default engine):

    .venv/bin/python benchmarks/registry_versions.py [--runs N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import anyio
from conversions import BULK, export_floor

from ephemeral_registry import ephemeral_registry
from ephemeral_registry._pushers import native

REGISTRIES = {
    "registry 2.8": "ephemeral-registry-testbed/registry:2",
    "registry 3": "ephemeral-registry-testbed/registry:3",
    "3, by port": "ephemeral-registry-testbed/registry:3",
}
BY_PORT = "3, by port"
DIRECT = native.NativePusher._direct_address


async def published_port_only(self: native.NativePusher, running: object) -> None:
    return None


CRANE = "ephemeral-registry-testbed/crane"


async def conversions(name: str, images: list[str]) -> float:
    """Seconds from entering the block to every push landed (native, layers as they are)."""
    by_port = published_port_only if name == BY_PORT else DIRECT
    native.NativePusher._direct_address = by_port  # type: ignore[method-assign]
    registry_image = REGISTRIES[name]
    started = time.perf_counter()
    async with ephemeral_registry(
        registry_image=registry_image,
        crane_image=CRANE,
        pull="never",
        pusher="native",
        layer_compression="none",
    ) as registry:
        async with anyio.create_task_group() as tg:
            for number, image in enumerate(images):
                tg.start_soon(registry.push_image, image, f"bench/image-{number}")
        return time.perf_counter() - started


async def main(runs: int) -> None:
    one: dict[str, list[float]] = {name: [] for name in REGISTRIES}
    four: dict[str, list[float]] = {name: [] for name in REGISTRIES}
    saves: list[float] = []
    names = list(REGISTRIES)
    for round_ in range(runs):
        saves.append(export_floor(BULK[0]))
        for name in names if round_ % 2 == 0 else reversed(names):
            one[name].append(await conversions(name, BULK[:1]))
            four[name].append(await conversions(name, BULK))
    save = statistics.median(saves)
    print(f"medians of {runs} runs; docker save {BULK[0]} > /dev/null: {save:.2f} s")
    print("registry      one conversion   ratio to docker save   four at once")
    for name in REGISTRIES:
        first, all_four = statistics.median(one[name]), statistics.median(four[name])
        print(f"{name:12}  {first:8.2f} s       {first / save:8.2f}x             {all_four:6.2f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    anyio.run(main, parser.parse_args().runs)
