"""Decentlab DL-SMTP: soil moisture and temperature profile, 8 depths.

The common Decentlab frame (decoders/decentlab.py) with two sensor groups. Group 0 has 16 words,
a pair for each depth d = 0..7 (0 the shallowest):

  word 2d     soil moisture at depth d = (w - 2500) / 500, no unit
  word 2d + 1 soil temperature at depth d = (w - 32768) / 100 °C

Group 1 is the battery, V = w / 1000. A full frame is 39 bytes, a battery-only frame 7.

Quirks and decisions:
- The vendor decoder (vendor/decentlab/dl-smtp.js @0a254aaa and @5567f515, identical in
  substance) ignores the fPort (the device uses 1); so do we. It checks only the protocol
  version; we also reject a length that does not fit the flags and flags naming groups the model
  does not have.
- Soil moisture carries no "unit" key in the vendor output (left out, not null); we leave it out
  too. Neither the decoder, its codec file nor the device description says what the scale is; it
  goes below 0 (-0.39 in the vendor's own example), so it is not a volumetric water content in %
  or m³/m³. It is normalised as soil_moisture_raw_<d+1>, not soil_moisture_vwc_pct.
- Absent probes send 0x0000, which the vendor decodes as moisture -5 and temperature -327.68 and
  reports as ordinary values; our decoded output keeps those numbers (to match the vendor), the
  normaliser makes them None. These are the lowest values a word can give, so "at or below" is
  the test (robust to a JSON round trip turning -5 into -5.0).
- Depth d (0..7) becomes the suffix _<d+1> (1..8), the vocabulary counting from 1.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.decentlab import (CELSIUS, NO_UNIT, battery_group, decentlab_model, Group, number,
                                signed_word, word)
from decoders.model import Decoded, Normalized

DEPTHS = 8
ABSENT_MOISTURE = -5.0  # word 0x0000: (0 - 2500) / 500
ABSENT_TEMPERATURE = -327.68  # word 0x0000: (0 - 32768) / 100


def _depth_measurements(depth: int):
    return (
        word(f"soil_moisture_at_depth_{depth}", f"Soil moisture at depth {depth}", NO_UNIT,
             2 * depth, offset=2500, scale=500),
        signed_word(f"soil_temperature_at_depth_{depth}", f"Soil temperature at depth {depth}",
                    CELSIUS, 2 * depth + 1, 100),
    )


GROUPS = (
    Group(2 * DEPTHS, tuple(m for d in range(DEPTHS) for m in _depth_measurements(d))),
    battery_group(),
)



def _present(reading: float | None, absent: float) -> float | None:
    return None if reading is None or reading <= absent else reading


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if any(f"soil_moisture_at_depth_{d}" in decoded for d in range(DEPTHS)):
        for d in range(DEPTHS):
            moisture = number(decoded, f"soil_moisture_at_depth_{d}")
            temperature = number(decoded, f"soil_temperature_at_depth_{d}")
            out[f"soil_moisture_raw_{d + 1}"] = _present(moisture, ABSENT_MOISTURE)
            out[f"soil_temperature_c_{d + 1}"] = _present(temperature, ABSENT_TEMPERATURE)
    if "battery_voltage" in decoded:
        out["battery_v"] = number(decoded, "battery_voltage")
    return out



MODEL = decentlab_model("DL-SMTP", "soil", GROUPS, normalize)
