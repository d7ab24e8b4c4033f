"""Collection policies compared by the closed-loop evaluation.

Each policy is asked once per day, at shift start, which bins to empty; it answers with a
routed ``DayPlan`` (the same routing code for every policy, so km and hours compare the
decisions, not the solvers). A policy sees only what the service would see: the sensors'
readings up to now (noise, glitches and all), never the simulator's true state.

- ``fixed``: every bin twice a week on fixed days (the rounds of ``fixed_schedule``).
- ``threshold``: each working day, every bin whose last reading is at or above 80 %.
- ``planner``: forecasts, must-go/may-go selection and prize-collecting routing, as the service
  plans it (planner/).
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from planner.areas import due_areas, group, revisit_interval_h
from planner.config import WEEKDAYS, PlannerConfig
from planner.distances import GreatCircle
from planner.plan import DayPlan, Place, next_working_day, places, plan_day, shift_window
from planner.selection import BinState, bin_forecast, select_bins
from simulator.scenario import DeviceSpec

HISTORY_S = 28 * 86400.0  # what the service's planning job reads back, too


@dataclass
class History:
    """The readings of one bin as the service stores them: times and fill level (%)."""

    times: list[float] = field(default_factory=list)
    levels: list[float] = field(default_factory=list)

    def add(self, t: float, level: float) -> None:
        self.times.append(t)
        self.levels.append(level)

    def window(self, now: float) -> tuple[np.ndarray, np.ndarray]:
        times = np.asarray(self.times)
        keep = (times > now - HISTORY_S) & (times <= now)
        return times[keep], np.asarray(self.levels)[keep]


class Policy(Protocol):
    name: str

    def plan(self, day: dt.date, bins: Sequence[DeviceSpec],
             history: dict[str, History]) -> DayPlan | None: ...


class _Routed:
    """Shared: route a set of places with the configured fleet."""

    name = "routed"

    def __init__(self, config: PlannerConfig, time_limit_s: float, seed: int = 0) -> None:
        self.config = config
        self.time_limit_s = time_limit_s
        self.seed = seed
        self.matrices = GreatCircle(config.detour_factor, config.speed_kmh).matrices

    def _route(self, day: dt.date, chosen: list[Place]) -> DayPlan:
        return plan_day(day, "collection", chosen, self.config, self.matrices,
                        time_limit_s=self.time_limit_s, seed=self.seed)

    def _place(self, spec: DeviceSpec, level: float, reason: str = "must") -> Place:
        limits = self.config.thresholds(spec.site_type)
        volume = float(spec.attributes.get("volume_l", 120.0))
        return Place(spec.device_id, spec.name, spec.municipality, spec.latitude,
                     spec.longitude, reason, int(round(max(level, 5.0) / 100 * volume)),
                     int(limits.service_s), 0, level)


def _last_level(history: History) -> float:
    return history.levels[-1] if history.levels else 50.0


class FixedSchedule(_Routed):
    name = "fixed"

    def plan(self, day, bins, history):
        weekday = WEEKDAYS[day.weekday()]
        due = [self._place(s, _last_level(history[s.device_id])) for s in bins
               if weekday in self.config.fixed_schedule.get(s.municipality, ())]
        return self._route(day, due) if due else None


class Threshold(_Routed):
    name = "threshold"

    def __init__(self, config: PlannerConfig, time_limit_s: float, seed: int = 0,
                 level_pct: float = 80.0) -> None:
        super().__init__(config, time_limit_s, seed)
        self.level_pct = level_pct

    def plan(self, day, bins, history):
        if WEEKDAYS[day.weekday()] not in self.config.working_days:
            return None
        due = [self._place(s, lvl) for s in bins
               if (lvl := _last_level(history[s.device_id])) >= self.level_pct]
        return self._route(day, due) if due else None


class Planner(_Routed):
    name = "planner"

    def plan(self, day, bins, history):
        config = self.config
        if WEEKDAYS[day.weekday()] not in config.working_days:
            return None
        start, end = shift_window(day, config)
        next_start, next_end = shift_window(next_working_day(day, config), config)
        states = []
        for spec in bins:
            times, levels = history[spec.device_id].window(start)
            states.append(BinState(spec.device_id, spec.name, spec.municipality, spec.latitude,
                                   spec.longitude, spec.site_type,
                                   float(spec.attributes.get("volume_l", 120.0)),
                                   bin_forecast(times, levels, start, config, spec.site_type)))
        chosen = select_bins(states, config, shift_start=start, shift_end=end,
                             next_start=next_start, next_end=next_end)
        return self._route(day, places(chosen)) if chosen else None


class Clairvoyant(_Routed):
    """Not a policy anyone can run: the planner's area decisions (planner/areas.py) made on the
    simulator's true fill, hours and days ahead, instead of on forecasts from the readings.

    Its km and overflow show what perfect forecasts would give, i.e. how far better forecasting
    can take the planner on a scenario. In a due area it empties every bin that would otherwise
    overflow before the area's next visit, and every bin at least ``may_min_pct`` full.
    """

    name = "clairvoyant"

    def __init__(self, config: PlannerConfig, time_limit_s: float, seed: int = 0) -> None:
        super().__init__(config, time_limit_s, seed)
        self.truth: dict[str, object] = {}  # device id -> the simulator's device (ClosedLoop)

    def plan(self, day, bins, history):
        config = self.config
        if WEEKDAYS[day.weekday()] not in config.working_days:
            return None
        start, end = shift_window(day, config)
        next_start, next_end = shift_window(next_working_day(day, config), config)
        today_mid, next_mid = (start + end) / 2, (next_start + next_end) / 2
        forecasts = [_forecast(s, history, start, config) for s in bins]
        full = [config.thresholds(s.site_type).full_pct for s in bins]
        areas = group([(s.municipality, s.latitude, s.longitude) for s in bins],
                      config.areas.link_m)
        hours = np.arange(today_mid, next_mid, 3600.0)
        overflow = [sum(float((_true_fills(self.truth[bins[i].device_id], hours) >= FULL).sum())
                        for i in a.members) for a in areas]
        intervals = [revisit_interval_h([forecasts[i] for i in a.members],
                                        [full[i] for i in a.members]) for a in areas]
        decisions = due_areas(areas, overflow, intervals,
                              np.array([s.latitude for s in bins]),
                              np.array([s.longitude for s in bins]), config,
                              wait_h=(next_mid - today_mid) / 3600)
        chosen = []
        for d in decisions:
            if not d.due:
                continue
            for i in d.area.members:
                spec = bins[i]
                now, later = _true_fills(self.truth[spec.device_id],
                                         [start, today_mid + d.interval_h * 3600])
                if later >= FULL or 100 * now >= config.thresholds(spec.site_type).may_min_pct:
                    chosen.append(self._place(spec, 100 * now))
        return self._route(day, chosen) if chosen else None


FULL = 1.0  # true fill fraction at the full mark (what the evaluation counts as overflow)


def _forecast(spec: DeviceSpec, history: dict[str, History], at: float, config: PlannerConfig):
    times, levels = history[spec.device_id].window(at)
    return bin_forecast(times, levels, at, config, spec.site_type)


def _true_fills(device, times) -> np.ndarray:
    """The bin's true fill at each of the (ascending) epoch ``times`` if nobody empties it,
    from now on; beyond the simulated weather (the last days of a run) as it is then."""
    last = (device.weather.last - dt.timedelta(hours=2)).timestamp()
    when = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in np.minimum(times, last)]
    return np.asarray(device.bin.fill_ahead(when, device.weather))


POLICIES = {"fixed": FixedSchedule, "threshold": Threshold, "planner": Planner,
            "clairvoyant": Clairvoyant}
