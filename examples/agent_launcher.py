"""An async agent launcher: the registry comes up while the agent's config is prepared.

    python examples/agent_launcher.py [IMAGE]

A launcher that runs agents in sandboxes built from images needs the agent's
image in a registry, and a config that names it. The registry's bring-up and
the image's export run in the background while the launcher does its own
slow work (here: writing a config); then it hands the sandbox runtime the
config, and the registry goes away with the block.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import anyio

from ephemeral_registry import ephemeral_registry


async def prepare_config(directory: Path) -> Path:
    """The launcher's own setup, which the bring-up overlaps."""
    await anyio.sleep(0.2)  # stands in for fetching secrets, resolving tools, ...
    config = anyio.Path(directory / "agent.json")
    await config.write_text(json.dumps({"agent": "demo", "tools": "shell", "image": ""}))
    return Path(config)


async def launch(config: dict[str, str]) -> None:
    """Stands in for the sandbox runtime: it reads the image from the registry."""
    inspect = await anyio.run_process(
        ["skopeo", "inspect", "--tls-verify=false", f"docker://{config['image']}"]
    )
    config["layers"] = str(len(json.loads(inspect.stdout)["Layers"]))
    print(json.dumps(config))


async def main(image: str) -> None:
    with tempfile.TemporaryDirectory() as directory:
        async with ephemeral_registry() as registry:
            pushed: dict[str, str] = {}

            async def push() -> None:
                result = await registry.push_image(image, "agents/demo:latest")
                pushed["ref"] = result.digest_ref

            async with anyio.create_task_group() as tg:
                tg.start_soon(push)  # export, bring-up and push, in the background
                config_path = await prepare_config(Path(directory))
            config = json.loads(await anyio.Path(config_path).read_text())
            config["image"] = pushed["ref"]
            await launch(config)  # inside the block: the registry is still up


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "ephemeral-registry-testbed/sample:one")
