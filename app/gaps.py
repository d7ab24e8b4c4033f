"""Frame-counter gaps per device: lost over the air, or missed by us and not recovered.

A gap is a jump in f_cnt within one session. If a completed backfill covered its time span,
TTS never had the missing uplinks: the radio lost them. If nothing covered it and an intake
outage (MQTT disconnected, service down) overlaps it, we missed them and did not recover them.
If we were listening the whole time, the radio lost them too. One query, standard SQL.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import psycopg

_GAPS = """
WITH ordered AS (
    SELECT device_id, application_id, session_key_id, f_cnt, received_at,
           lag(f_cnt) OVER w AS prev_f_cnt, lag(received_at) OVER w AS prev_at
      FROM raw_uplinks
     WHERE NOT simulated AND received_at >= %(since)s AND received_at < %(until)s
       AND (%(device)s::text IS NULL OR device_id = %(device)s)
    WINDOW w AS (PARTITION BY device_id, session_key_id ORDER BY f_cnt)
)
SELECT o.device_id, o.session_key_id, o.prev_f_cnt, o.f_cnt,
       o.f_cnt - o.prev_f_cnt - 1 AS missing, o.prev_at, o.received_at,
       EXISTS (SELECT 1 FROM backfill_runs b
                WHERE b.application_id = o.application_id
                  AND b.covered_from <= o.prev_at AND b.covered_to >= o.received_at) AS covered,
       EXISTS (SELECT 1 FROM intake_outages x
                WHERE x.started_at < o.received_at
                  AND coalesce(x.ended_at, 'infinity') > o.prev_at) AS outage
  FROM ordered o
 WHERE o.f_cnt > o.prev_f_cnt + 1
 ORDER BY o.device_id, o.received_at
"""

LOST_OVER_AIR = "lost_over_air"
MISSED = "missed"


@dataclass(frozen=True)
class Gap:
    device_id: str
    session_key_id: str
    after_f_cnt: int
    before_f_cnt: int
    missing: int
    start: datetime
    end: datetime
    kind: str


def gaps(conn: psycopg.Connection, since: datetime, until: datetime,
         device_id: str | None = None) -> list[Gap]:
    rows = conn.execute(_GAPS, {"since": since, "until": until, "device": device_id}).fetchall()
    return [Gap(r[0], r[1] or "", r[2], r[3], r[4], r[5], r[6],
                LOST_OVER_AIR if r[7] or not r[8] else MISSED) for r in rows]


def totals(found: list[Gap]) -> dict[str, dict[str, int]]:
    """Missing uplinks per device and kind."""
    out: dict[str, dict[str, int]] = {}
    for gap in found:
        per = out.setdefault(gap.device_id, {LOST_OVER_AIR: 0, MISSED: 0})
        per[gap.kind] += gap.missing
    return out


class GapMetrics:
    """Prometheus gauges of the missing uplinks over the last 24 hours, refreshed on scrape at
    most once a minute (the query reads a day of uplinks)."""

    def __init__(self, registry, window: timedelta = timedelta(hours=24),
                 every_s: float = 60.0) -> None:
        from prometheus_client import Gauge

        self.gauge = Gauge("bauhof_fcnt_gap_uplinks",
                           "Uplinks missing from frame-counter gaps in the last 24 h, by kind",
                           ["kind"], registry=registry)
        self.window = window
        self.every_s = every_s
        self._refreshed = float("-inf")

    def refresh(self, conn: psycopg.Connection) -> None:
        if time.monotonic() - self._refreshed < self.every_s:
            return
        now = datetime.now(timezone.utc)
        found = gaps(conn, now - self.window, now)
        for kind in (LOST_OVER_AIR, MISSED):
            self.gauge.labels(kind).set(sum(g.missing for g in found if g.kind == kind))
        self._refreshed = time.monotonic()
