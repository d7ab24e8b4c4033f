"""Route plans in the service: the I/O edge around the pure planner (planner/).

Reads bins and plants from the registry with their recent readings, builds the forecasts, lets
``planner`` choose and route the stops, and stores the result in ``route_plans`` /
``route_stops``. Replacing a day's plans happens in one transaction and is refused when a stop
of them is already done (a crew's work would vanish from the record) unless forced.

Stops are confirmed by the crew (API) or by the bin's own sensor: a fill reading after the
plan's start that lies ``CONFIRM_DROP_PCT`` below the level at planning, or at most
``CONFIRM_EMPTY_PCT``, means the bin was emptied.

Nothing here records who did a stop: ``done_by`` is "crew" or "sensor" (staff-council rules).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ContextManager, Literal
from zoneinfo import ZoneInfo

import numpy as np
import psycopg

from planner import config as planner_config
from planner.config import WEEKDAYS, PlannerConfig
from planner.distances import GreatCircle
from planner.forecast import forecast_dry
from planner.plan import (DayPlan, Kind, Matrices, next_working_day, places, plan_day,
                          shift_window)
from planner.selection import (BinState, Candidate, PlantState, bin_forecast, select_bins,
                               select_plants)

log = logging.getLogger(__name__)

KINDS: tuple[Kind, ...] = ("collection", "watering")
# What is kept of the moment a stop was done: its time, or only its day (staff councils: a
# stop's time per vehicle can measure a crew's pace). BAUHOF_RECORD_DONE_TIMES.
DoneTimes = Literal["time", "day"]
HISTORY = dt.timedelta(days=28)
RAIN_WINDOW = dt.timedelta(hours=24)
FILL_METRIC = "fill_level_pct"
# Single-depth probes report soil_moisture_vwc_pct; multi-depth ones _1 for the shallowest.
MOISTURE_METRICS = ("soil_moisture_vwc_pct", "soil_moisture_vwc_pct_1")
DEFAULT_DRY_PCT = 18.0
DEFAULT_VOLUME_L = 120.0
# A fixed round empties bins whatever their level; without a forecast we assume the fill found
# on fixed rounds in the field (55–63 %, issue 6).
FIXED_ROUND_FILL_PCT = 60.0
CONFIRM_DROP_PCT = 30.0
CONFIRM_EMPTY_PCT = 15.0
RETRY_S = 300.0  # the automatic job's next attempt after a failed plan
_LOCK_KEY = 0x726F_7574  # "rout": serialises writers of one day's plans

Connect = Callable[[], ContextManager[psycopg.Connection]]


PLAN_REACH_DAYS = 366  # how far from today a day may be planned (or planned again)


class PlanningError(RuntimeError):
    """Planning could not produce a plan (configuration, distances, an unservable stop)."""


class DistanceError(PlanningError):
    """The distance provider (OSRM) failed."""


class DoneStopsError(PlanningError):
    """Replacing the day's plans would discard stops that are already done."""

    def __init__(self, day: dt.date, kind: str, done: int) -> None:
        super().__init__(f"{done} stop(s) of the {kind} plan of {day} are already done; "
                         f"re-planning would discard them (use force to replace anyway)")
        self.done = done


# --------------------------------------------------------------------------------------------
# stored plans


@dataclass(frozen=True)
class StoredStop:
    plan_id: int
    seq: int
    device_id: str
    name: str | None
    municipality: str | None
    latitude: float
    longitude: float
    reason: Literal["must", "may"]
    eta: dt.datetime
    value_now: float | None
    value_expected: float | None
    demand_l: int
    trip: int | None
    status: Literal["planned", "done"]
    done_at: dt.datetime | None
    done_by: Literal["crew", "sensor"] | None
    due_at: dt.datetime | None = None  # forecast at planning: full (bins) or dry (plants)


@dataclass(frozen=True)
class StoredPlan:
    id: int
    day: dt.date
    kind: Kind
    vehicle_id: str
    vehicle_name: str
    start_at: dt.datetime
    distance_m: int
    duration_s: int
    trips: int
    must_count: int
    may_count: int
    unserved_must: list[str]
    baseline_distance_m: int | None
    baseline_stops: int | None
    feasible: bool
    created_at: dt.datetime
    stops: list[StoredStop]


_PLAN_COLUMNS = ("id, day, kind, vehicle_id, vehicle_name, start_at, distance_m, duration_s, "
                 "trips, must_count, may_count, unserved_must, baseline_distance_m, "
                 "baseline_stops, feasible, created_at")
_STOP_COLUMNS = ("plan_id, seq, device_id, name, municipality, latitude, longitude, reason, eta, "
                 "value_now, value_expected, demand_l, trip, status, done_at, done_by, due_at")


def load_plans(conn: psycopg.Connection, day: dt.date, kind: Kind | None = None,
               tz: ZoneInfo | None = None) -> list[StoredPlan]:
    """The stored plans of a day (one kind or both), by kind and vehicle; times in ``tz``."""
    plans = conn.execute(
        f"SELECT {_PLAN_COLUMNS} FROM route_plans"
        " WHERE day = %s AND (%s::text IS NULL OR kind = %s) ORDER BY kind, vehicle_id",
        (day, kind, kind)).fetchall()
    if not plans:
        return []
    stops: dict[int, list[StoredStop]] = {}
    for row in conn.execute(
            f"SELECT {_STOP_COLUMNS} FROM route_stops WHERE plan_id = ANY(%s)"
            " ORDER BY plan_id, seq", ([p[0] for p in plans],)):
        stop = StoredStop(*row)
        if tz is not None:
            stop = _in_tz(stop, tz)
        stops.setdefault(stop.plan_id, []).append(stop)
    out = []
    for row in plans:
        plan = StoredPlan(*row, stops=stops.get(row[0], []))
        if tz is not None:
            plan = replace(plan, start_at=plan.start_at.astimezone(tz),
                            created_at=plan.created_at.astimezone(tz))
        out.append(plan)
    return out


def _in_tz(stop: StoredStop, tz: ZoneInfo) -> StoredStop:
    return replace(stop, eta=stop.eta.astimezone(tz),
                    done_at=stop.done_at.astimezone(tz) if stop.done_at else None,
                    due_at=stop.due_at.astimezone(tz) if stop.due_at else None)


def day_start(at: dt.datetime, tz: ZoneInfo) -> dt.datetime:
    """Midnight of ``at``'s local day: what a done time becomes when only days are recorded."""
    local = at.astimezone(tz)
    return dt.datetime.combine(local.date(), dt.time(), tzinfo=tz)


def set_stop_status(conn: psycopg.Connection, plan_id: int, seq: int,
                    status: Literal["planned", "done"], now: dt.datetime,
                    tz: ZoneInfo | None = None,
                    done_times: DoneTimes = "time") -> StoredStop | None:
    """The crew marks a stop done (or takes that back); None for an unknown stop.

    ``done_times="day"`` keeps only the day of a "done" (BAUHOF_RECORD_DONE_TIMES).
    """
    stamp = day_start(now, tz or ZoneInfo("Europe/Berlin")) if done_times == "day" else now
    if status == "done":
        # Done stays done with its first time: a second tap must not move it.
        sql = ("UPDATE route_stops SET status = 'done', done_by = 'crew',"
               " done_at = CASE WHEN status = 'done' THEN done_at ELSE %(stamp)s END,"
               " reopened_at = NULL"
               " WHERE plan_id = %(plan)s AND seq = %(seq)s")
    else:
        # reopened_at keeps the sensor from confirming it again from the readings before now.
        sql = ("UPDATE route_stops SET status = 'planned', done_by = NULL, done_at = NULL,"
               " reopened_at = %(now)s WHERE plan_id = %(plan)s AND seq = %(seq)s")
    with conn.transaction():
        row = conn.execute(sql + f" RETURNING {_STOP_COLUMNS}",
                           {"now": now, "stamp": stamp, "plan": plan_id, "seq": seq}).fetchone()
    if row is None:
        return None
    stop = StoredStop(*row)
    # A log line carries its time: with days only, the crew's tap is not logged at INFO either.
    log.log(logging.INFO if done_times == "time" else logging.DEBUG,
            "plan %d stop %d (%s) marked %s by the crew", plan_id, seq, stop.device_id, status,
            extra={"device": stop.device_id})
    return _in_tz(stop, tz) if tz is not None else stop


def confirm_by_sensor(conn: psycopg.Connection, now: dt.datetime,
                      tz: ZoneInfo | str = "Europe/Berlin",
                      done_times: DoneTimes = "time") -> list[StoredStop]:
    """Mark today's planned bin stops done whose sensor shows the emptying.

    Evidence is a ``fill_level_pct`` reading after the plan's start (and after a crew took a
    "done" back) that is ``CONFIRM_DROP_PCT`` points below the level at planning or at most
    ``CONFIRM_EMPTY_PCT``; the stop's ``done_at`` is that reading's time.
    """
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    today = now.astimezone(zone).date()
    with conn.transaction():
        rows = conn.execute(
            f"""
            WITH evidence AS (
                SELECT s.plan_id, s.seq, r.time
                  FROM route_stops s
                  JOIN route_plans p ON p.id = s.plan_id
                  CROSS JOIN LATERAL (
                      SELECT r.time FROM readings r
                       WHERE r.device_id = s.device_id AND r.metric = %(metric)s
                         AND r.time > greatest(p.start_at, s.reopened_at)
                         AND r.time <= %(now)s
                         AND (r.value <= s.value_now - %(drop)s OR r.value <= %(empty)s)
                       ORDER BY r.time LIMIT 1) r
                 WHERE p.day = %(day)s AND p.kind = 'collection' AND s.status = 'planned'
            )
            UPDATE route_stops s SET status = 'done', done_by = 'sensor',
                   done_at = CASE WHEN %(only_day)s::text IS NULL THEN e.time ELSE
                       date_trunc('day', e.time AT TIME ZONE %(zone)s) AT TIME ZONE %(zone)s END
              FROM evidence e
             WHERE s.plan_id = e.plan_id AND s.seq = e.seq AND s.status = 'planned'
            RETURNING {', '.join('s.' + c for c in _STOP_COLUMNS.split(', '))}
            """,
            {"metric": FILL_METRIC, "now": now, "drop": CONFIRM_DROP_PCT,
             "empty": CONFIRM_EMPTY_PCT, "day": today, "zone": zone.key,
             "only_day": "day" if done_times == "day" else None}).fetchall()
    stops = [_in_tz(StoredStop(*row), zone) for row in rows]
    for stop in stops:
        log.log(logging.INFO if done_times == "time" else logging.DEBUG,
                "plan %d stop %d (%s) confirmed by its sensor at %s", stop.plan_id, stop.seq,
                stop.device_id, stop.done_at.isoformat(), extra={"device": stop.device_id})
    return stops


# --------------------------------------------------------------------------------------------
# inputs: bins, plants, rain


def _series(conn: psycopg.Connection, metric: str, device_ids: Sequence[str],
            since: dt.datetime, until: dt.datetime) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Readings of one metric per device as (epoch seconds, values), oldest first."""
    if not device_ids:
        return {}
    # Aggregated per device and sent in binary: one row per device instead of thousands of
    # Python tuples (28 days of a bin reporting every 30 min are ~1,300 readings).
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT device_id, array_agg(extract(epoch FROM time)::float8 ORDER BY time),"
            "       array_agg(value ORDER BY time)"
            "  FROM readings"
            " WHERE metric = %s AND device_id = ANY(%s) AND time > %s AND time <= %s"
            " GROUP BY device_id",
            (metric, list(device_ids), since, until))
        return {d: (np.asarray(t, dtype=float), np.asarray(v, dtype=float))
                for d, t, v in cur.fetchall()}


def _devices(conn: psycopg.Connection, kind: str) -> list[tuple]:
    # Only devices with a position: without one they cannot be a stop.
    return conn.execute(
        "SELECT device_id, coalesce(name, device_id), coalesce(municipality, ''), latitude,"
        "       longitude, attributes"
        "  FROM devices WHERE kind = %s AND latitude IS NOT NULL AND longitude IS NOT NULL"
        " ORDER BY device_id", (kind,)).fetchall()


def _number(value: object, default: float) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return default
    return number if np.isfinite(number) and number > 0 else default


def load_bins(conn: psycopg.Connection, at: dt.datetime,
              config: PlannerConfig) -> list[BinState]:
    """Every positioned bin with its fill forecast at ``at`` (None without readings)."""
    rows = _devices(conn, "bin")
    series = _series(conn, FILL_METRIC, [r[0] for r in rows], at - HISTORY, at)
    when = at.timestamp()
    out = []
    for device_id, name, town, lat, lon, attributes in rows:
        site = attributes.get("site_type")
        times, levels = series.get(device_id, (np.empty(0), np.empty(0)))
        forecast = bin_forecast(times, levels, when, config, site) if len(times) else None
        out.append(BinState(device_id, name, town, lat, lon, site,
                            _number(attributes.get("volume_l"), DEFAULT_VOLUME_L), forecast))
    return out


def rain_24h(conn: psycopg.Connection, at: dt.datetime) -> dict[str, float]:
    """Rain measured in the 24 h before ``at`` per municipality, mm.

    Stations report rain since their previous uplink (``precipitation_mm``); one with only a
    cumulative counter counts its increases (a counter reset is not rain). With several stations
    in a town the largest amount counts: a broken gauge reads 0, a working one does not invent
    rain.
    """
    rows = conn.execute(
        """
        WITH interval_rain AS (
            SELECT device_id, sum(value) AS mm FROM readings
             WHERE metric = 'precipitation_mm' AND time > %(since)s AND time <= %(at)s
             GROUP BY device_id
        ), counter_rain AS (
            SELECT device_id, sum(greatest(step, 0)) AS mm FROM (
                SELECT device_id,
                       value - lag(value) OVER (PARTITION BY device_id ORDER BY time) AS step
                  FROM readings
                 WHERE metric = 'precipitation_total_mm' AND time > %(since)s AND time <= %(at)s
            ) steps GROUP BY device_id
        )
        SELECT d.municipality, max(coalesce(i.mm, c.mm))
          FROM devices d
          LEFT JOIN interval_rain i USING (device_id)
          LEFT JOIN counter_rain c USING (device_id)
         WHERE d.kind = 'weather' AND d.municipality IS NOT NULL
           AND (i.mm IS NOT NULL OR c.mm IS NOT NULL)
         GROUP BY d.municipality
        """, {"since": at - RAIN_WINDOW, "at": at}).fetchall()
    return {town: float(mm) for town, mm in rows}


def load_plants(conn: psycopg.Connection, at: dt.datetime,
                config: PlannerConfig) -> list[PlantState]:
    """Every positioned soil probe with its drying forecast and its town's rain."""
    rows = _devices(conn, "soil")
    ids = [r[0] for r in rows]
    series: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for metric in reversed(MOISTURE_METRICS):  # the plain metric wins where both exist
        series.update(_series(conn, metric, ids, at - HISTORY, at))
    rain = rain_24h(conn, at)
    when = at.timestamp()
    horizon_h = config.watering.dry_margin_h + 48.0
    out = []
    for device_id, name, town, lat, lon, attributes in rows:
        dry_pct = _number(attributes.get("dry_threshold_pct"), DEFAULT_DRY_PCT)
        times, moisture = series.get(device_id, (np.empty(0), np.empty(0)))
        forecast = (forecast_dry(times, moisture, when, dry_pct=dry_pct, horizon_h=horizon_h)
                    if len(times) else None)
        out.append(PlantState(device_id, name, town, lat, lon, attributes.get("site_type"),
                              dry_pct, forecast, rain.get(town, 0.0)))
    return out


# --------------------------------------------------------------------------------------------
# planning


def load_config(path: Path | str | None) -> PlannerConfig:
    """The planner configuration; errors name the file."""
    try:
        return planner_config.load(path)
    except Exception as err:  # YAML, validation, missing file: all mean "fix the file"
        where = path or planner_config.DEFAULT_CONFIG
        raise PlanningError(f"planner configuration {where}: {err}") from err


@contextlib.contextmanager
def distance_provider(config: PlannerConfig) -> Iterator[Matrices]:
    """OSRM's table service when configured, else great-circle distance × detour factor."""
    if not config.osrm_url:
        yield GreatCircle(config.detour_factor, config.speed_kmh).matrices
        return
    from app.osrm import OsrmError, OsrmTable

    with OsrmTable(config.osrm_url) as table:
        def matrices(points):
            try:
                return table.matrices(points)
            except OsrmError as err:
                raise DistanceError(str(err)) from err

        yield matrices


@dataclass(frozen=True)
class _Selection:
    now: dt.datetime
    candidates: list[Candidate]
    baseline: list[Candidate] | None          # the fixed round's bins (None: no schedule)
    expected: dict[str, Callable[[float], float]]
    offered: int                               # bins or plants looked at
    load_s: float


def local_today(config: PlannerConfig, now: dt.datetime | None = None) -> dt.date:
    now = now or dt.datetime.now(dt.timezone.utc)
    return now.astimezone(ZoneInfo(config.timezone)).date()


class Planning:
    """Plans and stores a day's rounds; one per service (and one per ``bauhof plan``)."""

    def __init__(self, config: PlannerConfig, connect: Connect,
                 clock: Callable[[], dt.datetime] | None = None,
                 done_times: DoneTimes = "time") -> None:
        self.config = config
        self.done_times = done_times
        self.connect = connect
        self.clock = clock or (lambda: dt.datetime.now(dt.timezone.utc))
        self.tz = ZoneInfo(config.timezone)

    def today(self) -> dt.date:
        return local_today(self.config, self.clock())

    def plan(self, day: dt.date, kind: Kind, *, force: bool = False,
             time_limit_s: float | None = None,
             only_if_missing: bool = False) -> list[StoredPlan] | None:
        """Plan ``day``'s ``kind`` round now and store it, replacing the day's plans of that kind.

        Raises ``DoneStopsError`` if a stop of those plans is done (unless ``force``).
        ``only_if_missing``: keep existing plans and return None (the automatic job never
        overwrites a plan someone made by hand).
        """
        today = self.today()
        if abs((day - today).days) > PLAN_REACH_DAYS:
            # Forecasts reach days ahead, not years; and the calendar of a far day would be
            # computed week by week (a request for the year 7936 ran for hours).
            raise PlanningError(f"{day} is more than {PLAN_REACH_DAYS} days from today "
                                f"({today}); plan a day nearer")
        with self.connect() as conn:
            # Checked before the solver's seconds, and again where it counts, under the lock.
            existing = self._existing(conn, day, kind)
            if only_if_missing and existing[0]:
                return None
            if existing[1] and not force:
                raise DoneStopsError(day, kind, existing[1])
            chosen = self._select(conn, day, kind)
        # No connection is held while the solver works.
        day_plan = self._route(day, kind, chosen, time_limit_s)
        with self.connect() as conn:
            stored = self._store(conn, day_plan, chosen.now, force=force,
                                 only_if_missing=only_if_missing)
            if not stored:
                return None
            return load_plans(conn, day, kind, self.tz)

    def _existing(self, conn: psycopg.Connection, day: dt.date, kind: Kind) -> tuple[int, int]:
        """(plans, done stops) stored for the day and kind."""
        row = conn.execute(
            "SELECT count(DISTINCT p.id), count(s.seq) FILTER (WHERE s.status = 'done')"
            "  FROM route_plans p LEFT JOIN route_stops s ON s.plan_id = p.id"
            " WHERE p.day = %s AND p.kind = %s", (day, kind)).fetchone()
        return int(row[0]), int(row[1])

    def _select(self, conn: psycopg.Connection, day: dt.date, kind: Kind) -> _Selection:
        """Read the devices and readings, forecast, and choose the day's candidates."""
        config = self.config
        now = self.clock()
        started = time.monotonic()
        start, end = shift_window(day, config)
        # The freshest readings, but none from after the day (re-planning a past day).
        at = min(now, dt.datetime.fromtimestamp(end, dt.timezone.utc))
        if kind == "collection":
            bins = load_bins(conn, at, config)
            next_start, next_end = shift_window(next_working_day(day, config), config)
            candidates = select_bins(bins, config, shift_start=start, shift_end=end,
                                     next_start=next_start, next_end=next_end)
            return _Selection(now, candidates, self._fixed_round(day, bins, start, end),
                              _expected({b.device_id: b.forecast for b in bins}), len(bins),
                              time.monotonic() - started)
        plants = load_plants(conn, at, config)
        candidates = select_plants(plants, config, shift_start=start, shift_end=end)
        return _Selection(now, candidates, None,
                          _expected({p.device_id: p.forecast for p in plants}), len(plants),
                          time.monotonic() - started)

    def _route(self, day: dt.date, kind: Kind, chosen: _Selection,
               time_limit_s: float | None) -> DayPlan:
        try:
            with distance_provider(self.config) as matrices:
                day_plan = plan_day(
                    day, kind, places(chosen.candidates, chosen.expected), self.config,
                    matrices, time_limit_s=time_limit_s,
                    baseline=(None if chosen.baseline is None
                              else places(chosen.baseline, chosen.expected)))
        except PlanningError:
            raise
        except ValueError as err:
            # planner/routing refuse what cannot be planned (no vehicle, an unreachable stop).
            raise PlanningError(f"{kind} plan of {day}: {err}") from err
        context = {"plan_day": str(day), "kind": kind}
        must = sum(c.reason == "must" for c in chosen.candidates)
        log.info("%s plan of %s: %d of %d %s selected (%d must, %d may); %d stops on %d "
                 "vehicle(s), %.1f km (fixed round %s); load %.1f s, solve %.1f s",
                 kind, day, len(chosen.candidates), chosen.offered,
                 "bins" if kind == "collection" else "plants", must,
                 len(chosen.candidates) - must, day_plan.stops, len(day_plan.vehicles),
                 day_plan.distance_m / 1000,
                 "-" if day_plan.baseline_distance_m is None
                 else f"{day_plan.baseline_distance_m / 1000:.1f} km",
                 chosen.load_s, day_plan.solve_s, extra=context)
        if not day_plan.feasible:
            log.warning("%s plan of %s is not feasible: unserved must-go %s; %s", kind, day,
                        ", ".join(day_plan.unserved_must) or "none",
                        "; ".join(day_plan.violations) or "no violations reported",
                        extra=context)
        return day_plan

    def _fixed_round(self, day: dt.date, bins: Sequence[BinState], start: float,
                     end: float) -> list[Candidate] | None:
        """The bins a fixed schedule would empty on ``day`` (None: no schedule configured)."""
        schedule = self.config.fixed_schedule
        if not schedule:
            return None
        weekday = WEEKDAYS[day.weekday()]
        towns = {town for town, days in schedule.items() if weekday in days}
        mid = (start + end) / 2
        out = []
        for b in bins:
            if b.municipality not in towns:
                continue
            f = b.forecast
            if f is None:
                now_pct = due = FIXED_ROUND_FILL_PCT
            else:
                now_pct = f.level_pct
                due = f.level_at(mid) if mid > f.at else f.level_pct
            limits = self.config.thresholds(b.site_type)
            demand = int(round(min(max(due, 5.0), 100.0) / 100.0 * b.volume_l))
            out.append(Candidate(b, "must", now_pct, due, demand, 0, int(limits.service_s)))
        return out

    def _store(self, conn: psycopg.Connection, day_plan: DayPlan, now: dt.datetime, *,
               force: bool, only_if_missing: bool) -> bool:
        """Replace the day's plans of this kind in one transaction; False if skipped."""
        day, kind = day_plan.day, day_plan.kind
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))",
                         (_LOCK_KEY, f"{day}/{kind}"))
            plans, done = self._existing(conn, day, kind)
            if only_if_missing and plans:
                log.info("%s plan of %s exists already; the automatic run keeps it", kind, day)
                return False
            if done and not force:
                raise DoneStopsError(day, kind, done)
            if done:
                log.warning("%s plan of %s replaced although %d stop(s) were done (forced)",
                            kind, day, done, extra={"plan_day": str(day), "kind": kind})
            conn.execute("DELETE FROM route_plans WHERE day = %s AND kind = %s", (day, kind))
            routes = {v.vehicle_id: v for v in day_plan.vehicles}
            start = dt.datetime.fromtimestamp(shift_window(day, self.config)[0], dt.timezone.utc)
            # Every vehicle of the round gets a row, also one without stops today: the day's
            # counts and the fixed round's km stay visible when nothing needs doing.
            for vehicle in self.fleet(kind):
                route = routes.get(vehicle.id)
                plan_id = conn.execute(
                    "INSERT INTO route_plans (day, kind, vehicle_id, vehicle_name, start_at,"
                    " distance_m, duration_s, trips, must_count, may_count, unserved_must,"
                    " baseline_distance_m, baseline_stops, feasible, created_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " RETURNING id",
                    (day, kind, vehicle.id, vehicle.name,
                     dt.datetime.fromtimestamp(route.start, dt.timezone.utc) if route else start,
                     route.distance_m if route else 0, route.duration_s if route else 0,
                     route.trips if route else 0, day_plan.must, day_plan.may,
                     list(day_plan.unserved_must), day_plan.baseline_distance_m,
                     day_plan.baseline_stops, day_plan.feasible, now)).fetchone()[0]
                if route is None or not route.stops:
                    continue
                with conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO route_stops (plan_id, seq, device_id, name, municipality,"
                        " latitude, longitude, reason, eta, value_now, value_expected, demand_l,"
                        " trip, due_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                        # trip: once planner.plan.PlannedStop carries it (routing.Visit has it)
                        [(plan_id, s.seq, s.id, s.name, s.municipality, s.latitude, s.longitude,
                          s.reason, dt.datetime.fromtimestamp(s.eta, dt.timezone.utc),
                          _rounded(s.value_now), _rounded(s.value_expected), s.demand_l,
                          getattr(s, "trip", None),
                          None if s.due_at is None
                          else dt.datetime.fromtimestamp(s.due_at, dt.timezone.utc))
                         for s in route.stops])
                log.info("%s plan of %s, %s: %d stops, %.1f km, %.1f h, %d trip(s)", kind, day,
                         vehicle.name, len(route.stops), route.distance_m / 1000,
                         route.duration_s / 3600, route.trips,
                         extra={"plan_day": str(day), "kind": kind, "vehicle": vehicle.id})
        return True

    def fleet(self, kind: Kind) -> list:
        if kind == "watering":
            return [v for v in self.config.vehicles if v.water_tank_l > 0]
        return [v for v in self.config.vehicles if v.collects]

    def confirm(self) -> list[StoredStop]:
        with self.connect() as conn:
            return confirm_by_sensor(conn, self.clock(), self.tz, self.done_times)


def _expected(forecasts: dict[str, object]) -> dict[str, Callable[[float], float]]:
    """Each forecast's value at an ETA. Planned during or after the shift, early ETAs lie
    before the forecast's time, where ``level_at`` does not look: the value then is the one
    at planning (the stop is late already)."""
    def at_eta(forecast) -> Callable[[float], float]:
        return lambda t: forecast.level_at(max(t, forecast.at))

    return {device: at_eta(f) for device, f in forecasts.items() if f is not None}


def _rounded(value: float | None) -> float | None:
    if value is None or not np.isfinite(value):
        return None
    return round(float(value), 1)


# --------------------------------------------------------------------------------------------
# the service's planning job


class PlanningJob:
    """Plans each working day's rounds at ``plan_at`` and confirms stops by sensor.

    After a restart past ``plan_at`` the day is planned at once if it has no plan yet; a plan
    made by hand (API, ``bauhof plan``) is never overwritten by the job.
    """

    def __init__(self, planning: Planning, plan_at: str, confirm_interval_s: float) -> None:
        self.planning = planning
        self.plan_at = dt.time.fromisoformat(plan_at) if plan_at else None
        self.confirm_interval_s = confirm_interval_s
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._planned: set[dt.date] = set()
        self._retry_at = 0.0
        self._next_confirm = 0.0

    @property
    def enabled(self) -> bool:
        return self.plan_at is not None or self.confirm_interval_s > 0

    def start(self) -> None:
        if not self.enabled:
            log.info("route planning job disabled (BAUHOF_PLAN_AT empty, "
                     "BAUHOF_PLAN_CONFIRM_INTERVAL_S 0)")
            return
        self._thread = threading.Thread(target=self._loop, name="bauhof-planning", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        if self._thread is not None:
            # A solve in progress finishes its time limit first; the thread is a daemon anyway.
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("route planning job still busy at shutdown")

    def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self.tick()
            except psycopg.OperationalError as err:  # database away: the next tick retries
                log.warning("route planning job: database unavailable: %s",
                            str(err).strip().splitlines()[0] if str(err) else err)
            except Exception:  # keep the job alive whatever broke; the next tick retries
                log.exception("route planning job failed")
                self._stopping.wait(30)
            self._stopping.wait(self._sleep())

    def _sleep(self) -> float:
        waits = [60.0]
        if self.confirm_interval_s > 0:
            waits.append(max(self._next_confirm - time.monotonic(), 0.1))
        return min(waits)

    def next_planning(self, now: dt.datetime) -> dt.datetime | None:
        """When the job will next plan a working day (local time); None: it never plans."""
        if self.plan_at is None:
            return None
        config = self.planning.config
        local = now.astimezone(self.planning.tz)
        day = local.date()
        for _ in range(15):
            at = dt.datetime.combine(day, self.plan_at, self.planning.tz)
            if WEEKDAYS[day.weekday()] in config.working_days and at > local:
                return at
            day += dt.timedelta(days=1)
        return None

    def tick(self) -> None:
        """One round of the job's duties (public so that tests can drive it)."""
        config = self.planning.config
        if self.plan_at is not None:
            now = self.planning.clock().astimezone(self.planning.tz)
            today = now.date()
            due = (WEEKDAYS[today.weekday()] in config.working_days
                   and now.time() >= self.plan_at and today not in self._planned
                   and time.monotonic() >= self._retry_at)
            if due:
                self._plan_day(today)
        if self.confirm_interval_s > 0 and time.monotonic() >= self._next_confirm:
            self._next_confirm = time.monotonic() + self.confirm_interval_s
            self.planning.confirm()

    def _plan_day(self, day: dt.date) -> None:
        kinds = [k for k in KINDS if self.planning.fleet(k)]
        failed = False
        for kind in kinds:
            if self._stopping.is_set():
                return
            try:
                stored = self.planning.plan(day, kind, only_if_missing=True)
            except PlanningError as err:
                failed = True
                log.error("automatic %s plan of %s failed: %s", kind, day, err,
                          extra={"plan_day": str(day), "kind": kind})
                continue
            if stored is not None:
                log.info("automatic %s plan of %s stored", kind, day,
                         extra={"plan_day": str(day), "kind": kind})
        if failed:
            # Try again in a while (OSRM down, say), not in a tight loop.
            self._retry_at = time.monotonic() + RETRY_S
        else:
            self._planned.add(day)
