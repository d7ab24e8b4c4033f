"""Decentlab DL-ATM41: eleven-parameter weather station (METER ATMOS 41 on a LoRaWAN logger).

The common Decentlab frame (decoders/decentlab.py) with two sensor groups. Group 0 has 17 words,
each offset-encoded as (w - 32768) / scale:

  0 solar radiation W/m² (scale 1)        9 atmospheric pressure kPa (100)
  1 precipitation mm (1000)              10 relative humidity % (10)
  2 lightning strike count (1, no unit)  11 sensor temperature (internal) °C (10)
  3 lightning average distance km (1)    12 X orientation angle ° (10)
  4 wind speed m/s (100)                 13 Y orientation angle ° (10)
  5 wind direction ° (10)                14 compass heading ° (1)
  6 maximum wind speed m/s (100)         15 north wind speed m/s (100)
  7 air temperature °C (10)              16 east wind speed m/s (100)
  8 vapor pressure kPa (100)

Group 1 is the battery, V = w / 1000. A full frame is 41 bytes, a battery-only frame 7.

Quirks and decisions:
- The vendor decoder (vendor/decentlab/dl-atm41.js @0a254aaa) ignores the fPort (the device
  uses 1); so do we. It checks only the protocol version; we also reject a length that does not
  fit the flags and flags naming groups the model does not have (the vendor would read past the
  end and emit NaN, or silently skip them).
- "Lightning strike count" has no "unit" key at all in the vendor output; we leave it out too.
  Unscaled measurements (solar radiation, lightning, compass heading) are integers, as in JS.
- Normalised: pressures kPa -> hPa (x10); the lightning distance is None when no strike was
  counted (the device then sends 0 km, which is no distance); tilt_deg is the larger absolute of
  the X/Y orientation angles (a lower bound of the true tilt, enough to spot a knocked station).
  Compass heading and the north/east wind components fit no vocabulary metric and are left out.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.decentlab import (CELSIUS, DEGREE, METRE_PER_SECOND, NO_UNIT, WATT_PER_M2,
                                battery_group, decentlab_model, Group, kpa_to_hpa, larger_tilt,
                                lightning_distance_km, number, signed_word)
from decoders.model import Decoded, Normalized

GROUPS = (
    Group(17, (
        signed_word("solar_radiation", "Solar radiation", WATT_PER_M2, 0),
        signed_word("precipitation", "Precipitation", "mm", 1, 1000),
        signed_word("lightning_strike_count", "Lightning strike count", NO_UNIT, 2),
        signed_word("lightning_average_distance", "Lightning average distance", "km", 3),
        signed_word("wind_speed", "Wind speed", METRE_PER_SECOND, 4, 100),
        signed_word("wind_direction", "Wind direction", DEGREE, 5, 10),
        signed_word("maximum_wind_speed", "Maximum wind speed", METRE_PER_SECOND, 6, 100),
        signed_word("air_temperature", "Air temperature", CELSIUS, 7, 10),
        signed_word("vapor_pressure", "Vapor pressure", "kPa", 8, 100),
        signed_word("atmospheric_pressure", "Atmospheric pressure", "kPa", 9, 100),
        signed_word("relative_humidity", "Relative humidity", "%", 10, 10),
        signed_word("sensor_temperature_internal", "Sensor temperature (internal)", CELSIUS, 11,
                    10),
        signed_word("x_orientation_angle", "X orientation angle", DEGREE, 12, 10),
        signed_word("y_orientation_angle", "Y orientation angle", DEGREE, 13, 10),
        signed_word("compass_heading", "Compass heading", DEGREE, 14),
        signed_word("north_wind_speed", "North wind speed", METRE_PER_SECOND, 15, 100),
        signed_word("east_wind_speed", "East wind speed", METRE_PER_SECOND, 16, 100),
    )),
    battery_group(),
)



def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "air_temperature" in decoded:
        out.update({
            "temperature_c": number(decoded, "air_temperature"),
            "relative_humidity_pct": number(decoded, "relative_humidity"),
            "air_pressure_hpa": kpa_to_hpa(number(decoded, "atmospheric_pressure")),
            "vapour_pressure_hpa": kpa_to_hpa(number(decoded, "vapor_pressure")),
            "precipitation_mm": number(decoded, "precipitation"),
            "wind_speed_ms": number(decoded, "wind_speed"),
            "wind_gust_ms": number(decoded, "maximum_wind_speed"),
            "wind_direction_deg": number(decoded, "wind_direction"),
            "solar_radiation_wm2": number(decoded, "solar_radiation"),
            "lightning_strikes": number(decoded, "lightning_strike_count"),
            "lightning_distance_km": lightning_distance_km(decoded),
            "device_temperature_c": number(decoded, "sensor_temperature_internal"),
            "tilt_deg": larger_tilt(decoded, "x_orientation_angle", "y_orientation_angle"),
        })
    if "battery_voltage" in decoded:
        out["battery_v"] = number(decoded, "battery_voltage")
    return out



MODEL = decentlab_model("DL-ATM41", "weather", GROUPS, normalize)
