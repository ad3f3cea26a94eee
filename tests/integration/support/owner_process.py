"""A process that owns a registry, maybe with a push running, to be killed by a test.

    python -m tests.integration.support.owner_process [--tarball PATH | --image NAME]
        [--tls] [--tunnel] [--kubernetes]

Prints ``{"session": ...}`` once its crane container is running (with a
push: crane hangs), or once the registry is ready (without), then waits
forever. Whatever it made on this host (a CA's directory with ``--tls``,
crane's export with ``--image``, an SSH socket's directory for an ``ssh://``
``DOCKER_HOST``) is there by then.
"""

from __future__ import annotations

import argparse
import json

import anyio

from ephemeral_registry import Registry, ephemeral_registry

from . import testbed


async def main(args: argparse.Namespace) -> None:
    running = anyio.Event()

    async def push(registry: Registry) -> None:
        if args.tarball is not None:
            await registry.push(args.tarball, "never/lands", on_log=lambda _: running.set())
        else:
            await registry.push_image(
                args.image, "never/lands", pusher="crane", on_log=lambda _: running.set()
            )

    on = {"backend": "kubernetes"} if args.kubernetes else {"crane_image": testbed.CRANE_HANGS}
    async with (
        ephemeral_registry(
            registry_image=testbed.REGISTRY3,
            pull="never",
            tls=args.tls,
            tunnel=args.tunnel,
            **on,  # type: ignore[arg-type]
        ) as registry,
        anyio.create_task_group() as tg,
    ):
        if args.tarball is None and args.image is None:
            await registry.ready()
        else:
            tg.start_soon(push, registry)
            await running.wait()
        print(json.dumps({"session": registry.session_id}), flush=True)
        await anyio.sleep_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--tarball")
    what.add_argument("--image")
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--kubernetes", action="store_true", help="the registry as a Pod")
    parser.add_argument("--tunnel", action="store_true")
    anyio.run(main, parser.parse_args())
