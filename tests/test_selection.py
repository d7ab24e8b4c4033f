"""Which bins and plants go on today's round: must-go, may-go, skip — on plain values."""
from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from planner import config as planner_config
from planner.forecast import forecast_dry, forecast_fill
from planner.plan import next_working_day, shift_window
from planner.selection import BinState, PlantState, select_bins, select_plants

MONDAY = dt.date(2026, 5, 4)


def _config(**changes) -> planner_config.PlannerConfig:
    """The default config choosing bin by bin (daily or on round days), not by area
    (tests/test_areas.py)."""
    data = planner_config.load().model_dump()
    data["areas"]["enabled"] = False
    data.update(changes)
    return planner_config.PlannerConfig.model_validate(data)


def _bin(device_id: str, level_now: float, rate_pct_h: float, at: float, *,
         town: str = "Testdorf", lat: float = 50.2602, lon: float = 9.2801,
         full_pct: float = 90.0) -> BinState:
    """A bin filling steadily for three days up to ``level_now`` (readings every 30 min)."""
    times = at - np.arange(0, 72 * 3600, 1800)[::-1]
    levels = np.clip(level_now - rate_pct_h * (at - times) / 3600, 0, 100)
    forecast = forecast_fill(times, levels, at, full_pct=full_pct)
    return BinState(device_id, device_id, town, lat, lon, "bus_stop", 120.0, forecast)


def _windows(config, day=MONDAY):
    start, end = shift_window(day, config)
    nstart, nend = shift_window(next_working_day(day, config), config)
    return dict(shift_start=start, shift_end=end, next_start=nstart, next_end=nend)


def test_a_bin_that_would_overflow_before_tomorrow_is_must_go_and_a_slow_one_is_skipped():
    config = _config(use_rounds=False)
    w = _windows(config)
    at = w["shift_start"]
    chosen = select_bins([_bin("fast", 70, 1.0, at), _bin("slow", 30, 0.1, at),
                          _bin("full", 95, 0.2, at)], config, **w)
    reasons = {c.bin.device_id: c.reason for c in chosen}
    assert reasons == {"fast": "must", "full": "must"}
    fast = next(c for c in chosen if c.bin.device_id == "fast")
    assert 70 < fast.fill_due_pct < 90        # expected at mid-shift, higher than now
    assert fast.demand_l == pytest.approx(fast.fill_due_pct / 100 * 120, abs=1)


def test_may_go_is_worth_more_the_sooner_the_bin_would_be_full():
    config = _config(use_rounds=False, may_value_m=1000, may_trip_share=0, bundle_days=0)
    w = _windows(config)
    at = w["shift_start"]
    # Full the day after tomorrow vs. in about four days: both may-go, the first worth more.
    soon = _bin("soon", 55, 0.9, at)
    later = _bin("later", 50, 0.5, at)
    chosen = {c.bin.device_id: c for c in select_bins([soon, later], config, **w)}
    assert chosen["soon"].reason == chosen["later"].reason == "may"
    assert chosen["soon"].prize_m > chosen["later"].prize_m > 0


def test_on_a_round_day_the_bins_due_before_the_next_round_are_taken_and_not_in_between():
    # Testdorf's rounds: Monday and Thursday.
    config = _config(use_rounds=True, fixed_schedule={"Testdorf": ["mon", "thu"]},
                     emergency_h=48)
    monday = _windows(config, MONDAY)
    at = monday["shift_start"]
    # 50 % now and 0.6 %/h: fine until Tuesday, full well before Thursday's round.
    chosen = select_bins([_bin("b", 50, 0.6, at)], config, **monday)
    assert [c.reason for c in chosen] == ["must"]
    # The same bin on Tuesday (not a round day): it would be full Wednesday, less than 48 h
    # before Thursday's round, so no extra trip.
    tuesday = _windows(config, MONDAY + dt.timedelta(days=1))
    at = tuesday["shift_start"]
    assert [c.reason for c in select_bins([_bin("b", 50, 0.6, at)], config, **tuesday)
            if c.reason == "must"] == []
    # One that is already nearly full on Tuesday would stand full for two days: extra trip.
    assert [c.reason for c in select_bins([_bin("b", 88, 1.2, at)], config, **tuesday)] \
        == ["must"]


def test_friday_covers_the_weekend():
    config = _config(use_rounds=False)
    friday = MONDAY + dt.timedelta(days=4)
    w = _windows(config, friday)
    assert dt.datetime.fromtimestamp(w["next_start"]).date() == MONDAY + dt.timedelta(days=7)
    at = w["shift_start"]
    # 40 % at 0.7 %/h would be fine until tomorrow, but not until Monday.
    assert [c.reason for c in select_bins([_bin("b", 40, 0.7, at)], config, **w)] == ["must"]


def test_bins_without_readings_are_not_routed():
    config = _config()
    w = _windows(config)
    empty = BinState("none", "none", "Testdorf", 50.0, 9.0, "bus_stop", 120.0, None)
    assert select_bins([empty], config, **w) == []


def _plant(device_id: str, moisture_now: float, rate_pct_h: float, at: float, *,
           rain: float = 0.0, dry: float = 18.0) -> PlantState:
    times = at - np.arange(0, 48 * 3600, 3600)[::-1]
    values = moisture_now + rate_pct_h * (at - times) / 3600  # drying: wetter before
    forecast = forecast_dry(times, values, at, dry_pct=dry)
    return PlantState(device_id, device_id, "Testdorf", 50.26, 9.28, "tree", dry, forecast,
                      rain_mm_24h=rain)


def test_dry_trees_are_watered_unless_it_rained():
    config = _config()
    w = _windows(config)
    at = w["shift_start"]
    chosen = select_plants([_plant("dry", 15, 0.05, at), _plant("soon", 19, 0.1, at),
                            _plant("wet", 30, 0.05, at), _plant("rained", 15, 0.05, at,
                                                                rain=8.0)],
                           config, shift_start=w["shift_start"], shift_end=w["shift_end"])
    reasons = {c.bin.device_id: c.reason for c in chosen}
    assert reasons == {"dry": "must", "soon": "may"}
    assert all(c.demand_l == 80 for c in chosen)  # litres per tree
