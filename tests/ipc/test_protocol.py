"""The envelope codec, without a daemon (the operations' codec: test_codec.py)."""

from __future__ import annotations

import json

import pytest

from mullama.engine.api import InvalidRequest
from mullama.ipc.protocol import PROTOCOL_VERSION, decode, encode, mismatch_message


def test_encode_carries_type_data_id_and_version():
    envelope = json.loads(encode("Show", {"name": "gemma"}, 7))
    assert envelope == {"type": "Show", "data": {"name": "gemma"}, "id": 7, "v": PROTOCOL_VERSION}


def test_decode_round_trips_and_defaults_data():
    assert decode(encode("Ping"))["data"] == {}
    assert decode(b'{"type": "Ping", "data": null}')["data"] == {}


@pytest.mark.parametrize(
    "raw, words",
    [
        (b"\xff\xfe", "UTF-8 JSON"),
        (b"not json", "UTF-8 JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"data": {}}', '"type"'),
        (b'{"type": "", "data": {}}', '"type"'),
        (b'{"type": "Ping", "data": [1]}', '"data"'),
    ],
)
def test_decode_rejects_what_is_not_an_envelope(raw, words):
    with pytest.raises(InvalidRequest) as info:
        decode(raw)
    assert words in info.value.message


def test_mismatch_message_names_both_versions_and_the_fix():
    text = mismatch_message(2, 1, "0.1.0")
    assert "v2" in text and "v1" in text and "0.1.0" in text and "mullama daemon restart" in text
