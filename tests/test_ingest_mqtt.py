"""A TTS uplink published to a real broker comes out of the API as decoded readings, once."""
from __future__ import annotations

import json
import random

from decoders.decentlab_dl_mbx import frame as dl_mbx
from helpers import TOKEN, Publisher, count, running_service, wait_until
from simulator.tts import VirtualDevice, encode

AUTH = {"Authorization": f"Bearer {TOKEN}"}
GEOMETRY = {"distance_empty_m": 1.0, "distance_full_m": 0.15}


def bin_device(app_id: str, n: int = 1) -> VirtualDevice:
    return VirtualDevice(device_id=f"bin-{n:04d}", dev_eui=f"70B3D57ED0{n:06X}",
                         application_id=app_id, brand_id="decentlab", model_id="dl-mbx")


def topics(app_id: str) -> list[str]:
    return [f"v3/{app_id}@ttn/devices/+/up"]


def test_uplink_over_mqtt_arrives_as_decoded_readings(db, mqtt_broker, app_id):
    device = bin_device(app_id)
    with running_service(db, mqtt_broker, topics(app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        client.put(f"/api/v1/devices/{device.device_id}", headers=AUTH,
                   json={"name": "Marktplatz", "municipality": "Bad Orb",
                         "attributes": GEOMETRY}).raise_for_status()
        pub.publish(device.topic, encode(device.uplink(dl_mbx(575, battery_v=3.05))))

        latest = wait_until(lambda: client.get(f"/api/v1/devices/{device.device_id}/latest")
                            .json(), what="latest values")
        values = {v["metric"]: v["value"] for v in latest}
        assert values == {"distance_m": 0.575, "fill_level_pct": 50.0, "battery_v": 3.05}

        readings = client.get(f"/api/v1/devices/{device.device_id}/readings",
                              params={"since": "2000-01-01T00:00:00Z"}).json()
        assert sorted(r["metric"] for r in readings) == ["battery_v", "distance_m",
                                                        "fill_level_pct"]
        registered = client.get(f"/api/v1/devices/{device.device_id}").json()
        assert registered["dev_eui"] == device.dev_eui
        assert registered["brand_id"] == "decentlab" and registered["last_seen"] is not None
        assert registered["name"] == "Marktplatz"  # uplinks never overwrite configuration


def test_same_uplink_twice_is_stored_once(db, mqtt_broker, app_id):
    device = bin_device(app_id)
    message = encode(device.uplink(dl_mbx(800, battery_v=3.0)))
    second = encode(device.uplink(dl_mbx(790, battery_v=3.0)))
    with running_service(db, mqtt_broker, topics(app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        for raw in (message, message, second, message):
            pub.publish(device.topic, raw)
        wait_until(lambda: service.metrics.received.labels("tts-mqtt")._value.get() == 4
                   and service.pipeline.depth == 0, what="4 messages processed")
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 2)
        assert count(db, "SELECT count(*) FROM readings") == 4  # distance + battery, twice
        assert service.metrics.duplicate.labels("tts-mqtt")._value.get() == 2
        assert count(db, "SELECT count(*) FROM ingest_errors") == 0


def test_rejoin_with_f_cnt_reset_is_not_a_duplicate(db, mqtt_broker, app_id):
    device = bin_device(app_id)
    with running_service(db, mqtt_broker, topics(app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        pub.publish(device.topic, encode(device.uplink(dl_mbx(800, battery_v=3.0))))
        device.rejoin()  # new session key, f_cnt back to 0 (absent on the wire)
        pub.publish(device.topic, encode(device.uplink(dl_mbx(700, battery_v=3.0))))
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 2)
        assert count(db, "SELECT count(DISTINCT session_key_id) FROM raw_uplinks") == 2


def _malformed(rng: random.Random, device: VirtualDevice) -> bytes:
    good = device.uplink(dl_mbx(500, battery_v=3.0))
    device.f_cnt -= 1  # a broken message does not use up a frame counter
    kind = rng.randrange(8)
    if kind == 0:
        return b'{"end_device_ids": {'
    if kind == 1:
        return b"\xff\xfe not even utf-8"
    if kind == 2:
        good["uplink_message"]["frm_payload"] = "***"
    elif kind == 3:
        good["uplink_message"]["f_cnt"] = "eleven"
    elif kind == 4:
        del good["end_device_ids"]
    elif kind == 5:
        good["uplink_message"]["received_at"] = "yesterday"
    elif kind == 6:
        good["uplink_message"]["f_port"] = -1
    else:
        good = [good]
    return json.dumps(good).encode()


def test_thousand_uplinks_with_hundred_malformed(db, mqtt_broker, app_id):
    rng = random.Random(42)
    devices = [bin_device(app_id, n) for n in range(1, 21)]
    plan = ["bad"] * 100 + ["good"] * 900
    rng.shuffle(plan)
    with running_service(db, mqtt_broker, topics(app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        for kind in plan:
            device = rng.choice(devices)
            if kind == "good":
                raw = encode(device.uplink(dl_mbx(rng.randrange(150, 1000), battery_v=3.0)))
            else:
                raw = _malformed(rng, device)
            pub.publish(device.topic, raw)

        # Some malformed messages are the same bytes: one dead letter each, counting them.
        delivered = "SELECT coalesce(sum(count), 0) FROM ingest_errors"
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks")
                   + count(db, delivered) >= 1000, timeout=60,
                   what="1000 messages accounted for")
        assert count(db, "SELECT count(*) FROM raw_uplinks") == 900
        assert count(db, "SELECT count(DISTINCT (device_id, dedup_key)) FROM raw_uplinks") == 900
        assert count(db, "SELECT count(*) FROM readings") == 1800
        assert count(db, delivered) == 100
        letters = client.get("/api/v1/ingest-errors", headers=AUTH,
                             params={"limit": 1000}).json()
        assert sum(x["count"] for x in letters) == 100
        assert len(letters) == count(db, "SELECT count(*) FROM ingest_errors") > 50
        assert all(x["reason"] and x["stage"] in ("parse", "validate") for x in letters)
        assert all(x["raw_size"] > 0 and x["raw_base64"] for x in letters)
        ready = client.get("/health/ready")
        assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_chirpstack_uplink_over_mqtt(db, mqtt_broker, app_id):
    from fixtures_data import DATA

    doc = json.loads((DATA / "examples" / "chirpstack_up.json").read_text())
    # The topic's application level is this test's own (the body keeps its UUID): CI's
    # PostgreSQL and TimescaleDB passes share the broker.
    topic = f"application/{app_id}/device/a84041000181c2d7/event/up"
    with running_service(db, mqtt_broker, [topic]) as (service, client), \
            Publisher(mqtt_broker) as pub:
        pub.publish(topic, json.dumps(doc).encode())
        pub.publish(topic, json.dumps(doc).encode())  # same deduplicationId
        latest = wait_until(lambda: client.get("/api/v1/devices/eui-a84041000181c2d7/latest")
                            .json() if client.get("/api/v1/devices/eui-a84041000181c2d7")
                            .status_code == 200 else None, what="ChirpStack readings")
        assert {v["metric"]: v["value"] for v in latest}["relative_humidity_pct"] == 62.0
        wait_until(lambda: service.pipeline.depth == 0
                   and service.metrics.duplicate.labels("chirpstack-mqtt")._value.get() == 1)
        assert count(db, "SELECT count(*) FROM raw_uplinks") == 1


def test_decode_error_keeps_the_uplink_and_dead_letters_the_reason(db, mqtt_broker, app_id):
    device = bin_device(app_id)
    with running_service(db, mqtt_broker, topics(app_id)) as (service, client), \
            Publisher(mqtt_broker) as pub:
        pub.publish(device.topic, encode(device.uplink(bytes.fromhex("02012f000304d2"))))
        wait_until(lambda: count(db, "SELECT count(*) FROM ingest_errors") == 1)
        errors = client.get("/api/v1/ingest-errors", headers=AUTH).json()
        assert errors[0]["stage"] == "decode"
        assert errors[0]["reason"] == "DL-MBX expects 11 bytes for sensor flags 0x0003, got 7"
        assert errors[0]["device_id"] == device.device_id
        assert count(db, "SELECT count(*) FROM raw_uplinks") == 1  # payload kept for later
        assert count(db, "SELECT count(*) FROM readings") == 0
