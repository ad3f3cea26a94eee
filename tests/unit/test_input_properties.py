"""The promise of the readers of outside input, stated directly: for any OCI layout and any
docker configuration directory generated here (links inside and out, chains of them, FIFOs
and devices where a file is expected, repeated descriptors, bytes that are not their digest,
JSON of the wrong types or nested deep), reading it ends within its deadline in a result or
one of the library's errors, its memory stays within ``watch.MEMORY_BUDGET``, and it opens
no file outside its input (an audit hook sees every ``open``).

The checks are the fuzz targets' own (``tests/fuzz/targets.py``); here the inputs are made
whole by Hypothesis, where the fuzzer mutates bytes. A longer search, by hand:
``HYPOTHESIS_EXAMPLES=500 pytest tests/unit/test_input_properties.py``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tracemalloc

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.fuzz import filesystem
from tests.fuzz.targets import CONTEXT_META, SEPARATOR, docker_config, layout

SETTINGS = settings(
    max_examples=int(os.environ.get("HYPOTHESIS_EXAMPLES", "20")),
    deadline=None,  # each call has its own (targets.DEADLINE), which unblocks what hangs
    derandomize=True,  # the same examples every run: a failure is the reader's, not chance
    database=None,  # nothing written into the checkout
    phases=[Phase.explicit, Phase.generate],  # no shrinking: a hang costs its whole deadline
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LAYER = b"a layer that is no tar\n"

FILE_SHAPES = st.sampled_from(
    ["as it is", "fifo", "@null", "@zero", "@outside", "chain inside", "chain out", "wrong bytes"]
)
"""What may stand where a reader expects a regular file."""


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _descriptor(content: bytes, algorithm: str = "sha256") -> dict[str, object]:
    digest = hashlib.new(algorithm, content).hexdigest()
    return {"mediaType": OCI_MANIFEST, "digest": f"{algorithm}:{digest}", "size": len(content)}


def _deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _shaped(name: str, shape: str, number: int, length: int) -> list[str]:
    """Script lines that put ``shape`` at ``name`` (document ``number`` is what belongs there;
    ``length`` is a chain's)."""
    if shape == "as it is":
        return []
    if shape == "fifo":
        return [f"fifo {name}"]
    if shape.startswith("@"):
        return [f"link {name} {shape}"]
    if shape == "chain inside":
        return [f"write real/{number} {number}", f"chain {name} {length} real/{number}"]
    if shape == "chain out":
        return [f"chain {name} {length} @outside"]
    return [f"write {name} {number}"]  # document ``number`` is the other bytes of its size


@st.composite
def layouts(draw: st.DrawFn) -> bytes:
    """A layout of one image (index, manifest, config, layer), in the layout target's form,
    with anything of the above where any of its files is expected."""
    os_value = draw(st.sampled_from([b'"linux"', b'["linux"]', b"3", _deep(70), _deep(990)]))
    diff_id = draw(st.sampled_from(["sha256:" + hashlib.sha256(LAYER).hexdigest(), "sha256:0"]))
    config = b'{"architecture":"amd64","os":%b,"rootfs":{"type":"layers","diff_ids":[%b]}}' % (
        os_value,
        _json(diff_id),
    )
    if draw(st.booleans()):
        config = b"not JSON"
    algorithm = draw(st.sampled_from(["sha256", "sha512"]))
    repeats = draw(st.sampled_from([1, 2, 1000]))
    layer = _json(_descriptor(LAYER, algorithm))
    manifest = b'{"schemaVersion":2,"config":%b,"layers":[%b]}' % (
        _json(_descriptor(config)),
        b",".join([layer] * repeats),
    )
    manifest = manifest.ljust(draw(st.sampled_from([0, 0, 0, 8 << 20])))
    index = _json(
        {"schemaVersion": 2, "manifests": [_descriptor(manifest)] * draw(st.sampled_from([1, 2]))}
    )
    documents = [index, manifest, config, LAYER]
    # documents 5 to 8: other bytes of the same size as 1 to 4
    documents += [bytes([document[0] ^ 1]) + document[1:] for document in documents]
    names = {
        "index.json": 1,
        f"blobs/sha256/{hashlib.sha256(manifest).hexdigest()}": 2,
        f"blobs/sha256/{hashlib.sha256(config).hexdigest()}": 3,
        f"blobs/{algorithm}/{hashlib.new(algorithm, LAYER).hexdigest()}": 4,
    }
    lines = [f"write {name} {number}" for name, number in names.items() if "sha512" in name]
    for name, number in names.items():
        shape = draw(FILE_SHAPES)
        length = draw(st.integers(1, filesystem.MAX_CHAIN))
        lines += _shaped(name, shape, number + (4 if shape == "wrong bytes" else 0), length)
    if draw(st.booleans()):
        lines.append(f"link blobs/sha256 {draw(st.sampled_from(['@outside-dir', '@null']))}")
    padded = [
        document.rstrip(b" ") if len(document) > 1 << 20 else document for document in documents
    ]
    pad = [f"pad {n} {len(d)}" for n, d in enumerate(documents, 1) if len(d) > 1 << 20]
    return SEPARATOR.join([*padded[:1], *padded[1:], filesystem.script(*pad, *lines)])


@st.composite
def homes(draw: st.DrawFn) -> bytes:
    """A home directory in the docker_config target's form: its ``config.json``, a context's
    ``meta.json``, ``certs/ca.pem`` and ``.ssh/config``, each of any shape above."""
    config = draw(
        st.sampled_from(
            [
                b"{}",
                b'{"currentContext":"fuzz"}',
                b'{"currentContext":[1]}',
                b"[]",
                _deep(990),
                b"\xff",
            ]
        )
    )
    host = draw(
        st.sampled_from([b'"tcp://127.0.0.1:2376"', b'"ssh://fuzz@127.0.0.1:1"', b"[]", _deep(990)])
    )
    skip = draw(st.sampled_from([b"false", b'"false"', b"true"]))
    meta = b'{"Endpoints":{"docker":{"Host":%b,"SkipTLSVerify":%b}}}' % (host, skip)
    certificate = b"-----BEGIN CERTIFICATE-----\nnot one\n-----END CERTIFICATE-----\n"
    ssh_config = draw(
        st.sampled_from([b"Host *\n  User fuzz\n", b"Include /etc/passwd\n", b"\0" * 64])
    )
    documents = [config, meta, b"", certificate, ssh_config]
    lines = ["write certs/ca.pem 4", "write .ssh/config 5"]
    paths = {"config.json": 1, CONTEXT_META: 2, "certs/ca.pem": 4, ".ssh/config": 5}
    for name, number in paths.items():
        shape = draw(FILE_SHAPES.filter(lambda shape: shape != "wrong bytes"))
        lines += _shaped(name, shape, number, draw(st.integers(1, filesystem.MAX_CHAIN)))
    return SEPARATOR.join([*documents, filesystem.script(*lines)])


@SETTINGS
@given(layouts())
def test_any_layout_is_read_within_its_deadline_memory_and_directory(data: bytes) -> None:
    """Reading any layout ends in time, in a layout or the library's error, in bounded
    memory, opening nothing outside it once links are resolved."""
    tracemalloc.start()
    try:
        layout(data)
    finally:
        tracemalloc.stop()


@SETTINGS
@given(homes())
def test_any_docker_configuration_is_read_within_its_deadline_memory_and_directory(
    data: bytes,
) -> None:
    """Finding the engine from any docker configuration (and making its TLS or SSH client)
    ends in time, in an address or ``DockerUnavailableError``, in bounded memory, opening
    nothing outside the home directory."""
    tracemalloc.start()
    try:
        docker_config(data)
    finally:
        tracemalloc.stop()
