"""Dragino LSE01: soil moisture, soil temperature and soil conductivity (EC) probe.

Reference: TTN device repository, ``vendor/dragino/lse01-codec.yaml`` and its decoder
``lse01.js``, both @0874a8f5 (the stored copy @0a254aaa decodes alike). TTS uses this codec for
firmware 1.3 and "lse01 1.1.1 abp"; firmware 1.1.4/1.1.6 and 1.2.1 have codecs of their own
(``lse01-114-codec``, ``lse01-121-codec``) that this module does not cover.

Frame (fPort 2, 11 bytes, big-endian):

====  =========================================================================================
0-1   battery: low 14 bits in mV (top two bits are flags) -> ``Bat`` in V, a **number**
2-3   DS18B20 temperature, int16 tenths of °C -> ``TempC_DS18B20``, a **string**, 1 decimal
4-5   soil volumetric water content, uint16 hundredths of % -> ``water_SOIL``, string, 2 decimals
6-7   soil temperature, hundredths of °C -> ``temp_SOIL``, string, 2 decimals (see below)
8-9   soil conductivity, uint16 µS/cm -> ``conduct_SOIL``, a number
10    flags (interrupt, probe present, mode in Dragino's later decoders); not decoded
====  =========================================================================================

Quirks of the reference decoder and what we do:

- Negative soil temperature: when bit 15 of bytes 6-7 is set the reference computes
  (raw - 0xFFFF) / 100 instead of (raw - 0x10000) / 100, so a negative reading comes out
  0.01 °C higher than two's complement gives (0xFF7E is "-1.29", not -1.30; 0xFFFF is "0.00").
  Dragino's manual documents the same formula. We reproduce it exactly in ``decode`` and do not
  correct it in ``normalize`` either: the probe's accuracy is ±0.3 °C and we cannot tell from
  here whether the firmware already compensates.
- The strings are JavaScript ``toFixed`` results of integer / 10 or / 100, which are exact: we
  format the integer with integer arithmetic, so "-0.5", "0.0", "-327.67" come out as the
  reference writes them.
- The reference checks no length: frames shorter than 11 bytes decode missing bytes as 0
  (rubbish data); we raise ``DecodeError`` ("LSE01 expects 11 bytes on fPort 2, got 7"). Bytes
  after the eleventh are ignored, as by the reference.
- Any port but 2 is the reference's "unknown FPort" error, a ``DecodeError`` here.

Normalised: ``Bat`` -> ``battery_v``; ``water_SOIL`` -> ``soil_moisture_vwc_pct``;
``temp_SOIL`` -> ``soil_temperature_c``; ``conduct_SOIL`` -> ``soil_conductivity_us_cm``;
``TempC_DS18B20`` -> ``temperature_c`` (an optional external DS18B20 probe). Missing readings:

- DS18B20: Dragino's STM32 firmware (``dragino/LoRa_STM32``, ``ds18b20.c``: an absent probe
  reads all ones, -0.0625 °C, sent as int(-0.625) = 0; see also issue #13 there) sends 0x0000
  when no probe answers, so "0.0" is taken as "no probe" and becomes None. A real reading within
  ±0.05 °C of zero is lost with it. Values outside the DS18B20's -55..125 °C range (0x7FFF is
  3276.7) are None too.
- Soil moisture above 100 % and soil temperature outside the probe's -40..85 °C range are
  failed measurements (None), not numbers.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NAME = "LSE01"
DATA_PORT = 2
FRAME_LENGTH = 11
BATTERY_MASK = 0x3FFF
NEGATIVE_SOIL_OFFSET = 0xFFFF  # the reference's offset (two's complement would be 0x10000)

DS18B20_ABSENT = 0.0
DS18B20_RANGE = (-55.0, 125.0)
SOIL_TEMPERATURE_RANGE = (-40.0, 85.0)
SOIL_MOISTURE_RANGE = (0.0, 100.0)


# ---------------------------------------------------------------------------------- decoding

def fixed(scaled: int, decimals: int) -> str:
    """``(scaled / 10**decimals).toFixed(decimals)`` in JavaScript, done exactly on integers."""
    sign = "-" if scaled < 0 else ""
    whole, fraction = divmod(abs(scaled), 10 ** decimals)
    return f"{sign}{whole}.{fraction:0{decimals}d}"


def js_number(value: float) -> int | float:
    """A whole float as an int, as JavaScript's JSON writes it ("3", not "3.0")."""
    return int(value) if value.is_integer() else value


def _soil_temperature(raw: int) -> int:
    return raw - NEGATIVE_SOIL_OFFSET if raw & 0x8000 else raw


def decode(f_port: int, payload: bytes) -> Decoded:
    if f_port != DATA_PORT:
        raise DecodeError(f"{NAME} has no data on fPort {f_port} (expects {DATA_PORT})")
    if len(payload) < FRAME_LENGTH:
        raise DecodeError(f"{NAME} expects {FRAME_LENGTH} bytes on fPort {DATA_PORT}, "
                          f"got {len(payload)}")
    battery, ds18b20, water, soil_temperature, conductivity = struct.unpack_from(">HhHHH",
                                                                                payload)
    return {
        "Bat": js_number((battery & BATTERY_MASK) / 1000),
        "TempC_DS18B20": fixed(ds18b20, 1),
        "water_SOIL": fixed(water, 2),
        "temp_SOIL": fixed(_soil_temperature(soil_temperature), 2),
        "conduct_SOIL": conductivity,
    }


# ---------------------------------------------------------------------------------- normalising

def _number(value: Any) -> float | None:
    """The vendor's fixed-decimal strings (and plain numbers) as a float."""
    if isinstance(value, str):
        try:
            return finite(float(value))
        except ValueError:
            return None
    return finite(value)


def _within(value: float | None, bounds: tuple[float, float]) -> float | None:
    low, high = bounds
    return value if value is not None and low <= value <= high else None


def _external_temperature(value: Any) -> float | None:
    celsius = _number(value)
    if celsius == DS18B20_ABSENT:
        return None
    return _within(celsius, DS18B20_RANGE)


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "Bat" in decoded:
        out["battery_v"] = finite(decoded["Bat"])
    if "water_SOIL" in decoded:
        out["soil_moisture_vwc_pct"] = _within(_number(decoded["water_SOIL"]),
                                               SOIL_MOISTURE_RANGE)
    if "temp_SOIL" in decoded:
        out["soil_temperature_c"] = _within(_number(decoded["temp_SOIL"]),
                                            SOIL_TEMPERATURE_RANGE)
    if "conduct_SOIL" in decoded:
        out["soil_conductivity_us_cm"] = finite(decoded["conduct_SOIL"])
    if "TempC_DS18B20" in decoded:
        out["temperature_c"] = _external_temperature(decoded["TempC_DS18B20"])
    return out


# ---------------------------------------------------------------------------------- encoding

def _scaled(text: str, decimals: int) -> int:
    """The inverse of ``fixed``: "-1.29" with 2 decimals -> -129."""
    sign = -1 if text.startswith("-") else 1
    whole, _, fraction = text.lstrip("-").partition(".")
    return sign * (int(whole) * 10 ** decimals + int(fraction.ljust(decimals, "0")[:decimals]))


def encode(decoded: Decoded) -> tuple[int, bytes]:
    soil_temperature = _scaled(decoded["temp_SOIL"], 2)
    if soil_temperature < 0:
        soil_temperature += NEGATIVE_SOIL_OFFSET
    flags = 0x00  # byte 10 is not decoded by the reference
    payload = struct.pack(
        ">HhHHHB",
        round(decoded["Bat"] * 1000) & BATTERY_MASK,
        _scaled(decoded["TempC_DS18B20"], 1),
        _scaled(decoded["water_SOIL"], 2),
        soil_temperature,
        decoded["conduct_SOIL"],
        flags,
    )
    return DATA_PORT, payload


MODEL = DeviceModel(
    id="dragino/lse01",
    name="Dragino LSE01",
    kind="soil",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("dragino", "lse01"),),
)
