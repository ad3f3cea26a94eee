"""The options of ``ephemeral_registry()``: defaults, the environment, and checks.

Every option is checked here, before anything is created, so that bad input
fails with an ``InvalidArgumentError`` and leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast, get_args

from ._addresses import check_docker_host, check_host_ip, host_address
from ._discovery import EngineAddress
from ._errors import InvalidArgumentError

PullPolicy = Literal["missing", "never", "always"]
Pusher = Literal["crane", "native"]
LayerCompression = Literal["gzip", "none"]
Backend = Literal["docker", "kubernetes"]

DEFAULT_REGISTRY_IMAGE = (
    "registry@sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e"
)
"""registry 3.0.0 (distribution v3), pinned by digest.

Registry 2.8.3 is still supported: ``registry_image=REGISTRY_2_IMAGE``.
"""
REGISTRY_2_IMAGE = (
    "registry@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373"
)
"""registry 2.8.3, pinned by digest: the default before 3."""
DEFAULT_CRANE_IMAGE = (
    "gcr.io/go-containerregistry/crane@sha256:"
    "0ae17ecb34315aa7cbff28f6eddee3b7adae0b2f90101260d990804db1eb0084"
)
"""crane, pinned by digest."""
DEFAULT_RELAY_IMAGE = (
    "busybox@sha256:9db7b59979c38555a39def84a31fb98b5296952f9e3afd4f6f11f05b07adfab0"
)
"""busybox 1.37.0 (the tag ``1.37.0``, its multi-platform index), pinned by digest: the
relay of a tunnel through the engine's API runs its ``sh``, ``nc`` and ``sleep``."""


REGISTRY_IMAGE_ENV = "EPHEMERAL_REGISTRY_REGISTRY_IMAGE"
CRANE_IMAGE_ENV = "EPHEMERAL_REGISTRY_CRANE_IMAGE"
RELAY_IMAGE_ENV = "EPHEMERAL_REGISTRY_RELAY_IMAGE"
BACKEND_ENV = "EPHEMERAL_REGISTRY_BACKEND"


def _seconds(argument: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidArgumentError(argument, value, "must be a number of seconds")
    if not (value > 0 and math.isfinite(value)):
        raise InvalidArgumentError(argument, value, "must be a positive, finite number of seconds")
    return float(value)


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    """The time limits of one registry, in seconds, as one value (as httpx's ``Timeout``).

    Pass it as ``ephemeral_registry(timeouts=...)``; change one limit with
    ``dataclasses.replace(Timeouts(), push=1200)``. Each is a positive, finite
    number of seconds; ``Timeouts()`` holds the defaults. The options
    ``ready_timeout`` and the like set one limit each, as the command line's
    ``--ready-timeout`` does; they are not given together with ``timeouts``.

    Raises:
        InvalidArgumentError: a limit that is not a positive, finite number
            (``argument`` is ``timeouts.NAME``).
    """

    ready: float = 30.0
    """From the registry container's start, until it answers ``GET /v2/``."""
    push: float = 600.0
    """One push, once a push slot is free: the wait for the registry, the check or
    export of its source, and the upload."""
    pull: float = 600.0
    """One image pull."""
    request: float = 30.0
    """Any other single request to the engine."""
    cleanup: float = 15.0
    """The removal of everything on exit (and of a cancelled push's crane container)."""

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = _seconds(f"timeouts.{field.name}", getattr(self, field.name))
            object.__setattr__(self, field.name, value)  # an int given becomes a float


@dataclass(frozen=True)
class Option:
    """One option of ``ephemeral_registry()``, as the command line, the pytest plugin and
    the documentation show it."""

    name: str
    default: object
    help: str
    """What it does, in a few words (the documentation's table and ``--help``)."""
    kind: type = str
    """What the command line and the plugin turn their text into."""
    choices: tuple[str, ...] = ()
    env: str | None = None
    """An environment variable that is the default when the argument is not given."""
    default_text: str = ""
    """The default, said in words where the value alone does not say it."""
    flag: bool = True
    """Whether the command line and the pytest plugin offer it."""
    metavar: str | None = None
    """What ``--help`` calls its value (by default, its name in capitals)."""

    @property
    def flag_name(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def default_said(self) -> str:
        """The default in words: ``$ENV, else ...`` where an environment variable applies."""
        said = self.default_text or str(self.default)
        return f"${self.env}, else {said}" if self.env else said

    def add_to(self, add_option: Callable[..., object], *names: str) -> None:
        """Offer it as a flag (``argparse``'s ``add_argument``, pytest's ``addoption``);
        unset, its value is ``None``, for the library's default to apply."""
        help_text = f"{self.help} (default: {self.default_said})"
        if self.kind is bool:
            add_option(*names, dest=self.name, action="store_true", default=None, help=help_text)
        else:
            add_option(
                *names,
                dest=self.name,
                type=self.kind,
                choices=self.choices or None,
                default=None,
                metavar=self.metavar,
                help=help_text,
            )


def _timeout_said(name: str) -> str:
    seconds = getattr(Timeouts(), name)
    return f"{seconds:g} s (Timeouts.{name})"


OPTIONS: tuple[Option, ...] = (
    Option(
        "registry_image",
        None,
        "the registry image",
        env=REGISTRY_IMAGE_ENV,
        default_text="registry 3.0.0, pinned by digest",
    ),
    Option(
        "crane_image",
        None,
        "the image crane pushes run in",
        env=CRANE_IMAGE_ENV,
        default_text="crane, pinned by digest",
    ),
    Option(
        "relay_image",
        None,
        "the image of a tunnel's relay container (tunnel= on an engine not reached over"
        " SSH): busybox, or any image with its sh, nc and sleep",
        env=RELAY_IMAGE_ENV,
        default_text="busybox 1.37.0, pinned by digest",
    ),
    Option(
        "pull",
        "missing",
        'when to pull those images ("never", offline: a missing one is ImageNotFoundError,'
        " before anything is made)",
        choices=get_args(PullPolicy),
    ),
    Option(
        "host_ip",
        "127.0.0.1",
        "where, on the engine's host, the registry's port is published (an engine on"
        " another host needs one of its addresses)",
    ),
    Option(
        "timeouts",
        None,
        "the time limits, as one Timeouts value (not with the *_timeout options)",
        kind=object,
        default_text="Timeouts()",
        flag=False,
    ),
    Option(
        "ready_timeout",
        None,
        "seconds the registry has, from its container's start, to answer GET /v2/",
        kind=float,
        default_text=_timeout_said("ready"),
    ),
    Option(
        "cleanup_timeout",
        None,
        "seconds the removal on exit may take",
        kind=float,
        default_text=_timeout_said("cleanup"),
    ),
    Option(
        "pull_timeout",
        None,
        "seconds one image pull may take",
        kind=float,
        default_text=_timeout_said("pull"),
    ),
    Option(
        "request_timeout",
        None,
        "seconds any other single request to the engine may take",
        kind=float,
        default_text=_timeout_said("request"),
    ),
    Option(
        "push_timeout",
        None,
        "seconds one push may take once a push slot is free: the wait for the registry,"
        " the check or export and the upload",
        kind=float,
        default_text=_timeout_said("push"),
    ),
    Option(
        "max_concurrent_pushes",
        4,
        "how many pushes run at once; more wait their turn",
        kind=int,
    ),
    Option(
        "auth",
        False,
        "require a generated user name and password (needs ephemeral-registry[auth])",
        kind=bool,
    ),
    Option(
        "tls",
        False,
        "serve HTTPS with a certificate from a CA made for this registry, handed to the"
        " caller in Endpoints (needs ephemeral-registry[tls])",
        kind=bool,
    ),
    Option(
        "tunnel",
        False,
        "reach the registry at 127.0.0.1 here, wherever the engine is: over the SSH"
        " connection for an ssh:// engine (needs ephemeral-registry[ssh]), else through the"
        " engine's API and a relay container",
        kind=bool,
    ),
    Option(
        "pusher",
        None,
        "how pushes are made: crane in a one-shot container, or native over HTTP from this process",
        choices=get_args(Pusher),
        default_text='"crane" on a Docker or Podman engine, "native" on Kubernetes',
    ),
    Option(
        "layer_compression",
        "gzip",
        "how layers the engine keeps uncompressed are pushed, whichever the pusher"
        " (gzip: what every puller reads; none: as they are)",
        choices=get_args(LayerCompression),
    ),
    Option(
        "sweep_leftovers",
        True,
        "once the registry is up, remove what dead processes on this host left behind",
        kind=bool,
        flag=False,
    ),
    Option(
        "docker_host",
        None,
        "the engine's address (unix:///path, tcp://host:port, ssh://[user@]host), as the"
        " docker CLI's -H takes it: it wins over DOCKER_HOST and every context",
        default_text="found as the docker CLI finds it",
        metavar="URL",
    ),
    Option(
        "backend",
        None,
        'where the registry runs: "docker" (a Docker or Podman engine) or "kubernetes" (a'
        " Pod in a cluster, the kubeconfig's current context or the in-cluster service"
        " account, pushed to through a port-forward)",
        choices=get_args(Backend),
        env=BACKEND_ENV,
        default_text='"docker"',
    ),
    Option(
        "namespace",
        None,
        "the Kubernetes namespace the registry runs in (backend kubernetes)",
        default_text="the kubeconfig context's, else default",
    ),
)
"""The options of ``ephemeral_registry()`` (all but ``docker=``, a client object), defined
once: the command line's flags, the pytest plugin's options and the documentation's table
are made from these; its signature, its docstring, the arguments it hands ``resolve()`` and
``Options`` are checked against them by the tests (``tests/unit/test_options.py``)."""
TIMEOUT_OPTIONS = {
    option.name: option.name.removesuffix("_timeout")
    for option in OPTIONS
    if option.name.endswith("_timeout")
}
"""The options that set one of ``Timeouts``' limits, and its field's name."""
OPTION_ENVS = {option.name: option.env for option in OPTIONS if option.env}
"""The environment variable that is an option's default, for the options that have one."""

BY_NAME = {option.name: option for option in OPTIONS}


def given_flags(values: Callable[[str], object]) -> dict[str, object]:
    """The options given as flags (``values(name)``: the parsed value, ``None`` if unset)."""
    given = {option.name: values(option.name) for option in OPTIONS if option.flag}
    return {name: value for name, value in given.items() if value is not None}


@dataclass(frozen=True)
class Options:
    """Checked options of one registry: a field for each of ``OPTIONS``, but the
    ``*_timeout`` options, which ``timeouts`` holds."""

    registry_image: str
    crane_image: str
    relay_image: str
    pull: PullPolicy
    host_ip: str
    timeouts: Timeouts
    max_concurrent_pushes: int
    auth: bool
    tls: bool = False
    tunnel: bool = False
    pusher: Pusher = "crane"
    layer_compression: LayerCompression = "gzip"
    sweep_leftovers: bool = True
    docker_host: str | None = None
    """``None``: the engine is found as the docker CLI finds it (or is ``docker=``'s)."""
    backend: Backend = "docker"
    namespace: str | None = None
    """``None``: the kubeconfig context's namespace (or the service account's), else default."""


def _image(argument: str, given: object, env: str, default: str) -> str:
    image = given if given is not None else (os.environ.get(env) or default)
    if (
        not isinstance(image, str)
        or not image
        or image != image.strip()
        or any(c.isspace() for c in image)
    ):
        source = argument if given is not None else env
        raise InvalidArgumentError(
            source, image, "an image reference may not be empty or hold spaces"
        )
    return image


def _count(argument: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(argument, value, "must be a whole number, at least 1")
    return value


def check_pusher(value: object) -> Pusher:
    """Check a ``pusher`` argument."""
    if value not in get_args(Pusher):
        raise InvalidArgumentError("pusher", value, 'must be "crane" or "native"')
    return cast(Pusher, value)


def check_layer_compression(value: object) -> LayerCompression:
    """Check a ``layer_compression`` argument."""
    if value not in get_args(LayerCompression):
        raise InvalidArgumentError("layer_compression", value, 'must be "gzip" or "none"')
    return cast(LayerCompression, value)


def _require(option: str, package: str, extra: str, value: object = True) -> None:
    """Fail before anything is created if ``option=value`` needs a package that is missing."""
    try:
        importlib.import_module(package)
    except ImportError:
        raise InvalidArgumentError(
            option, value, f"needs the {package} package: pip install 'ephemeral-registry[{extra}]'"
        ) from None


def resolve(**given: object) -> Options:
    """Check every option (those not given take their defaults); raise
    ``InvalidArgumentError`` for the first bad one, or for a name that is no option."""
    for name in given:
        if name not in BY_NAME:
            raise InvalidArgumentError(name, given[name], "is not an option")
    values = {option.name: given.get(option.name, option.default) for option in OPTIONS}
    auth = values["auth"]
    if not isinstance(auth, bool):
        raise InvalidArgumentError("auth", auth, "must be True or False")
    if auth:
        _require("auth", "bcrypt", "auth")
    tls = values["tls"]
    if not isinstance(tls, bool):
        raise InvalidArgumentError("tls", tls, "must be True or False")
    if tls:
        _require("tls", "cryptography", "tls")
    tunnel = values["tunnel"]
    if not isinstance(tunnel, bool):
        raise InvalidArgumentError("tunnel", tunnel, "must be True or False")
    sweep = values["sweep_leftovers"]
    if not isinstance(sweep, bool):
        raise InvalidArgumentError("sweep_leftovers", sweep, "must be True or False")
    backend = _backend(values["backend"])
    if backend == "kubernetes":
        _require("backend", "kr8s", "kubernetes", backend)
        if tunnel:
            raise InvalidArgumentError(
                "tunnel",
                tunnel,
                "is always so on Kubernetes: the registry is reached through a port-forward to"
                " 127.0.0.1 here; leave tunnel unset",
            )
    pull = values["pull"]
    if pull not in get_args(PullPolicy):
        raise InvalidArgumentError("pull", pull, 'must be "missing", "never" or "always"')
    return Options(
        registry_image=_image(
            "registry_image", values["registry_image"], REGISTRY_IMAGE_ENV, DEFAULT_REGISTRY_IMAGE
        ),
        crane_image=_image(
            "crane_image", values["crane_image"], CRANE_IMAGE_ENV, DEFAULT_CRANE_IMAGE
        ),
        relay_image=_image(
            "relay_image", values["relay_image"], RELAY_IMAGE_ENV, DEFAULT_RELAY_IMAGE
        ),
        pull=cast(PullPolicy, pull),  # checked above
        host_ip=check_host_ip(values["host_ip"]),
        timeouts=_timeouts(values),
        max_concurrent_pushes=_count("max_concurrent_pushes", values["max_concurrent_pushes"]),
        auth=auth,
        tls=tls,
        tunnel=tunnel,
        pusher=_pusher(values["pusher"], backend),
        layer_compression=check_layer_compression(values["layer_compression"]),
        sweep_leftovers=sweep,
        docker_host=None
        if values["docker_host"] is None
        else check_docker_host(values["docker_host"]),
        backend=backend,
        namespace=_namespace(values["namespace"], backend),
    )


def _backend(given: object) -> Backend:
    source = "backend" if given is not None else BACKEND_ENV
    value = given if given is not None else (os.environ.get(BACKEND_ENV) or "docker")
    if value not in get_args(Backend):
        raise InvalidArgumentError(source, value, 'must be "docker" or "kubernetes"')
    return cast(Backend, value)


def _pusher(given: object, backend: Backend) -> Pusher:
    if given is None:
        return "native" if backend == "kubernetes" else "crane"
    pusher = check_pusher(given)
    if backend == "kubernetes":
        check_pusher_on(pusher, backend)
    return pusher


def check_pusher_on(pusher: Pusher, backend: Backend) -> None:
    """Refuse crane on a cluster, before anything is created.

    Raises:
        InvalidArgumentError: ``pusher="crane"`` with ``backend="kubernetes"``.
    """
    if pusher == "crane" and backend == "kubernetes":
        raise InvalidArgumentError(
            "pusher",
            pusher,
            "cannot push into a registry on Kubernetes: crane would run as a Job in the"
            " cluster, where the tarball or layout on this host is not; the native pusher"
            ' sends it from here through the port-forward (pusher="native", the default there)',
        )


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def _namespace(given: object, backend: Backend) -> str | None:
    if given is None:
        return None
    if backend != "kubernetes":
        raise InvalidArgumentError(
            "namespace", given, 'is for backend="kubernetes"; a Docker engine has none'
        )
    if not isinstance(given, str) or not DNS_LABEL.match(given):
        raise InvalidArgumentError(
            "namespace",
            given,
            "must be a Kubernetes namespace name: at most 63 lowercase letters, digits and"
            " '-', starting and ending with a letter or digit",
        )
    return given


def _timeouts(values: dict[str, object]) -> Timeouts:
    """The limits of ``timeouts=``, or of the ``*_timeout`` options given (the rest their
    defaults): one or the other, never both."""
    timeouts = values["timeouts"]
    given = {name: values[name] for name in TIMEOUT_OPTIONS if values[name] is not None}
    if timeouts is None:
        limits = {TIMEOUT_OPTIONS[name]: _seconds(name, value) for name, value in given.items()}
        return Timeouts(**limits)
    if not isinstance(timeouts, Timeouts):
        raise InvalidArgumentError("timeouts", timeouts, "must be a Timeouts")
    if given:
        names = ", ".join(f"{name}=" for name in given)
        field = TIMEOUT_OPTIONS[next(iter(given))]
        raise InvalidArgumentError(
            "timeouts",
            timeouts,
            f"and {names} cannot both be given: set the limit in timeouts"
            f" (dataclasses.replace(timeouts, {field}=...))",
        )
    return timeouts


def check_engine_choice(docker: object, docker_host: object) -> None:
    """Refuse ``docker=`` and ``docker_host=`` together: the client names its engine.

    Raises:
        InvalidArgumentError: both are given.
    """
    if docker is not None and docker_host is not None:
        raise InvalidArgumentError(
            "docker_host",
            docker_host,
            "and docker= cannot both be given: a client talks to its own engine; pass one",
        )


def check_tunnel(engine: EngineAddress) -> None:
    """Refuse ``tunnel=True`` where it cannot be had, before anything is created.

    An ``ssh://`` engine's tunnel goes over its SSH connection (asyncssh);
    every other engine's goes through its API (``_relay``), which needs
    nothing here.

    Raises:
        InvalidArgumentError: an ``ssh://`` engine, and asyncssh is missing.
    """
    if engine.is_ssh:
        _require("tunnel", "asyncssh", "ssh")


def check_against_engine(options: Options, engine: EngineAddress) -> None:
    """The checks of options that depend on where the engine is, before anything is created.

    Raises:
        InvalidArgumentError: ``tunnel=True`` where it cannot be had (see
            ``check_tunnel``), or a loopback ``host_ip`` for an engine on another host.
    """
    if options.tunnel:
        check_tunnel(engine)
    else:
        host_address(options.host_ip, engine)  # refuses loopback for a remote engine
