"""Keep TimescaleDB's hourly aggregate true when readings arrive late.

Migration 002 makes ``readings_hourly`` a real-time continuous aggregate: a policy materialises
the hours between 3 days and 1 hour ago every 30 minutes, and hours above what it materialised
(the watermark) are computed from the readings at query time. An hour below the watermark is
answered from its materialised row alone, so a reading written there later (a backfill from
the Storage Integration, a gateway or device that buffered, a replay) is missing from the
aggregate until a refresh covers its hour: within 30 minutes while the hour lies inside the
policy's 3 days, never when it is older. The policy's first run likewise leaves every hour older
than 3 days unmaterialised for good, such as a week of history loaded at the start.

So the writer refreshes, right after its commit, the hours it wrote that the policy may already
have materialised: those older than the policy's end offset. Hours older than the readings'
retention are left alone: their readings are gone, and a refresh would replace the aggregate's
rows with the few readings written late.

On plain PostgreSQL (and TimescaleDB without the aggregate) ``readings_hourly`` is a view and
there is nothing to refresh.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone

import psycopg

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
# Migration 002's add_continuous_aggregate_policy(end_offset): the policy never materialises
# hours newer than this, so the watermark it sets is at or below it.
POLICY_END_OFFSET = HOUR

Window = tuple[datetime, datetime]


def floor_hour(t: datetime) -> datetime:
    # time_bucket('1 hour') buckets start on the UTC hour.
    return t.astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0)


def late_window(times: Iterable[datetime], now: datetime,
                retention: timedelta | None) -> Window | None:
    """The whole hours, [start, end), that hold the late ones of ``times``; None if none is late.

    Late: in an hour that ended before ``now - POLICY_END_OFFSET``, and, with a retention,
    in a day the retention has not yet started dropping (a chunk is one day).
    """
    limit = floor_hour(now - POLICY_END_OFFSET)
    oldest = now - retention + DAY if retention is not None else None
    first = last = None
    for t in times:
        if t >= limit or (oldest is not None and t < oldest):
            continue
        if first is None or t < first:
            first = t
        if last is None or t > last:
            last = t
    if first is None or last is None:
        return None
    return floor_hour(first), floor_hour(last) + HOUR


def union(a: Window | None, b: Window | None) -> Window | None:
    if a is None or b is None:
        return a or b
    return min(a[0], b[0]), max(a[1], b[1])


class HourlyAggregate:
    """Refreshes ``readings_hourly`` over hours written late, where it is a continuous
    aggregate. A refresh that fails is retried with the next one (the readings are committed
    either way; only the aggregate lags)."""

    def __init__(self) -> None:
        self.continuous: bool | None = None  # unknown until detected on a connection
        self.retention: timedelta | None = None
        self.pending: Window | None = None

    def detect(self, conn: psycopg.Connection) -> None:
        """Whether readings_hourly is a continuous aggregate, and the readings' retention.
        Leaves the connection idle."""
        row = conn.execute(
            "SELECT to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL"
        ).fetchone()
        continuous, retention = False, None
        if row[0]:
            continuous = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates"
                " WHERE view_name = 'readings_hourly')").fetchone()[0]
            keep = conn.execute(
                "SELECT min((config->>'drop_after')::interval) FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_retention' AND hypertable_name = 'readings'"
            ).fetchone()
            retention = keep[0] if keep else None
        conn.commit()
        self.continuous, self.retention = bool(continuous), retention

    def after_commit(self, conn: psycopg.Connection, times: Iterable[datetime],
                     now: datetime | None = None) -> Window | None:
        """Refresh the hours of ``times`` that are late (and what an earlier failure left);
        return the window refreshed. Runs outside any transaction, as TimescaleDB requires.
        Raises only what says the connection is gone."""
        if not self.continuous:
            return None
        now = now or datetime.now(timezone.utc)
        window = union(self.pending, late_window(times, now, self.retention))
        if window is None:
            return None
        self.pending = window
        autocommit = conn.autocommit
        try:
            conn.autocommit = True
            try:
                conn.execute("CALL refresh_continuous_aggregate('readings_hourly', %s, %s)",
                             window)
            finally:
                if not conn.broken:
                    conn.autocommit = autocommit
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except psycopg.Error as err:
            log.warning("could not refresh readings_hourly for %s to %s (retried with the next "
                        "late readings): %s", window[0].isoformat(), window[1].isoformat(),
                        err.diag.message_primary or err)
            return None
        self.pending = None
        log.debug("refreshed readings_hourly for late readings, %s to %s",
                 window[0].isoformat(), window[1].isoformat())
        return window
