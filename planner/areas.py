"""Which places to drive to today: bins grouped into areas, each visited when waiting costs more
than going.

Most of a collection round's kilometres are the drive out to a town or an outlying village
(Ortsteil), not the metres between its bins. So the decision that saves kilometres is *when to
visit an area*, not which single bin to empty. An **area** is a group of bins of one
municipality lying close together (single linkage: a bin within ``link_m`` of another joins its
group), so a town's core and each of its villages come out as areas of their own.

Each working day an area is **due** when the overflow that waiting until the next working day
would cause costs more than what waiting saves:

    overflow_cost_m_per_h × overflow bin-hours until the next shift
        ≥ visit cost × (time to the next shift / the area's revisit interval)

- *overflow bin-hours* are summed over the area's bins, from the middle of today's shift to the
  middle of the next one, on the pessimistic forecast (growth × ``must_safety``);
- the *visit cost* is the drive from the depot (or from an area already due today, when that is
  nearer) and back, plus a round through the area's bins (nearest neighbour, × detour factor);
- the *revisit interval* is how long the area's fastest bin takes from empty to full: delaying a
  visit by a day saves that share of a visit.

``overflow_cost_m_per_h`` is the one price to set: how many metres of driving an hour of a full
bin is worth. High, and every area is visited before anything overflows; low, and the trucks
drive less and some bins stand full for a while.

In a due area, the bins that would be full before the area's next visit (one revisit interval
on) are must-go, and those at least ``may_min_pct`` full are may-go with a prize (we are there
anyway). Areas that are not due are left alone, unless a bin there is worth a small detour
(``may_value_m``).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from planner.config import PlannerConfig
from planner.distances import haversine_m
from planner.forecast import FillForecast

HOUR_S = 3600.0


@dataclass(frozen=True)
class Area:
    key: str                   # municipality, with a number when it has several areas
    municipality: str
    members: tuple[int, ...]   # indices into the list of bins the areas were made from
    latitude: float
    longitude: float


def group(points: Sequence[tuple[str, float, float]], link_m: float) -> list[Area]:
    """Areas from (municipality, latitude, longitude) per bin, in the order given.

    The largest area of a municipality is named after it; the others get ``/2``, ``/3``... by
    size, so that names stay the same from day to day while the bins do.
    """
    by_town: dict[str, list[int]] = {}
    for i, (town, _, _) in enumerate(points):
        by_town.setdefault(town, []).append(i)
    out: list[Area] = []
    for town in sorted(by_town):
        idx = by_town[town]
        lat = np.array([points[i][1] for i in idx])
        lon = np.array([points[i][2] for i in idx])
        near = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :]) <= link_m
        label = np.full(len(idx), -1)
        for seed in range(len(idx)):
            if label[seed] >= 0:
                continue
            label[seed], stack = seed, [seed]
            while stack:
                j = stack.pop()
                for k in np.flatnonzero(near[j] & (label < 0)):
                    label[k] = seed
                    stack.append(int(k))
        groups = sorted((np.flatnonzero(label == g) for g in np.unique(label)),
                        key=lambda g: (-len(g), float(lat[g].mean()), float(lon[g].mean())))
        for n, g in enumerate(groups):
            out.append(Area(town if n == 0 else f"{town}/{n + 1}", town,
                            tuple(idx[k] for k in g), float(lat[g].mean()),
                            float(lon[g].mean())))
    return out


def overflow_hours(f: FillForecast, full_pct: float, start: float, end: float,
                   safety: float, step_h: float = 1.0) -> float:
    """Hours in [start, end] in which the bin would be at or above ``full_pct`` on the
    pessimistic forecast (growth × ``safety``)."""
    if end <= start:
        return 0.0
    if f.level_pct >= full_pct:
        return (end - start) / HOUR_S
    if not math.isfinite(f.base_rate_pct_h) or f.base_rate_pct_h <= 0:
        return 0.0
    steps = max(1, int(math.ceil((end - start) / HOUR_S / step_h)))
    hours = 0.0
    for k in range(steps):
        t = start + (k + 0.5) * (end - start) / steps
        growth = f.level_at(t) - f.level_pct if t > f.at else 0.0
        if f.level_pct + safety * max(growth, 0.0) >= full_pct:
            # The level only rises, so from here on it stays full.
            hours += (steps - k) * (end - start) / steps / HOUR_S
            break
    return hours


def revisit_interval_h(forecasts: Sequence[FillForecast | None], full_pcts: Sequence[float],
                       low_h: float = 24.0, high_h: float = 14 * 24.0) -> float:
    """How long the area's fastest bin takes from empty to full, hours (within [low, high])."""
    best = high_h
    for f, full in zip(forecasts, full_pcts):
        if f is not None and math.isfinite(f.base_rate_pct_h) and f.base_rate_pct_h > 0:
            best = min(best, full / f.base_rate_pct_h)
    return max(low_h, best)


def tour_m(lat: np.ndarray, lon: np.ndarray, detour_factor: float) -> float:
    """A nearest-neighbour path through the points (an estimate of the round inside an area)."""
    if len(lat) < 2:
        return 0.0
    d = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
    seen = np.zeros(len(lat), dtype=bool)
    here, total = 0, 0.0
    seen[0] = True
    for _ in range(len(lat) - 1):
        row = np.where(seen, np.inf, d[here])
        here = int(np.argmin(row))
        total += float(row[here])
        seen[here] = True
    return detour_factor * total


@dataclass(frozen=True)
class AreaDecision:
    area: Area
    due: bool
    overflow_h: float       # bin-hours waiting until the next shift would cost
    visit_cost_m: float
    interval_h: float


def due_areas(areas: Sequence[Area], overflow_h: Sequence[float], interval_h: Sequence[float],
              lat: np.ndarray, lon: np.ndarray, config: PlannerConfig, *, wait_h: float
              ) -> list[AreaDecision]:
    """Decide per area whether to visit it today (see the module's docstring).

    ``overflow_h``: per area, the bin-hours of overflow waiting ``wait_h`` hours (until the
    next shift) would cost; ``interval_h``: per area, its revisit interval; ``lat``/``lon``:
    the bins' positions (``Area.members`` index them).
    """
    price = config.areas.overflow_cost_m_per_h
    depot = (config.depot.latitude, config.depot.longitude)
    inside = [tour_m(lat[list(a.members)], lon[list(a.members)], config.detour_factor)
              for a in areas]

    def cost(k: int, due: list[int]) -> float:
        # Drive there from the depot, or from an area visited today anyway when that is nearer.
        a = areas[k]
        origins = [depot] + [(areas[d].latitude, areas[d].longitude) for d in due if d != k]
        reach = min(float(haversine_m(o[0], o[1], a.latitude, a.longitude)) for o in origins)
        return 2 * config.detour_factor * reach + inside[k]

    due: list[int] = []
    for _ in range(len(areas) + 1):  # adding an area can make its neighbours cheap to reach
        changed = False
        for k in range(len(areas)):
            if k not in due and price * overflow_h[k] >= cost(k, due) * wait_h / interval_h[k]:
                due.append(k)
                changed = True
        if not changed:
            break
    return [AreaDecision(a, k in due, overflow_h[k], cost(k, due), interval_h[k])
            for k, a in enumerate(areas)]
