"""Planner timing on a synthetic 500-bin day: how long building, solving and checking take.

    python benchmarks/planner_day.py [--time-limit 8] [--seed 0] [--vehicles 4]
                                     [--required 350] [--optional 150]

Bins at random points in a 20 km square around the yard (50.26 N, 9.28 E), great-circle
matrices (× 1.35 detour, 30 km/h), demand 60–120 l, 120 s service per bin; trucks of 5000 l
that may unload at the yard and go out again, 8 h shifts with a 30 min break. Optional bins
carry a prize of 20 m of driving per litre they hold (60–120 l: worth a 1.2–2.4 km detour).
Prints the timings and what the plan looks like, including whether it is feasible.

The default fleet is 4 trucks: 350 required bins take about 30 h of service, driving and unload
trips, so 2 or 3 trucks cannot do this day (with ``--vehicles 2`` the plan comes back
``feasible False``: every required bin on a route, shifts overrun). 4 is the smallest fleet
that fits with seed 0; it also takes about half the optional bins.
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.distances import GreatCircle  # noqa: E402
from planner.routing import Problem, Stop, Vehicle, check, solve  # noqa: E402

YARD = (50.26, 9.28)
PRIZE_M_PER_L = 20


def build_day(rng: np.random.Generator, n_required: int, n_optional: int, n_vehicles: int,
              side_km: float = 20.0) -> Problem:
    n = n_required + n_optional
    half = side_km * 1000 / 2
    lat0, lon0 = YARD
    dy = rng.uniform(-half, half, n)
    dx = rng.uniform(-half, half, n)
    lats = lat0 + np.degrees(dy / 6_371_008.8)
    lons = lon0 + np.degrees(dx / (6_371_008.8 * math.cos(math.radians(lat0))))
    points = [YARD, *zip(lats.tolist(), lons.tolist())]
    distance, duration = GreatCircle().matrices(points)
    demand = rng.integers(60, 121, n)
    stops = tuple(
        Stop(id=f"bin-{i:03d}", index=i + 1, demand=int(demand[i]), service_s=120,
             required=i < n_required,
             prize=0 if i < n_required else int(demand[i]) * PRIZE_M_PER_L)
        for i in range(n))
    truck = Vehicle(id="truck", capacity=5000, shift_s=8 * 3600, break_s=30 * 60,
                    count=n_vehicles, reload=True)
    return Problem(distance, duration, stops, (truck,))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--time-limit", type=float, default=8.0, metavar="S")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vehicles", type=int, default=4)
    parser.add_argument("--required", type=int, default=350)
    parser.add_argument("--optional", type=int, default=150)
    args = parser.parse_args()

    t0 = time.perf_counter()
    problem = build_day(np.random.default_rng(args.seed), args.required, args.optional,
                        args.vehicles)
    t1 = time.perf_counter()
    solution = solve(problem, time_limit_s=args.time_limit, seed=args.seed)
    t2 = time.perf_counter()
    violations = check(problem, solution)
    t3 = time.perf_counter()

    n = len(problem.stops)
    print(f"# planner day: {n} bins ({args.required} required, {args.optional} optional), "
          f"{args.vehicles} trucks × 5000 l with reload, 8 h shift, 30 min break, seed {args.seed}")
    print(f"build (points + great-circle matrices)  {t1 - t0:6.2f} s")
    print(f"solve (model + search + check)          {t2 - t1:6.2f} s   "
          f"(search limit {args.time_limit:g} s)")
    print(f"check again, alone                      {t3 - t2:6.3f} s")
    print(f"total                                   {t3 - t0:6.2f} s")
    served = {v.stop_id for r in solution.routes for v in r.visits}
    required = {s.id for s in problem.stops if s.required}
    print(f"routes {len(solution.routes)}, trips {[r.trips for r in solution.routes]}, "
          f"km {solution.distance_m / 1000:.1f}, hours "
          f"{[round(r.duration_s / 3600, 2) for r in solution.routes]}")
    print(f"served {len(served)}: required {len(served & required)}/{len(required)}, optional "
          f"{len(served - required)}/{n - len(required)} (prizes {solution.prizes / 1000:.1f} km)")
    print(f"feasible {solution.feasible}" + ("" if solution.feasible else
                                              f", {len(solution.violations)} violations:"))
    for v in violations[:5]:
        print(f"    ! {v}")


if __name__ == "__main__":
    main()
