"""The thresholds each kind of check takes, as pydantic models, and the duration type.

The values live in ``default_rules.yaml`` (with the reasons beside them); these models say what
a rule of each kind must give, check types and ranges, and hold only the defaults of secondary
knobs. A rule's ``params`` are validated against the model of its ``kind`` when rules are loaded,
so a typo in a threshold name fails at start-up, not at 3 a.m.

Durations are written ``"30min"``, ``"2h"``, ``"1d"``, ``"1h30min"``, ``"90s"``, ISO 8601
(``"PT30M"``), or a number of seconds.
"""
from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer,
                      model_validator)

Severity = Literal["info", "warning", "critical"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "critical": 2}

_UNITS = {"d": 86400, "h": 3600, "min": 60, "m": 60, "s": 1}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|min|m|s)")
_ISO = re.compile(r"^P(?:(\d+(?:\.\d+)?)D)?(?:T(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?"
                  r"(?:(\d+(?:\.\d+)?)S)?)?$")


def parse_duration(value: Any) -> timedelta:
    """``"30min"``, ``"2h"``, ``"1h30min"``, ``"PT30M"``, ``0``, ``90`` (seconds) -> timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("a duration, not a boolean")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return timedelta(seconds=value)
    if not isinstance(value, str):
        raise ValueError(f"not a duration: {value!r}")
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError("empty duration")
    if re.fullmatch(r"\d+(?:\.\d+)?", text):
        return timedelta(seconds=float(text))
    iso = _ISO.match(text.upper())
    if text.upper().startswith("P") and iso and any(iso.groups()):
        d, h, m, s = (float(g) if g else 0.0 for g in iso.groups())
        return timedelta(days=d, hours=h, minutes=m, seconds=s)
    seconds, position = 0.0, 0
    for match in _PART.finditer(text.lower()):
        if match.start() != position:
            break
        seconds += float(match.group(1)) * _UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        raise ValueError(f"not a duration: {value!r} (write e.g. 30min, 2h, 1d, 1h30min)")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The inverse of :func:`parse_duration` for whole seconds: ``timedelta(minutes=90)`` -> 1h30min."""
    seconds = int(round(value.total_seconds()))
    if seconds == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)


Duration = Annotated[timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration)]


class Params(BaseModel):
    """Base of every kind's parameters: unknown names are refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class BinFullParams(Params):
    fill_pct: float = Field(gt=0, le=120)
    clear_pct: float = Field(ge=0, le=120)
    robust_readings: int = Field(default=3, ge=1)  # median of the last n readings
    max_age: Duration = timedelta(hours=6)  # an older level is not evidence of anything

    @model_validator(mode="after")
    def _hysteresis(self) -> "BinFullParams":
        if self.clear_pct > self.fill_pct:
            raise ValueError("clear_pct must not be above fill_pct")
        return self


class BinOverflowParams(Params):
    # active when the forecast full time is at least `margin` before the next planned collection
    margin: Duration = timedelta(0)
    # clearing when the forecast full time is at least `clear_margin` after that collection
    clear_margin: Duration
    # no new overflow alert for a bin already this full: bin_full says it better
    skip_when_full_pct: float | None = None
    max_age: Duration = timedelta(hours=6)


class BinFireParams(Params):
    metrics: list[str] = ["temperature_c", "device_temperature_c"]
    temperature_c: float
    rise_k: float = Field(gt=0)
    rise_window: Duration
    clear_temperature_c: float
    clear_rise_k: float = Field(gt=0)
    max_age: Duration = timedelta(hours=2)

    @model_validator(mode="after")
    def _hysteresis(self) -> "BinFireParams":
        if self.clear_temperature_c > self.temperature_c or self.clear_rise_k > self.rise_k:
            raise ValueError("clear thresholds must not be above the alarm thresholds")
        return self


class BinTiltedParams(Params):
    tilt_deg: float = Field(gt=0, le=180)
    clear_tilt_deg: float = Field(ge=0, le=180)
    tilt_readings: int = Field(default=2, ge=1)  # that many readings in a row (a lid opened once is no tilt)
    # the "knocked over" signature of a lid-mounted distance sensor: it reads beyond the empty
    # bin's bottom (distance_empty_m x far_factor) for far_readings readings in a row ...
    far_factor: float = Field(gt=1.0)
    far_readings: int = Field(default=3, ge=1)
    # ... after the bin was at least this full
    previous_fill_pct: float = Field(ge=0, le=100)
    clear_far_factor: float = Field(gt=0)  # back inside the bin: clear
    max_age: Duration = timedelta(hours=6)

    @model_validator(mode="after")
    def _hysteresis(self) -> "BinTiltedParams":
        if self.clear_tilt_deg > self.tilt_deg or self.clear_far_factor > self.far_factor:
            raise ValueError("clear thresholds must not be above the alarm thresholds")
        return self


class BatteryLowParams(Params):
    pct_low: float = Field(ge=0, le=100)
    pct_clear: float = Field(ge=0, le=100)
    # battery_v thresholds when a device reports no battery_pct: by decoder id (shell-style
    # patterns, first match wins), then by device kind; a device attribute battery_low_v wins
    volts_by_model: dict[str, float] = {}
    volts_by_kind: dict[str, float] = {}
    clear_margin_v: float = Field(default=0.1, ge=0)
    robust_readings: int = Field(default=3, ge=1)
    max_age: Duration = timedelta(days=2)

    @model_validator(mode="after")
    def _hysteresis(self) -> "BatteryLowParams":
        if self.pct_clear < self.pct_low:
            raise ValueError("pct_clear must not be below pct_low")
        return self


class DeviceOfflineParams(Params):
    factor: float = Field(gt=1.0)  # k: silent for k x the learned interval
    min_silence: Duration  # never offline sooner than this, however short the interval
    min_gaps: int = Field(default=4, ge=1)  # gaps needed before the interval counts as learned
    max_gaps: int = Field(default=48, ge=1)  # the most recent gaps the median is taken over
    # before the interval is learned: attribute interval_s, else by kind, else default_interval,
    # and the floor is the larger unlearned_min_silence (a new device gets the benefit of doubt)
    default_interval_by_kind: dict[str, Duration] = {}
    default_interval: Duration = timedelta(hours=1)
    unlearned_min_silence: Duration
    clear_factor: float = Field(default=1.5, gt=0)  # an uplink within 1.5 intervals: back

    @model_validator(mode="after")
    def _hysteresis(self) -> "DeviceOfflineParams":
        if self.clear_factor > self.factor:
            raise ValueError("clear_factor must not be above factor")
        return self


class FrostParams(Params):
    temperature_c: float  # air at or below this ...
    spread_k: float = Field(ge=0)  # ... and air within this of its dew point
    humidity_pct: float = Field(ge=0, le=100)  # ... or humidity at or above this
    freezing_c: float  # ... or air at or below this after precipitation
    precipitation_mm: float = Field(ge=0)  # at least this much ...
    precipitation_window: Duration  # ... within this window counts as "recent precipitation"
    clear_temperature_c: float
    clear_spread_k: float = Field(ge=0)
    clear_humidity_pct: float = Field(ge=0, le=100)
    clear_freezing_c: float
    max_age: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _hysteresis(self) -> "FrostParams":
        if (self.clear_temperature_c < self.temperature_c or self.clear_spread_k < self.spread_k
                or self.clear_humidity_pct > self.humidity_pct
                or self.clear_freezing_c < self.freezing_c):
            raise ValueError("the clear thresholds must lie beyond the alarm thresholds")
        return self


class HeavyRainParams(Params):
    mm_1h: float = Field(gt=0)
    mm_6h: float = Field(gt=0)
    clear_mm_1h: float = Field(ge=0)
    clear_mm_6h: float = Field(ge=0)
    max_age: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _hysteresis(self) -> "HeavyRainParams":
        if self.clear_mm_1h > self.mm_1h or self.clear_mm_6h > self.mm_6h:
            raise ValueError("clear thresholds must not be above the alarm thresholds")
        return self


class StormParams(Params):
    gust_ms: float = Field(gt=0)
    clear_gust_ms: float = Field(ge=0)
    max_age: Duration = timedelta(hours=1)

    @model_validator(mode="after")
    def _hysteresis(self) -> "StormParams":
        if self.clear_gust_ms > self.gust_ms:
            raise ValueError("clear_gust_ms must not be above gust_ms")
        return self


class SoilDryParams(Params):
    default_dry_threshold_pct: float = Field(gt=0, le=100)  # unless the device has dry_threshold_pct
    clear_margin_pct: float = Field(ge=0)  # clear at threshold + margin (rain or watering)
    depths: list[int] | None = None  # which soil_moisture_vwc_pct_<n> to average; None: all
    robust_readings: int = Field(default=3, ge=1)
    max_age: Duration = timedelta(hours=6)


class IrrigationFaultParams(Params):
    relay_on: Duration  # relay on at least this long (seen in readings) with a still counter
    leak_intervals: int = Field(ge=1)  # counter rising over this many relay-off intervals in a row
    leak_min_pulses: float = Field(default=1.0, gt=0)  # per interval, to ignore meter jitter
    channels: list[int] | None = None  # relay_<n>/pulse_count_<n> pairs; None: all found
    max_age: Duration = timedelta(hours=3)


PARAMS: dict[str, type[Params]] = {
    "bin_full": BinFullParams,
    "bin_overflow_before_collection": BinOverflowParams,
    "bin_fire": BinFireParams,
    "bin_tilted": BinTiltedParams,
    "battery_low": BatteryLowParams,
    "device_offline": DeviceOfflineParams,
    "frost": FrostParams,
    "heavy_rain": HeavyRainParams,
    "storm": StormParams,
    "soil_dry": SoilDryParams,
    "irrigation_fault": IrrigationFaultParams,
}

CheckKind = Literal["bin_full", "bin_overflow_before_collection", "bin_fire", "bin_tilted",
                    "battery_low", "device_offline", "frost", "heavy_rain", "storm", "soil_dry",
                    "irrigation_fault"]
