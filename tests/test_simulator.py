"""The simulator: deterministic, faithful to TTS, faults on demand, and a service that stores
exactly what it sent."""
from __future__ import annotations

import json
import threading
from collections import defaultdict
from datetime import timedelta

import psycopg
import pytest
import uvicorn

from app.api.app import create_app
from app.service import Service
from app.sources.tts import parse_tts
from decoders import by_id
from helpers import SECRET, TOKEN, make_settings, running_service, wait_until
from simulator import reporters
from simulator.engine import NOISE, Simulation, device_settings
from simulator.faults import Faults
from simulator.scenario import expand, load
from simulator.sinks import ChirpStackSink, MemorySink, MqttSink, WebhookSink
from simulator.storage import UplinkArchive
from simulator.truth import GroundTruth

SCENARIO = load()
ALL = expand(SCENARIO, seed=0)


def fleet(per_model: int = 1, bins: int = 6) -> list:
    """A small fleet with every model of the scenario, and a few more bins."""
    chosen, seen = [], defaultdict(int)
    for spec in ALL:
        if seen[spec.model] < per_model:
            chosen.append(spec)
            seen[spec.model] += 1
    extra = [s for s in ALL if s.kind == "bin" and s not in chosen][:bins]
    return chosen + extra


def simulate(days: float = 1, seed: int = 0, faults: Faults = Faults(), devices=None,
             application_id: str | None = None, **kwargs):
    scenario = SCENARIO if application_id is None else SCENARIO.model_copy(
        update={"application_id": application_id})
    truth = GroundTruth(keep=True)
    simulation = Simulation(scenario, seed=seed, duration=timedelta(days=days), faults=faults,
                            devices=devices if devices is not None else fleet(), truth=truth,
                            **kwargs)
    memory = MemorySink()
    report = simulation.run([memory])
    return simulation, memory.deliveries, truth, report


def test_same_seed_gives_byte_identical_messages():
    _, first, _, _ = simulate(seed=7, faults=Faults(loss=0.05, duplicate=0.05, rejoin=0.02))
    _, again, _, _ = simulate(seed=7, faults=Faults(loss=0.05, duplicate=0.05, rejoin=0.02))
    _, other, _, _ = simulate(seed=8, faults=Faults(loss=0.05, duplicate=0.05, rejoin=0.02))
    assert len(first) > 500
    assert [d.body for d in first] == [d.body for d in again]
    assert [d.body for d in first] != [d.body for d in other]


def test_messages_are_what_tts_sends():
    _, deliveries, _, _ = simulate(days=0.5)
    for delivery in deliveries[:200]:
        doc = json.loads(delivery.body)
        up = doc["uplink_message"]
        assert delivery.topic == (f"v3/{SCENARIO.application_id}@{SCENARIO.tenant_id}/devices/"
                                  f"{doc['end_device_ids']['device_id']}/up")
        assert doc["received_at"].endswith("Z") and len(doc["correlation_ids"]) == 1
        assert isinstance(up["settings"]["frequency"], str)  # 64-bit numbers are strings
        assert "f_cnt" not in up or up["f_cnt"] > 0  # zero values are omitted
        assert up["rx_metadata"] and "version_ids" in up
        # and our own parser reads it back, with the decoder the model names
        uplink = parse_tts(delivery.body, "test", delivery.topic)
        model = by_id(delivery.model)
        assert (uplink.brand_id, uplink.model_id) == model.tts_ids[0]
        model.decode(uplink.f_port, uplink.payload)
    first = [json.loads(d.body)["uplink_message"] for d in deliveries]
    assert any("f_cnt" not in up for up in first)  # the first uplink of each session


def test_faults_show_up_as_they_would_on_the_wire():
    faults = Faults(loss=0.05, duplicate=0.05, late=0.05, bad_json=0.02, rejoin=0.02,
                    simulated=0.02, bad_frame=0.02)
    simulation, deliveries, truth, report = simulate(days=2, faults=faults)
    assert report.uplinks == report.lost + report.stored_by_tts
    for kind in ("lost", "duplicates", "late", "bad_json", "rejoins", "simulated", "bad_frame"):
        assert getattr(report, kind) > 0, kind
    bodies = [d.body for d in deliveries]
    broken = [b for b in bodies if _not_json(b)]
    assert len(broken) == report.bad_json
    docs = [json.loads(b) for b in bodies if not _not_json(b)]
    joins = [d for d in docs if "join_accept" in d]
    assert len(joins) == report.rejoins
    assert sum(1 for d in docs if d.get("simulated")) == report.simulated
    assert len(bodies) - len(set(bodies)) == report.duplicates
    # late deliveries arrive after younger uplinks: out of order by received_at
    times = [d["uplink_message"]["received_at"] for d in docs if "uplink_message" in d
             and not d.get("simulated")]
    assert times != sorted(times)
    # lost uplinks leave f_cnt gaps within a session
    gaps = 0
    last: dict[tuple[str, str], int] = {}
    for d in docs:
        up = d.get("uplink_message")
        if not up or d.get("simulated"):
            continue
        key = (d["end_device_ids"]["device_id"], up["session_key_id"])
        f_cnt = up.get("f_cnt", 0)
        if key in last and f_cnt > last[key] + 1:
            gaps += 1
        last[key] = max(last.get(key, -1), f_cnt)
    assert gaps > 0
    assert len([e for e in truth.events if e.event == "lost"]) == report.lost


def _not_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return True
    return False


def test_collections_empty_the_bins_in_the_ground_truth():
    bins = [s for s in ALL if s.kind == "bin" and s.municipality == "Birstein"][:3]
    _, _, truth, report = simulate(days=8, devices=bins)
    emptied = [e for e in truth.events if e.event == "emptied"]
    assert report.emptied == len(emptied) > 0
    for event in emptied:
        series = [(r.time, r.value) for r in truth.values
                  if r.device_id == event.device_id and r.metric == "fill_level_pct"]
        before = [v for t, v in series if t < event.time][-1]
        after = [v for t, v in series if t > event.time][0]
        assert after < before
    _, _, untouched, none = simulate(days=8, devices=bins, collect=False)
    assert none.emptied == 0


def test_archive_holds_what_tts_received():
    archive = UplinkArchive()
    _, _, _, report = simulate(days=1, faults=Faults(loss=0.1, bad_json=0.05), archive=archive)
    assert len(archive) == report.stored_by_tts == report.uplinks - report.lost


def _close(a: float, b: float, tolerance: float) -> bool:
    return abs(a - b) <= tolerance + 1e-9


def tolerance(model: str, metric: str) -> float:
    if metric == "fill_level_pct":
        return 100 * (5 * NOISE["distance_m"] + 0.01) / 0.85
    return 5 * NOISE.get(metric, 0.0) + reporters.resolution(model, metric) + 1e-6


def test_a_simulated_week_is_stored_exactly_and_matches_the_ground_truth(db, mqtt_broker, app_id):
    faults = Faults(loss=0.02, duplicate=0.02, late=0.02, bad_json=0.01, bad_frame=0.01,
                    rejoin=0.005, simulated=0.005, glitch=0.002)
    devices = fleet()
    scenario = SCENARIO.model_copy(update={"application_id": app_id})
    truth = GroundTruth(keep=True)
    simulation = Simulation(scenario, seed=11, duration=timedelta(days=7), faults=faults,
                            devices=devices, truth=truth)
    memory = MemorySink()
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/+"]) as (service, client):
        for spec in devices:
            client.put(f"/api/v1/devices/{spec.device_id}", json=device_settings(spec),
                       headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        sink = MqttSink(*mqtt_broker, max_rate=1500)
        report = simulation.run([sink, memory])
        sink.close()
        sent = [json.loads(d.body) for d in memory.deliveries if not _not_json(d.body)]
        # A simulated uplink's network time is Go's zero time: it is stored at the envelope's.
        uplinks = {(d["end_device_ids"]["device_id"], d["uplink_message"].get("session_key_id", ""),
                    d["uplink_message"].get("f_cnt", 0),
                    (d["received_at"] if d.get("simulated")
                     else d["uplink_message"]["received_at"])[:26])
                   for d in sent if "uplink_message" in d}
        wait_until(lambda: _count(db, "raw_uplinks") >= len(uplinks), timeout=60,
                   what=f"{len(uplinks)} uplinks stored")
        wait_until(lambda: service.pipeline.depth == 0)

    with psycopg.connect(db) as conn:
        stored = conn.execute(
            "SELECT device_id, coalesce(session_key_id, ''), f_cnt,"
            " to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')"
            " FROM raw_uplinks").fetchall()
        readings = conn.execute("SELECT device_id, metric, time, value FROM readings").fetchall()
        simulated = conn.execute("SELECT count(*) FROM raw_uplinks WHERE simulated").fetchone()[0]
        letters = dict(conn.execute("SELECT stage, count(*) FROM ingest_errors GROUP BY stage"))
    # exactly the sent uplinks minus the injected losses: each once, none invented
    assert len(stored) == len(set(stored)) == len(uplinks)
    assert set(stored) == uplinks
    assert report.uplinks - report.lost - report.bad_json + report.simulated == len(uplinks)
    assert simulated == report.simulated
    assert letters.get("parse", 0) == report.bad_json
    # every decode failure is an injected broken frame (some random bytes still decode)
    assert 0 < letters.get("decode", 0) <= report.bad_frame

    # readings match the ground truth within sensor noise (glitches and broken frames aside)
    skip = {(e.device_id, e.time) for e in truth.events if e.event in ("bad_frame",)}
    glitched = {e.device_id for e in truth.events if e.event == "glitch"}
    model_of = {s.device_id: s.model for s in devices}
    true = {(r.device_id, r.metric, r.time): r.value for r in truth.values}
    compared = mismatched = 0
    for device_id, metric, time, value in readings:
        key = (device_id, metric, time)
        if key not in true or (device_id, time) in skip or device_id in glitched:
            continue
        model = model_of[device_id]
        if metric != "fill_level_pct" and metric not in reporters.carried_metrics(model):
            continue
        low, high = reporters.valid_range(model, metric) if metric != "fill_level_pct" else (0, 100)
        if not low <= true[key] <= high:
            continue  # the wire cannot carry it; the device reports its limit
        compared += 1
        if not _close(value, true[key], tolerance(model, metric)):
            mismatched += 1
    assert compared > 1000
    assert mismatched == 0


def _count(db: str, table: str) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_chirpstack_events_reach_the_service(db, mqtt_broker, app_id):
    devices = fleet(bins=0)[:5]
    _, deliveries, _, _ = simulate(days=0.25, devices=devices, application_id=app_id)
    app_uuid = ChirpStackSink.application_uuid(app_id)
    with running_service(db, mqtt_broker, [f"application/{app_uuid}/device/+/event/up"]) as \
            (service, client):
        sink = ChirpStackSink(*mqtt_broker, max_rate=1500)
        for delivery in deliveries:
            sink.send(delivery)
        sink.close()
        wait_until(lambda: _count(db, "raw_uplinks") == len(deliveries), timeout=30)
    with psycopg.connect(db) as conn:
        decoders = {r[0] for r in conn.execute("SELECT DISTINCT decoder FROM raw_uplinks")}
        networks = {r[0] for r in conn.execute("SELECT DISTINCT network FROM raw_uplinks")}
    assert decoders == {s.model for s in devices} and networks == {"chirpstack"}


def test_webhook_sink_posts_to_a_real_server(db):
    devices = fleet(bins=0)[:3]
    _, deliveries, _, _ = simulate(days=0.1, devices=devices)
    service = Service(make_settings(), db)
    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=0,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=20)
        port = server.servers[0].sockets[0].getsockname()[1]
        sink = WebhookSink(f"http://127.0.0.1:{port}/api/v1/webhooks/tts", SECRET)
        for delivery in deliveries:
            sink.send(delivery)
        sink.close()
        assert sink.failed == 0
        assert _count(db, "raw_uplinks") == len(deliveries)
        bad = WebhookSink(f"http://127.0.0.1:{port}/api/v1/webhooks/tts", "wrong-secret-123456")
        bad.send(deliveries[0])
        assert bad.failed == 1
    finally:
        server.should_exit = True
        thread.join(20)


@pytest.mark.parametrize("text, expected", [
    ("loss=0.02,duplicate=0.01", Faults(loss=0.02, duplicate=0.01)),
    ("", Faults()),
    ("disconnect_s=3600", Faults(disconnect_s=3600)),
])
def test_fault_settings(text, expected):
    assert Faults.parse(text) == expected


@pytest.mark.parametrize("text", ["loss=2", "nonsense=0.1", "loss"])
def test_bad_fault_settings_are_refused(text):
    with pytest.raises(ValueError):
        Faults.parse(text)


def test_disconnect_fault_cuts_the_subscriber(db, mqtt_broker, app_id):
    from simulator.sinks import kick

    client_id = f"bauhof-{app_id}"
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"],
                         mqtt_client_id=client_id) as (service, client):
        kick(*mqtt_broker, client_id)
        wait_until(lambda: not service.mqtt.connected, timeout=10, interval=0.01,
                   what="the subscriber to be disconnected")
        wait_until(lambda: service.mqtt.connected, timeout=20, what="the reconnect")


def test_throughput_mode_prints_a_table(mqtt_broker, capsys):
    from simulator.runner import add_arguments, run
    import argparse

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--throughput", "3000", "--mqtt-host", mqtt_broker[0],
                              "--mqtt-port", str(mqtt_broker[1])])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "| uplinks | render s |" in out and "| 3000 |" in out


def test_a_run_paused_at_a_time_resumes_where_it_stopped_with_the_same_messages():
    """The demo sends its history up to now, then goes on live: nothing lost, nothing twice."""
    scenario = load()
    devices = expand(scenario, 4)[:25]
    whole, first, rest = MemorySink(), MemorySink(), MemorySink()
    Simulation(scenario, seed=4, duration=timedelta(hours=6), devices=devices).run([whole])
    paused = Simulation(scenario, seed=4, duration=timedelta(hours=6), devices=devices)
    middle = scenario.start + timedelta(hours=2)
    paused.run([first], until=middle)
    assert first.deliveries and all(d.deliver_at < middle for d in first.deliveries)
    paused.run([rest], speed=1e9)  # resumed, paced from where it paused
    assert all(d.deliver_at >= middle for d in rest.deliveries)
    assert [d.body for d in first.deliveries + rest.deliveries] == \
        [d.body for d in whole.deliveries]
