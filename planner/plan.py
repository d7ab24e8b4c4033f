"""A day's plan: candidates and vehicles in, ordered stops with ETA per vehicle out.

The same engine plans litter collection (bins, capacity in litres of litter, unloading at the
depot allowed) and watering (plants, capacity in litres of water in the tank, no refill on the
way unless the vehicle is allowed to go back to the depot).

ETAs assume the break is taken at half-shift: a stop the solver places in the second half is
shown break-minutes later. The solver itself keeps the work within shift minus break.
"""
from __future__ import annotations

import math

import datetime as dt
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal
from zoneinfo import ZoneInfo

import numpy as np

from planner import routing
from planner.config import WEEKDAYS, PlannerConfig
from planner.selection import Candidate, Reason

Matrices = Callable[[Sequence[tuple[float, float]]], tuple[np.ndarray, np.ndarray]]
Kind = Literal["collection", "watering"]
# A must-go that does not fit is still offered to the solver, at a prize no detour outweighs.
MUST_PRIZE = 10_000_000


@dataclass(frozen=True)
class Place:
    """Something to visit: a bin or a plant, whatever the round."""

    id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    reason: Reason
    demand_l: int
    service_s: int
    prize_m: int = 0
    fill_now_pct: float | None = None       # bins: fill level now; plants: soil moisture now
    expected: Callable[[float], float] | None = None  # value at a time (epoch s)
    due_at: float | None = None  # forecast: bins full, plants dry (epoch s); None: not in sight


@dataclass(frozen=True)
class PlannedStop:
    seq: int
    id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    reason: Reason
    eta: float                # epoch seconds
    value_now: float | None   # fill % (bins) or soil moisture % (plants) at planning
    value_expected: float | None  # expected at the ETA
    demand_l: int
    trip: int = 0             # 0-based: which load of the route (after each unload, the next)
    due_at: float | None = None  # as Place.due_at: why the stop is there


@dataclass(frozen=True)
class VehiclePlan:
    vehicle_id: str
    vehicle_name: str
    start: float              # epoch seconds, shift start at the depot
    stops: tuple[PlannedStop, ...]
    distance_m: int
    duration_s: int           # depot to depot, break included
    trips: int


@dataclass(frozen=True)
class DayPlan:
    day: dt.date
    kind: Kind
    vehicles: tuple[VehiclePlan, ...]
    must: int                 # must-go places offered
    may: int                  # may-go places offered
    unserved_must: tuple[str, ...]
    unserved_may: int
    feasible: bool
    violations: tuple[str, ...] = ()
    baseline_distance_m: int | None = None  # what the fixed schedule would drive today
    baseline_stops: int | None = None
    solve_s: float = 0.0

    @property
    def distance_m(self) -> int:
        return sum(v.distance_m for v in self.vehicles)

    @property
    def stops(self) -> int:
        return sum(len(v.stops) for v in self.vehicles)


def shift_window(day: dt.date, config: PlannerConfig) -> tuple[float, float]:
    """Start and end of the day's shift, epoch seconds (the longest shift of the fleet)."""
    tz = ZoneInfo(config.timezone)
    start = dt.datetime.combine(day, config.shift_start, tz)
    hours = max(v.shift_h for v in config.vehicles)
    return start.timestamp(), (start + dt.timedelta(hours=hours)).timestamp()


def next_working_day(day: dt.date, config: PlannerConfig) -> dt.date:
    for n in range(1, 8):
        nxt = day + dt.timedelta(days=n)
        if WEEKDAYS[nxt.weekday()] in config.working_days:
            return nxt
    raise ValueError("no working day configured")


def places(candidates: Sequence[Candidate],
           expected: dict[str, Callable[[float], float]] | None = None) -> list[Place]:
    """Candidates as places to route; ``expected`` gives each one's value at a later time
    (its forecast's ``level_at``), for the value shown at the ETA."""
    expected = expected or {}
    return [Place(c.bin.device_id, c.bin.name, c.bin.municipality, c.bin.latitude,
                  c.bin.longitude, c.reason, c.demand_l, c.service_s, c.prize_m, c.fill_now_pct,
                  expected.get(c.bin.device_id) or _looking_forward(c.bin.forecast),
                  _due(c.bin.forecast))
            for c in candidates]


def _due(forecast) -> float | None:
    """When a bin is forecast full or a plant dry: the reason its stop shows."""
    due = getattr(forecast, "full_at", None)
    if due is None:
        due = getattr(forecast, "dry_at", None)
    return float(due) if due is not None and math.isfinite(due) else None


def _looking_forward(forecast) -> Callable[[float], float] | None:
    """The forecast's value at a time; a time before the forecast (an ETA of a plan made
    late) gets the value at the forecast's own time."""
    if forecast is None:
        return None
    return lambda t: forecast.level_at(max(t, forecast.at))


def plan_day(day: dt.date, kind: Kind, places: Sequence[Place], config: PlannerConfig,
             matrices: Matrices, *, time_limit_s: float | None = None, seed: int = 0,
             baseline: Sequence[Place] | None = None, depart_at: float | None = None) -> DayPlan:
    """Route the places with the vehicles that do this kind of round.

    ``depart_at``: a plan made after the shift started leaves the depot then (epoch s), with
    what is left of the shift.

    ``baseline``: the places a fixed schedule would visit today; routed the same way (at half
    the time limit) so that the plan can say what the fixed round would have driven.
    """
    limit = time_limit_s if time_limit_s is not None else config.time_limit_s
    started = time.monotonic()
    vehicles = _vehicles(kind, config)
    if not vehicles:
        raise ValueError(f"no vehicle is configured for {kind}")
    plan = _route(day, kind, list(places), vehicles, config, matrices, limit, seed, depart_at)
    if baseline is not None:
        fixed = _route(day, kind, [replace(p, reason="must", prize_m=0) for p in baseline],
                       vehicles, config, matrices, limit / 2, seed, None)
        plan = replace(plan, baseline_distance_m=fixed.distance_m, baseline_stops=fixed.stops)
    return replace(plan, solve_s=time.monotonic() - started)


def _vehicles(kind: Kind, config: PlannerConfig) -> list:
    if kind == "watering":
        return [v for v in config.vehicles if v.water_tank_l > 0]
    return [v for v in config.vehicles if v.collects]


def _route(day: dt.date, kind: Kind, places: list[Place], vehicles: list, config: PlannerConfig,
           matrices: Matrices, limit: float, seed: int, depart_at: float | None) -> DayPlan:
    must = sum(p.reason == "must" for p in places)
    may = len(places) - must
    if not places:
        return DayPlan(day, kind, (), 0, 0, (), 0, True)
    shift_start, _ = shift_window(day, config)
    start = max(shift_start, depart_at or shift_start)
    late = int(start - shift_start)
    vehicles = [v for v in vehicles if v.shift_h * 3600 - late > v.break_min * 60]
    if not vehicles:
        return DayPlan(day, kind, (), must, may,
                       tuple(p.id for p in places if p.reason == "must"), may, False,
                       ("the shift is over: nothing can be planned for today any more",))
    points = [(config.depot.latitude, config.depot.longitude)]
    points += [(p.latitude, p.longitude) for p in places]
    distance, duration = matrices(points)
    windows = _windows(day, places, config, start)
    stops = tuple(
        routing.Stop(p.id, i + 1, demand=p.demand_l, service_s=p.service_s,
                     required=p.reason == "must", prize=p.prize_m if p.reason == "may" else 0,
                     tw_early=windows[i][0], tw_late=windows[i][1])
        for i, p in enumerate(places))
    fleet = tuple(
        routing.Vehicle(v.id, int(v.water_tank_l if kind == "watering" else v.capacity_l),
                        int(v.shift_h * 3600) - late, int(v.break_min * 60),
                        reload=v.unload_at_depot)
        for v in vehicles)
    problem = routing.Problem(distance, duration, stops, fleet)
    # A bin 100 km away or a bigger demand than any vehicle holds must not sink the whole day:
    # such places are left out and reported.
    cannot = routing.unservable(problem)
    if cannot:
        stops = tuple(s for s in stops if s.id not in cannot)
        problem = routing.Problem(distance, duration, stops, fleet)
    solution = routing.solve(problem, limit, seed) if stops else routing.Solution(
        (), (), 0, 0, True)
    if not solution.feasible:
        # Too many must-goes for the fleet today: serve as many as fit, most urgent first
        # (they keep a prize no detour outweighs) and say which were left.
        relaxed = tuple(replace(s, required=False, prize=MUST_PRIZE) if s.required else s
                        for s in stops)
        problem = routing.Problem(distance, duration, relaxed, fleet)
        solution = routing.solve(problem, limit, seed)
    by_id = {p.id: p for p in places}
    names = {v.id: v.name for v in vehicles}
    plans = []
    for route in solution.routes:
        shift = next(v for v in vehicles if v.id == route.vehicle_id)
        half = shift.shift_h * 3600 / 2 - late
        pause = shift.break_min * 60
        planned = []
        for n, visit in enumerate(route.visits, start=1):
            p = by_id[visit.stop_id]
            eta = start + visit.arrival_s + (pause if visit.arrival_s > half else 0)
            expected = p.expected(eta) if p.expected is not None else None
            planned.append(PlannedStop(n, p.id, p.name, p.municipality, p.latitude, p.longitude,
                                       p.reason, eta, p.fill_now_pct, expected, p.demand_l,
                                       visit.trip, p.due_at))
        duration_s = route.duration_s + (pause if route.duration_s > half else 0)
        plans.append(VehiclePlan(route.vehicle_id, names[route.vehicle_id], start,
                                 tuple(planned), route.distance_m, duration_s, route.trips))
    served = {s.id for v in plans for s in v.stops}
    unserved_must = tuple(p.id for p in places if p.reason == "must" and p.id not in served)
    unserved_may = sum(1 for p in places if p.reason == "may" and p.id not in served)
    violations = solution.violations + tuple(
        f"{stop_id} cannot be served by any vehicle: {why}" for stop_id, why in cannot.items())
    return DayPlan(day, kind, tuple(plans), must, may, unserved_must, unserved_may,
                   solution.feasible and not unserved_must, violations)


def _windows(day: dt.date, places: Sequence[Place], config: PlannerConfig,
             start: float) -> list[tuple[int, int | None]]:
    """Municipality restrictions as time windows, seconds from shift start."""
    tz = ZoneInfo(config.timezone)
    weekday = WEEKDAYS[day.weekday()]
    rules = {}
    for r in config.restrictions:
        if weekday in r.weekdays:
            rules.setdefault(r.municipality, []).append(r)
    out = []
    for p in places:
        early, late = 0, None
        for r in rules.get(p.municipality, ()):
            if r.not_before is not None:
                t = dt.datetime.combine(day, r.not_before, tz).timestamp() - start
                early = max(early, int(t))
            if r.not_after is not None:
                t = int(dt.datetime.combine(day, r.not_after, tz).timestamp() - start)
                late = t if late is None else min(late, t)
        out.append((early, late))
    return out
