"""The batch writer against a real database: one transaction, idempotent, bisects bad rows."""
from __future__ import annotations

import json

from app.metrics import Metrics
from app.pipeline import Message, Pipeline
from app.store import Store
from fixtures_data import DATA
from helpers import count, make_settings

DECODED = json.loads((DATA / "examples" / "tts_uplink_decoded.json").read_text())


def uplink(f_cnt: int, decoded: dict | None = None, second: int | None = None) -> bytes:
    doc = json.loads(json.dumps(DECODED))
    doc["uplink_message"]["f_cnt"] = f_cnt
    second = f_cnt % 60 if second is None else second
    doc["uplink_message"]["received_at"] = f"2025-06-03T05:48:{second:02d}.000000001Z"
    if decoded is not None:
        doc["uplink_message"]["decoded_payload"] = decoded
    return json.dumps(doc).encode()


def prepare(db: str, messages: list[bytes]):
    pipeline = Pipeline(make_settings(), Store(db), Metrics())
    return [pipeline._prepare(Message(raw=m, source="tts-webhook")) for m in messages]


def test_a_row_the_database_refuses_is_dead_lettered_alone(db):
    # text cannot hold \u0000: valid JSON that PostgreSQL refuses, in the middle of a batch.
    # (In a decoded_payload the parser refuses it already; a correlation id is free text.)
    messages = [uplink(n) for n in range(1, 21)]
    doc = json.loads(uplink(10))
    doc["correlation_ids"] = ["gs:uplink:a\u0000b"]
    messages[9] = json.dumps(doc).encode()
    store = Store(db)
    try:
        report = store.write(prepare(db, messages))
    finally:
        store.close()
    assert report.inserted == 19 and len(report.dead_letters) == 1
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 19
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE stage = 'store'") == 1
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE raw = %s", messages[9]) == 1


def test_writing_the_same_batch_twice_stores_it_once(db):
    messages = [uplink(n) for n in range(1, 6)]
    store = Store(db)
    try:
        first = store.write(prepare(db, messages))
        again = store.write(prepare(db, messages + messages))
    finally:
        store.close()
    assert (first.inserted, first.duplicates) == (5, 0)
    assert (again.inserted, again.duplicates) == (0, 10)
    assert count(db, "SELECT count(*) FROM readings") == 25


def test_an_older_reading_never_overwrites_a_newer_latest_value(db):
    store = Store(db)
    try:
        store.write(prepare(db, [uplink(30, {"soil_moisture_pct": 30.0})]))
        store.write(prepare(db, [uplink(10, {"soil_moisture_pct": 10.0})]))  # late delivery
    finally:
        store.close()
    assert count(db, "SELECT value::int FROM latest_readings"
                     " WHERE metric = 'soil_moisture_pct'") == 30
    assert count(db, "SELECT count(*) FROM readings WHERE metric = 'soil_moisture_pct'") == 2
