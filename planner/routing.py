"""Vehicle routing: which vehicle serves which stops in which order.

The solver is PyVRP (hybrid genetic search); docs/planner.md says why. This module turns our
problem (depot, stops with a demand in litres and a service time, required or optional with a
prize, vehicles with capacity, shift and break) into a PyVRP model over integer matrices, solves
it under an explicit time limit, and checks every result itself before anyone sees it.
(PyVRP 0.14 replaced the genetic population by an iterated local search; the model is the same.)

Units: distances in metres, durations and times in seconds from the start of the shift, demand
in litres, prizes in metres of driving they are worth (the objective is metres driven minus
prizes collected).

Times are on the working clock: the break is not placed in the schedule, only reserved (a route
may last at most ``shift_s - break_s``), so a visit after the crew's break happens up to
``break_s`` later than its ``arrival_s``.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
from pyvrp import Model
from pyvrp import Solution as PyVRPSolution
from pyvrp.stop import MaxRuntime

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Stop:
    """One place to serve. ``index`` is its row/column in the matrices (the depot is 0)."""

    id: str
    index: int
    demand: int = 0              # litres taken on (bin) or handed out (water)
    service_s: int = 0
    required: bool = True        # must-go; optional stops are taken when their prize pays
    prize: int = 0               # metres of driving an optional stop is worth
    tw_early: int = 0            # earliest start of service, seconds from shift start
    tw_late: int | None = None   # latest start of service (None: end of shift)


@dataclass(frozen=True)
class Vehicle:
    id: str
    capacity: int                # litres
    shift_s: int                 # length of the shift, break included
    break_s: int = 0             # taken somewhere in the shift; reduces the time for work
    count: int = 1               # identical vehicles of this kind
    reload: bool = False         # may return to the depot to unload and go out again


@dataclass(frozen=True)
class Problem:
    distance_m: np.ndarray       # (n, n) int64, index 0 is the depot
    duration_s: np.ndarray       # (n, n) int64
    stops: tuple[Stop, ...]
    vehicles: tuple[Vehicle, ...]


@dataclass(frozen=True)
class Visit:
    stop_id: str
    index: int
    arrival_s: int               # start of service, seconds from shift start
    load_after: int              # litres on board after this stop (since the last unload)
    trip: int = 0                # 0-based trip of the route this visit belongs to


@dataclass(frozen=True)
class Route:
    vehicle_id: str
    visits: tuple[Visit, ...]
    distance_m: int
    duration_s: int              # depot to depot, service and waiting included, break excluded
    trips: int = 1               # 1 + number of unloads at the depot on the way
    start_s: int = 0             # departure from the depot (later than 0 to avoid waiting)


@dataclass(frozen=True)
class Solution:
    routes: tuple[Route, ...]
    unserved: tuple[str, ...]    # ids of optional stops left out (required too, if infeasible)
    distance_m: int
    prizes: int                  # prizes of the optional stops served
    feasible: bool
    violations: tuple[str, ...] = field(default=())
    runtime_s: float = 0.0


# --------------------------------------------------------------------------------------------
# solve


def solve(problem: Problem, time_limit_s: float, seed: int = 0) -> Solution:
    """Plan routes with PyVRP for ``time_limit_s`` seconds of search, then check them.

    Raises ``ValueError`` for malformed input and for a stop no vehicle could ever serve (too
    big for every truck, or out of reach within any shift or its time window). A fleet that is
    merely too small for all required stops together is not an error: the result comes back
    with ``feasible=False`` and the violations found by :func:`check`.
    """
    if not time_limit_s > 0:
        raise ValueError(f"time_limit_s must be positive, got {time_limit_s}")
    started = time.perf_counter()
    _validate(problem)
    _check_servable(problem)
    if not problem.stops:
        return Solution((), (), 0, 0, feasible=True, runtime_s=time.perf_counter() - started)

    model = _build_model(problem)
    built = time.perf_counter()
    # collect_stats off: we never read them, and they cost time on every iteration.
    result = model.solve(MaxRuntime(time_limit_s), seed=seed, collect_stats=False,
                         display=False)
    solved = time.perf_counter()
    best = result.best
    solution = _convert(problem, best)
    violations = check(problem, solution)
    if not best.is_feasible() and not violations:
        # Our check and PyVRP disagree: trust neither, and say so.
        violations.append(f"PyVRP reports the solution infeasible (time warp "
                          f"{best.time_warp()} s, excess load {best.excess_load()}) though "
                          f"the independent check found nothing")
    finished = time.perf_counter()
    log.debug("routing: %d stops, %d vehicle kinds; build %.3f s, search %.3f s (%d iterations),"
              " check %.3f s; %d routes, %d m, feasible=%s", len(problem.stops),
              len(problem.vehicles), built - started, solved - built, result.num_iterations,
              finished - solved, len(solution.routes), solution.distance_m, not violations)
    return replace(solution, feasible=not violations, violations=tuple(violations),
                   runtime_s=finished - started)


def _validate(problem: Problem) -> None:
    dist, dur = np.asarray(problem.distance_m), np.asarray(problem.duration_s)
    if dist.ndim != 2 or dist.shape[0] != dist.shape[1] or dist.shape != dur.shape:
        raise ValueError(f"distance {dist.shape} and duration {dur.shape} matrices must be "
                         f"square and of the same shape")
    if not (np.issubdtype(dist.dtype, np.integer) and np.issubdtype(dur.dtype, np.integer)):
        raise ValueError("distance and duration matrices must be integer (round them first)")
    if (dist < 0).any() or (dur < 0).any():
        raise ValueError("distance and duration matrices must not be negative")
    if np.diagonal(dist).any() or np.diagonal(dur).any():
        raise ValueError("distance and duration matrices must have a zero diagonal")
    n = dist.shape[0]
    if not problem.vehicles:
        raise ValueError("no vehicles")
    ids: set[str] = set()  # two stops may share a matrix row: two bins at one bus stop
    for s in problem.stops:
        if s.id in ids:
            raise ValueError(f"stop id {s.id!r} appears twice")
        if not 1 <= s.index < n:
            raise ValueError(f"stop {s.id!r}: index {s.index} outside 1..{n - 1}")
        if min(s.demand, s.service_s, s.prize, s.tw_early) < 0:
            raise ValueError(f"stop {s.id!r}: demand, service, prize and tw_early must be >= 0")
        if s.tw_late is not None and s.tw_late < s.tw_early:
            raise ValueError(f"stop {s.id!r}: tw_late {s.tw_late} < tw_early {s.tw_early}")
        ids.add(s.id)
    kinds: set[str] = set()
    for v in problem.vehicles:
        if v.id in kinds:
            raise ValueError(f"vehicle kind {v.id!r} appears twice")
        kinds.add(v.id)
        if v.capacity < 0 or v.count < 1 or v.break_s < 0 or v.shift_s <= v.break_s:
            raise ValueError(f"vehicle {v.id!r}: need capacity >= 0, count >= 1 and "
                             f"0 <= break_s < shift_s")


def unservable(problem: Problem) -> dict[str, str]:
    """Stops that no vehicle could serve even on a route of its own, with the reasons."""
    dur = problem.duration_s
    out: dict[str, str] = {}
    for s in problem.stops:
        back_out, back = int(dur[0, s.index]), int(dur[s.index, 0])
        reasons = []
        for v in problem.vehicles:
            work = v.shift_s - v.break_s
            latest = v.shift_s if s.tw_late is None else min(s.tw_late, v.shift_s)
            if s.demand > v.capacity:
                reasons.append(f"{v.id}: demand {s.demand} l > capacity {v.capacity} l")
            elif back_out + s.service_s + back > work:
                reasons.append(f"{v.id}: depot→stop {back_out} s + service {s.service_s} s + "
                               f"back {back} s > {work} s of work in the shift")
            elif max(back_out, s.tw_early) > latest:
                reasons.append(f"{v.id}: earliest start of service "
                               f"{max(back_out, s.tw_early)} s > latest {latest} s")
            elif max(back_out, s.tw_early) + s.service_s + back > v.shift_s:
                reasons.append(f"{v.id}: back at the depot at "
                               f"{max(back_out, s.tw_early) + s.service_s + back} s, after the "
                               f"shift ends at {v.shift_s} s")
            else:
                break
        else:
            out[s.id] = "; ".join(reasons)
    return out


def _check_servable(problem: Problem) -> None:
    """Raise for a stop that no vehicle could serve even on a route of its own."""
    for stop_id, reasons in unservable(problem).items():
        raise ValueError(f"stop {stop_id!r} cannot be served by any vehicle: {reasons}")


def _build_model(problem: Problem) -> Model:
    m = Model()
    # PyVRP reads coordinates only for plotting; its search works on the matrices alone.
    depot_loc = m.add_location(x=0, y=0, name="depot")
    depot = m.add_depot(depot_loc, name="depot")
    locs = [depot_loc] + [m.add_location(x=0, y=0, name=s.id) for s in problem.stops]
    rows = np.array([0] + [s.index for s in problem.stops])
    dist = problem.distance_m[np.ix_(rows, rows)].tolist()
    dur = problem.duration_s[np.ix_(rows, rows)].tolist()
    for i, frm in enumerate(locs):
        di, ti = dist[i], dur[i]
        for j, to in enumerate(locs):
            if i != j:
                m.add_edge(frm, to, di[j], ti[j])

    for v in problem.vehicles:
        m.add_vehicle_type(
            num_available=v.count,
            capacity=[v.capacity],
            # The break is taken somewhere in the shift (where is the crew's choice), so it
            # only shortens the time for work; the route still has to be back by shift end.
            shift_duration=v.shift_s - v.break_s,
            tw_early=0,
            tw_late=v.shift_s,
            reload_depots=[depot] if v.reload else [],
            name=v.id,
        )
    for s, loc in zip(problem.stops, locs[1:]):
        kwargs = {} if s.tw_late is None else {"tw_late": s.tw_late}
        m.add_client(loc, pickup=[s.demand], service_duration=s.service_s,
                     tw_early=s.tw_early, required=s.required,
                     prize=0 if s.required else s.prize, name=s.id, **kwargs)
    return m


def _convert(problem: Problem, best: PyVRPSolution) -> Solution:
    """PyVRP's best solution in our terms; clients are numbered like ``problem.stops``."""
    routes = []
    served: set[int] = set()
    for r in best.routes():
        vehicle = problem.vehicles[r.vehicle_type()]
        visits = []
        trip, load, open_trip = -1, 0, False
        for act in r.schedule():
            if act.is_depot():
                open_trip = False
                continue
            if not open_trip:
                # Renumber densely: an empty depot-to-depot trip (rare) should not count.
                trip, load, open_trip = trip + 1, 0, True
            stop = problem.stops[act.idx]
            served.add(act.idx)
            load += stop.demand
            visits.append(Visit(stop.id, stop.index, int(act.start_time), load, trip))
        routes.append(Route(vehicle.id, tuple(visits), int(r.distance()), int(r.duration()),
                            trips=max(trip + 1, 1), start_s=int(r.start_time())))
    unserved = tuple(s.id for k, s in enumerate(problem.stops) if k not in served)
    prizes = sum(s.prize for k, s in enumerate(problem.stops) if k in served and not s.required)
    return Solution(tuple(routes), unserved, sum(r.distance_m for r in routes), prizes,
                    feasible=False)


# --------------------------------------------------------------------------------------------
# check (independent of PyVRP)


def check(problem: Problem, solution: Solution) -> list[str]:
    """Every way ``solution`` breaks ``problem``, as sentences; an empty list means feasible."""
    dist, dur = problem.distance_m, problem.duration_s
    stops = {s.id: s for s in problem.stops}
    kinds = {v.id: v for v in problem.vehicles}
    out: list[str] = []
    times_served: dict[str, int] = {}
    routes_of: dict[str, int] = {}

    for r_no, route in enumerate(solution.routes):
        where = f"route {r_no} ({route.vehicle_id})"
        v = kinds.get(route.vehicle_id)
        if v is None:
            out.append(f"{where}: unknown vehicle kind")
            continue
        routes_of[v.id] = routes_of.get(v.id, 0) + 1

        prev, t, trip, load, metres = 0, route.start_s, 0, 0, 0
        if route.start_s < 0:
            out.append(f"{where}: starts at {route.start_s} s, before the shift")
        for k, visit in enumerate(route.visits):
            stop = stops.get(visit.stop_id)
            if stop is None:
                out.append(f"{where}: unknown stop {visit.stop_id!r}")
                continue
            times_served[stop.id] = times_served.get(stop.id, 0) + 1
            if visit.index != stop.index:
                out.append(f"{where}: stop {stop.id} has index {visit.index}, "
                           f"expected {stop.index}")
            if visit.trip != trip:
                if visit.trip != trip + 1 or k == 0:
                    out.append(f"{where}: stop {stop.id} is on trip {visit.trip} after trip "
                               f"{trip}")
                if not v.reload:
                    out.append(f"{where}: unloads at the depot, but {v.id} may not reload")
                # An unload: drive back to the depot, empty the truck, set out again.
                metres += int(dist[prev, 0])
                t += int(dur[prev, 0])
                prev, trip, load = 0, visit.trip, 0
            metres += int(dist[prev, stop.index])
            earliest = t + int(dur[prev, stop.index])
            if visit.arrival_s < max(earliest, stop.tw_early):
                out.append(f"{where}: service at {stop.id} starts at {visit.arrival_s} s, but "
                           f"cannot before {max(earliest, stop.tw_early)} s (travel from the "
                           f"previous stop, tw_early {stop.tw_early} s)")
            if stop.tw_late is not None and visit.arrival_s > stop.tw_late:
                out.append(f"{where}: service at {stop.id} starts at {visit.arrival_s} s, after "
                           f"its tw_late {stop.tw_late} s")
            load += stop.demand
            if visit.load_after != load:
                out.append(f"{where}: load after {stop.id} reported {visit.load_after} l, "
                           f"recomputed {load} l")
            if load > v.capacity:
                out.append(f"{where}: trip {trip} carries {load} l at {stop.id}, over the "
                           f"capacity of {v.capacity} l")
            # Continue from the reported time: waiting longer than needed is allowed.
            t = max(visit.arrival_s, earliest) + stop.service_s
            prev = stop.index
        metres += int(dist[prev, 0])
        end = t + int(dur[prev, 0])

        trips = trip + 1
        if route.trips != trips:
            out.append(f"{where}: reports {route.trips} trips, visits say {trips}")
        if route.distance_m != metres:
            out.append(f"{where}: reports {route.distance_m} m, the matrix gives {metres} m")
        if route.duration_s != end - route.start_s:
            out.append(f"{where}: reports {route.duration_s} s, the schedule gives "
                       f"{end - route.start_s} s")
        if end - route.start_s > v.shift_s - v.break_s:
            out.append(f"{where}: lasts {end - route.start_s} s, more than the "
                       f"{v.shift_s - v.break_s} s of work in a {v.shift_s} s shift with a "
                       f"{v.break_s} s break")
        if end > v.shift_s:
            out.append(f"{where}: back at the depot at {end} s, after the shift ends at "
                       f"{v.shift_s} s")

    for kind, n in routes_of.items():
        if n > kinds[kind].count:
            out.append(f"{n} routes for vehicle kind {kind}, only {kinds[kind].count} available")

    for s in problem.stops:
        n = times_served.get(s.id, 0)
        if n > 1:
            out.append(f"stop {s.id} served {n} times")
        elif n == 0 and s.required:
            out.append(f"required stop {s.id} not served")
    left_out = {s.id for s in problem.stops if times_served.get(s.id, 0) == 0}
    if set(solution.unserved) != left_out or len(solution.unserved) != len(left_out):
        out.append(f"unserved list {sorted(solution.unserved)} does not match the stops left "
                   f"out {sorted(left_out)}")
    total = sum(r.distance_m for r in solution.routes)
    if solution.distance_m != total:
        out.append(f"solution reports {solution.distance_m} m, its routes add up to {total} m")
    prizes = sum(stops[i].prize for i in times_served if not stops[i].required)
    if solution.prizes != prizes:
        out.append(f"solution reports prizes {solution.prizes}, served stops give {prizes}")
    return out
