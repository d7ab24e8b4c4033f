"""Dragino LDDS75: ultrasonic distance sensor, mounted above the contents of a bin or tank.

Reference: TTN device repository, ``vendor/dragino/ldds75-codec.yaml`` and its decoder
``ldds75.js``, both @0874a8f5 (the stored copy @0a254aaa differs only in whitespace). TTS uses
this codec for firmware 1.2 and "ldds75 abp 1.1.1"; firmware 1.1.4 has its own codec
(``ldds75-114-codec``), see "Normalised" below.

What the reference decoder outputs (fPort 2 only; any other port is its "unknown FPort" error,
a ``DecodeError`` here):

- a frame of exactly 5 bytes: ``value`` = bytes 2-3 as uint16 BE, and ``distance`` = bytes 0-1
  as uint16 BE with the top two bits cleared (``& 0x3FFF``), or the string "Invalid Reading"
  when that number is below 20;
- a frame of any other length, the empty frame included: ``{"distance": "No Sensor"}``.

What the bytes are, from Dragino's own LDDS75 decoders (``dragino/dragino-end-node-decoder``,
``LDDS75/``): in the 5-byte frame of firmware before 1.1.4, bytes 0-1 are the battery (low 14
bits in mV, top 2 bits flags), bytes 2-3 the distance in mm and byte 4 the interrupt flag.
Firmware 1.1.4 sends 8 bytes (battery, distance, interrupt flag, DS18B20 temperature, sensor
flag). So the reference decoder's ``distance`` is really the battery in mV and its ``value`` is
the distance in mm; the published example ``0e1c0b05`` reads 3612 mV and 2821 mm. Its
"Invalid Reading" check (below 20) therefore tests the battery word; Dragino's own decoder
applies that check to the distance.

Decisions:

- ``decode`` reproduces the reference output exactly, keys and all, including the misnamed
  fields, the 5-byte-only rule and "No Sensor" for every other length.
- Vector marked ``quirk`` (4 bytes ``0e1c0b05``, expected ``{"distance": "No Sensor"}``): we
  **match** it rather than reject it, because the reference answers every non-5-byte frame on
  fPort 2 that way and TTS delivers exactly that to us. So the real 8-byte frames of firmware
  1.1.4 also decode to "No Sensor" here (there is no measurement in them for this codec).

Normalised (``distance_m``, ``fill_level_pct``, ``battery_v``), reading the bytes for what they
are rather than by the reference's key names:

- numeric ``distance`` (the battery word): ``battery_v`` = distance / 1000;
  ``distance_m`` = ``value`` / 1000, or None when ``value`` is below 20 mm (0 means the
  ultrasonic probe was not detected, Dragino's decoders call anything below 20 invalid);
  ``fill_level_pct`` from the bin's geometry in the device attributes.
- "Invalid Reading": a battery word below 20 mV cannot come from a working device, so the whole
  frame is untrustworthy: ``distance_m``, ``fill_level_pct`` and ``battery_v`` are None.
- "No Sensor": ``distance_m`` and ``fill_level_pct`` are None (the frame carries no battery we
  can read).
- A TTS ``decoded_payload`` from the firmware-1.1.4 codec (keys ``Bat`` in V and ``Distance``
  as a string such as "2799 mm") is normalised too, so that devices registered with either
  firmware land in the same series.
"""
from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import fill_level_pct, finite

NAME = "LDDS75"
DATA_PORT = 2
MEASUREMENT_LENGTH = 5
BATTERY_MASK = 0x3FFF  # the top two bits of the battery word are flags, not millivolts
MIN_VALID = 20  # below this the reference says "Invalid Reading" (Dragino: distance in mm)
NO_SENSOR = "No Sensor"
INVALID_READING = "Invalid Reading"
_MM = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*mm\s*$")


def decode(f_port: int, payload: bytes) -> Decoded:
    if f_port != DATA_PORT:
        raise DecodeError(f"{NAME} has no data on fPort {f_port} (expects {DATA_PORT})")
    if len(payload) != MEASUREMENT_LENGTH:
        return {"distance": NO_SENSOR}
    word, value = struct.unpack_from(">HH", payload)
    word &= BATTERY_MASK
    # Key order as the reference emits it: "value" first.
    return {"value": value, "distance": word if word >= MIN_VALID else INVALID_READING}


# ---------------------------------------------------------------------------------- normalising

def _distance_from_mm(mm: float | None) -> float | None:
    if mm is None or mm < MIN_VALID:
        return None
    return mm / 1000


def _parse_mm(text: Any) -> float | None:
    """"2799 mm" (the firmware-1.1.4 codec) as a number; None for anything else."""
    if not isinstance(text, str):
        return finite(text)
    match = _MM.match(text)
    return float(match.group(1)) if match else None


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    if "distance" in decoded:
        return _normalize_reference(decoded, attributes)
    if "Distance" in decoded or "Bat" in decoded:
        return _normalize_firmware_114(decoded, attributes)
    return {}


def _normalize_reference(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    battery_word = decoded.get("distance")
    out: Normalized = {}
    if battery_word == NO_SENSOR:
        distance = None
    elif battery_word == INVALID_READING:
        distance = None
        out["battery_v"] = None
    else:
        millivolts = finite(battery_word)
        distance = _distance_from_mm(finite(decoded.get("value")))
        out["battery_v"] = millivolts / 1000 if millivolts is not None else None
    return {"distance_m": distance, "fill_level_pct": fill_level_pct(distance, attributes), **out}


def _normalize_firmware_114(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "Distance" in decoded:
        distance = _distance_from_mm(_parse_mm(decoded["Distance"]))
        out["distance_m"] = distance
        out["fill_level_pct"] = fill_level_pct(distance, attributes)
    if "Bat" in decoded:
        out["battery_v"] = finite(decoded["Bat"])
    return out


# ---------------------------------------------------------------------------------- encoding

def encode(decoded: Decoded) -> tuple[int, bytes]:
    battery_word = decoded["distance"]
    if battery_word == NO_SENSOR:
        # Any length but 5 decodes to "No Sensor"; 4 bytes is the shape of the published example.
        return DATA_PORT, bytes(4)
    word = 0 if battery_word == INVALID_READING else int(battery_word)
    interrupt_flag = 0
    return DATA_PORT, struct.pack(">HHB", word, int(decoded.get("value", 0)), interrupt_flag)


def frame(distance_mm: int, battery_v: float = 3.6) -> bytes:
    """A 5-byte LDDS75 measurement frame from plain values (battery, distance, interrupt flag)."""
    return struct.pack(">HHB", round(battery_v * 1000) & BATTERY_MASK, distance_mm, 0)


MODEL = DeviceModel(
    id="dragino/ldds75",
    name="Dragino LDDS75",
    kind="bin",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("dragino", "ldds75"),),
)
