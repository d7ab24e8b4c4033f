"""Hostile input for the ingest path: malformed, oversized, mistyped and malicious messages.

Built in code, deterministically for the same arguments, and never committed as files: some
cases are megabytes long. Each ``Case`` says what the service must make of it (``stage``):

* ``parse``, ``validate``, ``store``: nothing stored as an uplink, exactly one dead letter of that
  stage with a reason. Over the webhook: 422 with the reason, or 413 when the body is larger than
  ``BAUHOF_MAX_MESSAGE_BYTES`` (refused before it is read, so no dead letter). Over MQTT a message
  over that size is dead-lettered at ``parse`` with its first bytes and its size.
* ``decode``: a valid uplink whose frame its decoder refuses (or that has no decoder): stored
  once, without readings, plus one dead letter of stage ``decode``.

``tag`` keeps two corpora (one sent over MQTT, one over the webhook) apart: their devices,
times and ChirpStack deduplication ids differ, so that a valid-but-undecodable uplink is not a
duplicate of the other corpus's copy. ``app_id`` is the TTS application of the MQTT topics,
``cs_application`` the ChirpStack application UUID.
"""
from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, NamedTuple

from decoders.decentlab_dl_mbx import frame as dl_mbx
from simulator.tts import VirtualDevice

MAX_MESSAGE_BYTES = 256 * 1024  # the service's default BAUHOF_MAX_MESSAGE_BYTES
BASE_TIME = datetime(2025, 6, 3, 4, 0, tzinfo=timezone.utc)
NO_DEVICE = "hostile-device"  # topic segment for messages that name no (valid) device
STAGES = ("parse", "validate", "store", "decode")
MB = 1024 * 1024
_RAW = "@@raw-json-token@@"  # stands for a literal JSON token spliced into a dumped document


class Case(NamedTuple):
    name: str
    raw: bytes
    stage: str  # parse | validate | store | decode (see the module docstring)
    topic_device: str = NO_DEVICE  # device segment of the MQTT topic (ChirpStack: the DevEUI)
    mqtt_only: bool = False  # the fault is in the topic: nothing to test over the webhook
    network: str = "tts"  # tts | chirpstack


def mqtt_topic(case: Case, app_id: str, cs_application: str) -> str:
    if case.network == "chirpstack":
        return f"application/{cs_application}/device/{case.topic_device}/event/up"
    return f"v3/{app_id}@ttn/devices/{case.topic_device}/up"


def build(app_id: str, cs_application: str, tag: str = "a") -> list[Case]:
    """The whole corpus: TTS cases, then ChirpStack cases. ``tag``: a few lower-case letters."""
    b = _Builder(app_id, cs_application, tag)
    _invalid_json(b)
    _deep_nesting(b)
    _oversized(b)
    _not_tts(b)
    _wrong_types(b)
    _bad_base64(b)
    _ports(b)
    _non_finite(b)
    _ids(b)
    _topics(b)
    _f_cnt(b)
    _timestamps(b)
    _unstorable_text(b)
    _undecodable(b)
    _chirpstack(b)
    raws = Counter((c.network, c.raw[:MAX_MESSAGE_BYTES], len(c.raw)) for c in b.cases)
    assert max(raws.values()) == 1, "every case must be distinguishable by its stored bytes"
    names = Counter(c.name for c in b.cases)
    assert max(names.values()) == 1, [n for n, k in names.items() if k > 1]
    return b.cases


# --- building blocks -------------------------------------------------------------------------


def _set(doc: Any, path: str, value: Any) -> Any:
    """Set ``a.b.0.c`` in a nested document (creating objects on the way); returns ``doc``."""
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def _del(doc: Any, path: str) -> Any:
    *parents, last = path.split(".")
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node.pop(last, None)
    return doc


def _dump(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False).encode()


def _splice(doc: Any, path: str, token: str) -> bytes:
    """The document with the value at ``path`` replaced by a literal JSON token (``NaN``,
    ``1e999``, a lone surrogate escape ...), which ``json.dumps`` would not write."""
    text = json.dumps(_set(doc, path, _RAW), ensure_ascii=False)
    assert text.count(json.dumps(_RAW)) == 1
    return text.replace(json.dumps(_RAW), token).encode()


class _Builder:
    def __init__(self, app_id: str, cs_application: str, tag: str) -> None:
        self.app_id = app_id
        self.cs_application = cs_application
        self.tag = tag
        self.n = 0
        self.cases: list[Case] = []
        self.rng = random.Random(f"hostile/{tag}")

    def device(self, brand: str | None = "decentlab", model: str | None = "dl-mbx"
               ) -> VirtualDevice:
        self.n += 1
        device_id = f"hx-{self.tag}-{self.n:03d}"
        eui = hashlib.sha256(f"{self.app_id}/{device_id}".encode()).hexdigest()[:16].upper()
        return VirtualDevice(device_id=device_id, dev_eui=eui, application_id=self.app_id,
                             brand_id=brand, model_id=model,
                             rng=random.Random(f"{self.tag}/{self.n}"))

    def uplink(self, payload: bytes | None = None, f_port: int = 1,
               brand: str | None = "decentlab", model: str | None = "dl-mbx",
               **kwargs: Any) -> dict[str, Any]:
        """A valid TTS uplink of a fresh device; by default a good DL-MBX frame."""
        device = self.device(brand, model)
        if payload is None:
            payload = dl_mbx(300 + self.n, battery_v=3.0)
        when = BASE_TIME + timedelta(seconds=self.n, milliseconds=len(self.tag))
        return device.uplink(payload, f_port=f_port, received_at=when, **kwargs)

    def add(self, name: str, raw: bytes | dict | list, stage: str, *,
            topic_device: str | None = None, mqtt_only: bool = False,
            network: str = "tts") -> None:
        assert stage in STAGES, stage
        if topic_device is None:
            topic_device = _device_of(raw, network) or NO_DEVICE
        if not isinstance(raw, bytes):
            raw = _dump(raw)
        self.cases.append(Case(name, raw, stage, topic_device, mqtt_only, network))


def _device_of(raw: Any, network: str) -> str | None:
    """The device the (valid) body names, for its topic; None when there is no usable one."""
    if isinstance(raw, bytes):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return None
    try:
        if network == "chirpstack":
            value = raw["deviceInfo"]["devEui"]
        else:
            value = raw["end_device_ids"]["device_id"]
    except (KeyError, TypeError, IndexError):
        return None
    # A topic level may not hold wildcards, NUL or "/"; keep such bodies on a neutral topic.
    if not isinstance(value, str) or not value or any(c in value for c in "/+#\x00") \
            or len(value) > 200 or not value.isprintable():
        return None
    try:
        value.encode()
    except UnicodeEncodeError:  # a lone surrogate: not UTF-8, so not a topic either
        return None
    return value


# --- the categories ----------------------------------------------------------------------------


def _invalid_json(b: _Builder) -> None:
    good = _dump(b.uplink())
    fixed = {
        "empty body": b"",
        "whitespace only": b" \r\n\t ",
        "lone open brace": b"{",
        "lone close brace": b"}",
        "lone open bracket": b"[",
        "open string": b'{"',
        "bare word": b"uplink",
        "truncated null": b"nul",
        "truncated true": b"tru",
        "single quotes": b"{'end_device_ids': {'device_id': 'x'}}",
        "unquoted keys": b"{end_device_ids: {device_id: \"x\"}}",
        "leading zero number": b'{"f_cnt": 0123}',
        "plus sign number": b'{"f_cnt": +1}',
        "bare fraction": b'{"f_cnt": .5}',
        "trailing dot number": b'{"f_cnt": 1.}',
        "hex number": b'{"f_cnt": 0x10}',
        "lone minus": b'{"f_cnt": -}',
        "lower-case nan": b'{"f_cnt": nan}',
        "python None": b'{"f_cnt": None}',
        "invalid escape": b'{"end_device_ids": "\\q"}',
        "short unicode escape": b'{"end_device_ids": "\\u12"}',
        "x escape": b'{"end_device_ids": "\\x41"}',
        "all NUL bytes": b"\x00" * 1024,
        "random binary": bytes(random.Random(7).randrange(256) for _ in range(512)),
        "gzip of a good message": gzip.compress(good, mtime=0),
        "protobuf-looking bytes": b"\x0a\x12\x0a\x10hx-protobuf-dev\x12\x04\x08\x01\x10\x02",
        "msgpack map": b"\x82\xa3f_c\x01\xa3f_p\x02",
        "form encoded": b"end_device_ids=x&uplink_message=y",
        "xml": b"<?xml version='1.0'?><uplink><f_cnt>1</f_cnt></uplink>",
        "yaml": b"end_device_ids:\n  device_id: x\n",
    }
    for name, raw in fixed.items():
        b.add(f"invalid json: {name}", raw, "parse")

    text = _dump(b.uplink())
    for cut in (5, 10, len(text) // 4, len(text) // 2, len(text) - 1):
        b.add(f"invalid json: truncated at {cut} of {len(text)}", text[:cut], "parse")
    for name, suffix in {"text": b"garbage", "extra brace": b"}", "NUL": b"\x00",
                         "second object": b" {}", "comma": b","}.items():
        b.add(f"invalid json: trailing {name}", _dump(b.uplink()) + suffix, "parse")
    b.add("invalid json: two messages concatenated", _dump(b.uplink()) * 2, "parse")
    b.add("invalid json: trailing comma in object", _dump(b.uplink())[:-1] + b",}", "parse")
    b.add("invalid json: line comment", b"// an uplink\n" + _dump(b.uplink()), "parse")
    b.add("invalid json: block comment", b"/* x */" + _dump(b.uplink()), "parse")

    # Encodings: a byte-order mark, UTF-16/32, Latin-1, broken UTF-8.
    doc = b.uplink()
    b.add("encoding: UTF-8 byte-order mark", b"\xef\xbb\xbf" + _dump(doc), "parse")
    b.add("encoding: UTF-16 with BOM", json.dumps(b.uplink()).encode("utf-16"), "parse")
    b.add("encoding: UTF-16-BE", json.dumps(b.uplink()).encode("utf-16-be"), "parse")
    b.add("encoding: UTF-32", json.dumps(b.uplink()).encode("utf-32"), "parse")
    latin = _set(b.uplink(), "correlation_ids", ["gs:uplink:Müllheim"])
    b.add("encoding: Latin-1", json.dumps(latin, ensure_ascii=False).encode("latin-1"), "parse")
    for name, junk in {"lone continuation byte": b"\x80", "overlong slash": b"\xc0\xaf",
                       "0xFF byte": b"\xff", "truncated 3-byte sequence": b"\xe2\x82",
                       "CESU-8 surrogate": b"\xed\xa0\x80",
                       "code point above U+10FFFF": b"\xf4\x90\x80\x80"}.items():
        raw = _dump(_set(b.uplink(), "correlation_ids", ["gs:uplink:@@"]))
        b.add(f"encoding: invalid UTF-8, {name}", raw.replace(b"@@", junk), "parse")

    # NUL and other control characters, raw (invalid) in strings and between tokens.
    raw = _dump(_set(b.uplink(), "correlation_ids", ["gs:uplink:@@"]))
    b.add("control: raw NUL in a string", raw.replace(b"@@", b"\x00"), "parse")
    raw = _dump(_set(b.uplink(), "correlation_ids", ["gs:uplink:@@"]))
    b.add("control: raw newline in a string", raw.replace(b"@@", b"\n"), "parse")
    raw = _dump(_set(b.uplink(), "correlation_ids", ["gs:uplink:@@"]))
    b.add("control: raw escape char in a string", raw.replace(b"@@", b"\x1b[31m"), "parse")
    b.add("control: NUL between tokens", _dump(b.uplink()).replace(b", ", b",\x00 ", 1),
          "parse")

    # Lone surrogates (valid JSON syntax for many parsers, not valid Unicode).
    for path, token in {"end_device_ids.device_id": '"\\ud800"',
                        "correlation_ids.0": '"gs:\\udc00"',
                        "uplink_message.decoded_payload": '{"v": "\\ud83d"}',
                        "uplink_message.session_key_id": '"\\ud800\\u0041"',
                        "uplink_message.version_ids.brand_id": '"\\udfff\\ud800"'}.items():
        b.add(f"lone surrogate in {path}", _splice(b.uplink(), path, token), "parse")
    b.add("lone surrogate in a key",
          _splice(b.uplink(), "uplink_message.decoded_payload", '{"\\ud800": 1}'), "parse")
    b.add("number with 5000 digits (beyond what Python converts to text)",
          _splice(b.uplink(), "uplink_message.decoded_payload", '{"n": ' + "9" * 5000 + "}"),
          "parse")


def _deep_nesting(b: _Builder) -> None:
    for depth in (10_000, 100_000):
        b.add(f"nesting: {depth} arrays", b"[" * depth + b"]" * depth, "parse")
    b.add("nesting: 10000 objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "parse")
    b.add("nesting: 10000 unclosed arrays", b"[" * 10_000, "parse")
    b.add("nesting: 10000 levels in decoded_payload",
          _splice(b.uplink(), "uplink_message.decoded_payload",
                  '{"a":' * 10_000 + "1" + "}" * 10_000), "parse")
    b.add("nesting: 10000 levels in correlation_ids",
          _splice(b.uplink(), "correlation_ids", "[" * 10_000 + "]" * 10_000), "parse")
    b.add("nesting: 5000 levels in rx_metadata",
          _splice(b.uplink(), "uplink_message.rx_metadata", "[" * 5_000 + "]" * 5_000), "parse")


def _oversized(b: _Builder) -> None:
    doc = b.uplink()
    raw = _dump(doc)
    b.add("size: valid uplink padded to one byte over the limit",
          raw[:-1] + b" " * (MAX_MESSAGE_BYTES + 1 - len(raw)) + b"}", "parse")
    b.add("size: 1.2 MB of whitespace", b" " * (1200 * 1024) + _dump(b.uplink()), "parse")
    big = {
        "1.1 MB correlation id": ("correlation_ids", ["x" * (1100 * 1024)]),
        "1.5 MB decoded_payload string": ("uplink_message.decoded_payload",
                                          {"note": "ü" * (750 * 1024)}),
        "1.3 MB frm_payload": ("uplink_message.frm_payload", "AAAA" * (330 * 1024)),
        "1.8 MB device id": ("end_device_ids.device_id", "a" * (1800 * 1024)),
        "100000 correlation ids": ("correlation_ids",
                                   [f"gs:uplink:{i:08d}" for i in range(100_000)]),
        "50000 gateways": ("uplink_message.rx_metadata",
                           [{"gateway_ids": {"gateway_id": f"gw-{i}"}, "rssi": -100}
                            for i in range(50_000)]),
        "3 MB session key id": ("uplink_message.session_key_id", "k" * (3 * MB)),
        "6 MB decoded_payload string": ("uplink_message.decoded_payload",
                                        {"blob": "z" * (6 * MB)}),
        "12 MB correlation id": ("correlation_ids", ["c" * (12 * MB)]),
    }
    for name, (path, value) in big.items():
        b.add(f"size: {name}", _set(b.uplink(), path, value), "parse")
    b.add("size: 1.5 MB JSON array of zeros", b"[" + b"0," * (768 * 1024) + b"0]", "parse")


def _not_tts(b: _Builder) -> None:
    good = b.uplink()
    others: dict[str, Any] = {
        "empty object": {},
        "empty array": [],
        "a string": "uplink",
        "a number": 42,
        "null": None,
        "true": True,
        "array holding an uplink": [good],
        "uplink as a JSON string": json.dumps(b.uplink()),
        "TTN v2 uplink": {"app_id": b.app_id, "dev_id": "hx-v2", "hardware_serial":
                          "0004A30B001C0530", "port": 1, "counter": 2,
                          "payload_raw": "AQI=", "metadata": {"time": "2025-06-03T05:00:00Z"}},
        "downlink push body": {"downlinks": [{"f_port": 1, "frm_payload": "AQI="}]},
        "ChirpStack event on a TTS topic": _chirpstack_event(b, "cs-on-tts"),
        "uplink without end_device_ids": _del(b.uplink(), "end_device_ids"),
        "identifiers only": {"end_device_ids": b.uplink()["end_device_ids"]},
        "uplink_message null": _set(b.uplink(), "uplink_message", None),
        "GeoJSON": {"type": "Feature", "geometry": {"type": "Point",
                                                    "coordinates": [9.18, 48.77]}},
        "JSON-RPC": {"jsonrpc": "2.0", "method": "uplink", "params": [1, 2], "id": 1},
    }
    for name, doc in others.items():
        b.add(f"not TTS: {name}", doc, "validate")


# fields and wrong values for them: none of these can be coerced into the right type
WRONG_TYPES: dict[str, list[Any]] = {
    "end_device_ids": ["hx-dev", ["hx-dev"], None, 7],
    "end_device_ids.device_id": [12345, None, ["hx-dev"], {"id": "hx-dev"}, True],
    "end_device_ids.application_ids": ["app", None, [1]],
    "end_device_ids.application_ids.application_id": [42, None, {"id": "app"}],
    "end_device_ids.dev_eui": [7073, ["70B3D57ED0063A91"], {}],
    "end_device_ids.dev_addr": [260, True],
    "correlation_ids": ["gs:uplink:x", {"0": "x"}, [1, 2], None],
    "received_at": ["yesterday", [2025], {"seconds": 1}, True],
    "uplink_message": ["AQI=", [1], 3],
    "uplink_message.f_port": ["one", 1.5, [1], {"port": 1}, None],
    "uplink_message.f_cnt": ["eleven", 2.5, [], {}, None],
    "uplink_message.frm_payload": [1234, ["AQI="], {"b64": "AQI="}, True],
    "uplink_message.session_key_id": [5, None, ["a"]],
    "uplink_message.decoded_payload": [[1, 2], "distance=3", 3.5, True],
    "uplink_message.rx_metadata": [{"rssi": -90}, "gateway", [1]],
    "uplink_message.rx_metadata.0.rssi": ["loud", [1], {}],
    "uplink_message.rx_metadata.0.snr": ["good", [2]],
    "uplink_message.settings": ["SF7BW125", [868]],
    "uplink_message.settings.frequency": ["868.1 MHz", -1, [868100000]],
    "uplink_message.settings.data_rate.lora.spreading_factor": ["SF7", 7.5],
    "uplink_message.settings.data_rate.lora.bandwidth": ["125k", {}],
    "uplink_message.version_ids": ["decentlab/dl-mbx", [1]],
    "uplink_message.version_ids.brand_id": [7, ["decentlab"]],
    "uplink_message.received_at": [20250603, "now", []],
    "uplink_message.confirmed": ["perhaps", [True]],
    "uplink_message.consumed_airtime": [0.5, "fast", "NaNs", "infs", "1e300s", "-1s"],
    "simulated": ["maybe", {}],
}


def _wrong_types(b: _Builder) -> None:
    for path, values in WRONG_TYPES.items():
        for value in values:
            b.add(f"wrong type: {path} = {json.dumps(value)[:40]}",
                  _set(b.uplink(), path, value), "validate")


def _bad_base64(b: _Builder) -> None:
    values = {
        "invalid characters": "***",
        "missing padding": "AQI",
        "too much padding": "AQI===",
        "single character": "A",
        "padding in the middle": "AQ=I",
        "space inside": "AQ I=",
        "newline inside": "AQ\nI=",
        "URL-safe alphabet": "-_-_",
        "umlauts": "ÄÖÜ=",
        "only padding": "====",
        "256 bytes": base64.b64encode(bytes(256)).decode(),
        "over the field's length limit": "A" * 1024,
        "hex instead of base64": "02012f000304d200010bb1",
    }
    for name, value in values.items():
        b.add(f"base64: {name}", _set(b.uplink(), "uplink_message.frm_payload", value),
              "validate")


def _ports(b: _Builder) -> None:
    b.add("port: payload on f_port 0", _set(b.uplink(), "uplink_message.f_port", 0), "validate")
    for port in (-1, 256, 2**31, 2**63, 10**30):
        b.add(f"port: f_port {port}", _set(b.uplink(), "uplink_message.f_port", port),
              "validate")
    b.add("port: f_port 224 (test protocol)", b.uplink(f_port=224), "validate")
    b.add("port: f_port NaN", _splice(b.uplink(), "uplink_message.f_port", "NaN"), "validate")
    # Ports above 224 reach the application; these frames are not DL-MBX frames.
    b.add("port: f_port 225, garbage frame", b.uplink(b"\xde\xad", f_port=225), "decode")
    b.add("port: f_port 255, garbage frame", b.uplink(b"\xff" * 9, f_port=255), "decode")


def _non_finite(b: _Builder) -> None:
    tokens = ("NaN", "Infinity", "-Infinity", "1e999", "-1e999")
    for path in ("uplink_message.rx_metadata.0.rssi", "uplink_message.rx_metadata.0.snr",
                 "uplink_message.rx_metadata.0.channel_rssi", "uplink_message.f_cnt",
                 "uplink_message.settings.frequency"):
        for token in tokens:
            b.add(f"non-finite: {path} = {token}", _splice(b.uplink(), path, token),
                  "validate")
    for token in tokens:
        b.add(f"non-finite: decoded_payload value {token}",
              _splice(b.uplink(), "uplink_message.decoded_payload",
                      f'{{"distance": {token}}}'), "validate")
    b.add("non-finite: NaN deep in decoded_payload",
          _splice(b.uplink(), "uplink_message.decoded_payload",
                  '{"a": {"b": [1, 2, {"c": NaN}]}}'), "validate")
    b.add("non-finite: NUL escape in a decoded_payload value",
          _splice(b.uplink(), "uplink_message.decoded_payload", '{"a": "x\\u0000y"}'),
          "validate")
    b.add("non-finite: NUL escape in a decoded_payload key",
          _splice(b.uplink(), "uplink_message.decoded_payload", '{"\\u0000": 1}'), "validate")
    # Finite, but beyond what radio metadata can be (and beyond the database's columns).
    for path, value in {"uplink_message.rx_metadata.0.rssi": 1e300,
                        "uplink_message.rx_metadata.0.snr": -1e38,
                        "uplink_message.settings.data_rate.lora.bandwidth": 10**30,
                        "uplink_message.settings.data_rate.lora.spreading_factor": 10**20,
                        "uplink_message.settings.frequency": "1" + "0" * 30}.items():
        b.add(f"out of range: {path} = {str(value)[:12]}", _set(b.uplink(), path, value),
              "validate")


HOSTILE_STRINGS = {
    "SQL drop": "x'); DROP TABLE raw_uplinks; --",
    "SQL or": "' OR '1'='1",
    "SQL comment": "hx/**/UNION/**/SELECT/**/1",
    "umlauts": "gerät-müllheim",
    "emoji": "🗑️-bin-🚮",
    "right-to-left override": "bin-\u202egnp.exe",
    "zero-width space": "bin\u200b-017",
    "full-width": "ｂｉｎ－０１７",
    "upper case": "BIN-017",
    "too long": "b" * 37,
    "too short": "ab",
    "double dash": "bin--017",
    "path traversal": "../../etc/passwd",
    "percent escapes": "bin%2F017",
    "newline": "bin\n017",
    "empty": "",
}


def _ids(b: _Builder) -> None:
    for name, value in HOSTILE_STRINGS.items():
        b.add(f"ids: device_id {name}", _set(b.uplink(), "end_device_ids.device_id", value),
              "validate")
    for name in ("SQL drop", "umlauts", "emoji", "upper case", "empty", "too long"):
        b.add(f"ids: application_id {name}",
              _set(b.uplink(), "end_device_ids.application_ids.application_id",
                   HOSTILE_STRINGS[name]), "validate")
    for name, value in {"SQL": "70B3D57E'; --", "not hex": "70B3D57ED0063AXZ",
                        "15 digits": "70B3D57ED0063A9", "17 digits": "70B3D57ED0063A911",
                        "full-width digit": "70B3D57ED0063A9１", "umlauts": "ÄÖÜÄÖÜÄÖÜÄÖÜÄÖÜÄ",
                        "with dashes": "70-B3-D5-7E-D0-06-3A-91"}.items():
        b.add(f"ids: dev_eui {name}", _set(b.uplink(), "end_device_ids.dev_eui", value),
              "validate")
    b.add("ids: dev_addr SQL", _set(b.uplink(), "end_device_ids.dev_addr", "'; --"),
          "validate")
    b.add("ids: session_key_id over 64 chars",
          _set(b.uplink(), "uplink_message.session_key_id", "S" * 65), "validate")
    b.add("ids: brand_id over 64 chars",
          _set(b.uplink(), "uplink_message.version_ids.brand_id", "d" * 65), "validate")


def _topics(b: _Builder) -> None:
    """The topic names another device than the body: only MQTT has topics."""
    for name, segment in {"other device": "hx-someone-else", "SQL": "x'; DROP TABLE devices;--",
                          "umlauts": "gerät-müllheim", "emoji": "🗑️🚮",
                          "upper case": "HX-DEVICE", "spaces": "hx dev 1",
                          "4000 characters": "t" * 4000}.items():
        b.add(f"topic: {name}", b.uplink(), "validate", topic_device=segment, mqtt_only=True)


def _f_cnt(b: _Builder) -> None:
    for value in (2**32, 2**63, 2**64, 10**100, -1, -(2**63), 1e10):
        b.add(f"f_cnt: {value}", _set(b.uplink(), "uplink_message.f_cnt", value), "validate")
    b.add("f_cnt: 1e400 digits", _splice(b.uplink(), "uplink_message.f_cnt", "9" * 400),
          "validate")


def _timestamps(b: _Builder) -> None:
    # Without the network's times an uplink takes a gateway's (app/sources/tts.py,
    # reception_time): these bodies have no gateway times, so the bad time is all there is.
    def both(doc: dict, value: Any) -> dict:
        _set(doc, "received_at", value)
        _set(doc, "uplink_message.rx_metadata", [{"gateway_ids": {"gateway_id": "gw"}}])
        return _set(doc, "uplink_message.received_at", value)

    for name, value in {"without zone": "2025-06-03T05:42:17.123456",
                        "date only": "2025-06-03",
                        "month 13": "2025-13-03T05:42:17Z",
                        "hour 25": "2025-06-03T25:42:17Z",
                        "offset +25:00": "2025-06-03T05:42:17+25:00",
                        "year 1": "0001-01-01T00:00:00Z",
                        "year 1 at +14:00": "0001-01-01T00:00:00+14:00",
                        "year 9999 at -14:00": "9999-12-31T23:59:59-14:00",
                        "year 9999": "9999-12-31T23:59:59Z",
                        "year 10000": "10000-01-01T00:00:00Z",
                        "1970": "1970-01-01T00:00:00Z",
                        "1999": "1999-12-31T23:59:59Z",
                        "2100": "2100-01-01T00:00:00Z",
                        "year 2525": "2525-06-03T05:42:17Z",
                        "unix seconds 1e12": 10**12 * 1000,
                        "negative epoch": -(10**11),
                        "empty string": "",
                        "German date": "03.06.2025 05:42"}.items():
        b.add(f"time: received_at {name}", both(b.uplink(), value), "validate")
    doc = _del(_del(b.uplink(), "received_at"), "uplink_message.received_at")
    b.add("time: no received_at at all", _set(doc, "uplink_message.rx_metadata", []),
          "validate")
    doc = _del(b.uplink(), "uplink_message.received_at")
    b.add("time: top-level received_at without zone",
          _set(doc, "received_at", "2025-06-03T05:42:17"), "validate")


def _unstorable_text(b: _Builder) -> None:
    """Valid JSON the parser accepts, but PostgreSQL refuses (text cannot hold NUL): the
    database's refusal, isolated by bisecting the batch, dead-letters the message alone."""
    b.add("store: NUL in session_key_id",
          _splice(b.uplink(), "uplink_message.session_key_id", '"key\\u0000id"'), "store")
    b.add("store: NUL in correlation id",
          _splice(b.uplink(), "correlation_ids.0", '"gs:uplink:\\u0000"'), "store")
    b.add("store: NUL in brand_id",
          _splice(b.uplink(brand="acme"), "uplink_message.version_ids.brand_id",
                  '"decentlab\\u0000"'), "store")


# frames the named decoder refuses (each checked by tests/test_hostile_corpus.py)
BROKEN_FRAMES: list[tuple[str, str, int, bytes]] = [
    ("decentlab", "dl-mbx", 1, bytes.fromhex("02012f000304d2")),  # truncated
    ("decentlab", "dl-mbx", 1, bytes.fromhex("01012f000304d200010bb1")),  # protocol 1
    ("decentlab", "dl-mbx", 1, bytes.fromhex("02012f000304d200010bb1ff")),  # one byte too many
    ("decentlab", "dl-mbx", 1, b"\x00"),
    ("decentlab", "dl-atm41", 1, b"\xff\xff\xff"),
    ("decentlab", "dl-smtp", 1, b"\xab" * 51),
    ("decentlab", "dl-trs12", 1, b"\x02"),
    ("decentlab", "dl-atm22", 1, bytes.fromhex("02012f00")),
    ("dragino", "ldds75", 1, b"\x0b\xb8"),
    ("dragino", "lse01", 2, b"\x00"),
    ("dragino", "lt22222-l", 2, b"\xff\xff\xff"),
    ("dragino", "wsc1-l", 2, b"\xff\xff\xff"),
    ("ellenex", "pls2-l", 1, b"\x00"),
    ("milesight-iot", "em310-udl", 85, b"\xff" * 3),
]


def _undecodable(b: _Builder) -> None:
    for brand, model, port, payload in BROKEN_FRAMES:
        b.add(f"decode: {brand}/{model} frame {payload.hex()[:24]}",
              b.uplink(payload, f_port=port, brand=brand, model=model), "decode")
    b.add("decode: unknown model, no decoded_payload",
          b.uplink(b"\x01\x02", brand="acme", model="bin-9000"), "decode")
    b.add("decode: SQL-looking model ids",
          b.uplink(b"\x01\x02", brand="x'; DROP TABLE devices; --", model="' OR 1=1 --"),
          "decode")
    b.add("decode: no version_ids, no decoded_payload", b.uplink(b"\x01", brand=None,
                                                                 model=None), "decode")
    b.add("decode: DL-MBX with empty payload on f_port 1", _del(b.uplink(),
                                                                "uplink_message.frm_payload"),
          "decode")
    b.add("decode: simulated uplink with a broken frame",
          _set(b.uplink(b"\x02\x01"), "simulated", True), "decode")
    # Strings that are harmless where they are (free text), carried by an undecodable uplink:
    # the uplink must be stored with the string verbatim, and nothing else must happen.
    for name, value in HOSTILE_STRINGS.items():
        if name in ("empty", "too long", "too short"):
            continue
        b.add(f"decode: correlation id {name}",
              _set(b.uplink(b"\x00"), "correlation_ids", [value, "as:up:" + value]), "decode")
    for name in ("SQL drop", "SQL or", "umlauts", "emoji", "right-to-left override"):
        b.add(f"decode: session_key_id {name}",
              _set(b.uplink(b"\x00"), "uplink_message.session_key_id",
                   HOSTILE_STRINGS[name]), "decode")
    b.add("decode: 150 levels of nesting in decoded_payload",
          _splice(b.uplink(b"\x00"), "uplink_message.decoded_payload",
                  '{"a":' * 150 + "1" + "}" * 150), "decode")
    b.add("decode: 200 kB string in decoded_payload",
          _set(b.uplink(b"\x00"), "uplink_message.decoded_payload", {"s": "ß" * 100_000}),
          "decode")
    b.add("decode: 5000 correlation ids",
          _set(b.uplink(b"\x00"), "correlation_ids", [f"x:{i}" for i in range(5000)]),
          "decode")
    b.add("decode: duplicate keys",
          _dump(b.uplink(b"\x00"))[:-1] + b', "end_device_ids": '
          + _dump(b.uplink(b"\x00")["end_device_ids"]) + b"}", "decode")


# --- ChirpStack ----------------------------------------------------------------------------


def _chirpstack_event(b: _Builder, label: str, data: bytes | None = None,
                      decoder: str | None = None) -> dict[str, Any]:
    b.n += 1
    eui = hashlib.sha256(f"{b.cs_application}/{b.tag}/{b.n}".encode()).hexdigest()[:16]
    tags = {"site": "bauhof-nord"}
    if decoder:
        tags["decoder"] = decoder
    payload = dl_mbx(400 + b.n, battery_v=3.1) if data is None else data
    return {
        "deduplicationId": str(uuid.UUID(bytes=hashlib.md5(
            f"{b.tag}/{b.n}/{label}".encode()).digest())),
        "time": (BASE_TIME + timedelta(seconds=b.n)).isoformat(),
        "deviceInfo": {"tenantId": "3be74ff6-e8aa-48ac-9d57-a78d7219d98f",
                       "applicationId": b.cs_application, "deviceName": f"cs-{label}",
                       "devEui": eui, "tags": tags},
        "devAddr": "01a3f5c2", "adr": True, "dr": 5, "fCnt": b.n, "fPort": 1,
        "confirmed": False, "data": base64.b64encode(payload).decode(),
        "rxInfo": [{"gatewayId": "7276ff002e0507a1", "rssi": -88, "snr": 9.5}],
        "txInfo": {"frequency": 867100000,
                   "modulation": {"lora": {"bandwidth": 125000, "spreadingFactor": 7}}},
    }


def _chirpstack(b: _Builder) -> None:
    def add(name: str, raw: Any, stage: str, **kwargs: Any) -> None:
        b.add(f"chirpstack: {name}", raw, stage, network="chirpstack", **kwargs)

    def event(label: str, **kwargs: Any) -> dict[str, Any]:
        return _chirpstack_event(b, label, **kwargs)

    for name, raw in {"empty body": b"", "truncated": _dump(event("t"))[:40],
                      "trailing garbage": _dump(event("g")) + b"!",
                      "NUL bytes": b"\x00" * 64, "BOM": b"\xef\xbb\xbf" + _dump(event("bom")),
                      "10000 nested arrays": b"[" * 10_000 + b"]" * 10_000,
                      "lone surrogate": _splice(event("s"), "deviceInfo.deviceName",
                                                '"\\ud800"')}.items():
        add(name, raw, "parse")
    add("1.2 MB deviceName", _set(event("big"), "deviceInfo.deviceName", "n" * (1200 * 1024)),
        "parse")
    add("TTS uplink on a ChirpStack topic", b.uplink(), "validate")
    validate: dict[str, tuple[str, Any]] = {
        "no deduplicationId": ("deduplicationId", None),
        "deduplicationId not a UUID": ("deduplicationId", "'; DROP TABLE raw_uplinks; --"),
        "deduplicationId a number": ("deduplicationId", 12345),
        "devEui SQL": ("deviceInfo.devEui", "' OR 1=1 --"),
        "devEui umlauts": ("deviceInfo.devEui", "äöüäöüäöüäöüäöüä"),
        "applicationId not a UUID": ("deviceInfo.applicationId", "bauhof"),
        "deviceInfo an array": ("deviceInfo", [1, 2]),
        "deviceName 101 chars": ("deviceInfo.deviceName", "n" * 101),
        "tag value a number, long key": ("deviceInfo.tags", {"k" * 5000: 1}),
        "time without zone": ("time", "2025-06-03T05:45:02.118264981"),
        "time year 1": ("time", "0001-01-01T00:00:00+00:00"),
        "time garbage": ("time", "gestern"),
        "fCnt 2**32": ("fCnt", 2**32),
        "fCnt negative": ("fCnt", -5),
        "fCnt 10**100": ("fCnt", 10**100),
        "fPort 256": ("fPort", 256),
        "fPort a string": ("fPort", "one"),
        "data invalid base64": ("data", "***"),
        "data 300 bytes": ("data", base64.b64encode(bytes(300)).decode()),
        "devAddr SQL": ("devAddr", "'; --"),
        "object an array": ("object", [1, 2, 3]),
        "rxInfo an object": ("rxInfo", {"rssi": -80}),
        "frequency 10**30": ("txInfo.frequency", 10**30),
        "spreadingFactor 10**20": ("txInfo.modulation.lora.spreadingFactor", 10**20),
    }
    for name, (path, value) in validate.items():
        doc = event(name)
        if value is None:
            _del(doc, path)
        else:
            _set(doc, path, value)
        add(name, doc, "validate")
    for name, (path, token) in {"object NaN": ("object", '{"t": NaN}'),
                                "object Infinity": ("object", '{"t": [Infinity]}'),
                                "object NUL": ("object", '{"t": "\\u0000"}'),
                                "rssi NaN": ("rxInfo.0.rssi", "NaN"),
                                "snr -Infinity": ("rxInfo.0.snr", "-Infinity"),
                                "fCnt 1e999": ("fCnt", "1e999")}.items():
        add(name, _splice(event(name), path, token), "validate")
    other = event("mismatch")
    add("topic names another DevEUI", other, "validate", topic_device="0000000000000001",
        mqtt_only=True)
    add("decode: DL-MBX tag, truncated frame",
        event("dec1", data=bytes.fromhex("02012f000304d2"), decoder="decentlab/dl-mbx"),
        "decode")
    add("decode: unknown decoder tag, no object",
        event("dec2", data=b"\x01\x02", decoder="acme/nothing"), "decode")
    add("decode: SQL in the decoder tag",
        event("dec3", data=b"\x01", decoder="x'; DROP TABLE readings; --/y"), "decode")
