"""Planning by area: towns and villages as areas, each visited when waiting costs more than
going — on plain values."""
from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from planner import config as planner_config
from planner.areas import due_areas, group, overflow_hours, revisit_interval_h, tour_m
from planner.distances import haversine_m
from planner.forecast import forecast_fill
from planner.plan import next_working_day, shift_window
from planner.selection import BinState, select_bins

DEPOT = (50.2602, 9.2801)
MONDAY = dt.date(2026, 5, 4)
FRIDAY = dt.date(2026, 5, 8)


def _config(**areas) -> planner_config.PlannerConfig:
    data = planner_config.load().model_dump()
    data["areas"] = {"enabled": True, **areas}
    return planner_config.PlannerConfig.model_validate(data)


def _around(lat: float, lon: float, n: int, radius_m: float, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    r = radius_m * np.sqrt(rng.random(n))
    a = 2 * math.pi * rng.random(n)
    return [(lat + float(dy) / 111_320, lon + float(dx) / (111_320 * math.cos(math.radians(lat))))
            for dy, dx in zip(r * np.sin(a), r * np.cos(a))]


def _east(km: float) -> tuple[float, float]:
    """A point ``km`` east of the depot."""
    return DEPOT[0], DEPOT[1] + km * 1000 / (111_320 * math.cos(math.radians(DEPOT[0])))


def _forecast(level_now: float, rate_pct_h: float, at: float, full_pct: float = 90.0):
    """Readings every 30 min for three days, rising steadily to ``level_now``."""
    times = at - np.arange(0, 72 * 3600, 1800)[::-1]
    levels = np.clip(level_now - rate_pct_h * (at - times) / 3600, 0, 100)
    return forecast_fill(times, levels, at, full_pct=full_pct)


def test_a_town_core_and_its_villages_become_areas_of_their_own():
    town = _around(*_east(3), 40, 900, seed=1)
    village = _around(*_east(7), 3, 200, seed=2)          # 4 km further out
    neighbour = _around(*_east(3.5), 5, 300, seed=3)     # beside the town, another municipality
    points = ([("Stadt", *p) for p in town] + [("Stadt", *p) for p in village]
              + [("Nachbarort", *p) for p in neighbour])
    areas = group(points, link_m=1000)
    assert {a.key: len(a.members) for a in areas} == {"Stadt": 40, "Stadt/2": 3,
                                                      "Nachbarort": 5}
    village_area = next(a for a in areas if a.key == "Stadt/2")
    assert set(village_area.members) == {40, 41, 42}
    assert village_area.longitude == pytest.approx(np.mean([p[1] for p in village]))
    # The same bins in another order make the same areas.
    again = group(points[::-1], link_m=1000)
    assert sorted((a.key, len(a.members)) for a in again) == sorted(
        (a.key, len(a.members)) for a in areas)


def test_overflow_hours_count_the_hours_a_bin_would_stand_full():
    at = 1_780_000_000.0
    window = (at, at + 48 * 3600)
    assert overflow_hours(_forecast(95, 0.5, at), 90, *window, safety=1.0) == pytest.approx(48)
    # 60 % now, 0.8 points an hour: full after 37.5 h, so full for the last 10.5 h.
    assert overflow_hours(_forecast(60, 0.8, at), 90, *window, safety=1.0) == pytest.approx(
        10.5, abs=1)
    # The pessimistic forecast (growth × 1.5) makes it full after 25 h.
    assert overflow_hours(_forecast(60, 0.8, at), 90, *window, safety=1.5) == pytest.approx(
        23, abs=1)
    assert overflow_hours(_forecast(20, 0.2, at), 90, *window, safety=1.2) == 0


def test_an_areas_revisit_interval_is_its_fastest_bin_from_empty_to_full():
    at = 1_780_000_000.0
    fast, slow = _forecast(50, 0.6, at), _forecast(30, 0.3, at)
    assert revisit_interval_h([fast, slow, None], [90, 90, 90]) == pytest.approx(150)
    assert revisit_interval_h([None], [90]) == 14 * 24     # nothing known: two weeks
    assert revisit_interval_h([_forecast(50, 0.6, at)], [12]) == 24  # never less than a day


def test_the_round_inside_an_area_is_about_as_long_as_the_path_through_its_bins():
    lat = np.array([50.0, 50.0, 50.0])
    lon = np.array([9.0, 9.01, 9.02])
    step = float(haversine_m(50.0, 9.0, 50.0, 9.01))
    assert tour_m(lat, lon, 1.35) == pytest.approx(2 * step * 1.35, rel=1e-6)
    assert tour_m(lat[:1], lon[:1], 1.35) == 0


def _decide(config, groups: dict[str, tuple[tuple[float, float], float, float]], wait_h=24.0):
    """Areas of 3 bins each at the given places with (overflow hours, interval hours)."""
    points, overflow, interval = [], [], []
    for key, (where, hours, every) in groups.items():
        points += [(key, *p) for p in _around(*where, 3, 100, seed=len(points))]
        overflow.append(hours)
        interval.append(every)
    areas = group(points, link_m=1000)
    order = [next(i for i, a in enumerate(areas) if a.key == key) for key in groups]
    lat = np.array([p[1] for p in points])
    lon = np.array([p[2] for p in points])
    decisions = due_areas(areas, [overflow[order.index(i)] for i in range(len(areas))],
                          [interval[order.index(i)] for i in range(len(areas))], lat, lon,
                          config, wait_h=wait_h)
    return {d.area.key: d for d in decisions}


def test_an_area_is_due_when_its_overflow_costs_more_than_waiting_saves():
    config = _config(overflow_cost_m_per_h=300)
    d = _decide(config, {"Nah": (_east(2), 10.0, 72.0), "Fern": (_east(20), 10.0, 72.0),
                         "Ruhig": (_east(2), 0.0, 72.0)})
    # Near: 2 × 2 km × 1.35 = 5.4 km a visit, a third of it saved by waiting a day: 1.8 km,
    # less than 10 overflow hours at 300 m (3 km). Far: 54 km, 18 km saved, more than 3 km.
    assert d["Nah"].due and not d["Fern"].due and not d["Ruhig"].due
    # Reached from "Nah", due today, 18 km instead of 20 from the depot.
    assert d["Fern"].visit_cost_m == pytest.approx(2 * 1.35 * 18_000, rel=0.02)
    # Enough overflow makes the far one worth it too.
    d = _decide(config, {"Fern": (_east(20), 70.0, 72.0)})
    assert d["Fern"].due


def test_a_village_next_to_a_town_visited_today_is_cheap_to_take_along():
    config = _config(overflow_cost_m_per_h=300)
    alone = _decide(config, {"Dorf": (_east(22), 12.0, 72.0)})
    assert not alone["Dorf"].due
    both = _decide(config, {"Stadt": (_east(20), 200.0, 48.0), "Dorf": (_east(22), 12.0, 72.0)})
    assert both["Stadt"].due and both["Dorf"].due
    assert both["Dorf"].visit_cost_m < alone["Dorf"].visit_cost_m / 5


def test_over_a_weekend_waiting_saves_more_and_so_needs_more_overflow_to_go():
    config = _config(overflow_cost_m_per_h=300)
    # 27 km a visit, a third saved by waiting a day, all of it by waiting three; 40 overflow
    # hours are worth 12 km.
    groups = {"Ort": (_east(10), 40.0, 72.0)}
    assert _decide(config, groups, wait_h=24)["Ort"].due
    assert not _decide(config, groups, wait_h=72)["Ort"].due


def _bins(at: float, spec: list[tuple[str, tuple[float, float], float, float]]) -> list[BinState]:
    return [BinState(name, name, "Stadt", lat, lon, "bus_stop", 120.0,
                     _forecast(level, rate, at))
            for name, (lat, lon), level, rate in spec]


def _windows(config, day):
    start, end = shift_window(day, config)
    nstart, nend = shift_window(next_working_day(day, config), config)
    return dict(shift_start=start, shift_end=end, next_start=nstart, next_end=nend)


def test_in_an_area_due_today_the_bins_full_before_its_next_visit_go_and_quiet_areas_wait():
    config = _config(overflow_cost_m_per_h=300)
    w = _windows(config, MONDAY)
    at = w["shift_start"]
    town, village = _east(3), _east(8)
    bins = _bins(at, [
        ("full", town, 95, 0.5),        # standing full: the area is due
        ("soon", town, 50, 0.6),        # full in under three days: before the next visit
        ("half", town, 45, 0.2),        # half full, slow: worth taking along, not a must
        ("empty", town, 5, 0.05),       # nothing to take
        ("dorf-a", village, 50, 0.2),   # the village can wait
        ("dorf-b", village, 30, 0.2)])
    chosen = {c.bin.device_id: c for c in select_bins(bins, config, **w)}
    assert {k for k, c in chosen.items() if c.reason == "must"} == {"full", "soon"}
    assert chosen["half"].reason == "may" and chosen["half"].prize_m > 0
    assert "empty" not in chosen
    assert not {"dorf-a", "dorf-b"} & chosen.keys()


def test_on_friday_a_bin_that_would_be_full_over_the_weekend_makes_its_area_due():
    config = _config(overflow_cost_m_per_h=300)
    for day, expect in ((MONDAY, False), (FRIDAY, True)):
        w = _windows(config, day)
        at = w["shift_start"]
        # Full in about 55 hours (pessimistically): on a Monday tomorrow's round is in time,
        # on a Friday the next one (Monday) is not.
        bins = _bins(at, [(f"b{i}", _east(6), 50, 0.6) for i in range(4)])
        musts = [c for c in select_bins(bins, config, **w) if c.reason == "must"]
        assert len(musts) == (4 if expect else 0), day
