"""The checks: one small pure function per rule kind, over one device's recent readings.

A check gets a :class:`DeviceWindow` (the device and its recent readings), the rule's typed
params and ``now``, and returns an :class:`Observation`: whether the alarm condition holds now
(``active``), whether the clear condition holds now (``clearing``: the other side of the
hysteresis band), or neither (inside the band), or that it cannot tell (``known=False``: no fresh
data). Opening, closing, durations and reminders are the lifecycle's business
(alerts/lifecycle.py), never a check's.

:func:`evaluate` runs every applicable rule over a set of windows; :func:`requirements` says
which metrics and how much history the windows need.

Times in the readings are epoch seconds (UTC), as the store and the planner use them; ``now``
is a timezone-aware datetime. Readings after ``now`` are ignored (a replay may hold the future).
"""
from __future__ import annotations

import fnmatch
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

import numpy as np

from alerts import params as P
from alerts.rules import Rule, RuleSet

log = logging.getLogger(__name__)

_EMPTY = np.empty((0, 2))


def _epoch(now: datetime) -> float:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware")
    return now.timestamp()


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _plain(value: Any) -> Any:
    """JSON-friendly detail values: numpy scalars to Python, non-finite floats to None."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class DeviceWindow:
    """One device and its recent readings: everything a check may look at.

    ``readings``: metric -> array of shape (n, 2), columns epoch seconds and value (sorted and
    cleaned here: non-finite values dropped, one value per time). ``uplinks``: epoch seconds of
    recent uplinks (``raw_uplinks.received_at``); without it the distinct reading times stand
    in. ``full_at``: the fill forecast's full time (epoch s; ``math.inf`` when the forecast says
    "not within its horizon"; None when there is no forecast). ``next_collection``: the next
    planned collection of this bin (epoch s) or None. ``model``: the decoder id
    (``vendor/model``), for per-model battery voltages.
    """

    device_id: str
    kind: str | None = None
    site_type: str | None = None
    municipality: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)
    last_seen: datetime | None = None
    readings: Mapping[str, np.ndarray] = field(default_factory=dict)
    name: str | None = None
    model: str | None = None
    uplinks: np.ndarray | None = None
    full_at: float | None = None
    next_collection: float | None = None
    # Since when our intake has listened without a break (epoch s): the service's start or the
    # broker connection's return. Silence from before it may be ours, not the device's.
    watching_since: float | None = None

    def __post_init__(self) -> None:
        clean = {}
        for metric, array in self.readings.items():
            a = np.asarray(array, dtype=float).reshape(-1, 2)
            a = a[np.isfinite(a).all(axis=1)]
            if len(a):
                # sorted by time; of several values at one time the last given wins
                order = np.argsort(a[:, 0], kind="stable")
                a = a[order]
                keep = np.append(a[1:, 0] != a[:-1, 0], True)
                a = a[keep]
            clean[metric] = a
        object.__setattr__(self, "readings", clean)
        if self.uplinks is not None:
            u = np.asarray(self.uplinks, dtype=float).ravel()
            object.__setattr__(self, "uplinks", np.unique(u[np.isfinite(u)]))
        if self.last_seen is not None:
            _epoch(self.last_seen)

    def series(self, metric: str, until: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(times, values) of a metric, up to and including ``until``."""
        a = self.readings.get(metric, _EMPTY)
        if until is not None and len(a) and a[-1, 0] > until:
            a = a[: np.searchsorted(a[:, 0], until, side="right")]
        return a[:, 0], a[:, 1]

    def uplink_times(self, until: float | None = None) -> np.ndarray:
        if self.uplinks is not None:
            times = self.uplinks
        else:
            parts = [a[:, 0] for a in self.readings.values() if len(a)]
            times = np.unique(np.concatenate(parts)) if parts else np.empty(0)
        if until is not None:
            times = times[times <= until]
        return times

    def metrics_like(self, base: str) -> list[str]:
        """``base`` and its channels ``base_<n>`` present in the readings, base first."""
        out = [base] if base in self.readings else []
        suffixed = [m for m in self.readings
                    if m.startswith(base + "_") and m[len(base) + 1:].isdigit()]
        return out + sorted(suffixed, key=lambda m: int(m.rpartition("_")[2]))

    @classmethod
    def from_rows(cls, device_id: str, rows: Iterable[tuple[Any, str, float]],
                  **fields: Any) -> "DeviceWindow":
        """From ``(time, metric, value)`` rows as the ``readings`` table gives them (time a
        datetime or epoch seconds)."""
        by_metric: dict[str, list[tuple[float, float]]] = {}
        for time, metric, value in rows:
            t = time.timestamp() if isinstance(time, datetime) else float(time)
            by_metric.setdefault(metric, []).append((t, float(value)))
        return cls(device_id, readings={m: np.array(v) for m, v in by_metric.items()}, **fields)


@dataclass(frozen=True)
class Observation:
    """What a check sees now. ``active``: the alarm condition holds. ``clearing``: the clear
    condition holds (beyond the hysteresis). Neither: inside the band, nothing changes.
    ``known=False``: no fresh data to judge (nothing changes either). ``since``: from when the
    condition has held according to the data (lets ``min_duration`` count from the readings,
    not from the first evaluation). ``value``: the number the alert is about (fill %, °C ...)."""

    active: bool
    value: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    clearing: bool = False
    since: datetime | None = None
    known: bool = True

    def __post_init__(self) -> None:
        if self.active and self.clearing:
            raise ValueError("an observation cannot be active and clearing at once")
        if not self.known and (self.active or self.clearing):
            raise ValueError("an unknown observation is neither active nor clearing")
        value = None if self.value is None else float(self.value)
        object.__setattr__(self, "value", value if value is None or math.isfinite(value) else None)
        object.__setattr__(self, "detail", _plain(dict(self.detail)))

    @classmethod
    def unknown(cls, reason: str) -> "Observation":
        return cls(False, None, {"reason": reason}, known=False)


@dataclass(frozen=True)
class Evaluation:
    """One rule's observation on one device: the input of :func:`alerts.lifecycle.step`."""

    device_id: str
    rule_id: str
    observation: Observation
    municipality: str | None = None
    device_name: str | None = None

    @property
    def key(self) -> tuple[str, str]:
        return self.device_id, self.rule_id


# ------------------------------------------------------------------------------ helpers

def _fresh(t: np.ndarray, now_s: float, max_age: timedelta) -> np.ndarray:
    """Mask of readings not older than max_age."""
    return t >= now_s - max_age.total_seconds()


def _robust(values: np.ndarray, n: int) -> float:
    """Median of the last n values: one wild reading does not decide."""
    return float(np.median(values[-n:]))


def _since(t: np.ndarray, active: np.ndarray, clearing: np.ndarray) -> datetime | None:
    """When the condition (with hysteresis) began: the first active reading after the last
    clearing one; None when the newest readings show no active one since."""
    clear_idx = np.flatnonzero(clearing)
    start = clear_idx[-1] + 1 if len(clear_idx) else 0
    hits = np.flatnonzero(active[start:])
    return _utc(float(t[start + hits[0]])) if len(hits) else None


def dew_point_c(temperature_c: float, humidity_pct: float) -> float:
    """Dew point by the Magnus formula over water, WMO constants (Sonntag 1990):
    b = 17.62, c = 243.12 °C, valid from -45 to 60 °C."""
    b, c = 17.62, 243.12
    gamma = math.log(max(humidity_pct, 0.1) / 100.0) + b * temperature_c / (c + temperature_c)
    return c * gamma / (b - gamma)


def beaufort(speed_ms: float) -> int:
    """Beaufort number of a wind speed: v = 0.836 · B^1.5 m/s (WMO)."""
    return int(min(12, max(0, round((max(speed_ms, 0.0) / 0.836) ** (2 / 3)))))


def learned_interval_s(uplinks: np.ndarray, *, max_gaps: int = 48,
                       min_gaps: int = 4) -> float | None:
    """A device's usual interval: the median gap between its recent uplinks (duplicates, i.e.
    gaps under a second, left out); None with fewer than ``min_gaps`` gaps."""
    times = np.unique(np.asarray(uplinks, dtype=float))
    gaps = np.diff(times)
    gaps = gaps[gaps >= 1.0][-max_gaps:]
    return float(np.median(gaps)) if len(gaps) >= min_gaps else None


# ------------------------------------------------------------------------------- checks

def bin_full(w: DeviceWindow, p: P.BinFullParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = w.series("fill_level_pct", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if not fresh.any():
        return Observation.unknown("no recent fill level")
    level = _robust(v[fresh], p.robust_readings)
    return Observation(level >= p.fill_pct, level,
                       {"fill_pct": level, "threshold_pct": p.fill_pct, "clear_pct": p.clear_pct,
                        "reading_at": float(t[-1])},
                       clearing=level < p.clear_pct)


def bin_overflow_before_collection(w: DeviceWindow, p: P.BinOverflowParams,
                                   now: datetime) -> Observation:
    now_s = _epoch(now)
    if w.full_at is None:
        return Observation.unknown("no fill forecast")
    if w.next_collection is None or w.next_collection < now_s:
        return Observation.unknown("no planned collection ahead")
    t, v = w.series("fill_level_pct", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    level = float(v[fresh][-1]) if fresh.any() else None
    early_s = w.next_collection - w.full_at  # inf - inf cannot happen: next_collection is finite
    detail = {"full_at": w.full_at if math.isfinite(w.full_at) else None,
              "collection_at": w.next_collection, "fill_pct": level,
              "hours_early": early_s / 3600 if math.isfinite(early_s) else None}
    value = detail["hours_early"]
    if p.skip_when_full_pct is not None and level is not None and level >= p.skip_when_full_pct:
        return Observation(False, value, {**detail, "skipped": "already full"})
    active = w.full_at <= w.next_collection - p.margin.total_seconds()
    clearing = w.full_at >= w.next_collection + p.clear_margin.total_seconds()
    return Observation(active, value, detail, clearing=clearing)


def bin_fire(w: DeviceWindow, p: P.BinFireParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    window_s = p.rise_window.total_seconds()
    found: list[dict[str, Any]] = []
    for base in p.metrics:
        for metric in w.metrics_like(base):
            t, v = w.series(metric, now_s)
            if not len(t) or not _fresh(t, now_s, p.max_age)[-1]:
                continue
            before = (t >= t[-1] - window_s) & (t < t[-1])
            rise = float(v[-1] - v[before].min()) if before.any() else 0.0
            found.append({"metric": metric, "temperature_c": float(v[-1]), "rise_k": rise,
                          "active": v[-1] >= p.temperature_c or rise >= p.rise_k,
                          "clear": v[-1] < p.clear_temperature_c and rise < p.clear_rise_k})
    if not found:
        return Observation.unknown("no recent temperature")
    worst = max(found, key=lambda f: (f["active"], f["temperature_c"]))
    active = any(f["active"] for f in found)
    return Observation(active, worst["temperature_c"],
                       {"metric": worst["metric"], "temperature_c": worst["temperature_c"],
                        "rise_k": worst["rise_k"], "threshold_c": p.temperature_c,
                        "rise_window_min": window_s / 60},
                       clearing=not active and all(f["clear"] for f in found))


def bin_tilted(w: DeviceWindow, p: P.BinTiltedParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    verdicts: list[tuple[bool, bool, dict[str, Any]]] = []  # (active, clearing, detail)

    t, v = w.series("tilt_deg", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if fresh.any():
        recent = v[fresh][-p.tilt_readings:]
        active = len(recent) >= p.tilt_readings and bool((recent >= p.tilt_deg).all())
        verdicts.append((active, float(v[-1]) < p.clear_tilt_deg,
                         {"variant": "tilt", "tilt_deg": float(v[-1]),
                          "threshold_deg": p.tilt_deg}))

    empty = w.attributes.get("distance_empty_m")
    t, d = w.series("distance_m", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if isinstance(empty, (int, float)) and empty > 0 and fresh.any():
        far = d > empty * p.far_factor
        clear = bool(d[-1] <= empty * p.clear_far_factor)
        near_idx = np.flatnonzero(~far)
        run_start = near_idx[-1] + 1 if len(near_idx) else 0
        run = len(d) - run_start
        detail = {"variant": "far", "distance_m": float(d[-1]), "empty_m": float(empty),
                  "far_readings": int(run)}
        active = False
        if run >= p.far_readings and run_start > 0:
            # the fill before the jump: from fill_level_pct, else from the geometry
            before_t = t[max(0, run_start - 3):run_start]
            ft, fv = w.series("fill_level_pct", now_s)
            fill = fv[np.isin(ft, before_t)]
            full_m = w.attributes.get("distance_full_m")
            if not len(fill) and isinstance(full_m, (int, float)) and empty > full_m:
                fill = (empty - d[max(0, run_start - 3):run_start]) / (empty - full_m) * 100
            if len(fill):
                previous = float(np.median(fill))
                detail["previous_fill_pct"] = previous
                active = previous > p.previous_fill_pct
        verdicts.append((active, clear, detail))

    if not verdicts:
        return Observation.unknown("no recent tilt or distance")
    hit = next((x for x in verdicts if x[0]), None)
    if hit is not None:
        value = hit[2].get("tilt_deg", hit[2].get("distance_m"))
        return Observation(True, value, hit[2])
    detail = {k: val for x in verdicts for k, val in x[2].items() if k != "variant"}
    return Observation(False, None, detail, clearing=all(x[1] for x in verdicts))


def battery_low(w: DeviceWindow, p: P.BatteryLowParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = w.series("battery_pct", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if fresh.any():
        level = _robust(v[fresh], p.robust_readings)
        return Observation(level <= p.pct_low, level,
                           {"variant": "pct", "battery_pct": level, "threshold": p.pct_low},
                           clearing=level >= p.pct_clear)
    t, v = w.series("battery_v", now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if not fresh.any():
        return Observation.unknown("no recent battery reading")
    threshold = _volts_threshold(w, p)
    if threshold is None:
        return Observation.unknown("no voltage threshold for this device model")
    volts = _robust(v[fresh], p.robust_readings)
    return Observation(volts <= threshold, volts,
                       {"variant": "volts", "battery_v": volts, "threshold": threshold},
                       clearing=volts >= threshold + p.clear_margin_v)


def _volts_threshold(w: DeviceWindow, p: P.BatteryLowParams) -> float | None:
    own = w.attributes.get("battery_low_v")
    if isinstance(own, (int, float)) and not isinstance(own, bool):
        return float(own)
    if w.model:
        for pattern, volts in p.volts_by_model.items():
            if fnmatch.fnmatchcase(w.model, pattern):
                return volts
    return p.volts_by_kind.get(w.kind or "")


def device_offline(w: DeviceWindow, p: P.DeviceOfflineParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    uplinks = w.uplink_times(now_s)
    candidates = [float(uplinks[-1])] if len(uplinks) else []
    if w.last_seen is not None and w.last_seen.timestamp() <= now_s:
        candidates.append(w.last_seen.timestamp())
    last = max(candidates, default=None)
    if last is None:
        return Observation.unknown("never seen")
    learned = learned_interval_s(uplinks, max_gaps=p.max_gaps, min_gaps=p.min_gaps)
    if learned is not None:
        interval = learned
        threshold = max(p.factor * interval, p.min_silence.total_seconds())
    else:
        own = w.attributes.get("interval_s")
        default = p.default_interval_by_kind.get(w.kind or "", p.default_interval)
        interval = (float(own) if isinstance(own, (int, float)) and own > 0
                    else default.total_seconds())
        threshold = max(p.factor * interval, p.unlearned_min_silence.total_seconds())
    silent = max(0.0, now_s - last)
    detail = {"last_seen_at": last, "silent_h": silent / 3600, "interval_min": interval / 60,
              "threshold_min": threshold / 60, "learned": learned is not None}
    # A device gets the whole threshold to report after we started listening: at a start (and
    # while a backfill catches up) every device looks silent since our last message.
    heard_from = last if w.watching_since is None else max(last, w.watching_since)
    active = now_s - heard_from >= threshold
    return Observation(active, silent / 60, detail,
                       clearing=not active and silent < p.clear_factor * interval,
                       since=_utc(heard_from + threshold) if active else None)


def frost(w: DeviceWindow, p: P.FrostParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = w.series("temperature_c", now_s)
    if not len(t) or not _fresh(t, now_s, p.max_age)[-1]:
        return Observation.unknown("no recent air temperature")
    temp = float(v[-1])
    ht, hv = w.series("relative_humidity_pct", now_s)
    humidity = float(hv[-1]) if len(ht) and abs(ht[-1] - t[-1]) <= 1800 else None
    dew = dew_point_c(temp, humidity) if humidity is not None else None
    spread = temp - dew if dew is not None else None
    pt, pv = w.series("precipitation_mm", now_s)
    window_s = p.precipitation_window.total_seconds()
    precipitation = float(pv[pt > now_s - window_s].sum()) if len(pt) else 0.0
    wet = precipitation >= p.precipitation_mm and precipitation > 0

    moist = humidity is not None and (spread <= p.spread_k or humidity >= p.humidity_pct)
    active = temp <= p.temperature_c and (moist or (temp <= p.freezing_c and wet))
    dry_enough = (humidity is not None and spread >= p.clear_spread_k
                  and humidity < p.clear_humidity_pct
                  and not (temp <= p.clear_freezing_c and wet))
    clearing = temp >= p.clear_temperature_c or dry_enough
    return Observation(active, temp,
                       {"temperature_c": temp, "humidity_pct": humidity, "dew_point_c": dew,
                        "spread_k": spread, "precipitation_mm": precipitation,
                        "precipitation_window_h": window_s / 3600},
                       clearing=clearing and not active)


def heavy_rain(w: DeviceWindow, p: P.HeavyRainParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = w.series("precipitation_mm", now_s)
    if not len(t) or not _fresh(t, now_s, p.max_age)[-1]:
        return Observation.unknown("no recent precipitation reading")
    # each reading holds the precipitation since the previous uplink: sum what fell in the window
    mm_1h = float(v[t > now_s - 3600].sum())
    mm_6h = float(v[t > now_s - 6 * 3600].sum())
    active = mm_1h >= p.mm_1h or mm_6h >= p.mm_6h
    return Observation(active, mm_1h, {"mm_1h": mm_1h, "mm_6h": mm_6h,
                                       "threshold_1h": p.mm_1h, "threshold_6h": p.mm_6h},
                       clearing=not active and mm_1h < p.clear_mm_1h and mm_6h < p.clear_mm_6h)


def storm(w: DeviceWindow, p: P.StormParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = w.series("wind_gust_ms", now_s)
    if not len(t) or not _fresh(t, now_s, p.max_age)[-1]:
        return Observation.unknown("no recent gust reading")
    gust = float(v[-1])
    return Observation(gust >= p.gust_ms, gust,
                       {"gust_ms": gust, "gust_kmh": gust * 3.6, "beaufort": beaufort(gust),
                        "threshold_ms": p.gust_ms},
                       clearing=gust < p.clear_gust_ms)


def soil_dry(w: DeviceWindow, p: P.SoilDryParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    t, v = _soil_moisture(w, p, now_s)
    fresh = _fresh(t, now_s, p.max_age)
    if not fresh.any():
        return Observation.unknown("no recent soil moisture")
    own = w.attributes.get("dry_threshold_pct")
    threshold = (float(own) if isinstance(own, (int, float)) and not isinstance(own, bool)
                 else p.default_dry_threshold_pct)
    clear_at = threshold + p.clear_margin_pct
    level = _robust(v[fresh], p.robust_readings)
    active = level < threshold
    since = _since(t, v < threshold, v >= clear_at) if active else None
    return Observation(active, level,
                       {"moisture_pct": level, "threshold_pct": threshold,
                        "since_at": since.timestamp() if since else None},
                       clearing=level >= clear_at, since=since)


def _soil_moisture(w: DeviceWindow, p: P.SoilDryParams,
                   now_s: float) -> tuple[np.ndarray, np.ndarray]:
    """The root zone's moisture: the plain metric, or the mean of the chosen depths per time."""
    metrics = w.metrics_like("soil_moisture_vwc_pct")
    if "soil_moisture_vwc_pct" in metrics:
        return w.series("soil_moisture_vwc_pct", now_s)
    if p.depths is not None:
        metrics = [m for m in metrics if int(m.rpartition("_")[2]) in p.depths]
    series = [w.series(m, now_s) for m in metrics]
    series = [s for s in series if len(s[0])]
    if not series:
        return np.empty(0), np.empty(0)
    times = np.unique(np.concatenate([s[0] for s in series]))
    total, count = np.zeros(len(times)), np.zeros(len(times))
    for t, v in series:
        idx = np.searchsorted(times, t)
        np.add.at(total, idx, v)
        np.add.at(count, idx, 1)
    return times, total / count


def irrigation_fault(w: DeviceWindow, p: P.IrrigationFaultParams, now: datetime) -> Observation:
    now_s = _epoch(now)
    verdicts = []
    for relay in w.metrics_like("relay"):
        suffix = relay[len("relay"):]
        if p.channels is not None and (not suffix or int(suffix[1:]) not in p.channels):
            continue
        counter = "pulse_count" + suffix
        rt, rv = w.series(relay, now_s)
        ct, cv = w.series(counter, now_s)
        times, ri, ci = np.intersect1d(rt, ct, return_indices=True)
        if not len(times) or not _fresh(times, now_s, p.max_age)[-1]:
            continue
        verdicts.append(_irrigation_channel(times, rv[ri] >= 0.5, cv[ci], p,
                                            suffix[1:] or "1"))
    if not verdicts:
        return Observation.unknown("no recent relay with a pulse counter")
    hit = next((x for x in verdicts if x[0]), None)
    if hit is not None:
        return Observation(True, hit[2].get("relay_on_min", hit[2].get("pulses")), hit[2])
    return Observation(False, None, verdicts[0][2], clearing=all(x[1] for x in verdicts))


def _irrigation_channel(t: np.ndarray, on: np.ndarray, count: np.ndarray,
                        p: P.IrrigationFaultParams, channel: str) -> tuple[bool, bool, dict]:
    steps = np.diff(count)
    # a counter going backwards was reset or wrapped: unknown flow, counted as "moved"
    moved_steps = steps != 0
    # dry run: the relay is on now and has been, as far as the readings show, for relay_on,
    # and the counter has not moved since the reading before the relay went on
    if on[-1]:
        off_idx = np.flatnonzero(~on)
        first_on = off_idx[-1] + 1 if len(off_idx) else 0
        base = max(0, first_on - 1)
        duration = t[-1] - t[first_on]
        moved = bool(moved_steps[base:].any())
        detail = {"variant": "dry_run", "channel": channel, "relay_on_min": duration / 60}
        if duration >= p.relay_on.total_seconds() and not moved:
            return True, False, detail
        return False, moved, detail
    # leak: the counter rose over each of the last leak_intervals intervals with the relay off
    # at both ends (one such interval may be a watering the readings did not catch)
    k = p.leak_intervals
    detail = {"variant": "leak", "channel": channel, "pulses": 0.0}
    if len(t) >= k + 1:
        last_on = on[-(k + 1):]
        last_steps = steps[-k:]
        if not last_on.any() and (last_steps >= p.leak_min_pulses).all():
            detail["pulses"] = float(last_steps.sum())
            return True, False, detail
    still = len(steps) >= 1 and not on[-2] and steps[-1] == 0
    return False, bool(still), detail


Check = Callable[[DeviceWindow, Any, datetime], Observation]

CHECKS: dict[str, Check] = {
    "bin_full": bin_full,
    "bin_overflow_before_collection": bin_overflow_before_collection,
    "bin_fire": bin_fire,
    "bin_tilted": bin_tilted,
    "battery_low": battery_low,
    "device_offline": device_offline,
    "frost": frost,
    "heavy_rain": heavy_rain,
    "storm": storm,
    "soil_dry": soil_dry,
    "irrigation_fault": irrigation_fault,
}
assert set(CHECKS) == set(P.PARAMS), "every kind needs a check and a params model"


def check(rule: Rule, window: DeviceWindow, now: datetime) -> Observation:
    """Run one rule's check on one device."""
    return CHECKS[rule.kind](window, rule.params, now)


def evaluate(rules: RuleSet, windows: Iterable[DeviceWindow], now: datetime) -> list[Evaluation]:
    """Every enabled, applicable rule on every window. A check that raises is logged and
    reported as unknown: one bad series must not stop the other alerts."""
    _epoch(now)
    out = []
    for window in windows:
        for rule in rules.for_window(window):
            try:
                observation = check(rule, window, now)
            except Exception as err:  # noqa: BLE001 - isolate one device's bad data
                log.exception("alert check %s failed on %s", rule.id, window.device_id)
                observation = Observation.unknown(f"check failed: {type(err).__name__}: {err}")
            out.append(Evaluation(window.device_id, rule.id, observation,
                                  window.municipality, window.name))
    return out


# ------------------------------------------------------------------ what windows need

# metric base names per kind (channels _<n> included); "uplinks" means the uplink times
_METRICS: dict[str, tuple[str, ...]] = {
    "bin_full": ("fill_level_pct",),
    "bin_overflow_before_collection": ("fill_level_pct",),
    "bin_fire": (),  # from params.metrics
    "bin_tilted": ("tilt_deg", "distance_m", "fill_level_pct"),
    "battery_low": ("battery_pct", "battery_v"),
    "device_offline": ("uplinks",),
    "frost": ("temperature_c", "relative_humidity_pct", "precipitation_mm"),
    "heavy_rain": ("precipitation_mm",),
    "storm": ("wind_gust_ms",),
    "soil_dry": ("soil_moisture_vwc_pct",),
    "irrigation_fault": ("relay", "pulse_count"),
}


def _lookback(rule: Rule) -> timedelta:
    p = rule.params
    if isinstance(p, P.DeviceOfflineParams):
        # enough uplinks to learn from at the slowest usual interval, and the silence itself
        slowest = max([p.default_interval, *p.default_interval_by_kind.values()])
        return slowest * (p.max_gaps + p.factor + 1)
    if isinstance(p, P.FrostParams):
        return max(p.max_age, p.precipitation_window)
    if isinstance(p, P.HeavyRainParams):
        return timedelta(hours=6)
    if isinstance(p, P.BinFireParams):
        return p.max_age + p.rise_window
    if isinstance(p, P.BinTiltedParams):
        return timedelta(hours=48)  # the run of far readings and the fill before it
    if isinstance(p, P.SoilDryParams):
        return max(p.max_age, rule.min_duration * 2)  # to see since when it is dry
    return getattr(p, "max_age", timedelta(hours=6))


@dataclass(frozen=True)
class Requirements:
    """What to load for the windows: per metric (channels included) how far back, and how far
    back the uplink times are needed."""

    metrics: Mapping[str, timedelta]
    uplinks: timedelta | None

    @property
    def longest(self) -> timedelta:
        return max([*self.metrics.values(), self.uplinks or timedelta(0)], default=timedelta(0))


def requirements(rules: RuleSet) -> Requirements:
    metrics: dict[str, timedelta] = {}
    uplinks: timedelta | None = None
    for rule in rules.enabled():
        back = _lookback(rule)
        names = list(_METRICS[rule.kind])
        if isinstance(rule.params, P.BinFireParams):
            names += rule.params.metrics
        for name in names:
            if name == "uplinks":
                uplinks = max(uplinks or timedelta(0), back)
            else:
                metrics[name] = max(metrics.get(name, timedelta(0)), back)
    return Requirements(metrics, uplinks)
