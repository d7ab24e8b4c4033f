"""Dragino WSC1-L: controller of Dragino's weather station, reading RS485 sensors.

Reference: TTN device repository, ``vendor/dragino/wsc1-l-codec.yaml`` @8bb2df41 and its decoder
``vendor/dragino/wsc1-l.js`` @0a254aaa. The decoder is not stored at the YAML's commit; the other
stored copy (@93bf909d) reads the same line for line (only whitespace differs), so the YAML's
two examples give the same result with either. TTS uses this codec for every WSC1-L firmware entry.

fPort 2, sensor readings: a run of records ``type (1 byte), length (1 byte), data (length
bytes)``; the next record starts 2 + length bytes later. Each record is read as the reference
reads it: a 16-bit big-endian word from the first two data bytes, **whatever the length byte
says**, and bytes past the end of the frame count as 0 (JavaScript's ``undefined`` in ``<<`` and
``|``). Record types, output key and scaling (units are not stated by the codec; the ones in
brackets are what the names suggest):

====  ========================  ==============================================================
0x00  ``bat``                   word / 30 (unit unknown)
0x01  ``wind_speed``            word / 10 [m/s]; 3rd data byte -> ``wind_speed_level``
0x02  ``wind_direction_angle``  word / 10 [°]; 3rd data byte indexes 16 compass names ->
                                ``wind_direction`` ("N", "NNE", ... "NNW")
0x03  ``illumination``          word * 10 [lux]
0x04  ``rain_snow``             first data byte (0/1)
0x05  ``CO2``                   word [ppm]
0x06  ``TEM``                   word / 10 [°C]; negative when bit 15 is set, as
                                (word - 0xFFFF) / 10: 0.1 °C above two's complement
0x07  ``HUM``                   word / 10 [% RH]
0x08  ``pressure``              word / 10 [hPa]
0x09  ``rain_gauge``            word / 10 [mm]
0x0A  ``PM2_5``, 0x0B ``PM10``  word [µg/m³]
0x0C  ``PAR``                   word [µmol/(m²·s)]
0x0D  ``TSR``                   word / 10 [W/m²]
0xA1  ``A1`` ... 0xA4 ``A4``    word (user-defined RS485 sensors)
====  ========================  ==============================================================

fPort 5, device status: byte 0 model (the reference writes ``node`` "WSC1-L" whatever it is),
bytes 1-2 firmware -> ``version`` "V.<byte 1>.<high nibble>.<low nibble>", byte 3 band code ->
``frequency_band`` (1 EU868 ... 10 AS923-3; other codes leave the key out), byte 4
``sub_band``, bytes 5-6 battery mV -> ``bat`` in V, bytes 7-9 attached sensor types ->
``weather_sensor_types``: the three bytes in lower-case hex without leading zeros, the middle
one given a leading "0" when JavaScript's ``parseInt`` of its hex text is below 10 (so 0x1F
becomes "01f" but 0x20 stays "20").

Numbers are written as JavaScript writes them: a whole result is an int (``"TEM": 25``), every
other one the same IEEE double the reference computes.

Quirks and decisions:

- Vector marked ``quirk`` (``0b880100250001``, expected ``{"PM10": 256}``): we **match** it.
  Its PM10 record claims 0x88 data bytes; the reference reads the word 0x0100 and then jumps
  past the end. Truncated records in general: a missing data byte reads as 0; a record whose
  length byte is missing ends the frame; nothing ever indexes past the payload.
- A 3rd data byte that is missing (wind level, compass index) or a compass index above 15, and a
  ``rain_snow`` record without data, give ``undefined`` in the reference, a key that its JSON
  leaves out (even one an earlier record had set); we leave the key out the same way.
- No readings at all in the reference, so ``DecodeError`` here: an empty fPort-2 frame, a
  frame whose first byte is 0xE0 or above, and a frame whose only record is a ``rain_snow``
  record cut off before its data byte (the reference's output is ``{}``).
- Record types the reference has no name for (0x0E-0xA0, 0xA5-0xFF) make it write an
  ``"undefined"`` key holding a number, NaN or Infinity; we raise ``DecodeError`` for them.
- fPort 5 frames shorter than 10 bytes make the reference throw (``toString`` of ``undefined``):
  ``DecodeError``. Bytes after the tenth are ignored, as by the reference.
- Any other port is the reference's "unknown FPort": ``DecodeError``.

Normalised: ``TEM`` -> ``temperature_c``, ``HUM`` -> ``relative_humidity_pct``, ``pressure`` ->
``air_pressure_hpa``, ``wind_speed`` -> ``wind_speed_ms``, ``wind_direction_angle`` ->
``wind_direction_deg``, ``illumination`` -> ``illuminance_lux``, ``CO2`` -> ``co2_ppm``,
``PM2_5``/``PM10`` -> ``pm2_5_ugm3``/``pm10_ugm3``, ``TSR`` -> ``solar_radiation_wm2``; the
status frame's ``bat`` (mV / 1000) -> ``battery_v``. Left out: the fPort-2 ``bat`` (raw / 30 is
not shown to be volts), ``rain_gauge`` (we could not establish whether it is rain since the last
uplink, a running total or a rolling 24-hour sum, so neither precipitation metric is safe),
``rain_snow``, ``PAR``, ``wind_speed_level``, ``wind_direction`` (a label) and ``A1``-``A4``.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NAME = "WSC1-L"
DATA_PORT = 2
STATUS_PORT = 5
STATUS_LENGTH = 10
NO_READINGS_FROM = 0xE0  # a first byte at or above this: the reference decodes nothing
NEGATIVE_TEM_OFFSET = 0xFFFF  # the reference's offset (two's complement would be 0x10000)
MODEL_CODE = 13

WIND_SPEED, WIND_DIRECTION, RAIN_SNOW, TEM = 0x01, 0x02, 0x04, 0x06
COMPASS = ("N", "NNE", "NE", "ENE", "E", "ESE", "SE", "SSE",
           "S", "SSW", "SW", "WSW", "W", "WNW", "NW", "NNW")
NO_COMPASS_POINT = 0xFF  # an index the reference has no name for: no wind_direction key
BANDS = {1: "EU868", 2: "US915", 3: "IN865", 4: "AU915", 5: "KZ865", 6: "RU864", 7: "AS923",
         8: "AS923-1", 9: "AS923-2", 10: "AS923-3"}
BAND_CODE = {name: code for code, name in BANDS.items()}
NO_BAND = 0


def js_number(value: float) -> int | float:
    """A whole float as an int, as JavaScript's JSON writes it ("25", not "25.0")."""
    return int(value) if value.is_integer() else value


@dataclass(frozen=True)
class Reading:
    key: str
    to_value: Callable[[int], int | float]  # word (or first data byte) -> vendor value
    to_word: Callable[[float], int]  # the inverse, for the encoder


def _divided(divisor: int) -> tuple[Callable[[int], int | float], Callable[[float], int]]:
    return (lambda word: js_number(word / divisor)), (lambda value: round(value * divisor))


def _tem(word: int) -> int | float:
    signed = word - NEGATIVE_TEM_OFFSET if word & 0x8000 else word
    return js_number(signed / 10)


def _tem_word(value: float) -> int:
    tenths = round(value * 10)
    return tenths + NEGATIVE_TEM_OFFSET if tenths < 0 else tenths


def _identity(word: int) -> int:
    return word


def _as_int(value: float) -> int:
    return int(value)


READINGS: dict[int, Reading] = {
    0x00: Reading("bat", *_divided(30)),
    WIND_SPEED: Reading("wind_speed", *_divided(10)),
    WIND_DIRECTION: Reading("wind_direction_angle", *_divided(10)),
    0x03: Reading("illumination", lambda word: word * 10, lambda value: round(value / 10)),
    RAIN_SNOW: Reading("rain_snow", _identity, _as_int),
    0x05: Reading("CO2", _identity, _as_int),
    TEM: Reading("TEM", _tem, _tem_word),
    0x07: Reading("HUM", *_divided(10)),
    0x08: Reading("pressure", *_divided(10)),
    0x09: Reading("rain_gauge", *_divided(10)),
    0x0A: Reading("PM2_5", _identity, _as_int),
    0x0B: Reading("PM10", _identity, _as_int),
    0x0C: Reading("PAR", _identity, _as_int),
    0x0D: Reading("TSR", *_divided(10)),
    **{0xA1 + n: Reading(f"A{n + 1}", _identity, _as_int) for n in range(4)},
}
TYPE_OF_KEY = {reading.key: record_type for record_type, reading in READINGS.items()}


# ---------------------------------------------------------------------------------- decoding

_UNDEFINED = object()  # the reference's ``undefined``: the key is left out of the output


def _byte(payload: bytes, index: int) -> int | None:
    return payload[index] if index < len(payload) else None


def _word(payload: bytes, index: int) -> int:
    # Missing bytes are 0, as JavaScript's undefined is in << and |.
    return ((_byte(payload, index) or 0) << 8) | (_byte(payload, index + 1) or 0)


def _record(payload: bytes, start: int, out: dict[str, object]) -> None:
    record_type = payload[start]
    reading = READINGS.get(record_type)
    if reading is None:
        raise DecodeError(f"{NAME} has no sensor type 0x{record_type:02X} (record at byte "
                          f"{start} on fPort {DATA_PORT})")
    if record_type == RAIN_SNOW:
        first = _byte(payload, start + 2)
        out[reading.key] = _UNDEFINED if first is None else first
        return
    out[reading.key] = reading.to_value(_word(payload, start + 2))
    third = _byte(payload, start + 4)
    if record_type == WIND_SPEED:
        out["wind_speed_level"] = _UNDEFINED if third is None else third
    elif record_type == WIND_DIRECTION:
        named = third is not None and third < len(COMPASS)
        out["wind_direction"] = COMPASS[third] if named else _UNDEFINED


def _decode_readings(payload: bytes) -> Decoded:
    if not payload:
        raise DecodeError(f"{NAME} sent an empty frame on fPort {DATA_PORT}: no readings")
    if payload[0] >= NO_READINGS_FROM:
        raise DecodeError(f"{NAME} frame on fPort {DATA_PORT} starts with 0x{payload[0]:02X} "
                          f"(0x{NO_READINGS_FROM:02X} or above): no readings")
    out: dict[str, object] = {}
    start = 0
    while start < len(payload):
        _record(payload, start, out)
        length = _byte(payload, start + 1)
        if length is None:  # the reference's next index is NaN: the loop ends
            break
        start += 2 + length
    readings = {key: value for key, value in out.items() if value is not _UNDEFINED}
    if not readings:  # only a rain_snow record without its data byte
        raise DecodeError(f"{NAME} frame on fPort {DATA_PORT} carries no readings")
    return readings


def _middle_sensor_hex(text: str) -> str:
    """The reference's ``zxc``: a leading "0" when ``parseInt(text)`` (decimal!) is below 10."""
    digits = len(text) - len(text.lstrip("0123456789"))
    return "0" + text if digits and int(text[:digits]) < 10 else text


def _decode_status(payload: bytes) -> Decoded:
    if len(payload) < STATUS_LENGTH:
        raise DecodeError(f"{NAME} expects {STATUS_LENGTH} bytes on fPort {STATUS_PORT}, "
                          f"got {len(payload)}")
    out: Decoded = {
        "node": NAME,
        "version": f"V.{payload[1]}.{payload[2] >> 4}.{payload[2] & 0x0F}",
    }
    if payload[3] in BANDS:
        out["frequency_band"] = BANDS[payload[3]]
    out["sub_band"] = payload[4]
    out["bat"] = js_number(((payload[5] << 8) | payload[6]) / 1000)
    out["weather_sensor_types"] = (f"{payload[7]:x}" + _middle_sensor_hex(f"{payload[8]:x}")
                                   + f"{payload[9]:x}")
    return out


def decode(f_port: int, payload: bytes) -> Decoded:
    if f_port == DATA_PORT:
        return _decode_readings(payload)
    if f_port == STATUS_PORT:
        return _decode_status(payload)
    raise DecodeError(f"{NAME} has no data on fPort {f_port} (expects {DATA_PORT} or "
                      f"{STATUS_PORT})")


# ---------------------------------------------------------------------------------- normalising

METRIC_OF_KEY = {
    "TEM": "temperature_c",
    "HUM": "relative_humidity_pct",
    "pressure": "air_pressure_hpa",
    "wind_speed": "wind_speed_ms",
    "wind_direction_angle": "wind_direction_deg",
    "illumination": "illuminance_lux",
    "CO2": "co2_ppm",
    "PM2_5": "pm2_5_ugm3",
    "PM10": "pm10_ugm3",
    "TSR": "solar_radiation_wm2",
}


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    if "node" in decoded:  # the status frame; its bat is mV / 1000
        return {"battery_v": finite(decoded.get("bat"))} if "bat" in decoded else {}
    return {metric: finite(decoded[key]) for key, metric in METRIC_OF_KEY.items()
            if key in decoded}


# ---------------------------------------------------------------------------------- encoding

def _records(decoded: Decoded) -> bytes:
    body = b""
    tail = b""  # a wind-speed record without a level byte has to end the frame
    for key, value in decoded.items():
        record_type = TYPE_OF_KEY.get(key)
        if record_type is None:
            continue  # wind_speed_level, wind_direction: carried by their records below
        word = READINGS[record_type].to_word(value)
        if record_type == RAIN_SNOW:
            body += bytes((record_type, 2, word, 0))
        elif record_type == WIND_SPEED and "wind_speed_level" not in decoded:
            tail = bytes((record_type, 2)) + word.to_bytes(2, "big")
        elif record_type == WIND_SPEED:
            body += (bytes((record_type, 3)) + word.to_bytes(2, "big")
                     + bytes((decoded["wind_speed_level"],)))
        elif record_type == WIND_DIRECTION:
            direction = decoded.get("wind_direction")
            index = COMPASS.index(direction) if direction in COMPASS else NO_COMPASS_POINT
            body += bytes((record_type, 3)) + word.to_bytes(2, "big") + bytes((index,))
        else:
            body += bytes((record_type, 2)) + word.to_bytes(2, "big")
    return body + tail


def _split_sensor_types(text: str) -> bytes:
    """The three bytes whose rendering is ``text`` (the inverse of the status decoder)."""
    plain = {f"{b:x}": b for b in range(256)}
    middle = {_middle_sensor_hex(f"{b:x}"): b for b in range(256)}
    for first_end in range(1, len(text)):
        for middle_end in range(first_end + 1, len(text)):
            parts = text[:first_end], text[first_end:middle_end], text[middle_end:]
            if parts[0] in plain and parts[1] in middle and parts[2] in plain:
                return bytes((plain[parts[0]], middle[parts[1]], plain[parts[2]]))
    raise ValueError(f"not a {NAME} weather_sensor_types string: {text!r}")


def _status(decoded: Decoded) -> bytes:
    major, minor, patch = (int(part) for part in decoded["version"].removeprefix("V.").split("."))
    return (bytes((MODEL_CODE, major, (minor << 4) | patch,
                   BAND_CODE.get(decoded.get("frequency_band"), NO_BAND), decoded["sub_band"]))
            + round(decoded["bat"] * 1000).to_bytes(2, "big")
            + _split_sensor_types(decoded["weather_sensor_types"]))


def encode(decoded: Decoded) -> tuple[int, bytes]:
    if "node" in decoded:
        return STATUS_PORT, _status(decoded)
    return DATA_PORT, _records(decoded)


MODEL = DeviceModel(
    id="dragino/wsc1-l",
    name="Dragino WSC1-L",
    kind="weather",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("dragino", "wsc1-l"),),
)
