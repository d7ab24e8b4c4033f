"""How long a scenario's bins take from empty to full: what any collection policy is up against.

``python -m simulator.fill_times [--scenario FILE] [--seed N] [--weeks 12]`` empties every bin
(in thought) each Monday and Thursday at 09:00 of the season and counts the days until it is
full, with the litter the simulation would bring (weather, weekdays, markets). Per municipality
it prints its core area and its outlying areas (villages; areas as the planner forms them,
planner/areas.py): the median bin's days to full, the fastest 10 % and the fastest bin, and the
share of bins full within 3.5 and 7 days. A town whose fastest bins are full in 2–3 days needs
a visit about twice a week whatever the policy.
"""
from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from datetime import timedelta

import numpy as np

from planner.areas import group
from simulator import scenario as scenarios
from simulator.engine import Simulation

HORIZON_DAYS = 21.0


def fill_times(scenario: scenarios.Scenario, seed: int, weeks: float,
               link_m: float = 1000.0) -> list[dict]:
    """One row per municipality and kind of area (core, outlying), as described above."""
    specs = [s for s in scenarios.expand(scenario, seed) if s.kind == "bin"]
    sim = Simulation(scenario, seed=seed, start=scenario.start,
                     duration=timedelta(weeks=weeks, days=HORIZON_DAYS + 1), devices=specs,
                     collect=False, water=False)
    starts = [scenario.start + timedelta(days=7 * w + d, hours=9)
              for w in range(int(weeks)) for d in (0, 3)]
    days = {}
    for device in sim.devices:
        days[device.spec.device_id] = statistics.median(
            device.bin.days_to_full(t, device.weather, HORIZON_DAYS) for t in starts)
    rows: dict[tuple[str, str], list[float]] = defaultdict(list)
    for area in group([(s.municipality, s.latitude, s.longitude) for s in specs], link_m):
        kind = "outlying" if "/" in area.key else "core"
        rows[(area.municipality, kind)] += [days[specs[i].device_id] for i in area.members]
    out = []
    for (town, kind), values in sorted(rows.items()):
        v = np.array(values)
        out.append({"municipality": town, "areas": kind, "bins": len(v),
                    "median_days": float(np.median(v)),
                    "fastest_10pct_days": float(np.percentile(v, 10)),
                    "fastest_days": float(v.min()),
                    "full_within_3_5_days": float(np.mean(v <= 3.5)),
                    "full_within_7_days": float(np.mean(v <= 7.0))})
    return out


def table(rows: list[dict]) -> str:
    lines = ["| municipality | areas | bins | median days to full | fastest 10 % | fastest | "
             "full within 3.5 d | within 7 d |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['municipality']} | {r['areas']} | {r['bins']} | "
                     f"{r['median_days']:.1f} | {r['fastest_10pct_days']:.1f} | "
                     f"{r['fastest_days']:.1f} | {100 * r['full_within_3_5_days']:.0f} % | "
                     f"{100 * r['full_within_7_days']:.0f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m simulator.fill_times",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default=scenarios.DEFAULT_SCENARIO)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--weeks", type=float, default=12)
    args = parser.parse_args(argv)
    print(table(fill_times(scenarios.load(args.scenario), args.seed, args.weeks)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
