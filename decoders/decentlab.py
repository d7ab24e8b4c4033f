"""The frame all Decentlab sensors share (``shared/devices.md``, "Common Decentlab frame").

Byte 0 protocol version (2), bytes 1-2 device id, bytes 3-4 a bit set of the sensor groups that
follow, then each present group's 16-bit big-endian words in ascending bit order. Each model is a
list of groups; each group turns its words into named measurements shaped like the vendor
decoder's output: ``{"displayName": ..., "unit": ..., "value": ...}``.

Most measurements are one word, ``(w - offset) / scale`` (``word``); the vendor decoders compute
exactly that in JavaScript doubles, which Python floats reproduce bit for bit. A measurement that
knows its inverse (``invert``) lets ``encode_measurements`` rebuild the frame from decoded output.
"""
from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NO_UNIT = object()  # the vendor leaves "unit" out (as opposed to writing null)
PROTOCOL_VERSION = 2
SIGNED_ZERO = 32768  # the word for 0 in offset-encoded (signed) measurements

# Units exactly as the vendor decoders write them (dot operator, superscript minus and digits)
DEGREE = "\u00b0"
CELSIUS = "\u00b0C"
METRE_PER_SECOND = "m\u22c5s\u207b\u00b9"
WATT_PER_M2 = "W\u22c5m\u207b\u00b2"
MICROSIEMENS_PER_CM = "\u00b5S\u22c5cm\u207b\u00b9"
M3_PER_M3 = "m\u00b3\u22c5m\u207b\u00b3"


@dataclass(frozen=True)
class Measurement:
    key: str
    display_name: str
    unit: object  # a string, None (written as null) or NO_UNIT (left out)
    convert: Callable[[Sequence[int]], float]
    # value -> {word index: word} it was computed from; None when the measurement is derived from
    # words that another measurement of the group already gives back (DL-TRS12 permittivity)
    invert: Callable[[float], dict[int, int]] | None = None


@dataclass(frozen=True)
class Group:
    words: int
    measurements: tuple[Measurement, ...]


def to_word(amount: float, what: str) -> int:
    """The nearest 16-bit word, or ValueError when the value cannot have come from one."""
    rounded = round(amount)
    if not 0 <= rounded <= 0xFFFF:
        raise ValueError(f"{what} needs word {rounded}, outside 0..65535")
    return rounded


def word(key: str, display_name: str, unit: object, index: int, *, offset: int = 0,
         scale: int = 1) -> Measurement:
    """A measurement computed from word ``index`` of its group as ``(w - offset) / scale``."""

    def convert(words: Sequence[int]) -> float:
        difference = words[index] - offset
        # The vendor divides only when there is a scale: unscaled values stay integers (86)
        return difference if scale == 1 else difference / scale

    def invert(value: float) -> dict[int, int]:
        return {index: to_word(value * scale + offset, key)}

    return Measurement(key, display_name, unit, convert, invert)


def signed_word(key: str, display_name: str, unit: object, index: int,
                scale: int = 1) -> Measurement:
    """An offset-encoded measurement, ``(w - 32768) / scale``."""
    return word(key, display_name, unit, index, offset=SIGNED_ZERO, scale=scale)


def battery_group() -> Group:
    return Group(1, (word("battery_voltage", "Battery voltage", "V", 0, scale=1000),))


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


def number(decoded: Decoded, key: str) -> float | None:
    """A measurement's value as a float; None when absent, null or not a finite number."""
    return finite(value(decoded, key))


def larger_tilt(decoded: Decoded, x_key: str, y_key: str) -> float | None:
    """The larger absolute of the two orientation angles, a lower bound of the real tilt.

    Enough to tell that a station was knocked askew; None when neither angle is known.
    """
    angles = [abs(a) for a in (number(decoded, x_key), number(decoded, y_key)) if a is not None]
    return max(angles) if angles else None


def kpa_to_hpa(kpa: float | None) -> float | None:
    # x10 leaves float noise (95.96 -> 959.6000000000001); the words resolve 0.1 hPa at best
    return None if kpa is None else round(kpa * 10, 2)


def lightning_distance_km(decoded: Decoded) -> float | None:
    """The average strike distance, None when no strike was counted (the device then sends 0,
    which is no distance at all)."""
    strikes = number(decoded, "lightning_strike_count")
    return number(decoded, "lightning_average_distance") if strikes else None


def encode_measurements(groups: Sequence[Group], decoded: Decoded) -> bytes:
    """The frame ``decoded`` was decoded from: each group with a measurement in it is rebuilt
    from the measurements' inverses (a group's words none of them names stay 0)."""
    words_by_bit: dict[int, list[int]] = {}
    for bit, group in enumerate(groups):
        if not any(m.key in decoded for m in group.measurements):
            continue
        words = [0] * group.words
        for m in group.measurements:
            if m.invert is None:
                continue
            reading = number(decoded, m.key)
            if reading is None:
                raise ValueError(f"{m.key} has no numeric value to encode")
            for index, w in m.invert(reading).items():
                words[index] = w
        words_by_bit[bit] = words
    return encode_frame(int(decoded["device_id"]), words_by_bit)


def encode_frame(device_id: int, groups: dict[int, Sequence[int]]) -> bytes:
    """The inverse of ``decode_frame`` on raw words: {group bit: words} -> payload."""
    flags = 0
    body = b""
    for bit in sorted(groups):
        flags |= 1 << bit
        body += struct.pack(f">{len(groups[bit])}H", *groups[bit])
    return struct.pack(">BHH", PROTOCOL_VERSION, device_id, flags) + body


def decentlab_model(model: str, kind: str, groups: Sequence[Group],
                    normalize: Callable[[Decoded, Mapping[str, Any]], Normalized]
                    ) -> DeviceModel:
    """A Decentlab ``DeviceModel``: every model differs only in its groups and normaliser.

    ``model`` is the vendor's model name, e.g. "DL-ATM41"; the decoder id, the TTS model id
    and the error messages derive from it. The devices send on fPort 1; the vendor decoder
    ignores the port, and so do we.
    """
    def decode(f_port: int, payload: bytes) -> Decoded:
        return decode_frame(model, groups, payload)

    def encode(decoded: Decoded) -> tuple[int, bytes]:
        return 1, encode_measurements(groups, decoded)

    return DeviceModel(id=f"decentlab/{model.lower()}", name=f"Decentlab {model}", kind=kind,
                       decode=decode, normalize=normalize, encode=encode,
                       tts_ids=(("decentlab", model.lower()),))
