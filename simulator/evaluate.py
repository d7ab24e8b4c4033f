"""``bauhof evaluate``: collection policies in closed loop with the simulated towns.

The simulator's bins fill (physics.BinModel); the sensors read them every 30 minutes with noise;
each morning at shift start a policy decides from those readings which bins to empty and routes
them; the crews empty each bin at its ETA, which the sensors then see. Scored per run:

- km and truck hours of the routes (the same routing code for every policy),
- bin visits and the mean true fill at emptying,
- overflow bin-hours: hours in which a bin's true fill was at or above its full mark
  (``distance_full_m``), checked every hour — litter then lands beside the bin.

A warm-up week, run with the fixed schedule for every policy, gives the forecasts a history
before scoring starts; it is not scored.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import statistics
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from decoders.normalize import fill_level_pct
from planner import config as planner_config
from planner.config import PlannerConfig
from planner.plan import DayPlan
from simulator import scenario as scenarios
from simulator.engine import Simulation
from simulator.policies import POLICIES, FixedSchedule, History, Policy
from simulator.scenario import DeviceSpec, Scenario, expand

WARM_UP = timedelta(days=7)
FULL = 1.0  # true fill fraction at distance_full_m


@dataclass
class Score:
    policy: str
    seed: int
    weeks: float
    km: float = 0.0
    truck_hours: float = 0.0
    visits: int = 0
    overflow_bin_hours: int = 0
    fill_at_emptying_pct: float = 0.0
    must_unserved: int = 0
    days_driven: int = 0
    solve_s: float = 0.0
    wall_s: float = 0.0
    _fills: list[float] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        out = asdict(self)
        out.pop("_fills")
        return out


class ClosedLoop(Simulation):
    """The simulation of the scenario's bins, emptied where and when a policy routes crews."""

    def __init__(self, scenario: Scenario, policy: Policy, config: PlannerConfig, *,
                 seed: int, weeks: float, warm_up: Policy | None = None) -> None:
        specs = [s for s in expand(scenario, seed) if s.kind == "bin"]
        start = scenario.start
        super().__init__(scenario, seed=seed, start=start, duration=WARM_UP + timedelta(weeks=weeks),
                         devices=specs, collect=False, water=False, on_reading=self._reading)
        self.policy = policy
        self.warm_up = warm_up or policy
        self.config = config
        self.specs = specs
        self.scored_from = start + WARM_UP
        self.score = Score(policy.name, seed, weeks)
        self.history = {s.device_id: History() for s in specs}
        self.by_id = {d.spec.device_id: d for d in self.devices}
        if hasattr(policy, "truth"):
            policy.truth = self.by_id
        tz = ZoneInfo(config.timezone)
        day = start.astimezone(tz).date()
        while (at := datetime.combine(day, config.shift_start, tz)) < self.end:
            if at >= start:
                self._push(at, "plan", day)
            day += timedelta(days=1)
        hour = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        while hour < self.end:
            self._push(hour, "audit", None)
            hour += timedelta(hours=1)

    def _reading(self, t: datetime, spec: DeviceSpec, measured: dict[str, float]) -> None:
        level = fill_level_pct(measured.get("distance_m"), spec.attributes)
        if level is not None:
            self.history[spec.device_id].add(t.timestamp(), level)

    def _on_plan(self, action, sinks) -> None:
        scored = action.at >= self.scored_from
        policy = self.policy if scored else self.warm_up
        plan: DayPlan | None = policy.plan(action.target, self.specs, self.history)
        if plan is None:
            return
        for vehicle in plan.vehicles:
            for stop in vehicle.stops:
                at = datetime.fromtimestamp(stop.eta, self.start.tzinfo)
                self._push(max(at, action.at), "empty", self.by_id[stop.id])
        if scored:
            s = self.score
            s.km += plan.distance_m / 1000
            s.truck_hours += sum(v.duration_s for v in plan.vehicles) / 3600
            s.must_unserved += len(plan.unserved_must)
            s.days_driven += 1 if plan.vehicles else 0
            s.solve_s += plan.solve_s

    def _on_empty(self, action, sinks) -> None:
        device = action.target
        fill = device.bin.advance(action.at, device.weather)
        if action.at >= self.scored_from:
            self.score.visits += 1
            self.score._fills.append(fill)
        device.bin.empty(action.at)
        self.report.emptied += 1

    def _on_audit(self, action, sinks) -> None:
        if action.at < self.scored_from:
            return
        for device in self.devices:
            if device.bin.advance(action.at, device.weather) >= FULL:
                self.score.overflow_bin_hours += 1

    def evaluate(self) -> Score:
        started = time.monotonic()
        self.run([])
        s = self.score
        s.fill_at_emptying_pct = 100 * statistics.fmean(s._fills) if s._fills else 0.0
        s.wall_s = time.monotonic() - started
        return s


PRICED = ("planner", "clairvoyant")  # the policies that plan by area at a price


def run_one(job: tuple[str, int, float, str, str | None, float, float | None]) -> dict:
    policy_name, seed, weeks, scenario_path, config_path, time_limit, price = job
    scenario = scenarios.load(scenario_path)
    config = planner_config.load(config_path)
    if price is not None:
        config = config.model_copy(update={"areas": config.areas.model_copy(
            update={"enabled": True, "overflow_cost_m_per_h": price})})
    policy = POLICIES[policy_name](config, time_limit, seed)
    if price is not None:
        policy.name = f"{policy_name} @{price:g}"
    warm_up = FixedSchedule(config, time_limit, seed)
    return ClosedLoop(scenario, policy, config, seed=seed, weeks=weeks,
                      warm_up=warm_up).evaluate().as_dict()


COLUMNS = (("policy", "policy", "{}"), ("km", "km", "{:,.0f}"),
           ("truck_hours", "truck hours", "{:,.1f}"), ("visits", "bin visits", "{:,.0f}"),
           ("overflow_bin_hours", "overflow bin-hours", "{:,.0f}"),
           ("fill_at_emptying_pct", "mean fill at emptying %", "{:.1f}"),
           ("must_unserved", "must-go unserved", "{:.0f}"))


def summarise(rows: list[dict]) -> list[dict]:
    """Mean over seeds per policy, with the change against the fixed schedule."""
    out = []
    policies = list(dict.fromkeys(r["policy"] for r in rows))
    for name in policies:
        mine = [r for r in rows if r["policy"] == name]
        mean = {key: statistics.fmean(r[key] for r in mine) for key, _, _ in COLUMNS[1:]}
        out.append({"policy": name, "seeds": len(mine), **mean})
    fixed = next((r for r in out if r["policy"] == "fixed"), None)
    for r in out:
        r["km_vs_fixed_pct"] = (100 * (r["km"] / fixed["km"] - 1) if fixed and fixed["km"]
                                else None)
    return out


def table(rows: list[dict], per_seed: list[dict]) -> str:
    head = "| " + " | ".join(label for _, label, _ in COLUMNS) + " | km vs fixed |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 1)]
    for r in rows:
        cells = [fmt.format(r[key]) for key, _, fmt in COLUMNS]
        change = r["km_vs_fixed_pct"]
        lines.append("| " + " | ".join(cells) + f" | {'' if change is None else f'{change:+.1f} %'} |")
    lines += ["", "Per seed:", "",
              "| policy | seed | km | overflow bin-hours | visits | fill at emptying % |",
              "|---|---|---|---|---|---|"]
    for r in per_seed:
        lines.append(f"| {r['policy']} | {r['seed']} | {r['km']:,.0f} | "
                     f"{r['overflow_bin_hours']:,} | {r['visits']:,} | "
                     f"{r['fill_at_emptying_pct']:.1f} |")
    return "\n".join(lines)


COLOURS = {"fixed": "#7f7f7f", "threshold": "#e08a00", "planner": "#1f6fb4",
           "clairvoyant": "#7a4fb4"}


def _policy(label: str) -> tuple[str, float | None]:
    """A result's policy and price from its label ("planner @75" -> ("planner", 75.0))."""
    name, _, price = label.partition(" @")
    return name, float(price) if price else None


def _colour(label: str) -> str:
    return COLOURS.get(_policy(label)[0].split(",")[0], "#444")


def svg(rows: list[dict]) -> str:
    """Two bar charts side by side: km and overflow bin-hours per policy (no plotting
    library needed to run the evaluation)."""
    width, height, pad = 640, 300, 40
    panels = (("km", "km driven"), ("overflow_bin_hours", "overflow bin-hours"))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>']
    panel_w = (width - pad) / len(panels)
    for p, (key, title) in enumerate(panels):
        x0 = pad / 2 + p * panel_w
        top = max((r[key] for r in rows), default=1) or 1
        parts.append(f'<text x="{x0 + panel_w / 2:.0f}" y="20" text-anchor="middle" '
                     f'font-weight="bold">{title}</text>')
        bar_w = (panel_w - pad) / max(len(rows), 1)
        for i, r in enumerate(rows):
            h = (height - 90) * r[key] / top
            x = x0 + pad / 2 + i * bar_w
            y = height - 50 - h
            colour = _colour(r["policy"])
            parts.append(f'<rect x="{x + 6:.0f}" y="{y:.0f}" width="{bar_w - 12:.0f}" '
                         f'height="{h:.0f}" fill="{colour}"/>')
            parts.append(f'<text x="{x + bar_w / 2:.0f}" y="{y - 4:.0f}" '
                         f'text-anchor="middle">{r[key]:,.0f}</text>')
            parts.append(f'<text x="{x + bar_w / 2:.0f}" y="{height - 32}" '
                         f'text-anchor="middle">{r["policy"]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def frontier_svg(rows: list[dict], goal_km_pct: float = -40.0) -> str:
    """km against overflow bin-hours, one numbered point per policy (mean over seeds) with a
    legend, and the issue's goal drawn as a box: at most ``goal_km_pct`` km against the fixed
    rounds and no more overflow. A policy in the box meets the goal."""
    width, height, left, bottom, top, plot_w = 780, 420, 70, 50, 30, 470
    fixed = next((r for r in rows if r["policy"] == "fixed"), None)
    top_x = max(r["overflow_bin_hours"] for r in rows) * 1.1 or 1.0
    top_y = max(r["km"] for r in rows) * 1.1 or 1.0
    step_x, step_y = _nice_step(top_x / 4), _nice_step(top_y / 4)
    ticks_x, ticks_y = math.ceil(top_x / step_x), math.ceil(top_y / step_y)

    def x(v: float) -> float:
        return left + plot_w * v / (ticks_x * step_x)

    def y(v: float) -> float:
        return height - bottom - (height - bottom - top) * v / (ticks_y * step_y)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<line x1="{left}" y1="{y(0):.0f}" x2="{left + plot_w}" y2="{y(0):.0f}" '
             f'stroke="black"/>',
             f'<line x1="{left}" y1="{y(0):.0f}" x2="{left}" y2="{top}" stroke="black"/>',
             f'<text x="{left + plot_w / 2:.0f}" y="{height - 12}" '
             f'text-anchor="middle">overflow bin-hours</text>',
             f'<text x="16" y="{(top + height - bottom) / 2:.0f}" text-anchor="middle" '
             f'transform="rotate(-90 16 {(top + height - bottom) / 2:.0f})">km</text>']
    for k in range(ticks_x + 1):
        parts.append(f'<text x="{x(k * step_x):.0f}" y="{y(0) + 16:.0f}" '
                     f'text-anchor="middle">{k * step_x:,.0f}</text>')
    for k in range(ticks_y + 1):
        parts.append(f'<text x="{left - 6}" y="{y(k * step_y) + 4:.0f}" '
                     f'text-anchor="end">{k * step_y:,.0f}</text>')
    if fixed:
        goal_km = fixed["km"] * (1 + goal_km_pct / 100)
        parts.append(f'<rect x="{x(0):.0f}" y="{y(goal_km):.0f}" '
                     f'width="{x(fixed["overflow_bin_hours"]) - x(0):.0f}" '
                     f'height="{y(0) - y(goal_km):.0f}" fill="#2a9d4a" fill-opacity="0.15" '
                     f'stroke="#2a9d4a"/>')
        parts.append(f'<text x="{x(0) + 6:.0f}" y="{y(goal_km) + 16:.0f}" fill="#1d6e34">'
                     f'goal: {goal_km_pct:+.0f} % km,</text>')
        parts.append(f'<text x="{x(0) + 6:.0f}" y="{y(goal_km) + 31:.0f}" fill="#1d6e34">'
                     f'no more overflow</text>')
    legend_x = left + plot_w + 30
    for n, r in enumerate(rows, start=1):
        colour = _colour(r["policy"])
        cx, cy = x(r["overflow_bin_hours"]), y(r["km"])
        parts.append(f'<circle cx="{cx:.0f}" cy="{cy:.0f}" r="4" fill="{colour}"/>')
        parts.append(f'<text x="{cx + 6:.0f}" y="{cy - 4:.0f}" font-size="10" '
                     f'fill="{colour}">{n}</text>')
        parts.append(f'<text x="{legend_x}" y="{top + 16 * n:.0f}" fill="{colour}">'
                     f'{n} {r["policy"]}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def _nice_step(span: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times a power of ten at least ``span``."""
    if span <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(span))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= span)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, default=scenarios.DEFAULT_SCENARIO)
    parser.add_argument("--planner-config", type=Path, default=None,
                        help="planner YAML (default: planner/default.yaml)")
    parser.add_argument("--weeks", type=float, default=12)
    parser.add_argument("--policy", action="append", choices=sorted(POLICIES),
                        help="repeatable; default: fixed, threshold and planner "
                             "(clairvoyant: the planner by area with perfect forecasts)")
    parser.add_argument("--price", default=None,
                        help="comma-separated overflow prices (m per bin-hour): the planner "
                             "and clairvoyant plan by area, once per price")
    parser.add_argument("--seeds", default="1,2,3", help="comma-separated (default 1,2,3)")
    parser.add_argument("--time-limit", type=float, default=2.0,
                        help="solver seconds per day and policy (default 2)")
    parser.add_argument("--jobs", type=int, default=multiprocessing.cpu_count())
    parser.add_argument("--out", type=Path, help="directory for results.json, table.md, "
                                                 "plot.svg, frontier.svg")


def main(args: argparse.Namespace) -> int:
    policies = args.policy or ["fixed", "threshold", "planner"]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    prices = [float(p) for p in args.price.split(",") if p.strip()] if args.price else [None]
    jobs = [(p, s, args.weeks, str(args.scenario),
             str(args.planner_config) if args.planner_config else None, args.time_limit,
             price)
            for s in seeds for p in policies for price in (prices if p in PRICED else [None])]
    if args.jobs > 1 and len(jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            per_seed = pool.map(run_one, jobs)
    else:
        per_seed = [run_one(j) for j in jobs]
    per_seed.sort(key=lambda r: (policies.index(_policy(r["policy"])[0]),
                                 _policy(r["policy"])[1] or 0.0, r["seed"]))
    summary = summarise(per_seed)
    text = table(summary, per_seed)
    print(f"{args.weeks:g} weeks after a warm-up week, seeds {', '.join(map(str, seeds))}, "
          f"{args.scenario.name}\n")
    print(text)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(
            {"summary": summary, "runs": per_seed}, indent=2), encoding="utf-8")
        (args.out / "table.md").write_text(text + "\n", encoding="utf-8")
        (args.out / "plot.svg").write_text(svg(summary), encoding="utf-8")
        (args.out / "frontier.svg").write_text(frontier_svg(summary), encoding="utf-8")
        print(f"\nwritten to {args.out}/")
    return 0
