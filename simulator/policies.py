"""Collection policies compared by the closed-loop evaluation.

Each policy is asked once per day, at shift start, which bins to empty; it answers with a
routed ``DayPlan`` (the same routing code for every policy, so km and hours compare the
decisions, not the solvers). A policy sees only what the service would see: the sensors'
readings up to now (noise, glitches and all), never the simulator's true state.

- ``fixed``: every bin twice a week on fixed days (the rounds of ``fixed_schedule``).
- ``threshold``: each working day, every bin whose last reading is at or above 80 %.
- ``planner``: forecasts, must-go/may-go selection and prize-collecting routing, as the service
  plans it (planner/): by area, or on round days, as its config says.
- ``clairvoyant``: the planner by area with perfect forecasts; the one policy that reads the
  simulator's true state (the closed loop hands it over as ``truth``).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

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
    """Not a policy anyone can run: the planner, deciding by area, with perfect forecasts.

    Each bin's forecast is its true fill over the coming ``HORIZON_DAYS`` as the simulator will
    make it (``BinModel.fill_ahead``), with no safety margin. Against the planner at the same
    price it shows what better forecasting could still gain.
    """

    name = "clairvoyant"
    HORIZON_DAYS = 8

    def __init__(self, config: PlannerConfig, time_limit_s: float, seed: int = 0) -> None:
        config = config.model_copy(update={
            "must_safety": 1.0, "areas": config.areas.model_copy(update={"enabled": True})})
        super().__init__(config, time_limit_s, seed)
        self.truth: dict[str, object] = {}  # device id -> the simulator's device (ClosedLoop)
        self.history: dict[str, History] = {}

    def plan(self, day, bins, history):
        config = self.config
        if WEEKDAYS[day.weekday()] not in config.working_days:
            return None
        self.history = history
        start, end = shift_window(day, config)
        next_start, next_end = shift_window(next_working_day(day, config), config)
        states = [BinState(s.device_id, s.name, s.municipality, s.latitude, s.longitude,
                           s.site_type, float(s.attributes.get("volume_l", 120.0)),
                           self._foresight(s, start)) for s in bins]
        chosen = select_bins(states, config, shift_start=start, shift_end=end,
                             next_start=next_start, next_end=next_end)
        return self._route(day, places(chosen)) if chosen else None

    def _foresight(self, spec: DeviceSpec, at: float) -> "Foresight":
        device = self.truth[spec.device_id]
        # Beyond the simulated weather (the last days of a run) the fill stays as it is then.
        last = (device.weather.last - dt.timedelta(hours=2)).timestamp()
        grid = np.arange(at, at + self.HORIZON_DAYS * 86400 + 1, 3600.0)
        when = [dt.datetime.fromtimestamp(t, dt.timezone.utc) for t in np.minimum(grid, last)]
        levels = 100.0 * np.asarray(device.bin.fill_ahead(when, device.weather))
        full_pct = self.config.thresholds(spec.site_type).full_pct
        # A bin already full hides how fast it fills; the readings still tell.
        told = (bin_forecast(*self.history[spec.device_id].window(at), at, self.config,
                             spec.site_type) if levels[0] >= full_pct else None)
        rate = told.base_rate_pct_h if told is not None else math.nan
        return Foresight(at, grid, levels, full_pct, rate)


@dataclass(frozen=True)
class Foresight:
    """A forecast that is right: the true level (%) hour by hour; what the selection needs of
    a ``FillForecast``."""

    at: float
    times: np.ndarray
    levels: np.ndarray
    full_pct: float
    rate_when_full: float = math.nan  # from the readings, for a bin already full

    @property
    def level_pct(self) -> float:
        return float(self.levels[0])

    @property
    def full_at(self) -> float | None:
        hit = np.flatnonzero(self.levels >= self.full_pct)
        return float(self.times[hit[0]]) if hit.size else None

    @property
    def base_rate_pct_h(self) -> float:
        """The mean rate until full (or over the horizon), points per hour."""
        end = self.full_at or float(self.times[-1])
        if end <= self.at:
            return self.rate_when_full
        return max(float(np.interp(end, self.times, self.levels)) - self.level_pct,
                   0.0) / ((end - self.at) / 3600.0)

    def level_at(self, t: float) -> float:
        return float(np.interp(t, self.times, self.levels))


POLICIES = {"fixed": FixedSchedule, "threshold": Threshold, "planner": Planner,
            "clairvoyant": Clairvoyant}
