"""The Registry's own small rules: compress_layers, the old name of layer compression."""

from __future__ import annotations

import pytest

from ephemeral_registry import InvalidArgumentError
from ephemeral_registry._registry import _compression


def test_compress_layers_is_gzip_and_deprecated() -> None:
    """compress_layers=True means layer_compression="gzip", for either pusher, with a warning."""
    with pytest.warns(DeprecationWarning, match='layer_compression="gzip"'):
        assert _compression(None, compress_layers=True) == "gzip"
    with pytest.warns(DeprecationWarning, match="compress_layers"):
        assert _compression("gzip", compress_layers=True) == "gzip"


def test_compress_layers_against_no_compression_is_refused() -> None:
    """Two answers that contradict each other are an InvalidArgumentError."""
    with (
        pytest.warns(DeprecationWarning, match="compress_layers"),
        pytest.raises(InvalidArgumentError) as caught,
    ):
        _compression("none", compress_layers=True)
    assert caught.value.argument == "compress_layers"


def test_without_compress_layers_layer_compression_stands() -> None:
    """The usual case: what layer_compression says (None: the pusher's own default)."""
    for given in (None, "gzip", "none"):
        assert _compression(given, compress_layers=False) == given
