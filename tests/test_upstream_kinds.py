"""Every kind of message The Things Stack and ChirpStack send, as their documentation shows
them (tests/data/upstream, with provenance), through MQTT and the webhook (issue 15).

Uplinks are stored once whichever path brings them; a ChirpStack ``status`` becomes the device's
health; every other valid kind is answered 2xx, counted by kind and never dead-lettered.
"""
from __future__ import annotations

import json
import logging
import uuid

import psycopg
import pytest
from fixtures_data import DATA
from helpers import SECRET, Publisher, count, running_service, wait_until

from app.sources.errors import NotAnUplink, Rejected
from app.sources.tts import parse_tts

UPSTREAM = DATA / "upstream"
HOOK = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}


def tts_doc(name: str) -> dict:
    return json.loads((UPSTREAM / "tts" / f"{name}.json").read_text())


def chirpstack_raw(event: str) -> bytes:
    return (UPSTREAM / "chirpstack" / f"{event}.json").read_bytes()


def normalized() -> dict:
    """The docs show uplink_normalized without its envelope (tests/data/upstream/README.md):
    here it gets the envelope of the documented join_accept, which every kind shares."""
    doc = tts_doc("join_accept")
    del doc["join_accept"]
    doc.update(tts_doc("uplink_normalized"))
    return doc


def future_kind() -> dict:
    """A kind TTS may add one day: the envelope and an object under a key we do not know."""
    doc = tts_doc("join_accept")
    del doc["join_accept"]
    doc["downlink_rescheduled"] = {"session_key_id": "AXBSH1Pk6Z0G166RlH16CQ=="}
    return doc


# TTS file -> (what becomes of it, the kind counted or the dead letter's reason)
TTS_CASES = {
    "uplink_message.mqtt": ("stored", None),
    "uplink_message.pubsub_mqtt": ("stored", None),
    "uplink_message.webhook_starter_kit": ("stored", None),
    "uplink_message.simulated": ("stored", None),
    "join_accept": ("ignored", "join_accept"),
    "join_accept.mqtt": ("ignored", "join_accept"),
    "downlink_ack": ("ignored", "downlink_ack"),
    "downlink_ack.mqtt": ("ignored", "downlink_ack"),
    "downlink_failed": ("ignored", "downlink_failed"),
    "downlink_queued": ("ignored", "downlink_queued"),
}
# The MQTT topic's last levels for each kind (shared/formats.md §1.2).
TTS_SUFFIX = {"join_accept": "join", "downlink_ack": "down/ack", "downlink_failed": "down/failed",
              "downlink_queued": "down/queued", "uplink_normalized": "up/normalized",
              "downlink_rescheduled": "down/rescheduled"}


def tts_messages() -> list[tuple[str, dict, str, str | None]]:
    cases = [(name, tts_doc(name), *TTS_CASES[name]) for name in TTS_CASES]
    cases.append(("uplink_normalized", normalized(), "ignored", "uplink_normalized"))
    cases.append(("future kind", future_kind(), "ignored", "downlink_rescheduled"))
    return cases


def assert_only_undecodable(db: str, uplinks: int) -> None:
    """No dead letter but the documented uplinks that name no model and carry no decoded
    payload: stored, and their reason kept once (not per delivery)."""
    with psycopg.connect(db) as conn:
        letters = dict(conn.execute("SELECT stage, count(*) FROM ingest_errors"
                                    " GROUP BY stage").fetchall())
    assert letters == ({"decode": uplinks} if uplinks else {})


def ignored(service, source: str, kind: str) -> float:
    return service.metrics.ignored.labels(source, kind)._value.get()


def test_the_documented_tts_messages_over_the_webhook(db, caplog):
    with running_service(db) as (service, client), caplog.at_level(logging.WARNING):
        for name, doc, outcome, _ in tts_messages():
            for attempt in range(2):  # and once more, as a retrying TTS would
                answer = client.post("/api/v1/webhooks/tts", content=json.dumps(doc),
                                     headers=HOOK)
                assert answer.status_code == 200, (name, answer.text)
                expected = "duplicate" if outcome == "stored" and attempt else outcome
                assert answer.json()["result"] == expected, (name, answer.json())
        counted = {kind: ignored(service, "tts-webhook", kind)
                   for _, _, outcome, kind in tts_messages() if kind}
    assert counted == {"join_accept": 4, "downlink_ack": 4, "downlink_failed": 2,
                       "downlink_queued": 2, "uplink_normalized": 2, "downlink_rescheduled": 2}
    assert_only_undecodable(db, 2)
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 4
    # The kind nobody knew yet is said once, not per message.
    said = [r.getMessage() for r in caplog.records if "downlink_rescheduled" in r.getMessage()]
    assert len(said) == 1 and "do not know" in said[0]


def test_the_documented_tts_messages_over_mqtt(db, mqtt_broker, app_id):
    topics = [f"v3/{app_id}@ttn/devices/+/#"]
    with running_service(db, mqtt_broker, topics) as (service, client), \
            Publisher(mqtt_broker) as pub:
        for name, doc, _, kind in tts_messages():
            device = doc["end_device_ids"]["device_id"]
            suffix = TTS_SUFFIX.get(kind, "up")
            pub.publish(f"v3/{app_id}@ttn/devices/{device}/{suffix}", json.dumps(doc).encode())
        wait_until(lambda: service.pipeline.depth == 0 and count(db, "SELECT count(*) FROM"
                                                                  " raw_uplinks") == 4,
                   what="the four documented uplinks")
        wait_until(lambda: ignored(service, "tts-mqtt", "downlink_rescheduled") == 1,
                   what="every message counted")
        counted = {kind: ignored(service, "tts-mqtt", kind)
                   for _, _, outcome, kind in tts_messages() if kind}
        metrics = client.get("/metrics").text
    assert counted == {"join_accept": 2, "downlink_ack": 2, "downlink_failed": 1,
                       "downlink_queued": 1, "uplink_normalized": 1, "downlink_rescheduled": 1}
    assert ('bauhof_messages_ignored_total{kind="join_accept",source="tts-mqtt"} 2.0'
            in metrics)
    assert_only_undecodable(db, 2)


def test_the_data_formats_page_uplink_has_a_payload_on_port_0():
    """The docs' main uplink example omits f_port (so it is 0, MAC commands only) but carries an
    application payload: TTS would never send that; it is refused with the reason."""
    with pytest.raises(Rejected, match="payload on f_port 0"):
        parse_tts(json.dumps(tts_doc("uplink_message")).encode(), "tts-webhook")


def test_simulated_uplinks_keep_one_time_whichever_path_brings_them():
    """Console-simulated uplinks carry Go's zero time as the network server's; the Storage
    Integration keeps them so. Live (MQTT) and stored (backfill) give one time and one key."""
    live = tts_doc("uplink_message.simulated")
    assert live["uplink_message"]["received_at"] == "0001-01-01T00:00:00Z"
    stored = tts_doc("storage_cli_get.simulated")
    assert stored[0] == live
    from_mqtt = parse_tts(json.dumps(live).encode(), "tts-mqtt")
    from_backfill = parse_tts(json.dumps(stored[0]).encode(), "tts-backfill")
    assert from_mqtt.simulated and from_mqtt.received_at.isoformat() == \
        "2021-02-04T19:32:31.488210+00:00"
    assert (from_mqtt.received_at, from_mqtt.dedup_key) == \
        (from_backfill.received_at, from_backfill.dedup_key)
    second = parse_tts(json.dumps(stored[1]).encode(), "tts-backfill")
    assert second.received_at != from_mqtt.received_at


def test_the_documented_storage_results_parse_as_the_backfill_reads_them():
    for name, f_cnt in (("storage_result.uplink_message", 43),
                        ("storage_result.uplink_message_2", 44)):
        result = tts_doc(name)["result"]
        uplink = parse_tts(json.dumps(result).encode(), "tts-backfill")
        assert uplink.f_cnt == f_cnt and uplink.received_at.year == 2020
    # With a field mask that drops the application id, a result is not a whole message (we
    # never ask for one): refused with the reason, not guessed.
    masked = tts_doc("storage_result.field_mask")["result"]
    with pytest.raises(Rejected, match="application_id"):
        parse_tts(json.dumps(masked).encode(), "tts-backfill")


CS_IGNORED = ("join", "ack", "txack", "log", "location", "integration")


def test_the_documented_chirpstack_events_over_mqtt_and_http(db, mqtt_broker):
    # The topic's application level is this test's own, so that CI's two passes sharing the
    # broker never see each other's messages; the bodies are the documented ones.
    application = str(uuid.uuid4())
    topic = f"application/{application}/device/0101010101010101/event/{{}}"
    with running_service(db, mqtt_broker, [f"application/{application}/device/+/event/+"]) \
            as (service, client), Publisher(mqtt_broker) as pub:
        for event in ("up", "status", *CS_IGNORED, "futureevent"):
            raw = chirpstack_raw("log" if event == "futureevent" else event)
            pub.publish(topic.format(event), raw)
        wait_until(lambda: service.pipeline.depth == 0
                   and ignored(service, "chirpstack-mqtt", "futureevent") == 1
                   and service.metrics.device_status.labels("chirpstack-mqtt")._value.get() == 1,
                   what="every event handled")
        # The HTTP integration names the type with ?event=; the same up is a duplicate.
        answers = {event: client.post(f"/api/v1/webhooks/chirpstack?event={event}",
                                      content=chirpstack_raw(event), headers=HOOK)
                   for event in ("up", "status", *CS_IGNORED)}
        device = client.get("/api/v1/devices/eui-0101010101010101").json()
        latest = {v["metric"]: v for v in
                  client.get("/api/v1/devices/eui-0101010101010101/latest").json()}
        counted = {e: ignored(service, "chirpstack-mqtt", e) for e in CS_IGNORED}
        over_http = {e: ignored(service, "chirpstack-webhook", e) for e in CS_IGNORED}
    assert {e: a.status_code for e, a in answers.items()} == {e: 200 for e in answers}
    assert {e: a.json()["result"] for e, a in answers.items()} == {
        "up": "duplicate", "status": "recorded", **{e: "ignored" for e in CS_IGNORED}}
    assert counted == over_http == {e: 1 for e in CS_IGNORED}
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 1
    assert_only_undecodable(db, 1)
    # status: battery 88.3 %, margin 10 dB, as readings and on the device
    assert device["status"] == {"time": "2022-07-18T09:35:06.927172Z", "battery_pct": 88.3,
                                "external_power": False, "link_margin_db": 10}
    assert latest["battery_pct"]["value"] == 88.3
    assert latest["link_margin_db"]["value"] == 10.0
    with psycopg.connect(db) as conn:
        kept = conn.execute("SELECT metric, count(*) FROM readings WHERE device_id ="
                            " 'eui-0101010101010101' AND metric IN ('battery_pct',"
                            " 'link_margin_db') GROUP BY metric").fetchall()
    assert sorted(kept) == [("battery_pct", 1), ("link_margin_db", 1)]  # twice delivered, once


def test_a_status_without_a_battery_reading_keeps_the_margin():
    from app.sources.chirpstack import parse_chirpstack

    doc = json.loads(chirpstack_raw("status"))
    doc.update(externalPowerSource=True, batteryLevel=0)
    status = parse_chirpstack(json.dumps(doc).encode(), "chirpstack-mqtt", event="status")
    assert status.battery_pct is None and status.external_power
    assert [(r.metric, r.value) for r in status.readings()] == [("link_margin_db", 10.0)]
    with pytest.raises(NotAnUplink) as other:
        parse_chirpstack(chirpstack_raw("txack"), "chirpstack-mqtt",
                         "application/x/device/0101010101010101/event/txack")
    assert (other.value.kind, other.value.known) == ("txack", True)
