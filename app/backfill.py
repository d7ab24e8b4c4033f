"""Backfill: fetch from TTS's Storage Integration what the MQTT intake did not get.

TTS publishes uplinks at QoS 0 and keeps nothing for a subscriber that is away
(``shared/formats.md`` §1.3), so after start-up, after every reconnect and every
``backfill_interval_s`` we ask the Storage Integration for each configured application's
uplinks since the last one we stored (minus an overlap) and hand them to the same pipeline as
MQTT messages. The idempotency key keeps them single. A run that completed is recorded with the
window it covered: gap accounting reads it.

Storage Integration rules we rely on (see simulator/storage.py for the emulation): filter on the
top-level ``received_at``; ``after`` alone is exclusive; without ``order`` the rows come in
storage order, so we ask for ``order=received_at`` and page with ``after`` = the last time seen
(minus a microsecond, because ``after`` is exclusive and two uplinks may share a time).
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import httpx
import psycopg
from prometheus_client import Counter

from app.config import Settings
from app.metrics import Metrics
from app.model import Outcome, Result
from app.pipeline import Message, Pipeline

log = logging.getLogger(__name__)
SOURCE = "tts-backfill"


class BackfillError(RuntimeError):
    pass


@dataclass
class RunReport:
    application_id: str
    covered_from: datetime
    covered_to: datetime
    fetched: int = 0
    stored: int = 0


def _utc_now() -> datetime:
    return datetime.now(timezone.utc)


def _rfc3339(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class Backfiller:
    def __init__(self, settings: Settings, conninfo: str, pipeline: Pipeline,
                 metrics: Metrics, clock=None) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.pipeline = pipeline
        self.metrics = metrics
        self.clock = clock or (lambda: _utc_now())  # late-bound, so tests can move "now"
        self.http = httpx.Client(base_url=settings.backfill_url.rstrip("/"), timeout=30.0)
        self._wanted = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_run: dict[str, RunReport] = {}
        self.runs = Counter("bauhof_backfill_runs_total", "Backfill runs, by application and result",
                            ["application", "result"], registry=metrics.registry)

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="bauhof-backfill", daemon=True)
        self._thread.start()
        self.request()

    def request(self) -> None:
        """Ask for a run soon; requests while one runs fold into one more run."""
        self._wanted.set()

    def stop(self) -> None:
        self._stopping.set()
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(35)
        self.http.close()

    def _loop(self) -> None:
        interval = self.settings.backfill_interval_s or None
        while not self._stopping.is_set():
            self._wanted.wait(interval)
            if self._stopping.is_set():
                return
            self._wanted.clear()
            for application_id in sorted(self.settings.backfill_keys()):
                try:
                    self.run(application_id)
                except (BackfillError, httpx.HTTPError, psycopg.Error) as err:
                    self.runs.labels(application_id, "failed").inc()
                    log.warning("backfill of %s failed: %s", application_id, err)
                    # Try again soon rather than wait a whole interval.
                    self._stopping.wait(10)
                    self._wanted.set()

    # --- one run -------------------------------------------------------------------------------

    def run(self, application_id: str) -> RunReport:
        started = self.clock()
        since = self._since(application_id, started)
        report = RunReport(application_id, since, started)
        key = self.settings.backfill_keys()[application_id].get_secret_value()
        after = since
        pending: list[threading.Event] = []
        outcomes: list[Result] = []
        while not self._stopping.is_set():
            page = self._page(application_id, key, after, started)
            for raw, received_at in page:
                report.fetched += 1
                done = threading.Event()
                pending.append(done)

                def finished(result: Result, done=done) -> None:
                    outcomes.append(result)
                    done.set()

                while not self.pipeline.submit(Message(raw=raw, source=SOURCE, done=finished),
                                               timeout=1.0):
                    if self.pipeline.stopping or self._stopping.is_set():
                        raise BackfillError("stopping")
                after = max(after, received_at - timedelta(microseconds=1))
            if len(page) < self.settings.backfill_page:
                break
        # The window counts as covered only once everything fetched is committed.
        deadline = time.monotonic() + 300
        for done in pending:
            if not done.wait(max(0.0, deadline - time.monotonic())):
                raise BackfillError("fetched uplinks were not committed in time")
        report.stored = sum(1 for r in outcomes if r.outcome is Outcome.STORED)
        self._record(report)
        self.last_run[application_id] = report
        self.runs.labels(application_id, "ok").inc()
        if report.stored:
            log.info("backfill of %s: %d fetched, %d were missing and are stored now",
                     application_id, report.fetched, report.stored)
        return report

    def _since(self, application_id: str, now: datetime) -> datetime:
        """Where TTS's record may hold something we lack.

        Up to the end of the last completed run we have everything TTS had stored then; with
        no run yet, up to the newest uplink we stored. Minus an overlap, because the Storage
        Integration writes in batches and lags behind live traffic.
        """
        overlap = timedelta(seconds=self.settings.backfill_overlap_s)
        oldest = now - timedelta(hours=self.settings.backfill_max_age_h)
        with psycopg.connect(self.conninfo, connect_timeout=5) as conn:
            covered = conn.execute(
                "SELECT max(covered_to) FROM backfill_runs WHERE application_id = %s",
                (application_id,)).fetchone()[0]
            last = covered or conn.execute(
                "SELECT max(received_at) FROM raw_uplinks WHERE application_id = %s"
                " AND NOT simulated", (application_id,)).fetchone()[0]
        if last is None:
            return oldest
        return max(oldest, min(last, now) - overlap)

    def _page(self, application_id: str, key: str, after: datetime,
              before: datetime) -> list[tuple[bytes, datetime]]:
        answer = self.http.get(
            f"/api/v3/as/applications/{application_id}/packages/storage/uplink_message",
            params={"type": "uplink_message", "order": "received_at", "after": _rfc3339(after),
                    "before": _rfc3339(before), "limit": self.settings.backfill_page},
            headers={"Authorization": f"Bearer {key}", "Accept": "text/event-stream"})
        if answer.status_code != 200:
            # TTS error JSON: {"code", "message", ...}; its message names the problem.
            try:
                message = answer.json().get("message", "")
            except ValueError:
                message = answer.text[:200]
            raise BackfillError(f"Storage Integration answered {answer.status_code}: {message}")
        out = []
        for line in answer.content.splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            if "error" in item:  # older gateways wrap stream errors this way
                raise BackfillError(f"Storage Integration stream error: {item['error']}")
            up = item["result"]
            out.append((json.dumps(up, separators=(",", ":")).encode(),
                        _parse_time(up["received_at"])))
        return out

    def _record(self, report: RunReport) -> None:
        with psycopg.connect(self.conninfo, connect_timeout=5) as conn:
            conn.execute(
                "INSERT INTO backfill_runs (application_id, covered_from, covered_to, fetched,"
                " stored) VALUES (%s, %s, %s, %s, %s)",
                (report.application_id, report.covered_from, report.covered_to, report.fetched,
                 report.stored))
