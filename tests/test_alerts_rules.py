"""Alert rules as data and the checks, on plain values: positive, negative and edge cases."""
from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from alerts import checks
from alerts.checks import (DeviceWindow, Observation, beaufort, check, dew_point_c, evaluate,
                           learned_interval_s, requirements)
from alerts.params import format_duration, parse_duration
from alerts.rules import load_rules

RULES = load_rules()
NOW = datetime(2026, 1, 15, 5, 0, tzinfo=timezone.utc)
NOW_S = NOW.timestamp()


def ago(minutes: float) -> float:
    return NOW_S - minutes * 60


def readings(*pairs: tuple[float, float]) -> np.ndarray:
    """(minutes ago, value) pairs -> the (epoch s, value) array of a DeviceWindow."""
    return np.array([(ago(m), v) for m, v in pairs], dtype=float).reshape(-1, 2)


def every(minutes: float, values: list[float]) -> np.ndarray:
    """Values at a fixed interval, oldest first, the newest at NOW."""
    n = len(values)
    return readings(*[((n - 1 - i) * minutes, v) for i, v in enumerate(values)])


BIN_ATTRS = {"distance_empty_m": 1.0, "distance_full_m": 0.15, "volume_l": 120}


def window(kind: str = "bin", attributes: dict | None = None, **metrics: np.ndarray) -> DeviceWindow:
    return DeviceWindow("dev-1", kind=kind, site_type="bus_stop", municipality="Wächtersbach",
                        attributes=attributes if attributes is not None else dict(BIN_ATTRS),
                        readings=metrics)


def run(rule_id: str, w: DeviceWindow, now: datetime = NOW) -> Observation:
    return check(RULES[rule_id], w, now)


def state(o: Observation) -> str:
    if not o.known:
        return "unknown"
    return "active" if o.active else ("clearing" if o.clearing else "band")


# ---------------------------------------------------------------------------- rules as data

def test_default_rules_load_and_cover_every_kind():
    assert {r.kind for r in RULES} == set(checks.CHECKS)
    assert RULES["bin_fire"].severity == "critical"
    assert RULES["bin_fire"].min_duration == timedelta(0)
    assert RULES["soil_dry"].min_duration == timedelta(hours=12)
    assert RULES["bin_full"].params.fill_pct == 90 and RULES["bin_full"].params.clear_pct == 70
    assert RULES["storm"].params.gust_ms == 20.8


def test_site_file_overrides_by_id_and_extends(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("""
rules:
  - id: bin_full
    params: {fill_pct: 85}
    remind_every: 4h
  - id: storm
    enabled: false
  - id: bin_full_town_centre
    based_on: bin_full
    applies_to: {site_types: [town_centre]}
    params: {fill_pct: 75, clear_pct: 55}
  - id: gale
    kind: storm
    severity: critical
    applies_to: {kinds: [weather]}
    params: {gust_ms: 28.5, clear_gust_ms: 24.5}
""", encoding="utf-8")
    rules = load_rules(path)
    assert rules["bin_full"].params.fill_pct == 85
    assert rules["bin_full"].params.clear_pct == 70  # merged, not replaced
    assert rules["bin_full"].remind_every == timedelta(hours=4)
    assert not rules["storm"].enabled and "storm" not in {r.id for r in rules.enabled()}
    centre = rules["bin_full_town_centre"]
    assert centre.kind == "bin_full" and centre.params.fill_pct == 75
    assert centre.applies_to.kinds == ["bin"] and centre.applies_to.site_types == ["town_centre"]
    assert rules["gale"].severity == "critical" and rules["gale"].message_key == "storm"
    assert len(rules) == len(RULES) + 2


@pytest.mark.parametrize("text, words", [
    ("[{id: bin_full, params: {fill_pct: 85, typo_pct: 3}}]", "typo_pct"),
    ("[{id: bin_full, params: {fill_pct: 60}}]", "clear_pct"),  # clear above alarm threshold
    ("[{id: new_rule, kind: bin_full, severity: info}]", "fill_pct"),  # incomplete new rule
    ("[{id: new_rule, kind: no_such_check, severity: info, params: {}}]", "new_rule"),
    ("[{id: bin_full, severity: urgent}]", "severity"),
    ("[{id: bin_full, min_duration: soon}]", "duration"),
    ("[{id: x_rule, based_on: nothing}]", "based_on"),
    ("[{params: {}}]", "without an id"),
])
def test_bad_rules_are_refused_with_the_reason(text, words):
    with pytest.raises(ValueError) as err:
        load_rules(text=text)
    assert words in str(err.value)


@pytest.mark.parametrize("text, seconds", [
    ("30min", 1800), ("2h", 7200), ("1d", 86400), ("1h30min", 5400), ("90s", 90), ("0", 0),
    ("PT30M", 1800), ("P1DT2H", 93600), (45, 45), ("1.5h", 5400),
])
def test_durations(text, seconds):
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(parse_duration(text))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 parsecs", "-3", "h2"])
def test_bad_durations(text):
    with pytest.raises(ValueError):
        parse_duration(text)


def test_applies_to_picks_devices_and_evaluate_runs_each_applicable_rule():
    bin_ = window("bin", fill_level_pct=every(30, [95, 95, 95]))
    weather = DeviceWindow("wetter-1", kind="weather", municipality="Birstein",
                           readings={"temperature_c": every(10, [1.0]),
                                     "relative_humidity_pct": every(10, [96.0])})
    evaluations = evaluate(RULES, [bin_, weather], NOW)
    by_device = {}
    for e in evaluations:
        by_device.setdefault(e.device_id, set()).add(e.rule_id)
    assert by_device["dev-1"] == {"bin_full", "bin_overflow_before_collection", "bin_fire",
                                  "bin_tilted", "battery_low", "device_offline"}
    assert by_device["wetter-1"] == {"frost", "heavy_rain", "storm", "battery_low",
                                     "device_offline"}
    active = {(e.device_id, e.rule_id) for e in evaluations if e.observation.active}
    assert active == {("dev-1", "bin_full"), ("wetter-1", "frost")}
    frost = next(e for e in evaluations if e.rule_id == "frost")
    assert frost.municipality == "Birstein"


def test_a_failing_check_is_reported_unknown_and_does_not_stop_the_others(monkeypatch):
    def broken(*_):
        raise ZeroDivisionError("boom")

    monkeypatch.setitem(checks.CHECKS, "bin_full", broken)
    evaluations = evaluate(RULES, [window(fill_level_pct=every(30, [95, 95, 95]))], NOW)
    full = next(e for e in evaluations if e.rule_id == "bin_full")
    assert not full.observation.known and "boom" in full.observation.detail["reason"]
    assert len(evaluations) == 6


def test_now_must_be_aware():
    with pytest.raises(ValueError):
        evaluate(RULES, [window()], datetime(2026, 1, 1))


def test_requirements_name_metrics_and_history():
    req = requirements(RULES)
    for metric in ("fill_level_pct", "distance_m", "tilt_deg", "temperature_c",
                   "device_temperature_c", "battery_pct", "battery_v", "relative_humidity_pct",
                   "precipitation_mm", "wind_gust_ms", "soil_moisture_vwc_pct", "relay",
                   "pulse_count"):
        assert metric in req.metrics, metric
    assert req.metrics["precipitation_mm"] >= timedelta(hours=6)
    assert req.metrics["soil_moisture_vwc_pct"] >= timedelta(hours=24)
    assert req.uplinks >= timedelta(hours=48)
    assert req.longest == max(req.uplinks, max(req.metrics.values()))


def test_window_cleans_its_input():
    w = DeviceWindow("d", readings={"x": np.array([[3.0, 1.0], [1.0, np.nan], [2.0, 5.0],
                                                    [2.0, 6.0]])})
    t, v = w.series("x")
    assert t.tolist() == [2.0, 3.0] and v.tolist() == [6.0, 1.0]
    assert w.series("x", until=2.5)[0].tolist() == [2.0]
    assert w.series("nothing")[0].size == 0
    rows = [(datetime.fromtimestamp(ago(10), timezone.utc), "fill_level_pct", 50.0),
            (ago(40), "fill_level_pct", 40.0), (ago(10), "battery_pct", 80.0)]
    built = DeviceWindow.from_rows("d", rows, kind="bin")
    assert built.series("fill_level_pct")[1].tolist() == [40.0, 50.0]
    assert built.uplink_times().tolist() == [ago(40), ago(10)]


# ---------------------------------------------------------------------------------- bin_full

@pytest.mark.parametrize("levels, expected", [
    ([60, 92, 95], "active"),      # median of the last three: 92
    ([90, 90, 90], "active"),      # at the threshold
    ([50, 98, 52], "clearing"),    # one wild echo does not make a full bin
    ([80, 85, 89], "band"),        # between clear (70) and full (90)
    ([70, 70, 70], "band"),        # clear is strictly below 70
    ([95, 95, 10, 5], "clearing"),  # emptied
])
def test_bin_full(levels, expected):
    o = run("bin_full", window(fill_level_pct=every(30, levels)))
    assert state(o) == expected
    assert o.detail["threshold_pct"] == 90


def test_bin_full_unknown_without_fresh_readings_and_ignores_the_future():
    assert state(run("bin_full", window())) == "unknown"
    stale = readings((7 * 60, 95), (7 * 60 + 30, 95))
    assert state(run("bin_full", window(fill_level_pct=stale))) == "unknown"
    future = readings((60, 20), (30, 20), (0, 20), (-30, 99), (-60, 99), (-90, 99))
    assert state(run("bin_full", window(fill_level_pct=future))) == "clearing"


# ------------------------------------------------------------------ bin_overflow_before_collection

def _overflow(full_in_h: float | None, collection_in_h: float | None, level: float = 60.0):
    w = DeviceWindow("dev-1", kind="bin", attributes=BIN_ATTRS,
                     readings={"fill_level_pct": every(30, [level])},
                     full_at=None if full_in_h is None else NOW_S + full_in_h * 3600,
                     next_collection=None if collection_in_h is None
                     else NOW_S + collection_in_h * 3600)
    return run("bin_overflow_before_collection", w)


def test_overflow_before_collection():
    o = _overflow(10, 24)
    assert state(o) == "active" and o.value == pytest.approx(14)
    assert o.detail["hours_early"] == pytest.approx(14)
    assert state(_overflow(24, 24)) == "active"     # full at the collection: too late
    assert state(_overflow(26, 24)) == "band"       # a little after: inside the hysteresis
    assert state(_overflow(30, 24)) == "clearing"   # 6 h after the collection
    assert state(_overflow(None, 24)) == "unknown"  # no forecast
    assert state(_overflow(10, None)) == "unknown"  # no plan
    assert state(_overflow(10, -1)) == "unknown"    # the "next" collection is past: stale plan
    skipped = _overflow(0, 24, level=95)            # already full: bin_full's business
    assert state(skipped) == "band" and skipped.detail["skipped"]


def test_overflow_with_a_forecast_beyond_its_horizon_clears():
    w = DeviceWindow("dev-1", kind="bin", readings={"fill_level_pct": every(30, [20])},
                     full_at=math.inf, next_collection=NOW_S + 3600)
    o = run("bin_overflow_before_collection", w)
    assert state(o) == "clearing" and o.detail["full_at"] is None


# ---------------------------------------------------------------------------------- bin_fire

@pytest.mark.parametrize("metric, series, expected", [
    ("temperature_c", [(60, 20.0), (30, 22.0), (0, 61.0)], "active"),          # hot
    ("device_temperature_c", [(60, 20.0), (30, 20.0), (0, 42.0)], "active"),   # +22 K in 30 min
    ("device_temperature_c", [(30.6, 20.0), (0, 40.5)], "active"),             # jittered interval
    ("temperature_c", [(60, 20.0), (0, 42.0)], "clearing"),  # +22 K, but over an hour
    ("temperature_c", [(60, 20.0), (30, 21.0), (0, 22.0)], "clearing"),
    ("temperature_c", [(60, 50.0), (30, 50.0), (0, 50.0)], "band"),  # warm, not yet clear
    ("temperature_c", [(60, 60.0), (30, 59.0), (0, 59.5)], "band"),
    ("temperature_c", [(30, 58.0), (0, 60.0)], "active"),  # at the threshold
])
def test_bin_fire(metric, series, expected):
    o = run("bin_fire", window(**{metric: readings(*series)}))
    assert state(o) == expected
    if expected == "active":
        assert o.detail["metric"] == metric


def test_bin_fire_a_slow_rise_over_an_hour_is_no_fire():
    o = run("bin_fire", window(temperature_c=readings((60, 20.0), (0, 42.0))))
    assert not o.active  # the previous reading is outside the 40-min window


def test_bin_fire_takes_the_worst_sensor_and_needs_fresh_data():
    o = run("bin_fire", window(temperature_c=every(30, [20, 21]),
                               device_temperature_c=every(30, [25, 70])))
    assert o.active and o.value == 70 and o.detail["metric"] == "device_temperature_c"
    assert state(run("bin_fire", window())) == "unknown"
    old = readings((200, 80.0), (180, 85.0))
    assert state(run("bin_fire", window(temperature_c=old))) == "unknown"


# ---------------------------------------------------------------------------------- bin_tilted

def test_bin_tilted_by_tilt_angle():
    assert state(run("bin_tilted", window(tilt_deg=every(30, [2, 50, 52])))) == "active"
    assert state(run("bin_tilted", window(tilt_deg=every(30, [2, 2, 80])))) == "band"  # a lid opened once
    assert state(run("bin_tilted", window(tilt_deg=every(30, [45, 45])))) == "active"  # edge
    assert state(run("bin_tilted", window(tilt_deg=every(30, [60, 60, 10])))) == "clearing"
    assert state(run("bin_tilted", window(kind="bin", attributes={}))) == "unknown"


def _distance(fill_pct: float) -> float:
    return 1.0 - fill_pct / 100 * (1.0 - 0.15)


def test_bin_knocked_over_seen_by_the_distance_sensor():
    before = [_distance(60)] * 3
    o = run("bin_tilted", window(distance_m=every(30, before + [1.4, 1.6, 1.5])))
    assert state(o) == "active"
    assert o.detail["variant"] == "far" and o.detail["previous_fill_pct"] == pytest.approx(60)
    # two far readings are not yet "stays"
    assert state(run("bin_tilted", window(distance_m=every(30, before + [1.4, 1.6])))) == "band"
    # a nearly empty bin reading far: no spilled contents to suspect
    nearly_empty = [_distance(10)] * 3 + [1.4, 1.6, 1.5]
    assert not run("bin_tilted", window(distance_m=every(30, nearly_empty))).active
    # an emptied bin reads its bottom, not beyond: clear
    emptied = before + [1.0, 1.0, 1.0]
    assert state(run("bin_tilted", window(distance_m=every(30, emptied)))) == "clearing"
    # the fill before the jump from fill_level_pct when stored
    fills = every(30, [65, 66, 67, 0, 0, 0])
    o = run("bin_tilted", window(distance_m=every(30, before + [1.4, 1.6, 1.5]),
                                 fill_level_pct=fills))
    assert o.active and o.detail["previous_fill_pct"] == pytest.approx(66)


def test_bin_knocked_over_needs_the_geometry():
    o = run("bin_tilted", window(attributes={}, distance_m=every(30, [0.5] * 3 + [1.6] * 3)))
    assert state(o) == "unknown"


# -------------------------------------------------------------------------------- battery_low

@pytest.mark.parametrize("levels, expected", [
    ([16, 14, 14], "active"), ([15, 15, 15], "active"), ([20, 20, 20], "band"),
    ([14, 30, 30], "clearing"), ([25, 25, 25], "clearing"),
])
def test_battery_low_by_percent(levels, expected):
    assert state(run("battery_low", window(battery_pct=every(30, levels)))) == expected


def _volts(model: str | None, volts: float, attributes: dict | None = None) -> Observation:
    w = DeviceWindow("d", kind="soil", model=model, attributes=attributes or {},
                     readings={"battery_v": every(60, [volts] * 3)})
    return run("battery_low", w)


def test_battery_low_by_voltage_per_chemistry():
    assert state(_volts("dragino/lse01", 3.25)) == "active"     # Li-SOCl2 at its end
    assert state(_volts("dragino/lse01", 3.35)) == "band"
    assert state(_volts("dragino/lse01", 3.6)) == "clearing"
    assert state(_volts("decentlab/dl-mbx", 2.9)) == "clearing"  # healthy alkaline pair
    assert state(_volts("decentlab/dl-mbx", 2.45)) == "active"
    assert state(_volts("teneo-iot/filling-degree-sensor", 2.95)) == "active"  # LiFePO4
    assert state(_volts("unknown/model", 2.0)) == "unknown"     # no guess
    assert state(_volts("unknown/model", 2.0, {"battery_low_v": 2.2})) == "active"
    assert state(_volts(None, 3.0)) == "unknown"


def test_battery_percent_wins_over_voltage():
    w = DeviceWindow("d", kind="bin", model="dragino/ldds75",
                     readings={"battery_pct": every(30, [80] * 3),
                               "battery_v": every(30, [3.0] * 3)})
    assert state(run("battery_low", w)) == "clearing"


# ------------------------------------------------------------------------------ device_offline

def _uplinks(interval_min: float, count: int, silent_min: float) -> np.ndarray:
    last = ago(silent_min)
    return last - interval_min * 60 * np.arange(count)[::-1]


def _offline(kind: str, interval_min: float, count: int, silent_min: float, **extra):
    w = DeviceWindow("d", kind=kind, uplinks=_uplinks(interval_min, count, silent_min), **extra)
    return run("device_offline", w)


def test_offline_learned_interval_ten_minutes_silent_31_minutes():
    o = _offline("weather", 10, 30, 31)
    assert o.active and o.detail["learned"] and o.detail["interval_min"] == pytest.approx(10)


def test_offline_learned_interval_sixty_minutes_silent_90_minutes_is_not():
    o = _offline("soil", 60, 30, 90)
    assert not o.active and o.detail["interval_min"] == pytest.approx(60)
    assert _offline("soil", 60, 30, 181).active  # 3 x 60 min passed


def test_offline_edges():
    assert state(_offline("weather", 10, 30, 29)) == "band"
    assert state(_offline("weather", 10, 30, 30)) == "active"  # exactly k x interval
    assert state(_offline("weather", 10, 30, 5)) == "clearing"
    # a device sending every minute is not offline after 3 minutes: 20 min at least
    assert not _offline("weather", 1, 60, 5).active
    assert _offline("weather", 1, 60, 21).active


def test_offline_interval_is_robust_to_lost_and_duplicated_uplinks():
    times = list(_uplinks(10, 40, 35))
    del times[10], times[20], times[25]  # three lost
    times += times[-5:]                  # five duplicates (two paths delivered them)
    w = DeviceWindow("d", kind="weather", uplinks=np.array(times))
    o = run("device_offline", w)
    assert o.active and o.detail["interval_min"] == pytest.approx(10)
    assert learned_interval_s(np.array(times)) == pytest.approx(600)
    assert learned_interval_s(np.array([1.0, 2.0])) is None


def test_offline_before_the_interval_is_learned_waits_longer():
    # two uplinks only: the kind's interval (bin: 30 min) and at least 2 h
    assert not _offline("bin", 30, 2, 100).active
    assert _offline("bin", 30, 2, 121).active
    custom = _offline("bin", 30, 2, 121, attributes={"interval_s": 6 * 3600})
    assert not custom.active  # the device says it reports every 6 h


def test_offline_from_readings_and_last_seen():
    w = DeviceWindow("d", kind="weather",
                     readings={"temperature_c": every(10, [5.0] * 20)},
                     last_seen=NOW - timedelta(minutes=0))
    assert state(run("device_offline", w)) == "clearing"  # last_seen is newer than readings
    assert state(run("device_offline", DeviceWindow("d", kind="bin"))) == "unknown"
    silent = DeviceWindow("d", kind="weather",
                          readings={"temperature_c": readings(*[(35 + 10 * i, 5.0)
                                                                for i in range(20)])})
    assert run("device_offline", silent).active


# ---------------------------------------------------------------------------------------- frost

def _weather(**metrics: np.ndarray) -> DeviceWindow:
    return DeviceWindow("wetter-1", kind="weather", municipality="Birstein", readings=metrics)


def test_dew_point_magnus():
    assert dew_point_c(20.0, 50.0) == pytest.approx(9.26, abs=0.05)
    assert dew_point_c(0.0, 100.0) == pytest.approx(0.0, abs=0.01)
    assert dew_point_c(10.0, 80.0) == pytest.approx(6.71, abs=0.05)


@pytest.mark.parametrize("temp, humidity, rain, expected", [
    (1.5, 95, 0.0, "active"),    # humid
    (2.0, 87, 0.0, "active"),    # spread ≈ 1.9 K at 87 %
    (3.0, 92, 0.0, "active"),    # at the temperature threshold
    (2.0, 70, 0.0, "clearing"),  # dry air: spread ≈ 4.9 K
    (-1.0, 70, 0.5, "active"),   # freezing after rain
    (-1.0, 70, 0.0, "clearing"),
    (0.5, 70, 0.5, "band"),      # wet road just above freezing: no alarm, not clear
    (5.0, 98, 1.0, "clearing"),  # warm
    (3.5, 95, 0.0, "band"),      # between 3 and 4 °C
])
def test_frost(temp, humidity, rain, expected):
    w = _weather(temperature_c=every(10, [temp] * 6), relative_humidity_pct=every(10, [humidity] * 6),
                 precipitation_mm=every(10, [0.0] * 5 + [rain]))
    o = run("frost", w)
    assert state(o) == expected
    assert o.detail["dew_point_c"] == pytest.approx(dew_point_c(temp, humidity))


def test_frost_spread_edge_and_old_rain():
    # at 2 °C a 2.0 K spread is about 86.6 % humidity: just inside, just outside
    w = _weather(temperature_c=every(10, [2.0]), relative_humidity_pct=every(10, [86.8]))
    o = run("frost", w)
    assert o.detail["spread_k"] < 2.0 and o.active
    w = _weather(temperature_c=every(10, [2.0]), relative_humidity_pct=every(10, [86.4]))
    o = run("frost", w)
    assert o.detail["spread_k"] > 2.0 and state(o) == "band"
    rain_4h_ago = readings((240, 2.0), (10, 0.0), (0, 0.0))
    w = _weather(temperature_c=every(10, [-2.0]), relative_humidity_pct=every(10, [60.0]),
                 precipitation_mm=rain_4h_ago)
    assert state(run("frost", w)) == "clearing"  # the rain was before the 3 h window


def test_frost_without_humidity_and_stale():
    w = _weather(temperature_c=every(10, [-2.0]), precipitation_mm=every(10, [0.3]))
    assert run("frost", w).active                 # freezing after precipitation
    w = _weather(temperature_c=every(10, [1.0]))
    assert state(run("frost", w)) == "band"       # cannot tell the moisture: no alarm, no clear
    stale = _weather(temperature_c=readings((120, -5.0)), relative_humidity_pct=readings((120, 99)))
    assert state(run("frost", stale)) == "unknown"


# ----------------------------------------------------------------------------------- heavy_rain

@pytest.mark.parametrize("values, expected", [
    ([0.0] * 30 + [3.0] * 6, "active"),     # 18 mm in the last hour
    ([0.0] * 30 + [2.5] * 6, "active"),     # 15 mm: at the threshold
    ([0.6] * 36, "active"),                 # 21.6 mm in 6 h, 3.6 mm/h
    ([0.0] * 30 + [1.6] * 6, "band"),       # 9.6 mm in 1 h: heavy, not a warning, not clear
    ([0.1] * 36, "clearing"),
    ([0.0] * 36, "clearing"),
])
def test_heavy_rain(values, expected):
    o = run("heavy_rain", _weather(precipitation_mm=every(10, values)))
    assert state(o) == expected


def test_heavy_rain_window_edges():
    # a reading exactly 1 h old belongs to the hour before
    w = _weather(precipitation_mm=readings((60, 3.0), (50, 5.0), (0, 9.0)))
    o = run("heavy_rain", w)
    assert o.detail["mm_1h"] == pytest.approx(14.0) and not o.active
    assert state(run("heavy_rain", _weather())) == "unknown"


# ---------------------------------------------------------------------------------------- storm

@pytest.mark.parametrize("gust, expected", [
    (21.0, "active"), (20.8, "active"), (20.7, "band"), (17.2, "band"), (15.0, "clearing"),
])
def test_storm(gust, expected):
    o = run("storm", _weather(wind_gust_ms=every(10, [5.0, gust])))
    assert state(o) == expected
    assert o.detail["gust_kmh"] == pytest.approx(gust * 3.6)


def test_beaufort():
    assert beaufort(20.8) == 9 and beaufort(17.2) == 8 and beaufort(32.7) == 12
    assert beaufort(0.1) == 0 and beaufort(50) == 12


# ------------------------------------------------------------------------------------- soil_dry

def _soil(attributes: dict | None = None, **metrics: np.ndarray) -> DeviceWindow:
    return DeviceWindow("boden-1", kind="soil", site_type="tree", attributes=attributes or {},
                        readings=metrics)


def test_soil_dry_and_since_when():
    values = [25.0] * 10 + [17.0] * 14  # hourly: dry for the last 14 readings
    o = run("soil_dry", _soil(soil_moisture_vwc_pct=every(60, values)))
    assert o.active and o.value == pytest.approx(17.0)
    assert o.since == datetime.fromtimestamp(ago(13 * 60), timezone.utc)
    assert o.detail["since_at"] == pytest.approx(ago(13 * 60))


@pytest.mark.parametrize("levels, attributes, expected", [
    ([17, 17, 17], {}, "active"),
    ([18, 18, 18], {}, "band"),                              # at the threshold: not below
    ([19, 20, 20], {}, "band"),
    ([21, 21, 21], {}, "clearing"),                          # threshold + 3
    ([20, 20, 20], {"dry_threshold_pct": 22}, "active"),     # the probe's own threshold
    ([10, 30, 30], {}, "clearing"),                          # watered
])
def test_soil_dry(levels, attributes, expected):
    o = run("soil_dry", _soil(attributes, soil_moisture_vwc_pct=every(60, levels)))
    assert state(o) == expected


def test_soil_dry_since_restarts_after_watering_and_noise_does_not():
    values = [16.0] * 20 + [30.0] + [16.0] * 8
    o = run("soil_dry", _soil(soil_moisture_vwc_pct=every(60, values)))
    assert o.since == datetime.fromtimestamp(ago(7 * 60), timezone.utc)
    # noise across the threshold (17.5 / 18.5) does not restart the dry spell
    values = [25.0] * 4 + [18.5, 17.5] * 8
    o = run("soil_dry", _soil(soil_moisture_vwc_pct=every(60, values)))
    assert o.active and o.since == datetime.fromtimestamp(ago(14 * 60), timezone.utc)


def test_soil_dry_with_several_depths():
    w = _soil(soil_moisture_vwc_pct_1=every(60, [10.0] * 3),
              soil_moisture_vwc_pct_2=every(60, [20.0] * 3))
    o = run("soil_dry", w)
    assert o.active and o.value == pytest.approx(15.0)
    rules = load_rules(text="[{id: soil_dry, params: {depths: [2]}}]")
    assert state(check(rules["soil_dry"], w, NOW)) == "band"
    assert state(run("soil_dry", _soil())) == "unknown"


# ----------------------------------------------------------------------------- irrigation_fault

def _irrigation(relay: list[float], count: list[float], interval_min: float = 30,
                suffix: str = "_1") -> Observation:
    w = DeviceWindow("bewaess-1", kind="irrigation",
                     readings={f"relay{suffix}": every(interval_min, relay),
                               f"pulse_count{suffix}": every(interval_min, count)})
    return run("irrigation_fault", w)


def test_irrigation_valve_open_without_flow():
    o = _irrigation([0, 1, 1, 1], [100, 100, 100, 100])
    assert o.active and o.detail["variant"] == "dry_run" and o.detail["relay_on_min"] == 60
    assert o.detail["channel"] == "1"
    assert _irrigation([0, 1, 1], [100, 100, 100], interval_min=20).active  # 20 min: edge
    assert state(_irrigation([0, 1], [100, 100])) == "band"  # one reading: how long is unknown


def test_irrigation_normal_watering_clears():
    assert state(_irrigation([0, 1, 1], [100, 400, 700])) == "clearing"
    assert state(_irrigation([0, 1, 0, 0], [100, 700, 700, 700], interval_min=60)) == "clearing"
    assert state(_irrigation([0, 0, 0], [100, 100, 100])) == "clearing"


def test_irrigation_leak():
    o = _irrigation([0, 0, 0, 0], [100, 100, 110, 120])
    assert o.active and o.detail["variant"] == "leak" and o.detail["pulses"] == 20
    # one off->off rise is a watering the hourly readings did not catch: no alarm
    assert state(_irrigation([0, 0, 0], [100, 100, 700], interval_min=60)) == "band"
    # a counter reset is no leak
    assert not _irrigation([0, 0, 0], [100, 5, 10]).active


def test_irrigation_needs_a_counter():
    w = DeviceWindow("b", kind="irrigation", readings={"relay_1": every(30, [1, 1, 1])})
    assert state(run("irrigation_fault", w)) == "unknown"
    assert _irrigation([0, 1, 1, 1], [5, 5, 5, 5], suffix="").active  # unsuffixed metrics


def test_observation_invariants():
    with pytest.raises(ValueError):
        Observation(True, clearing=True)
    o = Observation(False, np.float64(3.5), {"x": np.float32(1.0), "y": math.nan})
    assert o.value == 3.5 and o.detail == {"x": 1.0, "y": None}


def test_offline_waits_the_threshold_after_we_started_listening():
    # Silent for two days, but our service started 20 minutes ago: the device gets its 30 min
    # (3 x 10 min) to report to us before it is called offline, and is so from then on.
    started = (NOW - timedelta(minutes=20)).timestamp()
    waiting = _offline("weather", 10, 30, 2 * 24 * 60, watching_since=started)
    assert state(waiting) == "band" and waiting.detail["silent_h"] == pytest.approx(48)
    later = DeviceWindow("d", kind="weather", uplinks=_uplinks(10, 30, 2 * 24 * 60),
                         watching_since=(NOW - timedelta(minutes=31)).timestamp())
    offline = run("device_offline", later)
    assert offline.active and offline.since == NOW - timedelta(minutes=1)
    # a device that reported after the start is judged by its own silence, as always
    hour_ago = (NOW - timedelta(minutes=60)).timestamp()
    assert _offline("weather", 10, 30, 31, watching_since=hour_ago).active
