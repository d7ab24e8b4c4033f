"""Several TTS applications in one service: device ids are unique only inside an application
(issue 15). Two towns' ``bin-001`` are two devices, through MQTT, the webhook, the backfill,
the API and the CSV export, and they stay apart across restarts."""
from __future__ import annotations

import base64
import copy
import csv
import io
import json

import psycopg
from fixtures_data import DATA
from helpers import SECRET, TOKEN, Publisher, count, running_service, wait_until
from pydantic import SecretStr

from app.config import Settings
from app.device_keys import DeviceKeys, KeyRow
from app.sources.mqtt import scoped
from decoders.decentlab_dl_mbx import frame
from simulator.storage import StorageServer, UplinkArchive
from test_backfill import simulated

HOOK = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}


# --- the keys, as plain values ------------------------------------------------------------------

def test_the_first_application_keeps_the_plain_id_the_next_gets_a_qualified_one():
    keys = DeviceKeys()
    assert keys.key("tts", "town-a", "bin-001") == "bin-001"
    assert keys.key("tts", "town-b", "bin-001") == "bin-001@town-b"
    assert keys.key("tts", "town-a", "bin-001") == "bin-001"
    assert keys.key("tts", "town-b", "bin-002") == "bin-002"


def test_keys_survive_a_reload_whoever_sends_first_afterwards():
    keys = DeviceKeys()
    keys.load([KeyRow("bin-001", "tts", "town-a", "bin-001"),
               KeyRow("bin-001@town-b", "tts", "town-b", "bin-001")])
    assert keys.key("tts", "town-b", "bin-001") == "bin-001@town-b"
    assert keys.key("tts", "town-a", "bin-001") == "bin-001"
    assert keys.key("chirpstack", "town-b", "bin-001") == "bin-001@town-b-chirpstack"


def test_a_key_given_out_is_kept_until_the_database_shows_it():
    keys = DeviceKeys()
    assert keys.key("tts", "town-b", "bin-001") == "bin-001"
    keys.load([])  # the batch that carries it is not committed yet
    assert keys.key("tts", "town-a", "bin-001") == "bin-001@town-a"
    assert keys.key("tts", "town-b", "bin-001") == "bin-001"


def test_a_key_given_before_the_first_load_yields_to_the_database():
    # The preparer may ask before the writer has read the devices: what it got then must not
    # stand against a device the database holds under that key.
    keys = DeviceKeys()
    assert keys.key("tts", "town-b", "bin-001") == "bin-001"  # nothing loaded yet
    keys.load([KeyRow("bin-001", "tts", "town-a", "bin-001")])
    assert keys.key("tts", "town-b", "bin-001") == "bin-001@town-b"
    assert keys.key("tts", "town-a", "bin-001") == "bin-001"


def test_a_device_configured_before_it_sent_is_claimed_by_its_application():
    keys = DeviceKeys()
    # Configured by hand: one with no application (the first to send takes it), one for town-b.
    keys.load([KeyRow("bin-001", None, None, "bin-001"),
               KeyRow("bin-002@town-b", None, "town-b", "bin-002")])
    assert keys.key("tts", "town-a", "bin-002") == "bin-002"
    assert keys.key("tts", "town-b", "bin-002") == "bin-002@town-b"
    assert keys.key("tts", "town-a", "bin-001") == "bin-001"
    assert keys.key("tts", "town-b", "bin-001") == "bin-001@town-b"


# --- configuration --------------------------------------------------------------------------------

def test_one_connection_per_application_and_the_backfill_uses_the_same_keys():
    settings = Settings(mqtt_host="eu1.cloud.thethings.network", _env_file=None,
                        mqtt_applications={"town-a@ttn": "NNSXS.A", "town-b@ttn": "NNSXS.B"})
    assert [u for u, _ in settings.mqtt_logins()] == ["town-a@ttn", "town-b@ttn"]
    assert {k: v.get_secret_value() for k, v in settings.backfill_keys().items()} == \
        {"town-a": "NNSXS.A", "town-b": "NNSXS.B"}
    assert "NNSXS.B" in settings.secret_values()
    assert scoped("v3/+/devices/+/up", "town-a@ttn") == "v3/town-a@ttn/devices/+/up"
    assert scoped("application/+/device/+/event/up", "cs") == "application/+/device/+/event/up"
    own = Settings(backfill_api_keys={"town-c": SecretStr("NNSXS.C")},
                   mqtt_applications={"town-a@ttn": "NNSXS.A"})
    assert list(own.backfill_keys()) == ["town-c"]


# --- end to end -------------------------------------------------------------------------------------

def uplink(app: str, device: str, eui: str | None, f_cnt: int, distance_mm: int,
           received_at: str) -> dict:
    """The documented TTS uplink (tests/data/examples) moved to ``app``/``device``."""
    doc = copy.deepcopy(json.loads((DATA / "examples" / "tts_uplink_raw.json").read_text()))
    ids = doc["end_device_ids"]
    ids.update(device_id=device, dev_eui=eui)
    if eui is None:
        del ids["dev_eui"]
    ids["application_ids"]["application_id"] = app
    up = doc["uplink_message"]
    up.update(f_cnt=f_cnt, f_port=1, received_at=received_at,
              frm_payload=base64.b64encode(frame(distance_mm, 3.0)).decode())
    up.pop("decoded_payload", None)
    up["version_ids"] = {"brand_id": "decentlab", "model_id": "dl-mbx"}
    doc["received_at"] = received_at
    return doc


def distances(db: str) -> dict[str, list[float]]:
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT device_id, value FROM readings WHERE metric = 'distance_m'"
                            " ORDER BY device_id, time").fetchall()
    out: dict[str, list[float]] = {}
    for device, value in rows:
        out.setdefault(device, []).append(value)
    return out


def test_two_applications_with_the_same_device_id_stay_two_devices(db, mqtt_broker, app_id):
    town_a, town_b = f"{app_id}-a", f"{app_id}-b"
    logins = {f"{town_a}@ttn": "NNSXS.A", f"{town_b}@ttn": "NNSXS.B"}
    with running_service(db, mqtt_broker, mqtt_applications=logins) as (service, client), \
            Publisher(mqtt_broker) as pub:
        assert len(service.mqtts) == 2 and all(m.wait_connected(10) for m in service.mqtts)
        assert client.get("/health/ready").json()["mqtt"] == "connected"
        for town, eui, mm in ((town_a, "70B3D57ED0000A01", 400), (town_b, "70B3D57ED0000B01", 900)):
            doc = uplink(town, "bin-001", eui, 1, mm, "2026-12-07T08:00:00Z")
            pub.publish(f"v3/{town}@ttn/devices/bin-001/up", json.dumps(doc).encode())
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 2,
                   what="both towns' uplinks")
        # The same uplink of town b again through the webhook: a duplicate, not a third device.
        again = uplink(town_b, "bin-001", "70B3D57ED0000B01", 1, 900, "2026-12-07T08:00:00Z")
        answer = client.post("/api/v1/webhooks/tts", content=json.dumps(again), headers=HOOK)
        assert answer.json()["result"] == "duplicate"
        assert answer.json()["device_id"] == "bin-001@" + town_b

        listed = {d["device_id"]: d for d in client.get("/api/v1/devices").json()}
        assert set(listed) == {"bin-001", f"bin-001@{town_b}"}
        assert listed["bin-001"]["application_id"] == town_a
        assert listed[f"bin-001@{town_b}"]["application_id"] == town_b
        assert listed[f"bin-001@{town_b}"]["network_device_id"] == "bin-001"
        assert listed[f"bin-001@{town_b}"]["dev_eui"] == "70B3D57ED0000B01"
        # Every device answers to {id}@{application}; the first one also to its plain id.
        latest_b = client.get(f"/api/v1/devices/bin-001@{town_b}/latest").json()
        latest_a = client.get(f"/api/v1/devices/bin-001@{town_a}/latest").json()
        assert client.get("/api/v1/devices/bin-001/latest").json() == latest_a
        assert {v["metric"]: v["value"] for v in latest_a}["distance_m"] == 0.4
        assert {v["metric"]: v["value"] for v in latest_b}["distance_m"] == 0.9
        assert client.get(f"/api/v1/devices/bin-001@{app_id}-c").status_code == 404
        table = client.get("/api/v1/readings.csv?metric=distance_m&since=2026-12-07T00:00:00Z"
                           "&until=2026-12-08T00:00:00Z&tz=UTC&bom=false")
        rows = list(csv.DictReader(io.StringIO(table.text)))
        assert {(r["device_id"], r["value"]) for r in rows} == \
            {("bin-001", "0.4"), (f"bin-001@{town_b}", "0.9")}

    # A restart reads the keys from the database: town b's next uplink is still its own.
    with running_service(db, mqtt_broker, mqtt_applications=logins) as (service, client), \
            Publisher(mqtt_broker) as pub:
        assert all(m.wait_connected(10) for m in service.mqtts)
        doc = uplink(town_b, "bin-001", "70B3D57ED0000B01", 2, 1000, "2026-12-07T09:00:00Z")
        pub.publish(f"v3/{town_b}@ttn/devices/bin-001/up", json.dumps(doc).encode())
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 3)
    assert distances(db) == {"bin-001": [0.4], f"bin-001@{town_b}": [0.9, 1.0]}
    assert count(db, "SELECT count(*) FROM devices") == 2


def test_a_device_configured_for_its_application_before_it_sends(db):
    with running_service(db) as (service, client):
        put = client.put("/api/v1/devices/bin-001@town-b", headers=AUTH,
                         json={"name": "Marktplatz (Ortsteil B)", "municipality": "Birstein"})
        assert put.status_code == 200, put.text
        assert put.json()["application_id"] == "town-b"
        for town, mm in (("town-a", 300), ("town-b", 700)):
            doc = uplink(town, "bin-001", None, 1, mm, "2026-12-07T08:00:00Z")
            answer = client.post("/api/v1/webhooks/tts", content=json.dumps(doc), headers=HOOK)
            assert answer.json()["result"] == "stored", answer.text
        named = client.get("/api/v1/devices/bin-001@town-b").json()
    assert named["name"] == "Marktplatz (Ortsteil B)" and named["network"] == "tts"
    assert distances(db) == {"bin-001": [0.3], "bin-001@town-b": [0.7]}


def test_the_backfill_covers_every_application_and_keeps_them_apart(db, app_id):
    town_a, town_b = f"{app_id}-a", f"{app_id}-b"
    archive = UplinkArchive()
    per_town = {}
    for town in (town_a, town_b):
        # The same scenario twice: both towns' simulated bins have the same device ids.
        _, deliveries, _ = simulated(town, hours=1, devices=3)
        per_town[town] = len(deliveries)
        for delivery in deliveries:
            archive.add(json.loads(delivery.body))
    keys = {"NNSXS.A": town_a, "NNSXS.B": town_b}
    with StorageServer(archive, keys) as storage, \
            running_service(db, backfill_url=storage.url, backfill_page=50,
                            backfill_interval_s=0,
                            mqtt_applications={f"{town_a}@ttn": "NNSXS.A",
                                               f"{town_b}@ttn": "NNSXS.B"}):
        wait_until(lambda: count(db, "SELECT count(*) FROM backfill_runs") == 2, timeout=30,
                   what="a backfill run per application")
    with psycopg.connect(db) as conn:
        by_app = dict(conn.execute(
            "SELECT d.application_id, count(*) FROM raw_uplinks u JOIN devices d"
            " USING (device_id) GROUP BY 1").fetchall())
        ids = conn.execute("SELECT count(DISTINCT network_device_id), count(*)"
                           " FROM devices").fetchone()
    assert by_app == per_town
    assert ids == (3, 6)
