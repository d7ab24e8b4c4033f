"""Which bins to empty today: must-go, may-go or skip, from their forecasts.

A bin is **must-go** when, left alone, it would be full before it could next be emptied: its
level now plus the growth the forecast expects until the middle of that next shift (a stop late
in a shift is as likely as an early one), times ``must_safety``, reaches its full mark. "Next" is
the next working day, or, for a town with round days (``fixed_schedule`` with ``use_rounds``),
the town's next round; between rounds only a bin that would stand full for ``emergency_h`` gets
an extra trip (see ``_must``). Bins already full are must-go too.

A bin is **may-go** when it is at least ``may_min_pct`` full by the middle of today's shift and
would be full within ``may_horizon_days`` after the next shift. It carries a prize, in metres of
driving it is worth: what emptying it now spares — ``may_value_m`` plus ``may_trip_share`` of
the round trip from the depot that a later visit would cost — for a standard (120 l) bin that
would be full right after the next shift, falling linearly to nothing at the horizon, scaled by
volume. The solver takes it when its detour costs less than that: a bin beside today's route
that will be full on Thursday is taken along; a bin that can wait a week is not. With
``bundle_days``, bins of a town visited today anyway that would be due within that many days
get ``bundle_value_m`` instead.

Everything else is skipped, including bins without readings (nothing is known; they show up in
the gaps and alerts, not on a route).
"""
from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from planner.areas import due_areas, group, overflow_hours, revisit_interval_h
from planner.config import WEEKDAYS, PlannerConfig
from planner.distances import haversine_m
from planner.forecast import (DryForecast, FillForecast, detect_emptyings, fill_profile,
                              forecast_fill)

STANDARD_BIN_L = 120.0
Reason = Literal["must", "may"]


@dataclass(frozen=True)
class BinState:
    device_id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    site_type: str | None
    volume_l: float
    forecast: FillForecast | None


def bin_forecast(times: np.ndarray, levels_pct: np.ndarray, at: float, config: PlannerConfig,
                 site_type: str | None) -> FillForecast | None:
    """A bin's forecast from its fill readings (epoch s, %), with its weekday profile and its
    site type's full threshold; None without readings."""
    if len(times) == 0:
        return None
    tz = ZoneInfo(config.timezone)
    emptied = detect_emptyings(times, levels_pct)
    profile = fill_profile(times, levels_pct, emptied, tz)
    return forecast_fill(times, levels_pct, at, full_pct=config.thresholds(site_type).full_pct,
                         profile=profile, tz=tz)


@dataclass(frozen=True)
class Candidate:
    bin: BinState
    reason: Reason
    fill_now_pct: float
    fill_due_pct: float   # expected at the middle of today's shift
    demand_l: int         # loose litter to take on
    prize_m: int          # may-go only: metres of driving the stop is worth
    service_s: int


def select_bins(bins: list[BinState], config: PlannerConfig, *, shift_start: float,
                shift_end: float, next_start: float, next_end: float) -> list[Candidate]:
    """Candidates for today's round (epoch seconds for the shift times), must-go first."""
    today_mid = (shift_start + shift_end) / 2
    next_mid = (next_start + next_end) / 2
    if config.areas.enabled:
        return _by_area(bins, config, today_mid, next_mid)
    rounds = _round_days(config, shift_start)
    musts: list[Candidate] = []
    rest: list[tuple[BinState, float, int]] = []
    for b in bins:
        f = b.forecast
        if f is None:
            continue
        limits = config.thresholds(b.site_type)
        due = f.level_at(today_mid) if today_mid > f.at else f.level_pct
        demand = int(round(max(due, 5.0) / 100.0 * b.volume_l))
        if _must(f, limits.full_pct, config, next_mid, rounds.get(b.municipality)):
            musts.append(Candidate(b, "must", f.level_pct, due, demand, 0,
                                   int(limits.service_s)))
        else:
            rest.append((b, due, demand))
    visited = {c.bin.municipality for c in musts}
    mays: list[Candidate] = []
    for b, due, demand in rest:
        f = b.forecast
        limits = config.thresholds(b.site_type)
        if f.full_at is None:
            continue
        days_left = (f.full_at - next_mid) / 86400.0
        trip = 2 * config.detour_factor * float(haversine_m(
            config.depot.latitude, config.depot.longitude, b.latitude, b.longitude))
        volume = b.volume_l / STANDARD_BIN_L
        if b.municipality in visited and days_left <= config.bundle_days:
            # A truck goes there today anyway; what would be due before it comes again is
            # taken along, so the town can wait for its next round.
            prize = (config.bundle_value_m + config.may_trip_share * trip) * volume
        elif due >= limits.may_min_pct:
            # Worth most when it would be full soon after the next shift anyway; one that can
            # wait a week is worth nothing.
            urgency = max(0.0, 1.0 - days_left / config.may_horizon_days)
            prize = (config.may_value_m + config.may_trip_share * trip) * urgency * volume
        else:
            continue
        if prize >= 1:
            mays.append(Candidate(b, "may", f.level_pct, due, demand, int(round(prize)),
                                  int(limits.service_s)))
    return sorted(musts, key=lambda c: c.bin.device_id) + sorted(
        mays, key=lambda c: c.bin.device_id)


def _by_area(bins: list[BinState], config: PlannerConfig, today_mid: float,
             next_mid: float) -> list[Candidate]:
    """Must-go and may-go from the areas due today (planner/areas.py)."""
    known = [b for b in bins if b.forecast is not None]
    if not known:
        return []
    limits = [config.thresholds(b.site_type) for b in known]
    lat = np.array([b.latitude for b in known])
    lon = np.array([b.longitude for b in known])
    full = [lim.full_pct for lim in limits]
    areas = group([(b.municipality, b.latitude, b.longitude) for b in known],
                  config.areas.link_m)
    overflow = [sum(overflow_hours(known[i].forecast, full[i], today_mid, next_mid,
                                   config.must_safety) for i in a.members) for a in areas]
    intervals = [revisit_interval_h([known[i].forecast for i in a.members],
                                    [full[i] for i in a.members]) for a in areas]
    decisions = due_areas(areas, overflow, intervals, lat, lon, config,
                          wait_h=(next_mid - today_mid) / 3600)
    musts: list[Candidate] = []
    mays: list[Candidate] = []
    for d in decisions:
        # A due area is next visited about one revisit interval from now, a waiting one not
        # before the next shift.
        horizon = today_mid + d.interval_h * 3600 if d.due else next_mid
        value = config.areas.may_value_m if d.due else config.may_value_m
        for i in d.area.members:
            b, lim = known[i], limits[i]
            f = b.forecast
            due = f.level_at(today_mid) if today_mid > f.at else f.level_pct
            demand = int(round(max(due, 5.0) / 100.0 * b.volume_l))
            if d.due and (f.level_pct >= lim.full_pct
                          or _pessimistic(f, horizon, config.must_safety) >= lim.full_pct):
                musts.append(Candidate(b, "must", f.level_pct, due, demand, 0,
                                       int(lim.service_s)))
                continue
            full_at = f.full_at
            if full_at is None and f.base_rate_pct_h > 0:  # beyond the forecast's horizon
                full_at = f.at + (lim.full_pct - f.level_pct) / f.base_rate_pct_h * 3600
            if due < lim.may_min_pct or full_at is None:
                continue
            # Worth most when it would be full right after the next visit; nothing when it
            # could wait yet another interval (or, in an area left alone, may_horizon_days).
            wait = d.interval_h * 3600 if d.due else config.may_horizon_days * 86400
            urgency = max(0.0, 1.0 - (full_at - horizon) / wait)
            prize = value * urgency * b.volume_l / STANDARD_BIN_L
            if prize >= 1:
                mays.append(Candidate(b, "may", f.level_pct, due, demand, int(round(prize)),
                                      int(lim.service_s)))
    return sorted(musts, key=lambda c: c.bin.device_id) + sorted(
        mays, key=lambda c: c.bin.device_id)


def _pessimistic(f: FillForecast, t: float, safety: float) -> float:
    """The level at ``t`` if the bin fills ``safety`` times as fast as forecast."""
    growth = f.level_at(t) - f.level_pct if t > f.at else 0.0
    return f.level_pct + safety * max(growth, 0.0)


def _must(f: FillForecast, full_pct: float, config: PlannerConfig, next_mid: float,
          town_round: tuple[bool, float] | None) -> bool:
    """Would the bin be full before it can be emptied?

    Without rounds, the next chance is the next working day. With a town's rounds, the next
    chance is its next round day: on a round day the bins that would be full before the next
    round are taken; between rounds only a bin that would otherwise stand full for more than
    ``emergency_h`` before the next round is worth an extra trip.
    """
    if f.level_pct >= full_pct:
        return True
    if town_round is None:
        return _pessimistic(f, next_mid, config.must_safety) >= full_pct
    round_today, next_round_mid = town_round
    if round_today:
        return _pessimistic(f, next_round_mid, config.must_safety) >= full_pct
    if config.emergency_h is None or _pessimistic(f, next_mid, config.must_safety) < full_pct:
        return False  # no extra trips, or it can wait until the next working day at least
    full_at = f.full_at if f.full_at is not None else math.inf
    return next_round_mid - full_at > config.emergency_h * 3600


def _round_days(config: PlannerConfig, shift_start: float) -> dict[str, tuple[bool, float]]:
    """Per town with fixed round days: (is today one, middle of its next round's shift)."""
    if not config.use_rounds or not config.fixed_schedule:
        return {}
    tz = ZoneInfo(config.timezone)
    today = dt.datetime.fromtimestamp(shift_start, tz).date()
    hours = max(v.shift_h for v in config.vehicles)
    out = {}
    for town, weekdays in config.fixed_schedule.items():
        days = [d for d in weekdays if d in config.working_days]
        if not days:
            continue
        for n in range(1, 15):
            day = today + dt.timedelta(days=n)
            if WEEKDAYS[day.weekday()] in days:
                start = dt.datetime.combine(day, config.shift_start, tz)
                out[town] = (WEEKDAYS[today.weekday()] in days,
                             (start + dt.timedelta(hours=hours / 2)).timestamp())
                break
    return out


@dataclass(frozen=True)
class PlantState:
    """A young tree or a flower bed with a soil-moisture probe."""

    device_id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    site_type: str | None     # tree | flower_bed
    dry_pct: float            # soil moisture (VWC %) below which it needs water
    forecast: DryForecast | None
    rain_mm_24h: float = 0.0  # measured by the town's weather station


def select_plants(plants: list[PlantState], config: PlannerConfig, *, shift_start: float,
                  shift_end: float) -> list[Candidate]:
    """Plants for today's watering round.

    Dry now (below its threshold) and no rain worth the name in the last 24 h: must-go. Dry
    within ``dry_margin_h``: may-go, worth more the sooner it dries, so the round takes it when
    it passes nearby. Rain at or above ``rain_mm_skip`` in 24 h skips the plant: the water that
    fell has not reached the probe's depth yet.
    """
    w = config.watering
    horizon = shift_start + w.dry_margin_h * 3600
    chosen: list[Candidate] = []
    for p in plants:
        f = p.forecast
        if f is None or p.rain_mm_24h >= w.rain_mm_skip:
            continue
        litres = int(w.litres_bed if p.site_type == "flower_bed" else w.litres_tree)
        state = BinState(p.device_id, p.name, p.municipality, p.latitude, p.longitude,
                         p.site_type, float(litres), None)
        if f.level_pct < p.dry_pct:
            chosen.append(Candidate(state, "must", f.level_pct, f.level_pct, litres, 0,
                                    int(w.service_s)))
        elif f.dry_at is not None and f.dry_at <= horizon:
            soon = 1.0 - max(0.0, f.dry_at - shift_start) / max(horizon - shift_start, 1.0)
            prize = int(round(config.may_value_m * max(soon, 0.1)))
            chosen.append(Candidate(state, "may", f.level_pct, f.level_at(shift_end), litres,
                                    prize, int(w.service_s)))
    chosen.sort(key=lambda c: (c.reason != "must", c.bin.device_id))
    return chosen
