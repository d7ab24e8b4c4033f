"""Milesight EM310-UDL: ultrasonic distance sensor for bins and containers, with a tilt switch.

Frame (sent on fPort 85; the reference decoder ignores the port, and so do we): a run of
records ``[channel, type, data...]``, data little-endian. Telemetry:
- ``01 75`` battery, 1 byte, % -> ``battery``
- ``03 82`` distance, uint16, mm -> ``distance``
- ``04 00`` position, 1 byte: 0 normal, 1 tilt -> ``position`` and ``tilt`` (see below)
Device information, sent after joining (channel ``ff``): ``01`` IPSO version (1 byte, nibbles
-> "v1.0"), ``09`` hardware version (2 bytes -> "v<hex>.<high nibble>"), ``0a`` firmware
version (2 bytes -> "v<hex>.<hex>"), ``ff`` TSL version (2 bytes -> "v<dec>.<dec>"), ``16``
serial number (8 bytes -> lowercase hex), ``0f`` LoRaWAN class (1 byte -> "Class A" ...,
"unknown"), ``fe`` reset event and ``0b`` device status (1 byte each, see quirks).
Replies to downlinks (channel ``fe`` or ``ff``): ``10`` reboot (1 byte), ``02`` collection
interval and ``03`` report interval (uint16), ``06`` distance alarm configuration (9 bytes:
condition and alarm-release bits, int16 min and max threshold, uint16 lock and continue time).

Quirks, decided against the reference decoder (``vendor/milesight-iot/em310-udl.js``):
- Two stored versions disagree on the tilt key: the 2021 decoder (@62c8acdd, whose codec YAML
  example is the only public vector) emits ``tilt`` ("normal" for 0, "tilt" for anything
  else); the 2025 decoder emits ``position`` ("normal", "tilt", "unknown" for other values).
  TTS may run either, so we emit both keys, each with its own decoder's value.
- The 2025 decoder reports ``reset_event`` "reset", ``device_status`` "on" and ``reboot``
  "yes" whatever the data byte says (it passes the constant 1 to the lookup); we mirror that.
- At an unknown channel/type the reference silently stops and returns what it decoded so far;
  we mirror that for the telemetry channels, so a newer firmware's extra records do not lose
  the reading. A frame whose very first record is unknown (nothing decoded at all) and an empty
  payload raise DecodeError instead of giving ``{}``.
- An unknown type on channel ``fe``/``ff`` makes the reference throw ("unknown downlink
  response"): DecodeError.
- A record cut short by the end of the payload: the reference reads the missing bytes as 0 or
  NaN; we raise DecodeError.

Normalised: ``distance_m`` (mm / 1000) and ``fill_level_pct``; while the sensor reports a tilt
(lid open, or the sensor knocked over) the distance does not measure the fill, so both become
None. ``battery_pct``. The tilt itself has no angle, so there is no ``tilt_deg``.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import fill_level_pct, finite

NAME = "EM310-UDL"
DATA_PORT = 85
DEVICE_CHANNELS = (0xFE, 0xFF)  # device information and downlink replies
LORAWAN_CLASSES = ("Class A", "Class B", "Class C", "Class CtoB")
POSITIONS = ("normal", "tilt")
ALARM_CONDITIONS = ("disable", "below", "above", "between", "outside")
ENABLE = ("disable", "enable")
UNKNOWN = "unknown"


def _label(labels: tuple[str, ...], index: int) -> str:
    return labels[index] if index < len(labels) else UNKNOWN


def _u16(data: bytes, offset: int = 0) -> int:
    return struct.unpack_from("<H", data, offset)[0]


def _i16(data: bytes, offset: int = 0) -> int:
    return struct.unpack_from("<h", data, offset)[0]


def _position(data: bytes) -> Decoded:
    return {"position": _label(POSITIONS, data[0]), "tilt": "normal" if data[0] == 0 else "tilt"}


def _alarm_config(data: bytes) -> Decoded:
    return {"distance_alarm_config": {
        "condition": _label(ALARM_CONDITIONS, data[0] & 0x07),
        "alarm_release_enable": ENABLE[(data[0] >> 7) & 0x01],
        "threshold_min": _i16(data, 1),
        "threshold_max": _i16(data, 3),
        "lock_time": _u16(data, 5),
        "continue_time": _u16(data, 7),
    }}


@dataclass(frozen=True)
class Record:
    label: str  # for error messages
    size: int
    read: Callable[[bytes], Decoded]


TELEMETRY = {
    (0x01, 0x75): Record("battery", 1, lambda d: {"battery": d[0]}),
    (0x03, 0x82): Record("distance", 2, lambda d: {"distance": _u16(d)}),
    (0x04, 0x00): Record("position", 1, _position),
}
DEVICE_INFO = {  # channel ff only
    0x01: Record("IPSO version", 1, lambda d: {"ipso_version": f"v{d[0] >> 4}.{d[0] & 0x0F}"}),
    0x09: Record("hardware version", 2,
                 lambda d: {"hardware_version": f"v{d[0]:x}.{d[1] >> 4}"}),
    0x0A: Record("firmware version", 2, lambda d: {"firmware_version": f"v{d[0]:x}.{d[1]:x}"}),
    0xFF: Record("TSL version", 2, lambda d: {"tsl_version": f"v{d[0]}.{d[1]}"}),
    0x16: Record("serial number", 8, lambda d: {"sn": d.hex()}),
    0x0F: Record("LoRaWAN class", 1, lambda d: {"lorawan_class": _label(LORAWAN_CLASSES, d[0])}),
    # the reference looks up the constant 1, not the data byte
    0xFE: Record("reset event", 1, lambda d: {"reset_event": "reset"}),
    0x0B: Record("device status", 1, lambda d: {"device_status": "on"}),
}
DOWNLINK_REPLIES = {  # channel fe or ff
    0x10: Record("reboot reply", 1, lambda d: {"reboot": "yes"}),  # constant, as above
    0x02: Record("collection interval", 2, lambda d: {"collection_interval": _u16(d)}),
    0x03: Record("report interval", 2, lambda d: {"report_interval": _u16(d)}),
    0x06: Record("distance alarm configuration", 9, _alarm_config),
}


def _record(channel: int, kind: int | None) -> Record | None:
    if kind is None:
        return None
    if channel == 0xFF and kind in DEVICE_INFO:
        return DEVICE_INFO[kind]
    if channel in DEVICE_CHANNELS:
        return DOWNLINK_REPLIES.get(kind)
    return TELEMETRY.get((channel, kind))


def decode(f_port: int, payload: bytes) -> Decoded:
    if not payload:
        raise DecodeError(f"{NAME} got an empty payload on fPort {f_port}")
    out: Decoded = {}
    offset = 0
    while offset < len(payload):
        channel = payload[offset]
        kind = payload[offset + 1] if offset + 1 < len(payload) else None
        record = _record(channel, kind)
        if record is None:
            kind_text = "no type byte" if kind is None else f"type 0x{kind:02x}"
            where = f"channel 0x{channel:02x}, {kind_text}, at byte {offset}"
            if channel in DEVICE_CHANNELS:
                raise DecodeError(f"{NAME} has no device record for {where}")
            if not out:
                raise DecodeError(f"{NAME} has no record for {where}")
            break  # like the reference: keep what was decoded before the unknown record
        start = offset + 2
        data = payload[start:start + record.size]
        if len(data) < record.size:
            raise DecodeError(f"{NAME} {record.label} record at byte {offset} needs "
                              f"{record.size} data bytes, got {len(data)}")
        out.update(record.read(data))
        offset = start + record.size
    return out


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "distance" in decoded:
        mm = finite(decoded.get("distance"))
        # either decoder version's key; any state other than "normal" means tilted
        state = decoded.get("position", decoded.get("tilt", "normal"))
        distance = mm / 1000 if mm is not None and state == "normal" else None
        out["distance_m"] = distance
        out["fill_level_pct"] = fill_level_pct(distance, attributes)
    if "battery" in decoded:
        out["battery_pct"] = finite(decoded.get("battery"))
    return out


def _version(text: str, base: int) -> tuple[int, int]:
    major, minor = text.removeprefix("v").split(".")
    return int(major, base), int(minor, base)


def _hardware_version(text: str) -> tuple[int, int]:
    # "v<major hex>.<minor decimal>": the minor is the high nibble of the second byte
    major, minor = text.removeprefix("v").split(".")
    return int(major, 16), int(minor) << 4


def _index(labels: tuple[str, ...], label: str) -> int:
    return labels.index(label) if label in labels else len(labels)


def _encode_alarm(config: Mapping[str, Any]) -> bytes:
    flags = _index(ALARM_CONDITIONS, config["condition"]) | (
        ENABLE.index(config["alarm_release_enable"]) << 7)
    return bytes([flags]) + struct.pack("<hhHH", config["threshold_min"],
                                        config["threshold_max"], config["lock_time"],
                                        config["continue_time"])


def _position_byte(decoded: Decoded) -> int:
    if "position" in decoded:
        return _index(POSITIONS, decoded["position"])
    return 0 if decoded["tilt"] == "normal" else 1


ENCODERS: dict[str, Callable[[Decoded], bytes]] = {
    "battery": lambda d: bytes([0x01, 0x75, d["battery"]]),
    "distance": lambda d: bytes([0x03, 0x82]) + struct.pack("<H", d["distance"]),
    "position": lambda d: bytes([0x04, 0x00, _position_byte(d)]),
    "ipso_version": lambda d: bytes([0xFF, 0x01, _nibbles(_version(d["ipso_version"], 10))]),
    "hardware_version": lambda d: bytes([0xFF, 0x09, *_hardware_version(d["hardware_version"])]),
    "firmware_version": lambda d: bytes([0xFF, 0x0A, *_version(d["firmware_version"], 16)]),
    "tsl_version": lambda d: bytes([0xFF, 0xFF, *_version(d["tsl_version"], 10)]),
    "sn": lambda d: bytes([0xFF, 0x16]) + bytes.fromhex(d["sn"]),
    "lorawan_class": lambda d: bytes([0xFF, 0x0F, _index(LORAWAN_CLASSES, d["lorawan_class"])]),
    "reset_event": lambda d: bytes([0xFF, 0xFE, 0x01]),
    "device_status": lambda d: bytes([0xFF, 0x0B, 0x01]),
    "reboot": lambda d: bytes([0xFF, 0x10, 0x01]),
    "collection_interval": lambda d: bytes([0xFF, 0x02]) + struct.pack(
        "<H", d["collection_interval"]),
    "report_interval": lambda d: bytes([0xFF, 0x03]) + struct.pack("<H", d["report_interval"]),
    "distance_alarm_config": lambda d: bytes([0xFF, 0x06]) + _encode_alarm(
        d["distance_alarm_config"]),
}
ENCODERS["tilt"] = ENCODERS["position"]  # one record carries both keys


def _nibbles(pair: tuple[int, int]) -> int:
    return (pair[0] << 4) | pair[1]


def encode(decoded: Decoded) -> tuple[int, bytes]:
    payload = b""
    done: set[Callable[[Decoded], bytes]] = set()
    for key in decoded:
        encoder = ENCODERS[key]
        if encoder not in done:
            done.add(encoder)
            payload += encoder(decoded)
    return DATA_PORT, payload


MODEL = DeviceModel(
    id="milesight-iot/em310-udl",
    name="Milesight EM310-UDL",
    kind="bin",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("milesight-iot", "em310-udl"),),
)
