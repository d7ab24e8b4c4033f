"""When we could not listen: MQTT disconnections and time the service was not running.

A heartbeat row says the service was alive; after a crash (no clean stop) the next start
records the silence between the last beat and itself as an outage. MQTT disconnections are
recorded as they happen. Gap accounting (app/gaps.py) reads both. Database writes happen in this
module's own thread, never in paho's network thread.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections import deque
from datetime import datetime, timedelta, timezone

import psycopg

log = logging.getLogger(__name__)
BEAT = timedelta(seconds=10)


def _now() -> datetime:
    return datetime.now(timezone.utc)


class OutageRecorder:
    def __init__(self, conninfo: str, instance: str | None = None) -> None:
        self.conninfo = conninfo
        self.instance = instance or socket.gethostname()
        self._events: deque[tuple[str, datetime]] = deque()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with psycopg.connect(self.conninfo, connect_timeout=5) as conn:
            row = conn.execute("SELECT last_alive FROM intake_heartbeat WHERE instance = %s",
                               (self.instance,)).fetchone()
            now = _now()
            if row is not None and now - row[0] > 2 * BEAT:
                conn.execute("INSERT INTO intake_outages (source, started_at, ended_at)"
                             " VALUES ('service', %s, %s)", (row[0], now))
            self._beat(conn, now)
        self._thread = threading.Thread(target=self._loop, name="bauhof-outages", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(10)
        try:
            self._flush()
        except psycopg.Error as err:
            log.warning("could not record intake state at shutdown: %s", err)

    # Called from paho's thread: only queue.
    def mqtt_down(self) -> None:
        self._events.append(("down", _now()))

    def mqtt_up(self) -> None:
        self._events.append(("up", _now()))

    def _loop(self) -> None:
        while not self._stopping.wait(1.0):
            try:
                self._flush()
            except psycopg.Error as err:
                log.debug("intake state not recorded yet: %s", err)

    def _flush(self) -> None:
        with psycopg.connect(self.conninfo, connect_timeout=5) as conn:
            while self._events:
                kind, at = self._events[0]
                if kind == "down":
                    conn.execute("INSERT INTO intake_outages (source, started_at)"
                                 " VALUES ('mqtt', %s)", (at,))
                else:
                    conn.execute("UPDATE intake_outages SET ended_at = %s"
                                 " WHERE source = 'mqtt' AND ended_at IS NULL", (at,))
                self._events.popleft()
            self._beat(conn, _now())

    def _beat(self, conn: psycopg.Connection, at: datetime) -> None:
        conn.execute("INSERT INTO intake_heartbeat (instance, last_alive) VALUES (%s, %s)"
                     " ON CONFLICT (instance) DO UPDATE SET last_alive = EXCLUDED.last_alive",
                     (self.instance, at))
