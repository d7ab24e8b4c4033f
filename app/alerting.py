"""Alerts in the service: the I/O edge around the pure alerts core (alerts/).

One evaluation cycle (:meth:`Alerting.evaluate`):

1. build a :class:`alerts.DeviceWindow` per device from the store: the registry entry, the
   readings each rule needs (``alerts.requirements(rules)``: one query per metric, readings at
   or before ``now`` only), the uplink times, for bins the planner's fill forecast
   (``planner.selection.bin_forecast``) and the next planned collection (the next planned stop
   of the bin in ``route_stops``, else the shift start of the next working day without a stored
   collection plan);
2. ``alerts.evaluate`` and ``alerts.step`` (pure);
3. persist the alerts in one transaction (``alerts`` table; the rows of the evaluated devices
   are locked meanwhile, so an acknowledgement in between waits instead of being overwritten);
4. after the commit, notify (``alerts.Router``: routes, quiet hours, webhook / e-mail / MQTT) and
   record every delivery in ``alert_notifications``. A failing channel never stops the others.

:class:`AlertingJob` runs cycles in a background thread: for the devices of each committed
batch (debounced: at most every ``BAUHOF_ALERT_BATCH_DELAY_S``; the writer thread only drops
device ids into a set) and every ``BAUHOF_ALERT_INTERVAL_S`` for all devices (offline devices,
reminders and the release of notifications held by quiet hours need time to pass, not data to
arrive).

The clock is injectable (``Alerting(clock=...)``, ``evaluate(now=...)``): a test replays a
stored week and steps the evaluation through it.
"""
from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from psycopg.types.json import Jsonb
from pydantic import BaseModel, SecretStr

from app import logs
from alerts import (AlertState, DeviceWindow, Router, RuleSet, acknowledge, compose, evaluate,
                    load_router_config, load_rules, requirements, step)
from alerts.lifecycle import Event
from alerts.notify import DEFAULT_TZ, DeliveryResult
from alerts.params import BinOverflowParams
from planner.config import WEEKDAYS, PlannerConfig
from planner.plan import shift_window
from planner.selection import bin_forecast

log = logging.getLogger(__name__)

Connect = Callable[[], AbstractContextManager[psycopg.Connection]]
Clock = Callable[[], dt.datetime]

FORECAST_HISTORY = dt.timedelta(days=28)  # as the planner's (app/planning.py HISTORY)
FILL_METRIC = "fill_level_pct"
_COLUMNS = ("id", "rule_id", "device_id", "device_name", "municipality", "severity", "status",
            "first_seen", "opened_at", "acknowledged_at", "acknowledged_by", "closed_at",
            "clear_since", "last_notified_at", "reminders_sent", "value", "detail")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM alerts"
_UPSERT = f"""
INSERT INTO alerts ({', '.join(_COLUMNS)}, updated_at)
VALUES ({', '.join(['%s'] * len(_COLUMNS))}, now())
ON CONFLICT (id) DO UPDATE SET
    {', '.join(f'{c} = EXCLUDED.{c}' for c in _COLUMNS if c != 'id')}, updated_at = now()
"""


class AlertNotFound(LookupError):
    pass


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def state_of(row: Sequence[Any]) -> AlertState:
    """An ``alerts`` row (columns in ``_COLUMNS`` order) as the lifecycle's state."""
    return AlertState.from_record(dict(zip(_COLUMNS, row)))


def _row(state: AlertState) -> tuple:
    record = state.to_record()
    values = [record[c] for c in _COLUMNS]
    values[_COLUMNS.index("detail")] = Jsonb(record["detail"])
    return tuple(values)


@dataclass
class CycleReport:
    """What one evaluation cycle did."""

    at: dt.datetime
    devices: int = 0
    evaluations: int = 0
    events: list[Event] = field(default_factory=list)
    deliveries: list[DeliveryResult] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, kind: str) -> int:
        return sum(1 for e in self.events if e.kind == kind)


class Alerting:
    """Rules, router and the store: evaluation cycles and acknowledgements."""

    def __init__(self, rules: RuleSet, router: Router | None, connect: Connect,
                 planner: PlannerConfig, *, clock: Clock | None = None) -> None:
        self.rules = rules
        self.router = router
        self.connect = connect
        self.planner = planner
        self.clock: Clock = clock or _utc_now
        self.tz = ZoneInfo(router.config.timezone if router is not None else DEFAULT_TZ)
        self._lock = threading.Lock()  # one cycle at a time (the router is not thread-safe)
        # Set by the service when it starts listening and when the broker connection returns:
        # device_offline gives every device its threshold from then on (None: no grace).
        self.watching_since: dt.datetime | None = None

    @classmethod
    def from_settings(cls, rules_path: Path | None, routes_path: Path | None, connect: Connect,
                      planner: PlannerConfig, *, clock: Clock | None = None) -> "Alerting":
        """Loads and checks both files now: a mistake stops the start, with its rule id."""
        rules = load_rules(rules_path)
        router = Router(load_router_config(routes_path)) if routes_path is not None else None
        if router is not None:
            logs.add_secrets(_secret_values(router.config))
        if router is None:
            log.info("no alert routes configured (BAUHOF_ALERT_ROUTES): alerts are recorded, "
                     "nobody is notified")
        return cls(rules, router, connect, planner, clock=clock)

    # --- one cycle ---------------------------------------------------------------------------

    def evaluate(self, device_ids: Iterable[str] | None = None,
                 now: dt.datetime | None = None) -> CycleReport:
        """Evaluate these devices (None: all) at ``now`` (default: the clock), persist, notify."""
        with self._lock:
            started = time.perf_counter()
            now = now or self.clock()
            if now.tzinfo is None:
                raise ValueError("now must be timezone-aware")
            ids = None if device_ids is None else sorted(set(device_ids))
            report = CycleReport(now)
            if ids is not None and not ids:
                return report
            with self.connect() as conn:
                windows = load_windows(conn, self.rules, self.planner, now, ids,
                                       self.watching_since)
                evaluations = evaluate(self.rules, windows, now)
                report.devices, report.evaluations = len(windows), len(evaluations)
                conn.commit()  # the reads end here; what follows is one transaction
                with conn.transaction():
                    if ids is None:
                        rows = conn.execute(f"{_SELECT} WHERE status <> 'closed' FOR UPDATE"
                                            ).fetchall()
                    else:
                        rows = conn.execute(f"{_SELECT} WHERE status <> 'closed' AND "
                                            "device_id = ANY(%s) FOR UPDATE", (ids,)).fetchall()
                    before = {r[0]: state_of(r) for r in rows}
                    states, events = step(before.values(), evaluations, now, self.rules)
                    self._persist(conn, before, states)
                report.events = events
            for event in events:
                a = event.alert
                log.info("alert %s %s: %s on %s (%s)", a.id, event.kind, a.rule_id, a.device_id,
                         a.severity, extra={"device": a.device_id})
            report.deliveries = self._notify(events, now)
            report.seconds = time.perf_counter() - started
            return report

    @staticmethod
    def _persist(conn: psycopg.Connection, before: dict[str, AlertState],
                 states: list[AlertState]) -> None:
        changed, dropped = [], []
        for state in states:
            if state.status == "closed" and not state.was_opened:
                if state.id in before:  # pending, never opened, gone again: forget it
                    dropped.append(state.id)
                continue
            if before.get(state.id) != state:
                changed.append(_row(state))
        if dropped:
            conn.execute("DELETE FROM alerts WHERE id = ANY(%s)", (dropped,))
        if changed:
            with conn.cursor() as cur:
                cur.executemany(_UPSERT, changed)

    def _notify(self, events: list[Event], now: dt.datetime) -> list[DeliveryResult]:
        """After the commit: route, flush what quiet hours held, deliver, record each result."""
        if self.router is None:
            return []
        notifications = [compose(e, self.rules, self.tz) for e in events]
        results = self.router.notify(notifications, now)
        if results:
            try:
                with self.connect() as conn:
                    with conn.cursor() as cur:
                        cur.executemany(
                            "INSERT INTO alert_notifications (alert_id, event, channel, route,"
                            " time, ok, error) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            [(r.delivery.notification.alert_id, r.delivery.notification.kind,
                              r.delivery.channel, r.delivery.route, now, r.ok, r.error)
                             for r in results])
            except psycopg.Error:
                log.exception("could not record %d alert notifications", len(results))
        return results

    # --- acknowledging -----------------------------------------------------------------------

    def acknowledge(self, alert_id: str, by: str, now: dt.datetime | None = None) -> AlertState:
        """A crew (or an admin) has seen the alert; ``by`` is the role, never a person.

        Raises :class:`AlertNotFound`, or ``ValueError`` when the alert is not open (pending or
        closed). Acknowledging again changes nothing."""
        now = now or self.clock()
        with self.connect() as conn, conn.transaction():
            row = conn.execute(f"{_SELECT} WHERE id = %s FOR UPDATE", (alert_id,)).fetchone()
            if row is None:
                raise AlertNotFound(alert_id)
            state = state_of(row)
            new = acknowledge(state, now, by)
            if new != state:
                conn.execute(_UPSERT, _row(new))
        if new != state:
            log.info("alert %s acknowledged by a %s token", alert_id, by,
                     extra={"device": new.device_id})
        return new


# ------------------------------------------------------------------------------------ windows

def _metric_names(conn: psycopg.Connection, ids: list[str]) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT DISTINCT metric FROM latest_readings WHERE device_id = ANY(%s)", (ids,))]


def _channels_of(base: str, names: Iterable[str]) -> list[str]:
    """``base`` and its channels ``base_<n>`` among ``names``."""
    return [m for m in names
            if m == base or (m.startswith(base + "_") and m[len(base) + 1:].isdigit())]


def _series(conn: psycopg.Connection, metrics: list[str], ids: list[str], since: dt.datetime,
            until: dt.datetime) -> dict[tuple[str, str], np.ndarray]:
    """(device, metric) -> array of (epoch s, value), oldest first, for since < time <= until."""
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT device_id, metric,"
            "       array_agg(extract(epoch FROM time)::float8 ORDER BY time),"
            "       array_agg(value ORDER BY time)"
            "  FROM readings"
            " WHERE device_id = ANY(%s) AND metric = ANY(%s) AND time > %s AND time <= %s"
            " GROUP BY device_id, metric", (ids, metrics, since, until))
        return {(d, m): np.column_stack((np.asarray(t, dtype=float), np.asarray(v, dtype=float)))
                for d, m, t, v in cur.fetchall()}


def _uplinks(conn: psycopg.Connection, ids: list[str], since: dt.datetime,
             until: dt.datetime) -> dict[str, np.ndarray]:
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT device_id, array_agg(extract(epoch FROM received_at)::float8)"
            "  FROM raw_uplinks"
            " WHERE device_id = ANY(%s) AND received_at > %s AND received_at <= %s"
            "   AND NOT simulated"
            " GROUP BY device_id", (ids, since, until))
        return {d: np.asarray(t, dtype=float) for d, t in cur.fetchall()}


def full_at_of(times: np.ndarray, levels: np.ndarray, now_s: float, config: PlannerConfig,
               site_type: str | None) -> float | None:
    """The planner's forecast as a DeviceWindow wants it: the full time, ``math.inf`` when the
    forecast has a rate but the bin is not full within its horizon, None without a forecast."""
    if not len(times):
        return None
    forecast = bin_forecast(times, levels, now_s, config, site_type)
    if forecast is None:
        return None
    if forecast.full_at is not None:
        return float(forecast.full_at)
    rate = forecast.base_rate_pct_h if math.isfinite(forecast.base_rate_pct_h) \
        else forecast.rate_pct_h
    return math.inf if math.isfinite(rate) else None


def next_collections(conn: psycopg.Connection, bin_ids: list[str], now: dt.datetime,
                     config: PlannerConfig) -> tuple[dict[str, float], float | None]:
    """Per bin the ETA of its next planned stop (epoch s), and the fallback for the others:
    the shift start of the next working day that has no stored collection plan yet (a stored
    plan without the bin means it is not collected that day)."""
    planned = {d: eta.timestamp() for d, eta in conn.execute(
        "SELECT s.device_id, min(s.eta) FROM route_stops s"
        "  JOIN route_plans p ON p.id = s.plan_id"
        " WHERE p.kind = 'collection' AND s.status = 'planned' AND s.eta >= %s"
        "   AND s.device_id = ANY(%s)"
        " GROUP BY s.device_id", (now, bin_ids))}
    today = now.astimezone(ZoneInfo(config.timezone)).date()
    days_with_plans = {r[0] for r in conn.execute(
        "SELECT DISTINCT day FROM route_plans WHERE kind = 'collection' AND day >= %s",
        (today,))}
    fallback = None
    for offset in range(15):
        day = today + dt.timedelta(days=offset)
        if WEEKDAYS[day.weekday()] not in config.working_days or day in days_with_plans:
            continue
        start, _ = shift_window(day, config)
        if start > now.timestamp():
            fallback = start
            break
    return planned, fallback


def load_windows(conn: psycopg.Connection, rules: RuleSet, planner: PlannerConfig,
                 now: dt.datetime, device_ids: list[str] | None = None,
                 watching_since: dt.datetime | None = None) -> list[DeviceWindow]:
    """One DeviceWindow per registered device (or per given id), from readings up to ``now``."""
    if device_ids is None:
        devices = conn.execute(
            "SELECT device_id, kind, name, municipality, attributes, last_seen, decoder,"
            "       brand_id, model_id FROM devices ORDER BY device_id").fetchall()
    else:
        devices = conn.execute(
            "SELECT device_id, kind, name, municipality, attributes, last_seen, decoder,"
            "       brand_id, model_id FROM devices WHERE device_id = ANY(%s)"
            " ORDER BY device_id", (device_ids,)).fetchall()
    if not devices:
        return []
    ids = [d[0] for d in devices]
    needs = requirements(rules)
    names = _metric_names(conn, ids)
    overflow = any(isinstance(r.params, BinOverflowParams) for r in rules.enabled())
    bins = [d[0] for d in devices if d[1] == "bin"]

    readings: dict[str, dict[str, np.ndarray]] = {d: {} for d in ids}
    forecast_fill: dict[str, np.ndarray] = {}
    for base, back in needs.metrics.items():
        # the channels (base_1, base_2 ...) as the writer's latest_readings knows them, and
        # the base name always (readings stored some other way have no latest_readings row)
        metrics = sorted({base, *_channels_of(base, names)})
        history = back
        if base == FILL_METRIC and overflow and bins:
            history = max(back, FORECAST_HISTORY)
        since_needed = now - back
        for (device_id, metric), array in _series(conn, metrics, ids, now - history,
                                                  now).items():
            if base == FILL_METRIC and metric == FILL_METRIC:
                forecast_fill[device_id] = array
            readings[device_id][metric] = array[array[:, 0] > since_needed.timestamp()]
    uplinks = (_uplinks(conn, ids, now - needs.uplinks, now)
               if needs.uplinks is not None else {})
    planned, fallback = (next_collections(conn, bins, now, planner) if overflow and bins
                         else ({}, None))

    now_s = now.timestamp()
    windows = []
    for device_id, kind, name, town, attributes, last_seen, decoder, brand, model in devices:
        attributes = attributes or {}
        site_type = attributes.get("site_type")
        full_at = next_collection = None
        if kind == "bin" and overflow:
            fill = forecast_fill.get(device_id)
            if fill is not None:
                try:
                    full_at = full_at_of(fill[:, 0], fill[:, 1], now_s, planner, site_type)
                except Exception:  # noqa: BLE001 - one bin's odd series must not stop the rest
                    log.exception("fill forecast of %s failed", device_id,
                                  extra={"device": device_id})
            next_collection = planned.get(device_id, fallback)
        windows.append(DeviceWindow(
            device_id, kind=kind, site_type=site_type, municipality=town,
            attributes=attributes, last_seen=last_seen, readings=readings[device_id],
            name=name, model=decoder or (f"{brand}/{model}" if brand and model else None),
            uplinks=uplinks.get(device_id, np.empty(0)) if needs.uplinks is not None else None,
            full_at=full_at, next_collection=next_collection,
            watching_since=watching_since.timestamp() if watching_since else None))
    return windows


# ------------------------------------------------------------------------------- the job

class AlertingJob:
    """Evaluates in a background thread: the devices of stored batches (debounced) and, every
    ``interval_s``, all devices. :meth:`request` is what the writer thread calls after a
    commit; it only remembers the ids and never blocks on an evaluation."""

    def __init__(self, alerting: Alerting, interval_s: float, batch_delay_s: float) -> None:
        self.alerting = alerting
        self.interval_s = interval_s
        self.batch_delay_s = batch_delay_s
        self._pending: set[str] = set()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._last_batch = float("-inf")
        self._next_full = 0.0
        self.cycles = 0
        self.last_error: str | None = None

    def request(self, device_ids: Iterable[str]) -> None:
        with self._wake:
            before = len(self._pending)
            self._pending.update(device_ids)
            if len(self._pending) != before:
                self._wake.notify()

    def start(self) -> None:
        self._next_full = time.monotonic()  # a first round for all devices right away
        self._thread = threading.Thread(target=self._loop, name="bauhof-alerts", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        with self._wake:
            self._stopping = True
            self._wake.notify()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("alert evaluation still busy at shutdown")

    def _next(self) -> tuple[str, list[str] | None] | None:
        """What to do now (("all", None) or ("batch", ids)), or None after waiting a while."""
        with self._wake:
            if self._stopping:
                return None
            now = time.monotonic()
            if self.interval_s > 0 and now >= self._next_full:
                self._next_full = now + self.interval_s
                self._pending.clear()  # all devices are evaluated anyway
                return "all", None
            if self._pending and now >= self._last_batch + self.batch_delay_s:
                ids, self._pending = sorted(self._pending), set()
                self._last_batch = now
                return "batch", ids
            waits = [60.0]
            if self.interval_s > 0:
                waits.append(self._next_full - now)
            if self._pending:
                waits.append(self._last_batch + self.batch_delay_s - now)
            self._wake.wait(max(0.01, min(waits)))
            return "idle", None

    def _loop(self) -> None:
        while True:
            task = self._next()
            if task is None:
                return
            what, ids = task
            if what == "idle":
                continue
            try:
                report = self.alerting.evaluate(ids)
                self.cycles += 1
                self.last_error = None
                if report.events:
                    log.info("alert evaluation (%s, %d devices): %d opened, %d reminders, "
                             "%d closed in %.2f s", what, report.devices, report.count("opened"),
                             report.count("reminder"), report.count("closed"), report.seconds)
            except psycopg.OperationalError as err:  # database away: the next round retries
                if self._stopping:
                    return  # the service closed the pool under a cycle that outlived stop()
                self.last_error = type(err).__name__
                log.warning("alert evaluation: database unavailable: %s",
                            str(err).strip().splitlines()[0] if str(err) else err)
                if ids:
                    self.request(ids)
            except Exception as err:  # noqa: BLE001 - keep evaluating whatever broke
                self.last_error = type(err).__name__
                log.exception("alert evaluation failed")


def _secret_values(value: object) -> list[str]:
    """Every SecretStr inside a (pydantic) configuration, for the log scrubber."""
    if isinstance(value, SecretStr):
        return [value.get_secret_value()]
    if isinstance(value, BaseModel):
        return [s for name in type(value).model_fields for s in _secret_values(getattr(value, name))]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _secret_values(v)]
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _secret_values(v)]
    return []
