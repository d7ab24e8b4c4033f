"""Route plans end to end: bins, probes and rain in a real database, planned through the API.

The synthetic Bauhof: one depot, three towns, ~40 bins filling linearly at known rates with
past emptyings, a few soil probes and two weather stations. Every working day of the test
configuration is a working day (all seven), so the must-go rule does not depend on the weekday
the test runs on.
"""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest
from psycopg.types.json import Jsonb

from app.planning import Planning, PlanningJob, confirm_by_sensor, load_config
from helpers import TOKEN, running_service

TZ = ZoneInfo("Europe/Berlin")
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DEPOT = (50.2602, 9.2801)
TOWNS = {"Adorf": (50.2553, 9.2939), "Bestadt": (50.2268, 9.3483), "Cedorf": (50.2805, 9.3672)}
CAPACITY_L = 600      # small trucks: the round needs more than one trip
SHIFT_H = 8
TANK_L = 400

CONFIG = f"""
depot: {{name: Testhof, latitude: {DEPOT[0]}, longitude: {DEPOT[1]}}}
vehicles:
  - {{id: fzg-1, name: Pritsche 1, capacity_l: {CAPACITY_L}, shift_h: {SHIFT_H}, break_min: 30}}
  - {{id: fzg-2, name: Pritsche 2, capacity_l: {CAPACITY_L}, shift_h: {SHIFT_H}, break_min: 30}}
  - {{id: fzg-3, name: Gießwagen, capacity_l: 3000, shift_h: {SHIFT_H}, break_min: 30,
     water_tank_l: {TANK_L}, collects: false}}
timezone: Europe/Berlin
shift_start: "06:30"
working_days: [mon, tue, wed, thu, fri, sat, sun]
bins:
  default: {{full_pct: 90, may_min_pct: 55, service_s: 150}}
time_limit_s: 1
fixed_schedule:
  Adorf: [mon, tue, wed, thu, fri, sat, sun]
  Bestadt: [mon, tue, wed, thu, fri, sat, sun]
"""


@pytest.fixture
def planner_config(tmp_path: Path) -> Path:
    path = tmp_path / "planner.yaml"
    path.write_text(CONFIG, encoding="utf-8")
    return path


def _shift(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(6, 30), TZ)
    return start, start + dt.timedelta(hours=SHIFT_H)


def _reference(now: dt.datetime) -> dt.datetime:
    """What the planner reads up to when planning today: now, but not past the shift's end."""
    return min(now, _shift(now.astimezone(TZ).date())[1])


# Bins: (class, count, level at the reference time %, fill rate %/h)
BIN_CLASSES = [
    ("full", 8, (92.0, 98.0), (0.8, 1.2)),      # full already: must-go
    ("soon", 4, (80.0, 84.0), (2.0, 2.5)),      # full within hours: must-go
    ("empty", 12, (4.0, 10.0), (0.2, 0.3)),     # far below may-go for two days: never a stop
    ("medium", 16, (30.0, 50.0), (0.5, 0.9)),   # may or may not be worth it: not asserted
]


def _bins(rng: np.random.Generator) -> list[dict]:
    bins, n = [], 0
    towns = list(TOWNS.items())
    for cls, count, (lo, hi), (rlo, rhi) in BIN_CLASSES:
        for _ in range(count):
            town, (lat, lon) = towns[n % len(towns)]
            bins.append({"id": f"bin-{cls}-{n:02d}", "class": cls, "town": town,
                         "lat": lat + rng.uniform(-0.008, 0.008),
                         "lon": lon + rng.uniform(-0.012, 0.012),
                         "level": rng.uniform(lo, hi), "rate": rng.uniform(rlo, rhi)})
            n += 1
    return bins


def _fill_series(level_now: float, rate: float, ref: float, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Two weeks of half-hourly fill readings ending at ``ref``: linear filling, emptied
    whenever the bin reached about 85 % (the current cycle may have gone further)."""
    times = np.arange(ref - 14 * 86400, ref + 1, 1800.0)
    cycle_h = 85.0 / rate
    start_now = ref - level_now / rate * 3600
    since = (start_now - times) / 3600  # hours before the current cycle began
    levels = np.where(times >= start_now, (times - start_now) / 3600 * rate,
                      (cycle_h - np.mod(since, cycle_h)) * rate)
    levels = np.clip(levels + rng.normal(0, 0.4, times.size), 0, 110)
    return times, levels


def _copy_readings(conn: psycopg.Connection, rows: list[tuple]) -> None:
    with conn.cursor().copy("COPY readings (time, device_id, metric, value) FROM STDIN") as cp:
        for row in rows:
            cp.write_row(row)


def _device(conn, device_id, kind, town, lat, lon, attributes) -> None:
    conn.execute("INSERT INTO devices (device_id, kind, name, municipality, latitude, longitude,"
                 " attributes, registered) VALUES (%s, %s, %s, %s, %s, %s, %s, true)",
                 (device_id, kind, f"{kind} {device_id}", town, lat, lon, Jsonb(attributes)))


def _when(t: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc)


@pytest.fixture
def bauhof(db: str) -> dict:
    """Bins, probes and weather stations with two weeks of readings, ending now."""
    rng = np.random.default_rng(6)
    ref = _reference(dt.datetime.now(dt.timezone.utc)).timestamp()
    bins = _bins(rng)
    rows = []
    with psycopg.connect(db) as conn:
        for b in bins:
            _device(conn, b["id"], "bin", b["town"], b["lat"], b["lon"],
                    {"volume_l": 120, "site_type": "bus_stop"})
            times, levels = _fill_series(b["level"], b["rate"], ref, rng)
            rows += [(_when(t), b["id"], "fill_level_pct", float(v)) for t, v in zip(times, levels)]
        # Soil: hourly moisture over a week, drying linearly towards the given value now.
        probes = {"soil-dry-adorf": ("Adorf", 14.0), "soil-dry-cedorf": ("Cedorf", 14.5),
                  "soil-wet-bestadt": ("Bestadt", 34.0)}
        for device_id, (town, now_pct) in probes.items():
            lat, lon = TOWNS[town]
            _device(conn, device_id, "soil", town, lat + 0.002, lon - 0.003,
                    {"site_type": "tree", "dry_threshold_pct": 18})
            times = np.arange(ref - 7 * 86400, ref + 1, 3600.0)
            moisture = now_pct + (ref - times) / 3600 * 0.05
            rows += [(_when(t), device_id, "soil_moisture_vwc_pct", float(v))
                     for t, v in zip(times, moisture)]
        # Weather: 6 mm of rain in Cedorf over the last hours, none in Adorf.
        for town, mm in (("Adorf", 0.0), ("Cedorf", 0.5)):
            device_id = f"wetter-{town.lower()}"
            _device(conn, device_id, "weather", town, *TOWNS[town], {})
            rows += [(_when(ref - k * 1200), device_id, "precipitation_mm", mm)
                     for k in range(1, 13)]
        rows += [(_when(ref - 30 * 3600), "wetter-adorf", "precipitation_mm", 20.0)]  # too old
        _copy_readings(conn, rows)
    return {"bins": {b["id"]: b for b in bins}, "ref": ref}


def _stops(routes: dict) -> list[dict]:
    return [s for p in routes["plans"] for s in p["stops"]]


def _plan(client, kind: str = "collection", **extra):
    return client.post("/api/v1/routes/plan", headers=AUTH,
                       json={"kind": kind, "time_limit_s": 1, **extra})


def test_collection_plan_stored_served_and_confirmed(db, bauhof, planner_config):
    today = dt.datetime.now(TZ).date()
    shift_start, shift_end = _shift(today)
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        answer = _plan(client)
        assert answer.status_code == 200, answer.text
        routes = answer.json()
        assert routes["date"] == today.isoformat() and routes["timezone"] == "Europe/Berlin"
        plans = routes["plans"]
        assert {p["vehicle_id"] for p in plans} == {"fzg-1", "fzg-2"}
        assert all(p["kind"] == "collection" and p["feasible"] for p in plans)
        assert all(p["unserved_must"] == [] for p in plans)

        stops = _stops(routes)
        on_plan = [s["device_id"] for s in stops]
        assert len(on_plan) == len(set(on_plan)), "a bin is on the plan twice"
        bins = bauhof["bins"]
        musts = {i for i, b in bins.items() if b["class"] in ("full", "soon")}
        assert musts <= set(on_plan), f"must-go bins missing: {musts - set(on_plan)}"
        assert not {i for i, b in bins.items() if b["class"] == "empty"} & set(on_plan)
        assert all(s["reason"] == "must" for s in stops if s["device_id"] in musts)
        assert plans[0]["must_count"] >= len(musts)

        for p in plans:
            # Capacity per trip and the shift, recomputed from the stored stops.
            loads: dict[int, int] = {}
            for s in p["stops"]:
                trip = s["trip"] if s["trip"] is not None else 0
                loads[trip] = loads.get(trip, 0) + s["demand_l"]
            if p["stops"] and p["stops"][0]["trip"] is not None:
                assert max(loads.values()) <= CAPACITY_L, loads
                assert len(loads) == p["trips"]
            else:  # trips not recorded per stop: the total must fit the trips driven
                assert sum(s["demand_l"] for s in p["stops"]) <= CAPACITY_L * max(p["trips"], 1)
            assert p["duration_min"] <= SHIFT_H * 60
            etas = [dt.datetime.fromisoformat(s["eta"]) for s in p["stops"]]
            assert all(e.utcoffset() is not None for e in etas)
            assert etas == sorted(etas) and len(set(etas)) == len(etas)
            assert all(shift_start <= e <= shift_end for e in etas)
            assert [s["seq"] for s in p["stops"]] == list(range(1, len(p["stops"]) + 1))
            assert p["counts"] == {"planned": len(p["stops"]), "done": 0}
            assert p["baseline_distance_km"] > 0 and p["baseline_stops"] > 0
        assert sum(p["trips"] for p in plans) >= 2  # more litter than one truckload
        full = next(s for s in stops if bins[s["device_id"]]["class"] == "full")
        assert full["value_now"] >= 90 and full["value_expected"] >= full["value_now"] - 1

        # GET shows the same.
        got = client.get("/api/v1/routes", params={"date": today.isoformat(),
                                                    "kind": "collection"})
        assert got.status_code == 200 and got.json() == routes
        assert client.get("/api/v1/routes").json()["plans"] == plans  # default: today, both

        # The crew marks a stop done.
        first = plans[0]["stops"][0] if plans[0]["stops"] else plans[1]["stops"][0]
        url = f"/api/v1/routes/{first['plan_id']}/stops/{first['seq']}"
        marked = client.patch(url, headers=AUTH, json={"status": "done"})
        assert marked.status_code == 200, marked.text
        assert marked.json()["status"] == "done" and marked.json()["done_by"] == "crew"
        shown = {s["device_id"]: s for s in _stops(client.get("/api/v1/routes").json())}
        assert shown[first["device_id"]]["status"] == "done"
        assert shown[first["device_id"]]["done_at"] is not None
        assert client.patch("/api/v1/routes/999999/stops/1", headers=AUTH,
                            json={"status": "done"}).status_code == 404
        assert client.patch(url, headers=AUTH, json={"status": "gone"}).status_code == 422

        # Re-planning would discard the crew's work: refused unless forced.
        again = _plan(client)
        assert again.status_code == 409 and "already done" in again.json()["detail"]
        forced = _plan(client, force=True)
        assert forced.status_code == 200, forced.text
        new = forced.json()
        assert not {p["id"] for p in new["plans"]} & {p["id"] for p in plans}
        assert all(s["status"] == "planned" for s in _stops(new))
        with psycopg.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM route_plans").fetchone()[0] == 2

        # The sensor shows an emptying: the stop is done by the sensor at the reading's time.
        target, small = [s for s in _stops(new) if bins[s["device_id"]]["class"] == "full"][:2]
        emptied_at = shift_start + dt.timedelta(hours=1, minutes=7)
        now = shift_start + dt.timedelta(hours=2)
        with psycopg.connect(db) as conn:
            _copy_readings(conn, [
                (emptied_at, target["device_id"], "fill_level_pct", 3.0),
                # 10 points lower is noise or compaction, not an emptying
                (emptied_at, small["device_id"], "fill_level_pct", small["value_now"] - 10)])
            confirmed = confirm_by_sensor(conn, now, TZ)
            assert [(s.device_id, s.done_by, s.done_at) for s in confirmed] == [
                (target["device_id"], "sensor", emptied_at)]
            assert confirm_by_sensor(conn, now, TZ) == []  # once
        shown = {s["device_id"]: s for s in _stops(client.get("/api/v1/routes").json())}
        assert shown[target["device_id"]]["done_by"] == "sensor"
        assert dt.datetime.fromisoformat(shown[target["device_id"]]["done_at"]) == emptied_at
        assert shown[small["device_id"]]["status"] == "planned"

        # The crew takes the sensor's "done" back: only a reading after that confirms it again.
        reopen = client.patch(f"/api/v1/routes/{target['plan_id']}/stops/{target['seq']}",
                              headers=AUTH, json={"status": "planned"})
        reopened = dt.datetime.now(dt.timezone.utc)
        assert reopen.json()["status"] == "planned" and reopen.json()["done_by"] is None
        with psycopg.connect(db) as conn:
            again = confirm_by_sensor(conn, max(now, reopened), TZ)
        # (Run before the shift, "now" is earlier than the reading: then it does count.)
        assert [s.device_id for s in again] == ([] if reopened > emptied_at
                                                else [target["device_id"]])


@pytest.mark.parametrize("done_times", ["day", "time"])
def test_what_is_kept_of_a_done_stop(db, bauhof, planner_config, done_times, caplog):
    """BAUHOF_RECORD_DONE_TIMES: by default only the day a stop was done, by crew or sensor
    (a stop's time per vehicle measures a crew's pace); `time` keeps the time, as before."""
    import logging

    today = dt.datetime.now(TZ).date()
    midnight = dt.datetime.combine(today, dt.time(), TZ)
    with running_service(db, planner_config=planner_config, plan_at="",
                         record_done_times=done_times) as (service, client), \
            caplog.at_level(logging.INFO, logger="app.planning"):
        routes = _plan(client).json()
        assert routes["done_times"] == done_times
        crew, sensor = [s for s in _stops(routes)
                        if bauhof["bins"][s["device_id"]]["class"] == "full"][:2]
        tapped = dt.datetime.now(dt.timezone.utc)
        marked = client.patch(f"/api/v1/routes/{crew['plan_id']}/stops/{crew['seq']}",
                              headers=AUTH, json={"status": "done"}).json()
        emptied_at = max(dt.datetime.fromisoformat(p["start_at"]) for p in routes["plans"]) \
            + dt.timedelta(minutes=1)
        with psycopg.connect(db) as conn:
            _copy_readings(conn, [(emptied_at, sensor["device_id"], "fill_level_pct", 2.0)])
        with service.planning.connect() as conn:
            confirmed, = confirm_by_sensor(conn, emptied_at + dt.timedelta(minutes=5), TZ,
                                           service.planning.done_times)
        shown = {s["device_id"]: s for s in _stops(client.get("/api/v1/routes").json())}
    crew_at = dt.datetime.fromisoformat(shown[crew["device_id"]]["done_at"])
    sensor_at = dt.datetime.fromisoformat(shown[sensor["device_id"]]["done_at"])
    logged = [r.getMessage() for r in caplog.records if "marked done" in r.getMessage()
              or "confirmed by its sensor" in r.getMessage()]
    if done_times == "day":
        assert crew_at == sensor_at == midnight == confirmed.done_at
        assert dt.datetime.fromisoformat(marked["done_at"]) == midnight
        assert logged == []  # a log line carries the time too
    else:
        assert abs((crew_at - tapped).total_seconds()) < 60
        assert sensor_at == emptied_at
        assert len(logged) == 2


def test_watering_plan_skips_rained_on_town(db, bauhof, planner_config):
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        answer = _plan(client, "watering")
        assert answer.status_code == 200, answer.text
        plans = answer.json()["plans"]
        assert [p["vehicle_id"] for p in plans] == ["fzg-3"]
        stops = _stops(answer.json())
        assert [s["device_id"] for s in stops] == ["soil-dry-adorf"]
        assert stops[0]["reason"] == "must" and stops[0]["value_now"] < 18
        assert stops[0]["demand_l"] <= TANK_L
        assert plans[0]["baseline_distance_km"] is None  # fixed rounds are about bins
        # Collection and watering plans of the day live side by side.
        assert _plan(client).status_code == 200
        kinds = [p["kind"] for p in client.get("/api/v1/routes").json()["plans"]]
        assert sorted(set(kinds)) == ["collection", "watering"]


def test_a_day_years_away_is_refused_at_once(db, planner_config):
    # schemathesis planned the year 7936: the forecast calendar ran for hours and held a
    # worker thread (and the shutdown) meanwhile.
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        far = client.post("/api/v1/routes/plan", headers=AUTH,
                          json={"kind": "collection", "date": "7936-09-11", "time_limit_s": 1})
        assert far.status_code == 422 and "days from today" in far.json()["detail"]


def test_writes_need_a_token(db, planner_config):
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        assert client.post("/api/v1/routes/plan", json={"kind": "collection"}).status_code == 401
        assert client.post("/api/v1/routes/plan", json={"kind": "collection"},
                           headers={"Authorization": "Bearer wrong-token-0123456789"}
                           ).status_code == 401
        assert client.patch("/api/v1/routes/1/stops/1",
                            json={"status": "done"}).status_code == 401
        # Reading needs none; an unplanned day is an empty list, not an error.
        got = client.get("/api/v1/routes", params={"date": "2026-05-04"})
        assert got.status_code == 200 and got.json()["plans"] == []
        assert client.get("/api/v1/routes", params={"kind": "sweeping"}).status_code == 422


def test_planning_job_plans_working_days_once_and_keeps_manual_plans(db, bauhof,
                                                                     planner_config):
    config = load_config(planner_config)
    clock = {"now": dt.datetime.now(dt.timezone.utc)}
    day = clock["now"].astimezone(TZ).date()
    clock["now"] = dt.datetime.combine(day, dt.time(5, 0), TZ)
    planning = Planning(config, lambda: psycopg.connect(db), clock=lambda: clock["now"])
    job = PlanningJob(planning, "05:30", confirm_interval_s=0)

    job.tick()  # before plan_at: nothing
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM route_plans").fetchone()[0] == 0
    clock["now"] = dt.datetime.combine(day, dt.time(5, 31), TZ)
    job.tick()
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT kind, id, created_at FROM route_plans ORDER BY id").fetchall()
    assert sorted({r[0] for r in rows}) == ["collection", "watering"]
    # A restarted service (a new job) does not overwrite what is there.
    PlanningJob(planning, "05:30", confirm_interval_s=0).tick()
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT kind, id, created_at FROM route_plans ORDER BY id"
                            ).fetchall() == rows


def test_bauhof_plan_command(db, bauhof, planner_config):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env.update(BAUHOF_DATABASE_URL=db, BAUHOF_PLANNER_CONFIG=str(planner_config))
    done = subprocess.run([sys.executable, "-m", "app.cli", "plan", "--kind", "watering",
                           "--time-limit", "1"], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Bewässerung" in done.stdout and "Gießwagen (fzg-3)" in done.stdout
    assert "soil-dry-adorf" in done.stdout and "muss" in done.stdout
    shown = subprocess.run([sys.executable, "-m", "app.cli", "plan", "--show", "--date",
                            "2020-01-01"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "Keine Tourenpläne" in shown.stdout


def test_the_next_planning_time_skips_days_off(tmp_path):
    path = tmp_path / "planner.yaml"
    path.write_text(CONFIG.replace("working_days: [mon, tue, wed, thu, fri, sat, sun]",
                                   "working_days: [mon, tue, wed, thu, fri]"), encoding="utf-8")
    job = PlanningJob(Planning(load_config(path), connect=None), "05:30", 0)
    saturday = dt.datetime(2026, 12, 5, 10, 0, tzinfo=TZ)
    monday = dt.datetime(2026, 12, 7, 5, 30, tzinfo=TZ)
    assert job.next_planning(saturday) == monday
    assert job.next_planning(monday - dt.timedelta(hours=2)) == monday
    assert job.next_planning(monday) == monday + dt.timedelta(days=1)  # done for Monday
    assert PlanningJob(job.planning, "", 0).next_planning(saturday) is None
