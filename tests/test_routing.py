"""Routing core: PyVRP behind our own model, our own feasibility check, distance providers.

Plain values only (no database). Hand-sized problems whose optimum is obvious, hand-broken
solutions that the check must catch, and one CVRPLIB instance against its best-known cost.
"""
from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # planner/ is not (yet) an installed package

from planner.distances import GreatCircle, euclidean_matrix, haversine_m  # noqa: E402
from planner.routing import (Problem, Route, Solution, Stop, Vehicle, Visit,  # noqa: E402
                             check, solve)

LIMIT = 0.2  # seconds of search: plenty for a handful of stops
HOUR = 3600


def line_problem(positions_m, stops, vehicles, speed_ms: float = 10.0) -> Problem:
    """Depot at 0 and stops on a straight road at ``positions_m`` (index i+1)."""
    xy = [(0.0, 0.0)] + [(float(p), 0.0) for p in positions_m]
    dist = euclidean_matrix(xy, "nint")
    return Problem(dist, np.rint(dist / speed_ms).astype(np.int64), tuple(stops),
                   tuple(vehicles))


def truck(**kw) -> Vehicle:
    return Vehicle(**{"id": "truck", "capacity": 1000, "shift_s": 8 * HOUR, "break_s": 1800,
                      **kw})


def served_ids(sol: Solution) -> list[str]:
    return [v.stop_id for r in sol.routes for v in r.visits]


# ---------------------------------------------------------------------------------- solve


def test_square_is_solved_to_its_known_optimum():
    # Depot and four stops on the corners of a 2 km x 1 km rectangle: every point is on the
    # hull, so the optimal tour is the perimeter, 6000 m.
    xy = [(0, 0), (1000, 0), (2000, 0), (2000, 1000), (0, 1000)]
    dist = euclidean_matrix(xy, "nint")
    stops = tuple(Stop(f"s{i}", i, demand=10, service_s=30) for i in range(1, 5))
    sol = solve(Problem(dist, dist // 10, stops, (truck(),)), LIMIT)
    assert sol.feasible, sol.violations
    assert sol.distance_m == 6000
    assert len(sol.routes) == 1 and sorted(served_ids(sol)) == ["s1", "s2", "s3", "s4"]
    assert sol.routes[0].visits[-1].load_after == 40
    assert sol.unserved == () and sol.runtime_s >= LIMIT


def test_optional_stop_taken_when_its_prize_pays_for_the_detour():
    stops = [Stop("must", 1),
             Stop("cheap", 2, required=False, prize=1000),   # detour 2·200 = 400 m
             Stop("dear", 3, required=False, prize=3000)]    # detour 2·3800 = 7600 m
    sol = solve(line_problem([1000, 1200, 5000], stops, [truck()]), LIMIT)
    assert sol.feasible, sol.violations
    assert sorted(served_ids(sol)) == ["cheap", "must"]
    assert sol.unserved == ("dear",)
    assert sol.prizes == 1000 and sol.distance_m == 2400


def test_capacity_forces_two_routes():
    stops = [Stop(f"b{i}", i, demand=60) for i in range(1, 5)]
    sol = solve(line_problem([1000, 1100, 1200, 1300], stops, [truck(capacity=150, count=2)]),
                LIMIT)
    assert sol.feasible, sol.violations
    assert len(sol.routes) == 2
    assert all(r.visits[-1].load_after <= 150 and r.trips == 1 for r in sol.routes)


def test_capacity_with_reload_makes_two_trips_of_one_route():
    stops = [Stop(f"b{i}", i, demand=60) for i in range(1, 5)]
    sol = solve(line_problem([1000, 1100, 1200, 1300], stops,
                             [truck(capacity=150, reload=True)]), LIMIT)
    assert sol.feasible, sol.violations
    (route,) = sol.routes
    assert route.trips == 2
    assert [v.trip for v in route.visits].count(0) == 2
    assert max(v.load_after for v in route.visits) == 120  # load restarts after the unload


@pytest.mark.filterwarnings("ignore::pyvrp.exceptions.PenaltyBoundWarning")
def test_shift_too_short_for_all_stops_is_flagged_infeasible_not_raised():
    # Design: each stop alone fits a shift, so solve() does not raise; that all of them do not
    # fit into the one truck is a result, returned with feasible=False and the reasons.
    stops = [Stop(f"b{i}", i, service_s=1200) for i in range(1, 5)]
    short = truck(shift_s=HOUR, break_s=0)
    sol = solve(line_problem([1000, 1100, 1200, 1300], stops, [short]), LIMIT)
    assert not sol.feasible
    assert sol.violations
    assert any("lasts" in v or "not served" in v or "shift ends" in v for v in sol.violations)


def test_two_bins_at_one_place_share_a_matrix_row():
    stops = [Stop("left", 1, demand=50), Stop("right", 1, demand=50), Stop("far", 2)]
    sol = solve(line_problem([1000, 2000], stops, [truck()]), LIMIT)
    assert sol.feasible, sol.violations
    assert sorted(served_ids(sol)) == ["far", "left", "right"] and sol.distance_m == 4000


def test_stop_out_of_reach_of_any_shift_raises_naming_it():
    stops = [Stop("near", 1), Stop("far-away-bin", 2)]
    problem = line_problem([1000, 200_000], stops, [truck(shift_s=HOUR, break_s=0)])
    with pytest.raises(ValueError, match="far-away-bin"):
        solve(problem, LIMIT)


def test_stop_bigger_than_every_truck_raises_naming_it():
    stops = [Stop("ok", 1, demand=100), Stop("huge-container", 2, demand=5000)]
    problem = line_problem([1000, 2000], stops, [truck(capacity=1100), truck(id="van",
                                                                            capacity=400)])
    with pytest.raises(ValueError, match="huge-container.*capacity"):
        solve(problem, LIMIT)


def test_tw_early_waiting_shows_in_the_arrival_times():
    # 10 m/s: depot to A is 100 s, A to B 100 s. A must be served by 200 s, so the truck leaves
    # early; B opens only at 1000 s, so it then waits there (~600 s).
    stops = [Stop("A", 1, service_s=60, tw_late=200), Stop("B", 2, service_s=60, tw_early=1000)]
    sol = solve(line_problem([1000, 2000], stops, [truck()]), LIMIT)
    assert sol.feasible, sol.violations
    (route,) = sol.routes
    a, b = route.visits
    assert [a.stop_id, b.stop_id] == ["A", "B"]
    assert a.arrival_s == route.start_s + 100 <= 200
    assert b.arrival_s == 1000 > a.arrival_s + 60 + 100
    assert route.duration_s == 1000 + 60 + 200 - route.start_s  # the wait is part of the day


# ---------------------------------------------------------------------------------- check


@pytest.fixture
def two_stop_case() -> tuple[Problem, Solution]:
    """A hand-made feasible plan: depot -> s1 (1000 m) -> s2 (2000 m) -> depot, 100 s/km."""
    stops = [Stop("s1", 1, demand=60, service_s=60), Stop("s2", 2, demand=60, service_s=60)]
    problem = line_problem([1000, 2000], stops, [truck(capacity=150)])
    route = Route("truck", (Visit("s1", 1, 100, 60), Visit("s2", 2, 260, 120)),
                  distance_m=4000, duration_s=520)
    return problem, Solution((route,), (), 4000, 0, feasible=True)


def test_check_accepts_a_correct_plan(two_stop_case):
    problem, sol = two_stop_case
    assert check(problem, sol) == []


def test_check_finds_a_missing_required_stop(two_stop_case):
    problem, sol = two_stop_case
    route = replace(sol.routes[0], visits=sol.routes[0].visits[:1], distance_m=2000,
                    duration_s=260)
    broken = replace(sol, routes=(route,), distance_m=2000)
    assert any("required stop s2 not served" in v for v in check(problem, broken))


def test_check_finds_an_overloaded_trip(two_stop_case):
    problem, sol = two_stop_case
    small = replace(problem, vehicles=(truck(capacity=100),))
    assert any("over the capacity" in v for v in check(small, sol))


def test_check_finds_a_wrong_distance(two_stop_case):
    problem, sol = two_stop_case
    route = replace(sol.routes[0], distance_m=3999)
    broken = replace(sol, routes=(route,), distance_m=3999)
    assert any("matrix gives 4000 m" in v for v in check(problem, broken))


def test_check_finds_a_shift_exceeded(two_stop_case):
    problem, sol = two_stop_case
    # 520 s of work do not fit a 600 s shift with a 300 s break.
    tight = replace(problem, vehicles=(truck(capacity=150, shift_s=600, break_s=300),))
    assert any("lasts 520 s" in v for v in check(tight, sol))


def test_check_finds_service_before_the_truck_can_be_there(two_stop_case):
    problem, sol = two_stop_case
    early = replace(problem, stops=(problem.stops[0], replace(problem.stops[1], tw_early=900)))
    assert any("cannot before 900 s" in v for v in check(early, sol))


def test_check_finds_unknown_and_duplicate_stops_and_too_many_routes(two_stop_case):
    problem, sol = two_stop_case
    r = sol.routes[0]
    ghost = Route("truck", (Visit("ghost", 1, 100, 0),), 2000, 260)
    broken = replace(sol, routes=(r, r, ghost), distance_m=10000)
    found = "\n".join(check(problem, broken))
    assert "unknown stop 'ghost'" in found
    assert "stop s1 served 2 times" in found
    assert "3 routes for vehicle kind truck" in found


def test_check_rejects_a_reload_for_a_truck_that_may_not(two_stop_case):
    problem, sol = two_stop_case
    visits = (Visit("s1", 1, 100, 60, trip=0), Visit("s2", 2, 460, 60, trip=1))
    route = Route("truck", visits, distance_m=6000, duration_s=720, trips=2)
    found = check(problem, replace(sol, routes=(route,), distance_m=6000))
    assert found == ["route 0 (truck): unloads at the depot, but truck may not reload"]
    reloading = replace(problem, vehicles=(truck(capacity=150, reload=True),))
    assert check(reloading, replace(sol, routes=(route,), distance_m=6000)) == []


# ---------------------------------------------------------------------------------- distances


def test_haversine_frankfurt_roemer_to_wiesbaden():
    d = haversine_m(50.1106, 8.6821, 50.0826, 8.2400)
    assert d == pytest.approx(31_690, abs=50)  # ≈ 31.7 km great-circle


def test_haversine_is_vectorised():
    lat = np.array([50.0, 50.0, 51.0])
    lon = np.array([8.0, 9.0, 8.0])
    d = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    assert d.shape == (3, 3) and np.allclose(np.diag(d), 0)
    # one degree of latitude is ~111.2 km on the mean sphere
    assert d[0, 2] == pytest.approx(2 * math.pi * 6_371_008.8 / 360, rel=1e-9)


def test_great_circle_matrices_apply_detour_and_speed():
    gc = GreatCircle(detour_factor=1.35, speed_kmh=30.0)
    dist, dur = gc.matrices([(50.1106, 8.6821), (50.0826, 8.2400)])
    assert dist.dtype == np.int64 and dur.dtype == np.int64
    assert dist[0, 0] == dist[1, 1] == dur[0, 0] == 0
    assert dist[0, 1] == dist[1, 0] == pytest.approx(31_690 * 1.35, abs=70)
    assert dur[0, 1] == pytest.approx(dist[0, 1] / (30 / 3.6), abs=1)


def test_euclidean_conventions():
    xy = [(0, 0), (3, 4), (0.5, 0), (1.5, 0)]
    nint = euclidean_matrix(xy, "nint")
    exact = euclidean_matrix(xy, "exact")
    assert nint[0, 1] == 5 and exact[0, 1] == 5000
    assert nint[0, 2] == 1 and nint[0, 3] == 2  # .5 rounds up, as TSPLIB's floor(d + 0.5)
    assert exact[1, 2] == round(1000 * math.hypot(2.5, 4))


# ---------------------------------------------------------------------------------- CVRPLIB


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("cvrplib", ROOT / "benchmarks" / "cvrplib.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being created
    spec.loader.exec_module(module)
    return module


def test_p_n16_k8_within_one_percent_in_two_seconds():
    bench = _benchmark_module()
    path = ROOT.parent / "shared" / "routing" / "instances" / "P-n16-k8.vrp"
    if not path.is_file():
        pytest.skip("needs ../shared/routing/instances/P-n16-k8.vrp (CVRPLIB instances, beside the "
                    "checkout on the project's machines and in CI)")
    inst = bench.parse_vrp(path)
    assert (inst.n_customers, inst.capacity, inst.max_vehicles) == (15, 35, 8)
    sol = solve(bench.to_problem(inst, "nint"), time_limit_s=1.0)
    cost = bench.route_cost(inst, sol, "nint")
    assert sol.feasible, sol.violations
    assert sol.runtime_s <= 2.0
    assert cost == sol.distance_m  # the solver's integers are the nint convention
    assert (cost - 450) / 450 <= 0.01
