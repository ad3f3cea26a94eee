"""Picking the registry's own errors out of its log, for a native push's PushError."""

from __future__ import annotations

from ephemeral_registry._watch import _server_error

PAYLOAD = (
    'time="2026-11-28T13:44:38Z" level=error msg="unknown error reading request payload: write'
    ' /dev/shm/registry/x/data: no space left on device" go.version=go1.19.8'
    " http.request.method=PATCH"
)


def test_a_server_side_error_gives_its_message() -> None:
    assert _server_error(PAYLOAD) == (
        "unknown error reading request payload: write /dev/shm/registry/x/data:"
        " no space left on device"
    )


def test_quotes_inside_the_message_are_unescaped() -> None:
    line = 'level=error msg="bad \\"name\\" given" go.version=1 http.response.status=500'
    assert _server_error(line) == 'bad "name" given'


def test_answers_to_client_mistakes_and_other_levels_are_left_out() -> None:
    assert _server_error('level=error msg="blob unknown" http.response.status=404') is None
    assert _server_error('level=info msg="listening on [::]:5000"') is None
