"""The fast TTS path (TypedDicts) against the reference models, on thousands of mutated messages.

The fast path may only ever return what the models return; whatever it declines, the models
decide. Every field of the examples is removed, nulled and replaced by values of the wrong type,
out of bounds, or at the edges of what is allowed.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest

from app.sources.errors import Rejected
from app.sources.tts import NotAnUplink, _fast_tts, parse_tts, parse_tts_models
from fixtures_data import DATA

EXAMPLES = {
    name: json.loads((DATA / "examples" / name).read_bytes())
    for name in ("tts_uplink_raw.json", "tts_uplink_decoded.json")
}
TOPIC = "v3/bauhof-sensors@ttn/devices/{}/up"

REPLACEMENTS = [
    None, True, False, 0, -1, 1, 224, 255, 256, 2**32, 2**64, 2**70, -(2**70), 1.5, 2.0, 1e30,
    -1000, 1000.5, "", "x", "1", "0123", "868300000", "1e3", " 5", "bin-marktplatz-017",
    "70b3d57ed0063a91", "260b4f2a", "AQKeDhoU", "%%%", "0.185344s", "1.0000000001s",
    "2025-06-03T05:42:17.359402117Z", "2025-06-03T05:42:17+02:00", "2025-06-03 05:42:17Z",
    "2025-06-03T05:42:17", "1999-12-31T23:59:59Z", "2100-01-01T00:00:00Z", "a\u0000b",
    "x" * 65, [], [1], ["a"], {}, {"a": 1}, {"gateway_id": 5}, {"lora": {}},
    {"lora": {"bandwidth": "125000"}}, {"x": float("nan")}, {"x": 2**70},
]


def _paths(doc, prefix=()):
    if isinstance(doc, dict):
        for key, value in doc.items():
            yield prefix + (key,)
            yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for index, value in enumerate(doc):
            yield prefix + (index,)
            yield from _paths(value, prefix + (index,))


def _mutated(doc, path, value):
    doc = copy.deepcopy(doc)
    target = doc
    for key in path[:-1]:
        target = target[key]
    if value is _DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return doc


_DELETE = object()


def _cases():
    for name, doc in EXAMPLES.items():
        yield f"{name}:as-is", json.dumps(doc).encode()
        extra_paths = [("uplink_message", "decoded_payload"), ("uplink_message", "version_ids"),
                       ("simulated",), ("join_accept",), ("uplink_message", "confirmed")]
        for path in list(_paths(doc)) + extra_paths:
            for value in [_DELETE, *REPLACEMENTS]:
                try:
                    mutated = _mutated(doc, path, value)
                except (KeyError, IndexError, TypeError):
                    continue
                try:
                    raw = json.dumps(mutated, allow_nan=True).encode()
                except (TypeError, ValueError):
                    continue
                yield f"{name}:{'.'.join(map(str, path))}={value!r:.30}", raw
    yield "deep", (b'{"end_device_ids":{"device_id":"abc","application_ids":{"application_id":'
                   b'"abc"}},"uplink_message":{"received_at":"2025-06-03T05:42:17Z","x":'
                   + b"[" * 250 + b"]" * 250 + b"}}")


def _outcome(parse, raw, topic):
    try:
        return parse(raw, "tts-mqtt", topic)
    except Rejected as err:
        return ("rejected", err.stage, err.reason)
    except NotAnUplink as kind:
        return ("not an uplink", str(kind))


CASES = list(_cases())


def test_there_are_many_cases():
    assert len(CASES) > 2000


@pytest.mark.parametrize("topic", [None, "device"])
def test_fast_path_agrees_with_the_models(topic):
    taken = 0
    for label, raw in CASES:
        device = json.loads(raw).get("end_device_ids", {}) if raw.startswith(b"{") else {}
        name = device.get("device_id") if isinstance(device, dict) else None
        where = TOPIC.format(name if isinstance(name, str) else "x") if topic else None
        reference = _outcome(parse_tts_models, raw, where)
        fast = _fast_tts(raw, "tts-mqtt", where)
        if fast is not None:
            taken += 1
            assert fast == reference, label
            assert type(fast.radio.rssi) is type(reference.radio.rssi), label
            assert type(fast.radio.frequency) is type(reference.radio.frequency), label
        assert _outcome(parse_tts, raw, where) == reference, label
    assert taken > 100  # the fast path does take the well-formed ones


def test_fast_path_takes_the_examples():
    for doc in EXAMPLES.values():
        assert _fast_tts(json.dumps(doc).encode(), "tts-mqtt", None) is not None


def test_times_are_cut_to_the_microsecond_in_utc():
    doc = copy.deepcopy(EXAMPLES["tts_uplink_raw.json"])
    doc["uplink_message"]["received_at"] = "2025-06-03T05:42:17.999999999Z"
    u = _fast_tts(json.dumps(doc).encode(), "tts-mqtt", None)
    assert u.received_at == datetime(2025, 6, 3, 5, 42, 17, 999999, tzinfo=timezone.utc)
