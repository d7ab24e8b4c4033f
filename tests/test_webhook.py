"""The TTS webhook: authenticated by a shared secret, answered after the commit."""
from __future__ import annotations

import json

from fixtures_data import DATA
from helpers import SECRET, TOKEN, count, running_service

RAW = (DATA / "examples" / "tts_uplink_raw.json").read_bytes()
DECODED = (DATA / "examples" / "tts_uplink_decoded.json").read_bytes()
CHIRPSTACK = (DATA / "examples" / "chirpstack_up.json").read_bytes()
HEADERS = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}


def test_webhook_refuses_without_the_secret(db):
    with running_service(db) as (service, client):
        assert client.post("/api/v1/webhooks/tts", content=DECODED).status_code == 401
        wrong = {"X-Webhook-Secret": SECRET[:-1] + "x"}
        assert client.post("/api/v1/webhooks/tts", content=DECODED,
                           headers=wrong).status_code == 401
        bearer = {"Authorization": f"Bearer {SECRET}"}
        assert client.post("/api/v1/webhooks/tts", content=DECODED,
                           headers=bearer).status_code == 200
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 1


def test_webhook_disabled_without_a_configured_secret(db):
    with running_service(db, webhook_secret=None) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=DECODED, headers=HEADERS)
        assert answer.status_code == 403 and "BAUHOF_WEBHOOK_SECRET" in answer.json()["detail"]
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 0


def test_webhook_stores_once_and_answers_after_commit(db):
    with running_service(db) as (service, client):
        first = client.post("/api/v1/webhooks/tts", content=DECODED, headers=HEADERS)
        # the answer comes after the commit: the readings are there already
        assert first.status_code == 200
        assert first.json() == {"result": "stored", "device_id": "soil-beet-a3", "readings": 5,
                                "reason": None}
        assert count(db, "SELECT count(*) FROM readings") == 5
        retry = client.post("/api/v1/webhooks/tts", content=DECODED, headers=HEADERS)
        assert retry.json()["result"] == "duplicate"
        values = {v["metric"]: v["value"]
                  for v in client.get("/api/v1/devices/soil-beet-a3/latest").json()}
        assert values["soil_moisture_pct"] == 23.4 and values["battery_v"] == 3.59
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 1


def test_malformed_webhook_is_dead_lettered_with_the_reason(db):
    with running_service(db) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=b'{"end_device_ids": 5}',
                             headers=HEADERS)
        assert answer.status_code == 422
        assert answer.json()["result"] == "dead_letter"
        assert "end_device_ids" in answer.json()["reason"]
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE source = 'tts-webhook'") == 1


def test_uplink_without_decoder_is_stored_and_explained(db):
    with running_service(db) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=RAW, headers=HEADERS)
        assert answer.status_code == 200
        assert answer.json()["result"] == "stored" and answer.json()["readings"] == 0
        assert "no decoder for device bin-marktplatz-017" in answer.json()["reason"]
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE stage = 'decode'") == 1


def test_other_message_kinds_are_ignored(db):
    doc = json.loads(RAW)
    del doc["uplink_message"]
    doc["join_accept"] = {"session_key_id": "AAAAAAAAAAAAAAAAAAAAAA=="}
    with running_service(db) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=json.dumps(doc), headers=HEADERS)
        assert answer.status_code == 200 and answer.json()["result"] == "ignored"
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 0
    assert count(db, "SELECT count(*) FROM ingest_errors") == 0


def test_oversized_body_is_refused(db):
    with running_service(db, max_message_bytes=4096) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=b"x" * 5000, headers=HEADERS)
        assert answer.status_code == 413


def test_chirpstack_http_integration(db):
    with running_service(db) as (service, client):
        answer = client.post("/api/v1/webhooks/chirpstack?event=up", content=CHIRPSTACK,
                             headers=HEADERS)
        assert answer.json()["result"] == "stored"
        log = client.post("/api/v1/webhooks/chirpstack?event=log", content=b"{}",
                          headers=HEADERS)
        assert log.status_code == 200 and log.json()["result"] == "ignored"
    assert count(db, "SELECT count(*) FROM readings WHERE device_id = 'eui-a84041000181c2d7'") == 6


def test_unregistered_device_is_dead_lettered_when_registration_is_required(db):
    with running_service(db, auto_register_devices=False) as (service, client):
        answer = client.post("/api/v1/webhooks/tts", content=DECODED, headers=HEADERS)
        assert answer.status_code == 422
        assert answer.json()["reason"] == ("device soil-beet-a3 is not registered "
                                           "(BAUHOF_AUTO_REGISTER_DEVICES is off)")
        client.put("/api/v1/devices/soil-beet-a3", json={"kind": "soil"},
                   headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        again = client.post("/api/v1/webhooks/tts", content=DECODED, headers=HEADERS)
        assert again.json()["result"] == "stored"
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE stage = 'device'") == 1
