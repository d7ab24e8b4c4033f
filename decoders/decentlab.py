"""The frame all Decentlab sensors share (``shared/devices.md``, "Common Decentlab frame").

Byte 0 protocol version (2), bytes 1-2 device id, bytes 3-4 a bit set of the sensor groups that
follow, then each present group's 16-bit big-endian words in ascending bit order. Each model is a
list of groups; each group turns its words into named measurements shaped like the vendor
decoder's output: ``{"displayName": ..., "unit": ..., "value": ...}``.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from decoders.errors import DecodeError
from decoders.model import Decoded

NO_UNIT = object()  # the vendor leaves "unit" out (as opposed to writing null)
PROTOCOL_VERSION = 2


@dataclass(frozen=True)
class Measurement:
    key: str
    display_name: str
    unit: object  # a string, None (written as null) or NO_UNIT (left out)
    convert: Callable[[Sequence[int]], float]


@dataclass(frozen=True)
class Group:
    words: int
    measurements: tuple[Measurement, ...]


def battery_group() -> Group:
    return Group(1, (Measurement("battery_voltage", "Battery voltage", "V",
                                 lambda w: w[0] / 1000),))


def decode_frame(model_name: str, groups: Sequence[Group], payload: bytes) -> Decoded:
    if len(payload) < 5:
        raise DecodeError(f"{model_name} expects at least 5 bytes (header), got {len(payload)}")
    version, device_id, flags = struct.unpack_from(">BHH", payload)
    if version != PROTOCOL_VERSION:
        raise DecodeError(f"{model_name} protocol version {version} does not match v2")
    unknown = flags >> len(groups)
    if unknown:
        raise DecodeError(f"{model_name} has {len(groups)} sensor groups, but flags 0x{flags:04x} "
                          "announce more")
    present = [g for bit, g in enumerate(groups) if flags & (1 << bit)]
    expected = 5 + 2 * sum(g.words for g in present)
    if len(payload) != expected:
        raise DecodeError(f"{model_name} expects {expected} bytes for sensor flags "
                          f"0x{flags:04x}, got {len(payload)}")

    out: Decoded = {"protocol_version": version, "device_id": device_id}
    offset = 5
    for group in present:
        words = struct.unpack_from(f">{group.words}H", payload, offset)
        offset += 2 * group.words
        for m in group.measurements:
            entry: dict[str, object] = {"displayName": m.display_name}
            if m.unit is not NO_UNIT:
                entry["unit"] = m.unit
            entry["value"] = m.convert(words)
            out[m.key] = entry
    return out


def value(decoded: Decoded, key: str) -> object:
    """The ``value`` of a Decentlab measurement, or None when the frame did not carry it."""
    entry = decoded.get(key)
    return entry.get("value") if isinstance(entry, dict) else None


def encode_frame(device_id: int, groups: dict[int, Sequence[int]]) -> bytes:
    """The inverse of ``decode_frame`` on raw words: {group bit: words} -> payload."""
    flags = 0
    body = b""
    for bit in sorted(groups):
        flags |= 1 << bit
        body += struct.pack(f">{len(groups[bit])}H", *groups[bit])
    return struct.pack(">BHH", PROTOCOL_VERSION, device_id, flags) + body
