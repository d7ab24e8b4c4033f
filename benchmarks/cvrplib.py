"""CVRPLIB benchmark of the planner's routing code against best-known solutions.

    python benchmarks/cvrplib.py DIR [--time-limit S] [--json OUT] [--seed N]

Solves every ``*.vrp`` in DIR with ``planner.routing.solve`` (the code the service plans with,
not PyVRP directly), compares each cost with ``DIR/bks.json`` and prints a table: instance,
customers, cost, best-known, gap %, routes, seconds (wall and cpu), feasible; then the mean
gap. The time limit is wall-clock, so run it on a quiet machine: a cpu column well below the
seconds column means the search was starved and the gaps are pessimistic.

Conventions follow ``../shared/routing/README.md``: A/B/P/X use TSPLIB ``nint`` arcs, CMT uses
float arcs (``round(1000·d)`` for the solver, the cost recomputed in floats, 2 decimals); the
fleet is bounded by the ``No of trucks: k`` of the COMMENT line (A/B/P) and unbounded otherwise.
``--json OUT`` writes the rows. Exit code 1 if any result is infeasible.

Example, from the repository root:

    python benchmarks/cvrplib.py ../shared/routing/instances --time-limit 5
"""
from __future__ import annotations

import argparse
import json
import math
import re
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from planner.distances import euclidean_matrix  # noqa: E402
from planner.routing import Problem, Solution, Stop, Vehicle, solve  # noqa: E402

# CVRP has no time: one shift long enough never to bind (durations are the distances).
NO_SHIFT_S = 10**12


@dataclass(frozen=True)
class Instance:
    name: str
    capacity: int
    coords: np.ndarray           # (n, 2), row 0 the depot
    demands: np.ndarray          # (n,), demand[0] = 0
    max_vehicles: int | None     # "No of trucks: k" from the COMMENT, None when unbounded

    @property
    def n_customers(self) -> int:
        return len(self.demands) - 1


def parse_vrp(path: Path) -> Instance:
    """Read a CVRPLIB ``.vrp`` (EUC_2D, one depot) whatever its whitespace and line endings."""
    header: dict[str, str] = {}
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for raw in path.read_text().replace("\r", "").split("\n"):
        tokens = raw.split()
        if not tokens or tokens[0] == "EOF":
            continue
        if tokens[0].endswith("_SECTION"):
            current = sections.setdefault(tokens[0], [])
        elif ":" in raw and not tokens[0].lstrip("-").isdigit():
            key, _, value = raw.partition(":")
            header[key.strip()] = value.strip()
            current = None
        elif current is not None:
            current.append(tokens)
    if header.get("EDGE_WEIGHT_TYPE", "EUC_2D") != "EUC_2D":
        raise ValueError(f"{path.name}: only EUC_2D is supported")
    n = int(header["DIMENSION"])
    coords = np.zeros((n, 2))
    demands = np.zeros(n, dtype=np.int64)
    for node, x, y in sections["NODE_COORD_SECTION"]:
        coords[int(node) - 1] = float(x), float(y)
    for node, demand in sections["DEMAND_SECTION"]:
        demands[int(node) - 1] = int(demand)
    depots = [int(t[0]) for t in sections.get("DEPOT_SECTION", [["1"]]) if int(t[0]) > 0]
    if depots != [1]:
        raise ValueError(f"{path.name}: expected node 1 as the only depot, got {depots}")
    trucks = re.search(r"No of trucks:\s*(\d+)", header.get("COMMENT", ""))
    return Instance(header.get("NAME", path.stem), int(header["CAPACITY"]), coords, demands,
                    int(trucks.group(1)) if trucks else None)


def convention_of(name: str, bks_entry: dict | None) -> str:
    if bks_entry and "distance" in bks_entry:
        return bks_entry["distance"]
    return "exact" if name.startswith("CMT") else "nint"


def to_problem(inst: Instance, convention: str) -> Problem:
    matrix = euclidean_matrix(inst.coords, convention)
    stops = tuple(Stop(id=str(i), index=i, demand=int(inst.demands[i]))
                  for i in range(1, len(inst.demands)))
    count = inst.max_vehicles or inst.n_customers  # unbounded: one truck per customer is plenty
    vehicle = Vehicle(id="truck", capacity=inst.capacity, shift_s=NO_SHIFT_S, count=count)
    return Problem(matrix, matrix, stops, (vehicle,))


def route_cost(inst: Instance, solution: Solution, convention: str) -> float:
    """The cost recomputed from the routes, under the family's convention."""
    xy = inst.coords
    total = 0.0
    for route in solution.routes:
        # CVRP has no reloads, but a trip boundary would be a depot visit, so honour it.
        path = [0]
        for k, v in enumerate(route.visits):
            if k and v.trip != route.visits[k - 1].trip:
                path.append(0)
            path.append(v.index)
        path.append(0)
        for a, b in zip(path, path[1:]):
            d = math.hypot(xy[a, 0] - xy[b, 0], xy[a, 1] - xy[b, 1])
            total += math.floor(d + 0.5) if convention == "nint" else d
    return total if convention == "nint" else round(total, 2)


def run(directory: Path, time_limit: float, seed: int) -> list[dict]:
    bks_path = directory / "bks.json"
    bks = json.loads(bks_path.read_text()) if bks_path.exists() else {}
    files = sorted(directory.glob("*.vrp"))
    if not files:
        raise SystemExit(f"no *.vrp files in {directory}")
    print(f"# CVRPLIB, {len(files)} instances from {directory}, planner.routing.solve, "
          f"time limit {time_limit:g} s, seed {seed}")
    print(f"{'instance':<12} {'cust':>5} {'cost':>10} {'best-known':>10} {'gap %':>7} "
          f"{'routes':>6} {'seconds':>7} {'cpu s':>6}  feasible")
    rows = []
    for path in files:
        inst = parse_vrp(path)
        entry = bks.get(inst.name)
        convention = convention_of(inst.name, entry)
        problem = to_problem(inst, convention)
        started, cpu_started = time.perf_counter(), time.process_time()
        solution = solve(problem, time_limit_s=time_limit, seed=seed)
        seconds = time.perf_counter() - started
        # The limit is wall-clock: cpu well below seconds means a busy machine starved the run.
        cpu = time.process_time() - cpu_started
        cost = route_cost(inst, solution, convention)
        best = entry["bks"] if entry else None
        gap = 100.0 * (cost - best) / best if best else None
        row = {"instance": inst.name, "customers": inst.n_customers, "cost": cost,
               "best_known": best, "gap_pct": None if gap is None else round(gap, 3),
               "routes": len(solution.routes), "seconds": round(seconds, 2),
               "cpu_seconds": round(cpu, 2),
               "feasible": solution.feasible, "violations": list(solution.violations),
               "distance": convention, "max_vehicles": inst.max_vehicles,
               "time_limit_s": time_limit, "seed": seed}
        rows.append(row)
        fmt = ".0f" if convention == "nint" else ".2f"
        print(f"{inst.name:<12} {inst.n_customers:>5} {cost:>10{fmt}} "
              f"{'-' if best is None else format(best, fmt):>10} "
              f"{'-' if gap is None else f'{gap:.2f}':>7} {len(solution.routes):>6} "
              f"{seconds:>7.2f} {cpu:>6.2f}  {'yes' if solution.feasible else 'NO'}", flush=True)
        for violation in solution.violations[:5]:
            print(f"    ! {violation}")
    # An infeasible plan's cost is no result: it stays out of the mean (and fails the run).
    gaps = [r["gap_pct"] for r in rows if r["gap_pct"] is not None and r["feasible"]]
    if gaps:
        print(f"mean gap {statistics.fmean(gaps):.2f} % over {len(gaps)} instances "
              f"(max {max(gaps):.2f} %), mean {statistics.fmean(r['seconds'] for r in rows):.2f}"
              f" s per instance ({statistics.fmean(r['cpu_seconds'] for r in rows):.2f} s cpu), "
              f"{sum(not r['feasible'] for r in rows)} infeasible (not in the mean)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("directory", type=Path, metavar="DIR")
    parser.add_argument("--time-limit", type=float, default=5.0, metavar="S",
                        help="search time per instance in seconds (default 5)")
    parser.add_argument("--json", type=Path, metavar="OUT", help="write the rows as JSON")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rows = run(args.directory, args.time_limit, args.seed)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    sys.exit(1 if any(not r["feasible"] for r in rows) else 0)


if __name__ == "__main__":
    main()
