"""Decentlab DL-ATM22: wind speed, wind direction and temperature (METER ATMOS 22).

The common Decentlab frame (decoders/decentlab.py) with two sensor groups. Group 0 has 8 words,
each offset-encoded as (w - 32768) / scale:

  0 wind speed m/s (100)          4 X orientation angle ° (10)
  1 wind direction ° (10)         5 Y orientation angle ° (10)
  2 maximum wind speed m/s (100)  6 north wind speed m/s (100)
  3 air temperature °C (10)       7 east wind speed m/s (100)

Group 1 is the battery, V = w / 1000. A full frame is 23 bytes, a battery-only frame 7.

Quirks and decisions:
- The vendor decoder (vendor/decentlab/dl-atm22.js @0a254aaa and @32244b5c, identical in
  substance) ignores the fPort (the device uses 1); so do we. It checks only the protocol
  version; we also reject a length that does not fit the flags and flags naming groups the model
  does not have.
- Normalised: tilt_deg is the larger absolute of the X/Y orientation angles (a lower bound of the
  true tilt, enough to spot a knocked sensor). The north/east wind components fit no vocabulary
  metric and are left out.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.decentlab import (CELSIUS, DEGREE, METRE_PER_SECOND, battery_group, decentlab_model,
                                Group, larger_tilt, number, signed_word)
from decoders.model import Decoded, Normalized

GROUPS = (
    Group(8, (
        signed_word("wind_speed", "Wind speed", METRE_PER_SECOND, 0, 100),
        signed_word("wind_direction", "Wind direction", DEGREE, 1, 10),
        signed_word("maximum_wind_speed", "Maximum wind speed", METRE_PER_SECOND, 2, 100),
        signed_word("air_temperature", "Air temperature", CELSIUS, 3, 10),
        signed_word("x_orientation_angle", "X orientation angle", DEGREE, 4, 10),
        signed_word("y_orientation_angle", "Y orientation angle", DEGREE, 5, 10),
        signed_word("north_wind_speed", "North wind speed", METRE_PER_SECOND, 6, 100),
        signed_word("east_wind_speed", "East wind speed", METRE_PER_SECOND, 7, 100),
    )),
    battery_group(),
)



def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "wind_speed" in decoded:
        out.update({
            "temperature_c": number(decoded, "air_temperature"),
            "wind_speed_ms": number(decoded, "wind_speed"),
            "wind_gust_ms": number(decoded, "maximum_wind_speed"),
            "wind_direction_deg": number(decoded, "wind_direction"),
            "tilt_deg": larger_tilt(decoded, "x_orientation_angle", "y_orientation_angle"),
        })
    if "battery_voltage" in decoded:
        out["battery_v"] = number(decoded, "battery_voltage")
    return out



MODEL = decentlab_model("DL-ATM22", "weather", GROUPS, normalize)
