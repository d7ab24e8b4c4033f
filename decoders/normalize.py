"""The shared vocabulary of metrics, and helpers every normaliser uses.

Metric names carry their unit (``distance_m``, ``battery_v``) so that a dashboard never has to
guess. A value the device marks as absent or failed becomes ``None``: a missing reading, never a
number.
"""
from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from decoders.model import Decoded, Normalized

METRICS: dict[str, str] = {
    # fill level and liquid level
    "distance_m": "distance from the sensor to the surface below it, m",
    "fill_level_pct": "bin fill level from distance and registered geometry, % (0 empty, 100 full)",
    "level_m": "liquid level above the sensor (tank, cistern), m",
    # weather
    "temperature_c": "air temperature, °C",
    "relative_humidity_pct": "relative air humidity, %",
    "air_pressure_hpa": "air pressure, hPa",
    "vapour_pressure_hpa": "water vapour pressure, hPa",
    "precipitation_mm": "precipitation since the previous uplink, mm",
    "precipitation_total_mm": "cumulative precipitation counter, mm",
    "wind_speed_ms": "mean wind speed, m/s",
    "wind_gust_ms": "maximum wind speed (gust), m/s",
    "wind_direction_deg": "wind direction, ° from north",
    "solar_radiation_wm2": "global solar radiation, W/m²",
    "illuminance_lux": "illuminance, lx",
    "lightning_strikes": "lightning strikes counted since the previous uplink",
    "lightning_distance_km": "average distance of those strikes, km",
    "co2_ppm": "CO₂ concentration, ppm",
    "pm2_5_ugm3": "particulate matter PM2.5, µg/m³",
    "pm10_ugm3": "particulate matter PM10, µg/m³",
    # soil
    "soil_moisture_vwc_pct": "volumetric water content of the soil, %",
    "soil_moisture_raw": "soil moisture on the sensor's own uncalibrated scale",
    "soil_temperature_c": "soil temperature, °C",
    "soil_conductivity_us_cm": "electrical conductivity of the soil, µS/cm",
    "soil_permittivity": "dielectric permittivity of the soil (unitless)",
    # device
    "battery_v": "battery voltage, V",
    "battery_pct": "battery charge, %",
    "link_margin_db": "demodulation margin of the device's last received downlink, dB "
                      "(LoRaWAN DevStatusAns, from the network server)",
    "tilt_deg": "tilt from the mounting position, °",
    "device_temperature_c": "temperature inside the device, °C",
    # irrigation and I/O controllers: states are 1 (on, high, closed) or 0
    "relay": "relay state, 1 = closed/on",
    "digital_input": "digital input level, 1 = high",
    "digital_output": "digital output level, 1 = high",
    "analog_voltage_v": "analog input voltage, V",
    "analog_current_ma": "analog input current, mA",
    "pulse_count": "pulse counter (water meter, rain gauge)",
}

# Several probes, depths or channels of one device: the metric name plus "_<n>", counting from 1
# (soil_moisture_vwc_pct_1 is the shallowest depth, relay_2 the second relay).


def is_vocabulary(metric: str) -> bool:
    """True for a metric of the vocabulary, with or without a channel suffix."""
    if metric in METRICS:
        return True
    base, _, index = metric.rpartition("_")
    return base in METRICS and index.isdigit() and int(index) >= 1


def finite(value: Any) -> float | None:
    """A float for real numbers; None for anything else (strings, NaN, infinities, bools)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def fill_level_pct(distance_m: float | None, attributes: Mapping[str, Any]) -> float | None:
    """Fill level from a ceiling-mounted distance sensor and the bin's geometry.

    ``distance_empty_m`` is the distance to the bottom of the empty bin, ``distance_full_m`` the
    distance at which the bin counts as full. Without both, the fill level is unknown.
    """
    empty = finite(attributes.get("distance_empty_m"))
    full = finite(attributes.get("distance_full_m"))
    if distance_m is None or empty is None or full is None or empty <= full:
        return None
    pct = (empty - distance_m) / (empty - full) * 100.0
    return round(min(100.0, max(0.0, pct)), 1)


_METRIC_NAME = re.compile(r"[^a-z0-9]+")
MAX_GENERIC_METRICS = 64


def generic(decoded: Decoded, attributes: Mapping[str, Any] | None = None) -> Normalized:
    """Numeric leaves of a decoded payload we have no model for, under their own names.

    Used for a TTS ``decoded_payload`` or ChirpStack ``object`` from a device whose model we do
    not know: the vendor's field names are kept (cleaned to ``[a-z0-9_]``), ``{"value": x}``
    objects collapse to their parent's name, booleans become 0/1.
    """
    out: Normalized = {}

    def walk(prefix: str, value: Any, depth: int) -> None:
        if len(out) >= MAX_GENERIC_METRICS or depth > 4:
            return
        if isinstance(value, Mapping):
            if "value" in value and prefix:
                walk(prefix, value["value"], depth + 1)
                return
            for key, inner in value.items():
                name = f"{prefix}_{key}" if prefix else str(key)
                walk(name, inner, depth + 1)
        elif isinstance(value, bool):
            out[_clean(prefix)] = 1.0 if value else 0.0
        else:
            number = finite(value)
            if number is not None and prefix:
                out[_clean(prefix)] = number

    walk("", decoded, 0)
    return {k: v for k, v in out.items() if k}


def _clean(name: str) -> str:
    return _METRIC_NAME.sub("_", name.lower()).strip("_")[:63]
