"""Bring up a registry, push a local image, pull it back with the engine, print the references.

    python examples/quickstart.py [IMAGE]

IMAGE defaults to the test bed's sample image. The registry and crane images
come from EPHEMERAL_REGISTRY_REGISTRY_IMAGE and EPHEMERAL_REGISTRY_CRANE_IMAGE
when set (scripts/demo sets them to the locally built ones).
"""

from __future__ import annotations

import sys

import anyio

from ephemeral_registry import LogLine, ephemeral_registry


def show(line: LogLine) -> None:
    print(f"  crane {line.stream}: {line}", file=sys.stderr)


async def main(image: str) -> None:
    async with ephemeral_registry() as registry:
        # The export starts at once, while the registry is still coming up.
        result = await registry.push_image(image, "demo/image:v1", on_log=show)
        endpoints = await registry.ready()

        # A real client on the host pulls it back: the Docker engine itself.
        pull = await anyio.run_process(["docker", "pull", "-q", result.digest_ref])
        await anyio.run_process(["docker", "rmi", "-f", result.digest_ref])

        print(f"network        {endpoints.network}")
        print(f"push endpoint  {endpoints.push_endpoint}   (from containers on the network)")
        print(f"pull endpoint  {endpoints.pull_endpoint}   (from this host)")
        print(f"ref            {result.ref}")
        print(f"digest_ref     {result.digest_ref}")
        print(f"pulled back    {pull.stdout.decode().strip()}")


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "ephemeral-registry-testbed/sample:one")
