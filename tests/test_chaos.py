"""Chaos: the simulator streams while we kill the service twice, restart PostgreSQL and cut the
broker connection. Afterwards every uplink TTS holds is in the database exactly once."""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from conftest import embedded_data_dir
from helpers import wait_until
from simulator.engine import Simulation
from simulator.scenario import expand, load
from simulator.sinks import MqttSink, kick
from simulator.storage import StorageServer, UplinkArchive

KEY = "NNSXS.CHAOS.0123456789"
pytestmark = pytest.mark.slow


class ServiceProcess:
    """`bauhof run` as a separate process, as in production: SIGKILL means SIGKILL."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.process: subprocess.Popen | None = None
        self.log = []

    def start(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "app.cli", "run"], env=self.env,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        threading.Thread(target=self._read, args=(self.process,), daemon=True).start()
        wait_until(lambda: any("is running" in line for line in self.log), timeout=60,
                   what="the service to start")

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.log.append(line)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)
        self.log.clear()

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()


def uplink_keys(rows) -> set[tuple]:
    return set(rows)


def test_chaos(db, mqtt_broker, app_id, restart_postgres):
    scenario = load().model_copy(update={"application_id": app_id})
    # 150 bins reporting every 4 s: about 37 uplinks a second in real time.
    devices = [dataclasses.replace(spec, interval_s=4.0)
               for spec in expand(scenario) if spec.kind == "bin"][:150]
    archive = UplinkArchive()
    duration = timedelta(seconds=80)
    simulation = Simulation(scenario, seed=3, start=datetime.now(timezone.utc),
                            duration=duration, devices=devices, archive=archive, collect=False)
    client_id = f"bauhof-chaos-{app_id}"
    data_dir = embedded_data_dir()
    with StorageServer(archive, {KEY: app_id}) as storage:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
        env.update({
            "BAUHOF_DATABASE_URL": db, "BAUHOF_MQTT_HOST": mqtt_broker[0],
            "BAUHOF_MQTT_PORT": str(mqtt_broker[1]),
            "BAUHOF_MQTT_TOPICS": f"v3/{app_id}@ttn/devices/+/up",
            "BAUHOF_MQTT_CLIENT_ID": client_id, "BAUHOF_HTTP_PORT": "0",
            "BAUHOF_DATA_DIR": str(data_dir), "BAUHOF_BACKFILL_URL": storage.url,
            "BAUHOF_BACKFILL_API_KEYS": json.dumps({app_id: KEY}),
            "BAUHOF_BACKFILL_OVERLAP_S": "60", "BAUHOF_BACKFILL_INTERVAL_S": "15",
            "BAUHOF_LOG_LEVEL": "WARNING",
        })
        service = ServiceProcess(env)
        service.start()
        sink = MqttSink(*mqtt_broker)
        runner = threading.Thread(target=simulation.run, args=([sink],),
                                  kwargs={"speed": 1.0}, daemon=True)
        runner.start()
        try:
            time.sleep(12)
            service.kill()                      # 1: SIGKILL
            time.sleep(4)
            service.start()
            time.sleep(10)
            restart_postgres()                  # 2: the database goes away and comes back
            time.sleep(10)
            kick(*mqtt_broker, client_id)       # 3: the broker connection is cut
            time.sleep(10)
            service.kill()                      # 4: SIGKILL again
            time.sleep(4)
            service.start()
            runner.join(duration.total_seconds() + 30)
            assert not runner.is_alive()
            sink.close()

            def stored() -> int:
                with psycopg.connect(db) as conn:
                    return conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0]

            wait_until(lambda: stored() >= len(archive), timeout=120, interval=1,
                       what=f"all {len(archive)} uplinks TTS holds")
            time.sleep(2)  # anything more arriving now would be a duplicate
        finally:
            service.stop()
            shutil.rmtree(data_dir, ignore_errors=True)

    held = {
        (doc["end_device_ids"]["device_id"], doc["uplink_message"].get("session_key_id", ""),
         doc["uplink_message"].get("f_cnt", 0))
        for doc in archive.query(app_id)
    }
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT device_id, session_key_id, f_cnt FROM raw_uplinks").fetchall()
        by_source = dict(conn.execute("SELECT source, count(*) FROM raw_uplinks GROUP BY source"))
    assert len(held) == len(archive) > 2000
    assert len(rows) == len(set(rows)), "an uplink was stored twice"
    assert set(rows) == held, (f"lost {len(held - set(rows))}, "
                               f"unexpected {len(set(rows) - held)}")
    # the outages did cost MQTT deliveries, and the backfill recovered them
    assert by_source.get("tts-backfill", 0) > 0 and by_source.get("tts-mqtt", 0) > 0
