"""Wires the parts into one service: database, pipeline, intakes, API."""
from __future__ import annotations

import logging
import threading
import time

import psycopg

from psycopg_pool import ConnectionPool

from app.alerting import Alerting, AlertingJob
from app.backfill import Backfiller
from app.config import Settings
from app.gaps import GapMetrics
from app.metrics import Metrics
from app.migrate import migrate
from app.outages import OutageRecorder
from app.pipeline import Pipeline
from app.planning import Planning, PlanningJob, load_config
from app.sources.mqtt import MqttSource
from app.spool import Spool
from app.store import Store

log = logging.getLogger(__name__)


class Service:
    def __init__(self, settings: Settings, conninfo: str) -> None:
        self.settings = settings
        self.conninfo = conninfo
        self.metrics = Metrics()
        self.pipeline = Pipeline(settings, Store(conninfo), self.metrics)
        self.spool = Spool(settings.spool_path)
        self.demo = None  # the demo's history progress (app/demo.py), when it is one
        self.on_stop: list = []  # called first at a stop (the demo stops its fleet there)
        # Readers (API) get their own small pool; the writer keeps one connection of its own.
        self.pool = ConnectionPool(conninfo, min_size=1, max_size=8, open=False,
                                   kwargs={"application_name": "bauhof-api"},
                                   check=ConnectionPool.check_connection)
        self.mqtts = self._mqtt_sources() if settings.mqtt_host else []
        self.mqtt = self.mqtts[0] if self.mqtts else None
        self.outages = OutageRecorder(conninfo)
        self.gap_metrics = GapMetrics(self.metrics.registry)
        self.backfill = (Backfiller(settings, conninfo, self.pipeline, self.metrics)
                         if settings.backfill_url and settings.backfill_keys() else None)
        # A broken planner file stops the start here, with its name, not at 05:30.
        self.planning = Planning(load_config(settings.planner_config),
                                 lambda: self.pool.connection(timeout=10),
                                 done_times=settings.record_done_times)
        self.planning_job = PlanningJob(self.planning, settings.plan_at,
                                        settings.plan_confirm_interval_s)
        # Broken alert rules or routes stop the start here too, with the rule id.
        self.alerting = Alerting.from_settings(settings.alert_rules, settings.alert_routes,
                                               lambda: self.pool.connection(timeout=10),
                                               self.planning.config)
        self.alerting_job = AlertingJob(self.alerting, settings.alert_interval_s,
                                        settings.alert_batch_delay_s)
        if settings.alert_on_batch:
            self.pipeline.on_committed = self.alerting_job.request
        self._mqtt_lock = threading.Lock()
        self._mqtt_down = False
        for source in self.mqtts:
            source.on_disconnected = self._disconnected
            source.on_connected = self._connected

    def _mqtt_sources(self) -> list[MqttSource]:
        logins = self.settings.mqtt_logins()
        client_id = self.settings.mqtt_client_id
        return [MqttSource(self.settings, self.pipeline, username, password,
                           # A broker drops the older of two connections with one client id.
                           f"{client_id}-{username}" if client_id and len(logins) > 1
                           else client_id)
                for username, password in logins]

    @property
    def mqtt_connected(self) -> bool:
        return all(source.connected for source in self.mqtts)

    # Called from paho's threads. Intake counts as down while any application's connection is:
    # one outage from the first connection lost until all are back.
    def _disconnected(self) -> None:
        with self._mqtt_lock:
            if not self._mqtt_down:
                self._mqtt_down = True
                self.outages.mqtt_down()

    def _connected(self) -> None:
        with self._mqtt_lock:
            if self.mqtt_connected:
                if self._mqtt_down:  # what was sent meanwhile comes by backfill, if at all
                    self.alerting.watching_since = self.alerting.clock()
                self._mqtt_down = False
                self.outages.mqtt_up()
        if self.backfill is not None:
            self.backfill.request()  # TTS kept nothing for us while we were away

    def start(self) -> None:
        self._wait_for_database()
        applied = migrate(self.conninfo)
        if applied:
            log.info("applied migrations: %s",
                     ", ".join(f"{m.version:03d}_{m.name}" for m in applied))
        self.pool.open()
        self.alerting.watching_since = self.alerting.clock()
        self.outages.start()
        self.pipeline.start()
        self.spool.replay(self.pipeline)  # before new traffic: the older messages first
        if self.backfill is not None:
            self.backfill.start()
        self.planning_job.start()
        self.alerting_job.start()
        for source in self.mqtts:
            source.start()
        if not self.mqtts:
            log.info("no MQTT host configured (BAUHOF_MQTT_HOST): webhook intake only")

    def _wait_for_database(self, timeout: float = 60.0) -> None:
        """A database that starts after us (compose, a reboot) is waited for, not a crash."""
        deadline = time.monotonic() + timeout
        delay = 0.5
        while True:
            try:
                psycopg.connect(self.conninfo, connect_timeout=5).close()
                return
            except psycopg.OperationalError as err:
                if time.monotonic() + delay > deadline:
                    raise
                log.warning("waiting for the database: %s",
                            str(err).strip().splitlines()[0] if str(err) else err)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)

    def stop(self) -> None:
        for hook in self.on_stop:
            try:
                hook()
            except Exception:  # noqa: BLE001 - a hook's bug must not keep the buffer unwritten
                log.exception("stop hook failed")
        self._stop()

    def _stop(self) -> None:
        """Stop intake first, then write (or spool) what is buffered, then the jobs, then close.

        The buffered uplinks come before the jobs: with the database away, a job may wait ten
        seconds for a connection, and a container runtime kills after about ten.
        """
        for source in self.mqtts:
            source.stop()
        if self.backfill is not None:
            self.backfill.stop()
        left = self.pipeline.stop()
        try:
            self.spool.keep(left)
        except OSError as err:
            log.error("%d messages could not be written before shutdown, nor spooled to %s: %s",
                      len(left), self.spool.directory, err)
        self.planning_job.stop()
        self.alerting_job.stop()
        self.outages.stop()
        self.pool.close()
        log.info("service stopped")
