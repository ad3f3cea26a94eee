"""Convert several local images at once through one throwaway registry.

    python examples/concurrent_conversions.py IMAGE [IMAGE...]

Every image is exported and pushed concurrently (the library bounds how many
crane containers run at once), then each is handed to a converter as soon as
its own push lands. Here the converter is ``skopeo inspect``, printing each
image's digest and layer count.
"""

from __future__ import annotations

import json
import sys

import anyio

from ephemeral_registry import Registry, ephemeral_registry


async def convert(registry: Registry, image: str, number: int, results: dict[str, str]) -> None:
    pushed = await registry.push_image(image, f"conversions/image-{number}:latest")
    inspect = await anyio.run_process(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{pushed.digest_ref}"]
    )
    layers = len(json.loads(inspect.stdout)["Layers"])
    results[image] = f"{pushed.digest}  {layers} layer(s)"


async def main(images: list[str]) -> None:
    results: dict[str, str] = {}
    async with ephemeral_registry() as registry, anyio.create_task_group() as tg:
        for number, image in enumerate(images):
            tg.start_soon(convert, registry, image, number, results)
    for image in images:
        print(f"{image}  {results[image]}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    anyio.run(main, sys.argv[1:])
