"""Decentlab DL-TRS12: soil moisture, temperature and electrical conductivity (METER TEROS 12).

The common Decentlab frame (decoders/decentlab.py) with two sensor groups. Group 0 has 3 words:

  w0  raw VWC count; with r = w0 / 10 the vendor reports
        dielectric permittivity    = (2.887e-9 r³ - 2.08e-5 r² + 0.05276 r - 43.39)², no unit
        volumetric water content   = r * 3.879e-4 - 0.6956 m³/m³ (METER's mineral-soil fit)
  w1  soil temperature = (w1 - 32768) / 10 °C
  w2  electrical conductivity = w2 µS/cm

Group 1 is the battery, V = w / 1000. A full frame is 13 bytes, a battery-only frame 7.

Quirks and decisions:
- The vendor decoder (vendor/decentlab/dl-trs12.js @0a254aaa and @53a91268, identical in
  substance) ignores the fPort (the device uses 1); so do we. It checks only the protocol
  version; we also reject a length that does not fit the flags and flags naming groups the model
  does not have.
- Both soil-water values come from the same word and are computed in the vendor's order of
  operations (w0 / 10 first), so they match its floats (0.006886900000000029, not 0.0068869);
  the permittivity's cube may differ from V8's Math.pow in the last bits (see _permittivity).
  Dielectric permittivity has no "unit" key in the vendor output; we leave it out too.
- The encoder rebuilds w0 from the volumetric water content (the inverse of the linear fit,
  rounded to the nearest word); the permittivity follows from it.
- Normalised: VWC m³/m³ -> soil_moisture_vwc_pct (x100, rounded to 6 decimals to drop float
  noise), soil temperature, conductivity and permittivity as they are. The vendor marks no
  absent-sensor value, so none is turned into None.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from decoders.decentlab import (CELSIUS, M3_PER_M3, MICROSIEMENS_PER_CM, NO_UNIT, battery_group,
                                decentlab_model, Group, Measurement, number, signed_word, to_word,
                                word)
from decoders.model import Decoded, Normalized

VWC_SLOPE = 0.0003879  # m³/m³ per raw count / 10
VWC_INTERCEPT = 0.6956


def _permittivity(words: Sequence[int]) -> float:
    r = words[0] / 10
    # V8's Math.pow(x, 2) is exactly x * x, so squares are written that way; its Math.pow(x, 3)
    # is not correctly rounded, and r ** 3 can differ from it by an ulp or two (relative error
    # below 1e-12 over all 65536 words, checked against node)
    base = 0.000000002887 * r ** 3 - 0.0000208 * (r * r) + 0.05276 * r - 43.39
    return base * base


def _vwc(words: Sequence[int]) -> float:
    return words[0] / 10 * VWC_SLOPE - VWC_INTERCEPT


def _vwc_word(vwc: float) -> dict[int, int]:
    return {0: to_word((vwc + VWC_INTERCEPT) / VWC_SLOPE * 10, "volumetric_water_content")}


GROUPS = (
    Group(3, (
        Measurement("dielectric_permittivity", "Dielectric permittivity", NO_UNIT,
                    _permittivity),
        Measurement("volumetric_water_content", "Volumetric water content", M3_PER_M3, _vwc,
                    _vwc_word),
        signed_word("soil_temperature", "Soil temperature", CELSIUS, 1, 10),
        word("electrical_conductivity", "Electrical conductivity", MICROSIEMENS_PER_CM, 2),
    )),
    battery_group(),
)



def _pct(fraction: float | None) -> float | None:
    return None if fraction is None else round(fraction * 100, 6)


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "volumetric_water_content" in decoded:
        out.update({
            "soil_moisture_vwc_pct": _pct(number(decoded, "volumetric_water_content")),
            "soil_temperature_c": number(decoded, "soil_temperature"),
            "soil_conductivity_us_cm": number(decoded, "electrical_conductivity"),
            "soil_permittivity": number(decoded, "dielectric_permittivity"),
        })
    if "battery_voltage" in decoded:
        out["battery_v"] = number(decoded, "battery_voltage")
    return out



MODEL = decentlab_model("DL-TRS12", "soil", GROUPS, normalize)
