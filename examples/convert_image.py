"""Convert a locally built image with a tool that only takes registry references.

    python examples/convert_image.py IMAGE [-- CONVERTER ARGS...]

The way a VM-image builder or sandbox converter is fed: export IMAGE from the
local engine, push it into a throwaway registry, run the converter with
``{ref}`` and ``{digest_ref}`` in its arguments replaced, and pass its exit
status through. The default converter is ``skopeo inspect`` of the pushed
image, standing in for a real one.
"""

from __future__ import annotations

import sys

import anyio

from ephemeral_registry import ephemeral_registry

DEFAULT_CONVERTER = ["skopeo", "inspect", "--tls-verify=false", "docker://{ref}"]


async def convert(image: str, converter: list[str]) -> int:
    async with ephemeral_registry() as registry:
        pushed = await registry.push_image(image)
        command = [arg.format(ref=pushed.ref, digest_ref=pushed.digest_ref) for arg in converter]
        print(f"converting {pushed.digest_ref}: {' '.join(command)}", file=sys.stderr)
        done = await anyio.run_process(command, check=False, stdout=None, stderr=None)
        return done.returncode


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    image, rest = argv[0], argv[1:]
    converter = rest[1:] if rest[:1] == ["--"] else DEFAULT_CONVERTER
    return anyio.run(convert, image, converter)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
