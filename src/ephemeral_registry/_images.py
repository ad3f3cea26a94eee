"""The images a registry's containers run: made sure of as the pull policy allows.

The bring-up makes sure of the registry's image (and a tunnel's relay
image); the crane pusher of crane's, when a crane push needs it.
"""

from __future__ import annotations

import logging

from ._engine import Engine
from ._errors import DockerEngineError, ImageNotFoundError, ImagePullError
from ._options import OPTION_ENVS, Options, PullPolicy

logger = logging.getLogger("ephemeral_registry")


async def ensure_image(engine: Engine, image: str, option: str, options: Options) -> None:
    """Make sure the engine holds ``image``, pulling it as the pull policy allows.

    ``option`` is the option that chose it, for the error to say how to choose another.

    Raises:
        ImageNotFoundError: the engine lacks it, and ``pull="never"``.
        ImagePullError: the engine could not pull it.
        EngineTimeoutError, DockerUnavailableError: as any request to the engine
            (a pull's limit is ``pull_timeout``).
    """
    policy: PullPolicy = options.pull
    if engine.pulls_itself:
        return  # as the container starts, with the policy (a missing image ends its wait)
    if policy != "always" and await engine.has_image(image):
        return
    if policy == "never":
        raise ImageNotFoundError(image, policy)
    logger.info("pulling %s", image)
    try:
        await engine.pull(image, timeout=options.timeouts.pull)
    except DockerEngineError as exc:
        raise ImagePullError(image, str(exc), option=option, env=OPTION_ENVS.get(option)) from exc
