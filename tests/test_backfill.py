"""Backfill from the TTS Storage Integration (our emulation of it) and gap accounting."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import psycopg

from helpers import Publisher, running_service, wait_until
from simulator.engine import Simulation
from simulator.faults import Faults
from simulator.scenario import expand, load
from simulator.sinks import MemorySink, kick
from simulator.storage import StorageServer, UplinkArchive

KEY = "NNSXS.TESTKEY.0123456789"
SCENARIO = load()


def simulated(app_id: str, hours: float = 2, faults: Faults = Faults(), devices: int = 40):
    """Uplinks of the last ``hours``, as TTS would have stored them."""
    scenario = SCENARIO.model_copy(update={"application_id": app_id})
    specs = [s for s in expand(scenario) if s.kind == "bin"][:devices]
    archive = UplinkArchive()
    start = datetime.now(timezone.utc) - timedelta(hours=hours + 0.1)
    memory = MemorySink()
    report = Simulation(scenario, seed=5, start=start, duration=timedelta(hours=hours),
                        faults=faults, devices=specs, archive=archive).run([memory])
    return archive, memory.deliveries, report


def count(db: str, sql: str = "SELECT count(*) FROM raw_uplinks") -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


def backfill_settings(url: str, app_id: str, key: str = KEY) -> dict:
    return {"backfill_url": url, "backfill_api_keys": {app_id: key}, "backfill_page": 50,
            "backfill_interval_s": 0}


def test_start_up_backfill_stores_what_tts_kept(db, app_id):
    archive, _, report = simulated(app_id)
    assert len(archive) > 100
    with StorageServer(archive, {KEY: app_id}) as storage, \
            running_service(db, **backfill_settings(storage.url, app_id)) as (service, client):
        wait_until(lambda: count(db, "SELECT count(*) FROM backfill_runs") == 1, timeout=30,
                   what="a completed backfill run")
        metrics = client.get("/metrics").text
    assert count(db) == len(archive) == report.stored_by_tts
    assert f'bauhof_uplinks_stored_total{{source="tts-backfill"}} {float(len(archive))}' in metrics
    assert f'bauhof_backfill_runs_total{{application="{app_id}",result="ok"}} 1.0' in metrics
    with psycopg.connect(db) as conn:
        fetched, stored = conn.execute("SELECT fetched, stored FROM backfill_runs").fetchone()
    # paged in 50s; each page boundary is fetched twice (`after` is exclusive), stored once
    assert stored == len(archive) and len(archive) <= fetched <= len(archive) + len(archive) // 50


def test_reconnect_backfills_what_mqtt_missed_and_keeps_every_uplink_single(
        db, mqtt_broker, app_id, monkeypatch):
    import app.backfill

    everything, deliveries, _ = simulated(app_id, faults=Faults(loss=0.05))
    docs = [json.loads(d.body) for d in deliveries]
    middle = datetime.fromisoformat(docs[len(docs) // 2]["received_at"].replace("Z", "+00:00"))
    archive = UplinkArchive()  # what TTS has stored so far: the first hour
    for doc in docs[: len(docs) // 2]:
        archive.add(doc)
    client_id = f"bauhof-{app_id}"
    monkeypatch.setattr(app.backfill, "_utc_now", lambda: middle)  # TTS's "now" at first
    with StorageServer(archive, {KEY: app_id}) as storage, \
            running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"],
                            mqtt_client_id=client_id,
                            **backfill_settings(storage.url, app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        wait_until(lambda: count(db, "SELECT count(*) FROM backfill_runs") >= 1
                   and count(db) == len(archive), timeout=30)
        runs = count(db, "SELECT count(*) FROM backfill_runs")
        # The second hour: MQTT delivers two thirds of it, TTS stores all of it.
        second = list(zip(deliveries, docs))[len(docs) // 2:]
        for i, (delivery, doc) in enumerate(second):
            archive.add(doc)
            if i % 3:
                pub.publish(delivery.topic, delivery.body)
        wait_until(lambda: count(db) == len(archive) - len(second[::3]), timeout=30)
        monkeypatch.setattr(app.backfill, "_utc_now", lambda: datetime.now(timezone.utc))
        kick(*mqtt_broker, client_id)  # the connection drops; on reconnect: backfill
        wait_until(lambda: count(db, "SELECT count(*) FROM backfill_runs") > runs, timeout=30,
                   what="a backfill after the reconnect")
        wait_until(lambda: count(db) == len(archive), timeout=30)
        gaps = client.get("/api/v1/gaps", params={"since": "2000-01-01T00:00:00Z"}).json()
        metrics = client.get("/metrics").text
    assert len(archive) == len(everything)
    assert count(db, "SELECT count(DISTINCT (device_id, received_at, dedup_key))"
                     " FROM raw_uplinks") == len(archive)
    # every remaining gap is radio loss: the backfill covered the time and TTS had nothing
    lost = sum(g["lost_over_air"] for g in gaps)
    assert lost > 0 and all(g["missed"] == 0 for g in gaps)
    assert f'bauhof_fcnt_gap_uplinks{{kind="lost_over_air"}} {float(lost)}' in metrics
    assert 'bauhof_fcnt_gap_uplinks{kind="missed"} 0.0' in metrics


def test_gaps_in_an_outage_without_backfill_count_as_missed(db, mqtt_broker, app_id):
    _, deliveries, _ = simulated(app_id, hours=3, devices=2)
    device = json.loads(deliveries[0].body)["end_device_ids"]["device_id"]
    client_id = f"bauhof-{app_id}"
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"],
                         mqtt_client_id=client_id) as (service, client), \
            Publisher(mqtt_broker) as pub:
        kept = [d for d in deliveries if d.device_id != device
                or json.loads(d.body)["uplink_message"].get("f_cnt", 0) not in (2, 3)]
        for delivery in kept:
            pub.publish(delivery.topic, delivery.body)
        wait_until(lambda: count(db) == len(kept), timeout=30)
        # an outage over the whole simulated hour, as if MQTT had been away
        with psycopg.connect(db, autocommit=True) as conn:
            first = json.loads(deliveries[0].body)["uplink_message"]["received_at"]
            conn.execute("INSERT INTO intake_outages (source, started_at, ended_at)"
                         " VALUES ('mqtt', %s, now())", (first,))
        detail = client.get(f"/api/v1/devices/{device}/gaps",
                            params={"since": "2000-01-01T00:00:00Z"}).json()
    assert detail["missed"] == 2 and detail["lost_over_air"] == 0
    assert all(g["kind"] == "missed" for g in detail["gaps"])


def test_a_wrong_api_key_fails_loudly_but_harms_nothing(db, app_id):
    archive, _, _ = simulated(app_id, hours=0.5, devices=2)
    with StorageServer(archive, {KEY: app_id}) as storage, \
            running_service(db, **backfill_settings(storage.url, app_id,
                                                    key="NNSXS.WRONG.0000")) as (service, client):
        wait_until(lambda: f'bauhof_backfill_runs_total{{application="{app_id}",result="failed"}}'
                   in client.get("/metrics").text, timeout=30)
        wait_until(lambda: client.get("/health/ready").status_code == 200, timeout=10)
    assert count(db) == 0
