"""Teneo IoT Filling Degree Sensor: laser distance sensor measuring down to the waste in a bin.

Frame (all ports): byte 0 is the battery (LiFePO4), V = 2 + byte / 10.
- fPort 1, measurement. 3 bytes: bytes 1-2 distance, uint16 big-endian, cm. 7 bytes: the same
  plus temperature (bytes 3-4) and relative humidity (bytes 5-6), each uint16 BE / 100.
  4 and 8 bytes: like 3 and 7, with a status byte after the distance (byte 3): 0 ok, 4 valid but
  without a distance (reported as -1; presumably nothing in range, the meaning is not
  documented), any other code a failed measurement (``valid`` false, ``errorcode`` = code,
  distance kept as sent). Any other length: ``valid`` false, ``errorcode`` -1.
- fPort 2, status report: byte 1 is the code; 4 as above (``valid`` true, distance -1), any
  other code is a failed measurement (``valid`` false, ``errorcode``).
- fPort 3, charging notice: ``charging`` true, ``valid`` false.
- Every frame carries the constants ``sensorType`` "fillrate" and ``settingsAllowed`` true, and
  ``charging`` false except on fPort 3.

Quirks, decided against the reference decoder (``vendor/teneo-iot/filling-degree-sensor.js``,
newest stored version, which is a superset of the one behind the codec YAML @02bd7d97):
- The codec YAML's expected outputs leave out ``valid``/``errorcode``; the decoder emits them,
  and so do we.
- ``battery`` is JS ``2 + b / 10`` in binary floating point (3.2, 3.4 ...); Python's float
  arithmetic is the same IEEE double, so the values are identical.
- Temperature and humidity are read unsigned by the reference decoder, so a frost reading
  (two's complement) comes out as about 655 °C. We keep the vendor value in ``temperature``;
  the normaliser turns temperatures above 100 °C (and humidities above 100 %) into None
  instead of guessing the sign; the manual was not available to confirm two's complement.
- fPort 2 with a 1-byte payload: the reference reads ``bytes[1]`` as undefined and emits
  ``errorcode: undefined``; we emit ``errorcode: null``.
- Ports other than 1-3: the reference returns only the constants and the battery (no
  ``valid``); we do the same (``encode`` uses fPort 4 for such a frame).
- Empty payload: the reference returns ``{sensorType, valid}`` outside ``data``, i.e. TTS gets
  no decoded data. We raise DecodeError.

Normalised: ``distance_m`` (cm / 100) and ``fill_level_pct``; distance -1 ("nothing in range")
and failed measurements (``valid`` false) become None. ``battery_v``. Temperature and humidity
come from the device itself (presumably its housing, not documented), so temperature goes to
``device_temperature_c``, not the air temperature; humidity to ``relative_humidity_pct``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import fill_level_pct, finite

NAME = "Filling Degree Sensor"
OUT_OF_RANGE_CODE = 4  # a valid frame without a distance (presumably nothing in range)
NO_DISTANCE = -1
LENGTH_ERROR = -1
MEASUREMENT_LENGTHS = (3, 7)
STATUS_LENGTHS = (4, 8)
MAX_PLAUSIBLE_TEMPERATURE_C = 100.0  # the unsigned reading of a frost value is ~655 °C


def _u16(payload: bytes, offset: int) -> int:
    return (payload[offset] << 8) | payload[offset + 1]


def _climate(payload: bytes, offset: int) -> Decoded:
    return {"temperature": _u16(payload, offset) / 100,
            "relativeHumidity": _u16(payload, offset + 2) / 100}


def _measurement(payload: bytes) -> Decoded:
    """fPort 1: distance, optionally a status byte, optionally temperature and humidity."""
    length = len(payload)
    if length in MEASUREMENT_LENGTHS:
        out: Decoded = {"valid": True, "distance": _u16(payload, 1)}
        if length == 7:
            out.update(_climate(payload, 3))
        return out
    if length in STATUS_LENGTHS:
        out = {"valid": True, "distance": _u16(payload, 1)}
        if payload[3] != 0:  # 0: the measurement is fine
            out.update(_report(payload[3]))
        if length == 8:
            out.update(_climate(payload, 4))
        return out
    return {"valid": False, "errorcode": LENGTH_ERROR}


def _report(code: int | None) -> Decoded:
    """A status code that is not "ok": nothing in range, or a failed measurement."""
    if code == OUT_OF_RANGE_CODE:
        return {"valid": True, "distance": NO_DISTANCE}
    return {"valid": False, "errorcode": code}


def decode(f_port: int, payload: bytes) -> Decoded:
    if not payload:
        raise DecodeError(f"{NAME} got an empty payload on fPort {f_port}: no battery byte, "
                          "nothing to decode")
    out: Decoded = {"sensorType": "fillrate", "settingsAllowed": True, "charging": False,
                    "battery": 2 + payload[0] / 10}
    if f_port == 1:
        out.update(_measurement(payload))
    elif f_port == 2:
        out.update(_report(payload[1] if len(payload) > 1 else None))
    elif f_port == 3:
        out["valid"] = False
        out["charging"] = True
    return out


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    failed = decoded.get("valid") is False and "errorcode" in decoded
    if "distance" in decoded or failed:
        cm = finite(decoded.get("distance"))
        usable = decoded.get("valid") is True and cm is not None and cm >= 0
        distance = cm / 100 if usable else None
        out["distance_m"] = distance
        out["fill_level_pct"] = fill_level_pct(distance, attributes)
    if "battery" in decoded:
        out["battery_v"] = finite(decoded.get("battery"))
    if "temperature" in decoded:
        celsius = finite(decoded.get("temperature"))
        plausible = celsius is not None and celsius <= MAX_PLAUSIBLE_TEMPERATURE_C
        out["device_temperature_c"] = celsius if plausible else None
    if "relativeHumidity" in decoded:
        rh = finite(decoded.get("relativeHumidity"))
        out["relative_humidity_pct"] = rh if rh is not None and rh <= 100 else None
    return out


def _battery_byte(decoded: Decoded) -> bytes:
    return bytes([round((decoded["battery"] - 2) * 10)])


def _u16_bytes(value: float, scale: int = 1) -> bytes:
    return round(value * scale).to_bytes(2, "big")


def encode(decoded: Decoded) -> tuple[int, bytes]:
    head = _battery_byte(decoded)
    if decoded.get("charging"):
        return 3, head
    if "valid" not in decoded:
        return 4, head
    climate = b""
    if "temperature" in decoded:
        climate = (_u16_bytes(decoded["temperature"], 100)
                   + _u16_bytes(decoded["relativeHumidity"], 100))
    errorcode = decoded.get("errorcode")
    if "distance" not in decoded:
        # fPort 2 error report, or a fPort 1 frame of the wrong length (errorcode -1)
        if errorcode == LENGTH_ERROR:
            return 1, head
        return 2, head + (bytes([errorcode]) if errorcode is not None else b"")
    if decoded["distance"] == NO_DISTANCE:
        return 1, head + b"\x00\x00" + bytes([OUT_OF_RANGE_CODE]) + climate
    body = head + _u16_bytes(decoded["distance"])
    if errorcode is not None:
        return 1, body + bytes([errorcode]) + climate
    return 1, body + climate


MODEL = DeviceModel(
    id="teneo-iot/filling-degree-sensor",
    name="Teneo IoT Filling Degree Sensor",
    kind="bin",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("teneo-iot", "filling-degree-sensor"),),
)
