"""Decentlab DL-ATM41G2: eleven-parameter weather station, generation 2.

The common Decentlab frame (decoders/decentlab.py) with two sensor groups. Group 0 has 17 words;
"signed /s" means (w - 32768) / s:

  0 solar radiation W/m², signed /10      9 barometric pressure kPa, signed /100
  1 precipitation mm, w / 1000 (no offset) 10 relative humidity %, signed /10
  2 lightning strike count, signed /1    11 internal temperature °C, signed /10
  3 lightning average distance km, /1    12 tilt angle, X orientation °, signed /10
  4 wind speed m/s, signed /100          13 tilt angle, Y orientation °, signed /10
  5 wind direction °, signed /10         14 precipitation electrical conductivity µS/cm, /1
  6 maximum wind speed m/s, signed /100  15-16 cumulative precipitation mm
  7 air temperature °C, signed /10              = (w15 + w16 * 65536) / 1000, low word first
  8 vapor pressure kPa, signed /100

Group 1 is the battery, V = w / 1000. A full frame is 41 bytes, a battery-only frame 7.

Quirks and decisions:
- Differences from DL-ATM41 follow the vendor decoder (vendor/decentlab/dl-atm41g2.js
  @5c12ba10): finer solar radiation, precipitation without offset, renamed pressure/internal
  temperature/tilt keys, and "Lightning strike count" carries the literal string "None" as its
  unit (not null, not left out); we emit the same string.
- The vendor decoder ignores the fPort (the device uses 1); so do we. It checks only the protocol
  version; we also reject a length that does not fit the flags and flags naming groups the model
  does not have.
- Normalised: pressures kPa -> hPa (x10); the lightning distance is None when no strike was
  counted; tilt_deg is the larger absolute of the X/Y tilt angles (a lower bound of the true tilt).
  Precipitation electrical conductivity fits no vocabulary metric (soil_conductivity_us_cm is for
  soil) and is left out.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from decoders.decentlab import (CELSIUS, DEGREE, METRE_PER_SECOND, MICROSIEMENS_PER_CM,
                                WATT_PER_M2, battery_group, decentlab_model, Group, kpa_to_hpa,
                                larger_tilt, lightning_distance_km, Measurement, number,
                                signed_word, to_word, word)
from decoders.model import Decoded, Normalized


def _cumulative_mm(words: Sequence[int]) -> float:
    return (words[15] + words[16] * 65536) / 1000


def _cumulative_words(mm: float) -> dict[int, int]:
    counts = round(mm * 1000)
    return {15: to_word(counts & 0xFFFF, "cumulative_precipitation"),
            16: to_word(counts >> 16, "cumulative_precipitation")}


GROUPS = (
    Group(17, (
        signed_word("solar_radiation", "Solar radiation", WATT_PER_M2, 0, 10),
        word("precipitation", "Precipitation", "mm", 1, scale=1000),
        signed_word("lightning_strike_count", "Lightning strike count", "None", 2),
        signed_word("lightning_average_distance", "Lightning average distance", "km", 3),
        signed_word("wind_speed", "Wind speed", METRE_PER_SECOND, 4, 100),
        signed_word("wind_direction", "Wind direction", DEGREE, 5, 10),
        signed_word("maximum_wind_speed", "Maximum wind speed", METRE_PER_SECOND, 6, 100),
        signed_word("air_temperature", "Air temperature", CELSIUS, 7, 10),
        signed_word("vapor_pressure", "Vapor pressure", "kPa", 8, 100),
        signed_word("barometric_pressure", "Barometric pressure", "kPa", 9, 100),
        signed_word("relative_humidity", "Relative humidity", "%", 10, 10),
        signed_word("internal_temperature", "Internal temperature", CELSIUS, 11, 10),
        signed_word("tilt_angle_x_orientation", "Tilt angle, X orientation", DEGREE, 12, 10),
        signed_word("tilt_angle_y_orientation", "Tilt angle, Y orientation", DEGREE, 13, 10),
        signed_word("precipitation_electrical_conductivity",
                    "Precipitation electrical conductivity", MICROSIEMENS_PER_CM, 14),
        Measurement("cumulative_precipitation", "Cumulative precipitation", "mm",
                    _cumulative_mm, _cumulative_words),
    )),
    battery_group(),
)



def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "air_temperature" in decoded:
        out.update({
            "temperature_c": number(decoded, "air_temperature"),
            "relative_humidity_pct": number(decoded, "relative_humidity"),
            "air_pressure_hpa": kpa_to_hpa(number(decoded, "barometric_pressure")),
            "vapour_pressure_hpa": kpa_to_hpa(number(decoded, "vapor_pressure")),
            "precipitation_mm": number(decoded, "precipitation"),
            "precipitation_total_mm": number(decoded, "cumulative_precipitation"),
            "wind_speed_ms": number(decoded, "wind_speed"),
            "wind_gust_ms": number(decoded, "maximum_wind_speed"),
            "wind_direction_deg": number(decoded, "wind_direction"),
            "solar_radiation_wm2": number(decoded, "solar_radiation"),
            "lightning_strikes": number(decoded, "lightning_strike_count"),
            "lightning_distance_km": lightning_distance_km(decoded),
            "device_temperature_c": number(decoded, "internal_temperature"),
            "tilt_deg": larger_tilt(decoded, "tilt_angle_x_orientation",
                                    "tilt_angle_y_orientation"),
        })
    if "battery_voltage" in decoded:
        out["battery_v"] = number(decoded, "battery_voltage")
    return out



MODEL = decentlab_model("DL-ATM41G2", "weather", GROUPS, normalize)
