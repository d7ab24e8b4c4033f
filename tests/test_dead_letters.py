"""Dead letters are idempotent: one row per distinct bad message, counted when it comes again
(webhook retries, MQTT redeliveries, every backfill run), and each time answered the same."""
from __future__ import annotations

import uuid

import psycopg
from helpers import SECRET, TOKEN, Publisher, count, running_service, wait_until

from app import migrate as migrations
from app.migrate import migrate
from app.store import fingerprint

HOOK = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BAD = b'{"end_device_ids": {"device_id": "bin-7", "application_ids": {}}, "uplink_message": {}}'


def test_a_bad_message_delivered_five_times_leaves_one_dead_letter_counting_five(db):
    with running_service(db) as (service, client):
        answers = [client.post("/api/v1/webhooks/tts", content=BAD, headers=HOOK)
                   for _ in range(5)]
        other = client.post("/api/v1/webhooks/tts", content=BAD.replace(b"bin-7", b"bin-8"),
                            headers=HOOK)
        letters = client.get("/api/v1/ingest-errors", headers=AUTH).json()
    assert {a.status_code for a in answers} == {422} and other.status_code == 422
    assert len({a.json()["reason"] for a in answers}) == 1
    assert "application_id" in answers[0].json()["reason"]
    # One row each, the most recently seen first: bin-8 came last.
    assert [x["count"] for x in letters] == [1, 5]
    assert letters[1]["last_seen"] > letters[1]["time"]
    assert letters[1]["reason"] == answers[0].json()["reason"]


def test_repeats_in_one_batch_fold_into_one_row(db, mqtt_broker, app_id):
    topic = f"v3/{app_id}@ttn/devices/bin-7/up"
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"],
                         batch_max=50) as (service, client), Publisher(mqtt_broker) as pub:
        for _ in range(20):
            pub.publish(topic, BAD)
        wait_until(lambda: count(db, "SELECT coalesce(sum(count), 0) FROM ingest_errors") == 20,
                   what="twenty deliveries counted")
        assert service.metrics.dead_letters.labels("validate")._value.get() == 20
    assert count(db, "SELECT count(*) FROM ingest_errors") == 1


def test_the_same_bytes_from_another_source_is_another_letter():
    assert fingerprint("tts-mqtt", BAD) == fingerprint("tts-mqtt", BAD)
    assert fingerprint("tts-mqtt", BAD) != fingerprint("tts-webhook", BAD)
    # The source cannot run into the bytes: a NUL stands between them.
    assert fingerprint("tts-mqtt", b"x" + BAD) != fingerprint("tts-mqttx", BAD)


def test_migration_009_folds_the_repeats_written_before(fresh_database, monkeypatch):
    everything = migrations.available()
    monkeypatch.setattr(migrations, "available", lambda: [m for m in everything if m.version < 9])
    migrate(fresh_database)
    with psycopg.connect(fresh_database, autocommit=True) as conn:
        for minutes, raw in ((3, BAD), (1, BAD), (2, BAD), (5, b"other")):
            conn.execute("INSERT INTO ingest_errors (id, time, source, stage, reason, raw,"
                         " raw_size) VALUES (%s, now() - %s * interval '1 minute', 'tts-mqtt',"
                         " 'validate', 'bad', %s, %s)",
                         (uuid.uuid4(), minutes, raw, len(raw)))
    monkeypatch.setattr(migrations, "available", lambda: everything)
    migrate(fresh_database)
    with psycopg.connect(fresh_database) as conn:
        rows = conn.execute("SELECT raw, count, last_seen - time, fingerprint FROM ingest_errors"
                            " ORDER BY count").fetchall()
    assert [(bytes(r[0]), r[1]) for r in rows] == [(b"other", 1), (BAD, 3)]
    # first seen 3 minutes ago, last 1 minute ago (each insert had its own now())
    assert round(rows[1][2].total_seconds()) == 120
    # The database's fingerprint is the service's: a later delivery counts up the same row.
    assert bytes(rows[1][3]) == fingerprint("tts-mqtt", BAD)
