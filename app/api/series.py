"""Readings in time buckets (avg/min/max/last/n per bucket), of one device or of many.

Buckets are aligned to a fixed origin, Monday 2000-01-03 00:00 UTC (so hours start on the hour,
days at midnight UTC, weeks on Mondays), and the requested range is widened to whole buckets:
``since`` is rounded down and ``until`` up to a bucket boundary, so that every bucket returned
covers its whole interval and the same question always gets the same buckets. With ``tz`` (e.g.
``Europe/Berlin``) buckets of whole days or weeks follow that zone's midnights instead, which
makes a day 23 or 25 hours long where summer time begins or ends.

Where it comes from:

- TimescaleDB, bucket a whole number of hours: from ``readings_hourly``, the continuous
  aggregate (avg recombined as sum(avg * n) / sum(n)); cheap for any range.
- Otherwise (plain PostgreSQL, or buckets below an hour): ``date_bin`` over ``readings``. The
  query has ``device_id``, ``metric`` and the time range as conditions, which is a range scan
  of the primary key (device_id, metric, time); on plain PostgreSQL ``readings_hourly`` is an
  ordinary view that would aggregate the device's whole history first. On the benchmark data
  (35 M readings) a 30-day hourly series plans as::

      GroupAggregate  (actual time=1.1..2.5 rows=720)
        ->  Sort  Sort Key: (date_bin('01:00:00'::interval, "time", '2000-01-03 ...'))
              ->  Index Only Scan using readings_pkey on readings  (rows=2880)
                    Index Cond: ((device_id = 'bench-bin-0500'::text)
                                 AND (metric = 'fill_level_pct'::text)
                                 AND ("time" >= ...) AND ("time" < ...))
                    Heap Fetches: 0

  Migration 005 makes the key INCLUDE value, hence index-only: about 30 index pages instead
  of one heap page per reading (without it: a Bitmap Heap Scan of 2,880 heap pages).

The ETag of a series from ``readings`` is a version stamp (``readings_digest``: count and hash
sum of the rows in the range, the same index-only scan without sorting or aggregating), so a
poll of an unchanged series is answered with a 304 before the series is computed.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, ConfigDict

from app.api.caching import CachePolicy, cacheable
from app.api.deps import Conn, IsoDateTime, ZoneName
from app.api.devices import (CACHE_HEADERS, LIVE_MAX_AGE, NOT_MODIFIED, ROW_HASH,
                             DeviceId, json_example, json_response, max_age_for, time_window)

router = APIRouter(prefix="/api/v1", tags=["series"])

ORIGIN = datetime(2000, 1, 3, tzinfo=timezone.utc)  # a Monday
ORIGIN_LOCAL = datetime(2000, 1, 3)
MIN_BUCKET = timedelta(minutes=1)
MAX_BUCKET = timedelta(days=366)
MAX_POINTS = 100_000
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)

_SHORT = re.compile(r"^\s*(\d+)\s*(s|m|min|h|d|w)\s*$", re.IGNORECASE)
_ISO = re.compile(r"^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$",
                  re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_bucket(text: str) -> timedelta:
    """``15m``, ``1h``, ``1d``, ``1w`` (m is minutes) or an ISO 8601 duration (``PT15M``,
    ``P1D``); months and years are not fixed lengths and are refused."""
    short = _SHORT.match(text)
    if short:
        seconds = int(short[1]) * _UNITS[short[2].lower()]
    else:
        iso = _ISO.match(text.strip())
        if not iso or text.strip().upper() in ("P", "PT") or text.strip().upper().endswith("T"):
            raise HTTPException(422, f"bucket {text!r}: use e.g. 15m, 1h, 1d, 1w or an ISO 8601 "
                                     "duration such as PT15M, PT1H, P1D (no months or years)")
        w, d, h, m, s = (int(g or 0) for g in iso.groups())
        seconds = (((w * 7 + d) * 24 + h) * 60 + m) * 60 + s
    bucket = timedelta(seconds=seconds)
    if not MIN_BUCKET <= bucket <= MAX_BUCKET:
        raise HTTPException(422, f"bucket {text!r}: must be between 1 minute and 366 days")
    return bucket


def iso_duration(bucket: timedelta) -> str:
    seconds = int(bucket.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    out = "P" + (f"{days}D" if days else "")
    time_part = (f"{hours}H" if hours else "") + (f"{minutes}M" if minutes else "") + (
        f"{secs}S" if secs else "")
    return out + ("T" + time_part if time_part else "")


def parse_tz(name: str) -> ZoneInfo | None:
    if name.upper() in ("UTC", "Z", "ETC/UTC"):
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(422, f"unknown time zone {name!r}; e.g. UTC or Europe/Berlin")


class Window:
    """The bucketing of one request: the widened range and how to bin in SQL."""

    def __init__(self, since: datetime, until: datetime, bucket: timedelta,
                 zone: ZoneInfo | None) -> None:
        self.bucket = bucket
        # Wall-clock binning only for whole days: sub-day buckets would merge or split the
        # hour that summer time repeats or skips.
        self.zone = zone if zone is not None and bucket % DAY == timedelta(0) else None
        self.since = self.floor(since)
        until_floor = self.floor(until)
        self.until = until_floor if until_floor == until else self.next(until_floor)
        self.count = self.buckets()

    def floor(self, t: datetime) -> datetime:
        if self.zone is None:
            return ORIGIN + (t - ORIGIN) // self.bucket * self.bucket
        local = t.astimezone(self.zone).replace(tzinfo=None)
        start = ORIGIN_LOCAL + (local - ORIGIN_LOCAL) // self.bucket * self.bucket
        return start.replace(tzinfo=self.zone).astimezone(timezone.utc)

    def next(self, start: datetime) -> datetime:
        if self.zone is None:
            return start + self.bucket
        local = start.astimezone(self.zone).replace(tzinfo=None) + self.bucket
        return local.replace(tzinfo=self.zone).astimezone(timezone.utc)

    def buckets(self) -> int:
        if self.zone is None:
            return int((self.until - self.since) / self.bucket)
        days = (self.until.astimezone(self.zone).date() - self.since.astimezone(self.zone).date())
        return round(days / self.bucket)

    def bin_sql(self, column: str) -> str:
        if self.zone is None:
            return f"date_bin(%(bucket)s, {column}, %(origin)s)"
        return (f"(date_bin(%(bucket)s, {column} AT TIME ZONE %(tz)s, %(origin_local)s)"
                " AT TIME ZONE %(tz)s)")

    def hour_aligned(self) -> bool:
        if self.bucket % HOUR:
            return False
        if self.zone is None:
            return True
        return all(b.astimezone(self.zone).utcoffset() % HOUR == timedelta(0)
                   for b in (self.since, self.until))

    def params(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "origin": ORIGIN, "origin_local": ORIGIN_LOCAL,
                "tz": self.zone.key if self.zone else "UTC",
                "since": self.since, "until": self.until}


def _in(column: str, name: str, values: list[str]) -> str:
    return f"{column} = %({name})s" if len(values) == 1 else f"{column} = ANY(%({name})s)"


def series_sql(window: Window, device_ids: list[str], metrics: list[str],
               source: str) -> tuple[str, dict[str, Any]]:
    """The query of :func:`query_series` and its parameters.

    Sums run in time order: a floating-point sum depends on the order of its terms, and rows
    reach the aggregate in whatever order the plan produced them (a bitmap scan, an index scan
    of a prepared statement's generic plan), so an unordered avg could differ in the last bit
    between two identical requests, and with it the body and the ETag.
    """
    params = {**window.params(),
              "d": device_ids[0] if len(device_ids) == 1 else device_ids,
              "m": metrics[0] if len(metrics) == 1 else metrics}
    where = f"{_in('device_id', 'd', device_ids)} AND {_in('metric', 'm', metrics)}"
    if source == "readings_hourly":
        sql = (f"SELECT device_id, metric, {window.bin_sql('bucket')} AS b,"
               " sum(avg * n ORDER BY bucket) / sum(n), min(min), max(max),"
               " (array_agg(last ORDER BY bucket DESC))[1], sum(n)::bigint"
               f" FROM readings_hourly WHERE {where}"
               " AND bucket >= %(since)s AND bucket < %(until)s")
    else:
        sql = (f"SELECT device_id, metric, {window.bin_sql('time')} AS b,"
               " avg(value ORDER BY time), min(value), max(value),"
               " (array_agg(value ORDER BY time DESC))[1], count(*)"
               f" FROM readings WHERE {where}"
               " AND time >= %(since)s AND time < %(until)s")
    sql += " GROUP BY device_id, metric, b ORDER BY device_id, metric, b"
    return sql, params


def digest_sql(window: Window, device_ids: list[str],
               metrics: list[str]) -> tuple[str, dict[str, Any]]:
    """The query of :func:`readings_digest` and its parameters."""
    params = {**window.params(),
              "d": device_ids[0] if len(device_ids) == 1 else device_ids,
              "m": metrics[0] if len(metrics) == 1 else metrics}
    row_hash = ROW_HASH.format(d="device_id", m="metric", t="time", v="value")
    return (f"SELECT count(*), sum({row_hash})"
            f" FROM readings WHERE {_in('device_id', 'd', device_ids)}"
            f" AND {_in('metric', 'm', metrics)} AND time >= %(since)s AND time < %(until)s",
            params)


def readings_digest(conn: psycopg.Connection, window: Window, device_ids: list[str],
                    metrics: list[str]) -> tuple[int, Any]:
    """A version stamp of the readings a series is made of: their count and a sum of per-row
    hashes of (device, metric, time, value). The same index-only range scan as the series,
    without sorting or aggregating: a fraction of its cost, so that a poll whose answer has
    not changed costs little more than this (see app.api.caching)."""
    return conn.execute(*digest_sql(window, device_ids, metrics)).fetchone()


def query_series(conn: psycopg.Connection, window: Window, device_ids: list[str],
                 metrics: list[str], source: str) -> list[tuple]:
    """Rows (device_id, metric, bucket start, avg, min, max, last, n), in that order."""
    return conn.execute(*series_sql(window, device_ids, metrics, source)).fetchall()


def metrics_of(conn: psycopg.Connection, device_id: str) -> list[str]:
    """The metrics a device ever reported: a loose index scan of the primary key."""
    rows = conn.execute(
        "WITH RECURSIVE m(metric) AS ("
        "  SELECT min(metric) FROM readings WHERE device_id = %(d)s"
        "  UNION ALL"
        "  SELECT (SELECT min(metric) FROM readings WHERE device_id = %(d)s"
        "           AND metric > m.metric) FROM m WHERE m.metric IS NOT NULL)"
        " SELECT metric FROM m WHERE metric IS NOT NULL", {"d": device_id}).fetchall()
    return [r[0] for r in rows]


def choose_source(request: Request, conn: psycopg.Connection, window: Window) -> str:
    """readings_hourly where it is a continuous aggregate and the buckets are whole hours."""
    if not window.hour_aligned():
        return "readings"
    state = request.app.state
    aggregate = getattr(state, "bauhof_hourly_aggregate", None)
    if aggregate is None:
        aggregate = bool(conn.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')"
        ).fetchone()[0])
        if aggregate:
            aggregate = bool(conn.execute(
                "SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates"
                " WHERE view_name = 'readings_hourly')").fetchone()[0])
        state.bauhof_hourly_aggregate = aggregate
    return "readings_hourly" if aggregate else "readings"


def _check_size(points: int, what: str) -> None:
    if points > MAX_POINTS:
        raise HTTPException(
            422, f"this would return up to {points:,} points ({what}); the limit is "
                 f"{MAX_POINTS:,}: use a larger bucket, a shorter range or narrower filters")


# --- models --------------------------------------------------------------------------------------

class Point(BaseModel):
    time: datetime
    avg: float
    min: float
    max: float
    last: float
    n: int

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"time": "2025-06-03T05:00:00Z", "avg": 61.9, "min": 60.2, "max": 63.5, "last": 63.5,
         "n": 4}]})


class MetricSeries(BaseModel):
    metric: str
    points: list[Point]


_COMMON = {"bucket": "PT1H", "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z",
           "tz": "UTC", "source": "readings"}
_POINTS = [{"time": "2025-06-03T05:00:00Z", "avg": 61.9, "min": 60.2, "max": 63.5,
            "last": 63.5, "n": 4},
           {"time": "2025-06-03T06:00:00Z", "avg": 64.3, "min": 63.9, "max": 65.0,
            "last": 65.0, "n": 4}]


class DeviceSeries(BaseModel):
    device_id: str
    bucket: str
    since: datetime
    until: datetime
    tz: str
    source: Literal["readings", "readings_hourly"]
    series: list[MetricSeries]

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"device_id": "bin-marktplatz-017", **_COMMON,
         "series": [{"metric": "fill_level_pct", "points": _POINTS}]}]})


class DeviceOfSeries(BaseModel):
    device_id: str
    name: str | None
    municipality: str | None
    kind: str | None
    points: list[Point]


class ManySeries(BaseModel):
    metric: str
    bucket: str
    since: datetime
    until: datetime
    tz: str
    source: Literal["readings", "readings_hourly"]
    series: list[DeviceOfSeries]

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"metric": "fill_level_pct", **_COMMON,
         "series": [{"device_id": "bin-marktplatz-017", "name": "Marktplatz Süd",
                     "municipality": "Gelnhausen", "kind": "bin", "points": _POINTS}]}]})




def _points(rows: list[tuple]) -> list[dict[str, Any]]:
    # Plain dicts in the shape of Point, serialised once (see json_response).
    return [{"time": b, "avg": a, "min": lo, "max": hi, "last": last, "n": n}
            for _, _, b, a, lo, hi, last, n in rows]


BucketQ = Query(default="1h", examples=["1h"],
                description="15m, 1h, 1d, 1w (m = minutes) or ISO 8601: PT15M, PT1H, P1D")
TzQ = Query(default="UTC", examples=["Europe/Berlin"],
            description="Time zone whose midnights start buckets of whole days")
SinceQ = Query(default=None, examples=["2025-06-03T00:00:00Z"],
               description="Start (rounded down to a bucket); default: until minus 24 h")
UntilQ = Query(default=None, examples=["2025-06-04T00:00:00Z"],
               description="End, exclusive (rounded up to a bucket); default: now")


@router.get(
    "/devices/{device_id}/series", response_model=DeviceSeries,
    summary="One device's readings in time buckets: avg/min/max/last/n per bucket",
    description=f"At most {MAX_POINTS:,} points (metrics × buckets), else 422. Cached for "
                "5 s, or an hour when the range ended more than 48 h ago.",
    responses={**json_example(DeviceSeries.model_config["json_schema_extra"]["examples"][0],
                              headers=CACHE_HEADERS), **NOT_MODIFIED,
               404: {"description": "unknown device"},
               422: {"description": "bad bucket, time zone or range, or too many points"}})
def device_series(conn: Conn, request: Request, device_id: DeviceId,
                  cache: Annotated[CachePolicy, cacheable(LIVE_MAX_AGE)],
                  metric: str | None = Query(default=None, examples=["fill_level_pct"],
                                             description="Default: every metric of the device"),
                  since: IsoDateTime | None = SinceQ, until: IsoDateTime | None = UntilQ,
                  bucket: str = BucketQ, tz: ZoneName = TzQ) -> Response:
    since, until = time_window(since, until)
    window = Window(since, until, parse_bucket(bucket), parse_tz(tz))
    metrics = [metric] if metric else metrics_of(conn, device_id)
    _check_size(len(metrics) * window.count,
                f"{len(metrics)} metrics × {window.count:,} buckets")
    source = choose_source(request, conn, window)
    cache.max_age = max_age_for(window.until)
    rows: list[tuple] | None = None
    if source == "readings":
        digest = readings_digest(conn, window, [device_id], metrics) if metrics else (0, None)
        found = digest[0] > 0
    else:
        # The aggregate's rows are not what a stamp of the readings covers, and a scan of the
        # readings (on TimescaleDB, of compressed chunks) only to learn whether there are any
        # would cost more than the series.
        digest = None
        rows = query_series(conn, window, [device_id], metrics, source) if metrics else []
        found = bool(rows)
    if not found and conn.execute("SELECT 1 FROM devices WHERE device_id = %s",
                                  (device_id,)).fetchone() is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    if digest is not None:
        cache.stamp(request, window.since, window.until, metrics, *digest)
    if rows is None:
        rows = query_series(conn, window, [device_id], metrics, source) if found else []
    by_metric: dict[str, list[tuple]] = {}
    for row in rows:
        by_metric.setdefault(row[1], []).append(row)
    return json_response({
        "device_id": device_id, "bucket": iso_duration(window.bucket), "since": window.since,
        "until": window.until, "tz": window.zone.key if window.zone else "UTC",
        "source": source,
        "series": [{"metric": m, "points": _points(r)} for m, r in by_metric.items()]})


@router.get(
    "/series", response_model=ManySeries,
    summary="One metric of many devices in time buckets (for dashboards)",
    description=f"Devices chosen by municipality, kind and/or device_id (repeatable). At most "
                f"{MAX_POINTS:,} points (devices × buckets), else 422 with the numbers. Devices "
                "without readings in the range are left out.",
    responses={**json_example(ManySeries.model_config["json_schema_extra"]["examples"][0],
                              headers=CACHE_HEADERS), **NOT_MODIFIED,
               422: {"description": "bad bucket, time zone or range, or too many points"}})
def many_series(conn: Conn, request: Request,
                cache: Annotated[CachePolicy, cacheable(LIVE_MAX_AGE)],
                metric: str = Query(examples=["fill_level_pct"]),
                municipality: str | None = Query(default=None, examples=["Gelnhausen"]),
                kind: str | None = Query(default=None, examples=["bin"]),
                device_id: list[str] | None = Query(default=None,
                                                    examples=[["bin-marktplatz-017"]]),
                since: IsoDateTime | None = SinceQ, until: IsoDateTime | None = UntilQ,
                bucket: str = BucketQ, tz: ZoneName = TzQ) -> Response:
    since, until = time_window(since, until)
    window = Window(since, until, parse_bucket(bucket), parse_tz(tz))
    where, params = [], {}
    if municipality is not None:
        where.append("municipality = %(mu)s")
        params["mu"] = municipality
    if kind is not None:
        where.append("kind = %(k)s")
        params["k"] = kind
    if device_id:
        where.append("device_id = ANY(%(ids)s)")
        params["ids"] = device_id
    devices = conn.execute(
        "SELECT device_id, name, municipality, kind FROM devices"
        + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY device_id",
        params).fetchall()
    _check_size(len(devices) * window.count,
                f"{len(devices):,} devices × {window.count:,} buckets")
    source = choose_source(request, conn, window)
    cache.max_age = max_age_for(window.until)
    ids = [d[0] for d in devices]
    if source == "readings":
        digest = readings_digest(conn, window, ids, [metric]) if ids else (0, None)
        cache.stamp(request, window.since, window.until, devices, *digest)
    rows = query_series(conn, window, ids, [metric], source) if ids else []
    by_device: dict[str, list[tuple]] = {}
    for row in rows:
        by_device.setdefault(row[0], []).append(row)
    return json_response({
        "metric": metric, "bucket": iso_duration(window.bucket), "since": window.since,
        "until": window.until, "tz": window.zone.key if window.zone else "UTC",
        "source": source,
        "series": [{"device_id": d, "name": name, "municipality": mu, "kind": k,
                    "points": _points(by_device[d])}
                   for d, name, mu, k in devices if d in by_device]})
