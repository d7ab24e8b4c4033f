"""The batch writer's COPY path: duplicates within and across batches, values the binary COPY
cannot carry, a lost staging table, and which reading wins the latest value."""
from __future__ import annotations

import dataclasses

from app.model import Radio
from app.store import Store
from helpers import count
from test_store import prepare, uplink

def test_new_and_duplicate_uplinks_in_one_batch(db):
    store = Store(db)
    try:
        store.write(prepare(db, [uplink(1), uplink(2)]))
        items = prepare(db, [uplink(2), uplink(3), uplink(3), uplink(4)])
        report = store.write(items)
    finally:
        store.close()
    assert (report.inserted, report.duplicates) == (2, 2)
    assert [i.inserted for i in items] == [False, True, False, True]
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 4
    assert count(db, "SELECT count(*) FROM readings") == 4 * 5
    assert count(db, "SELECT count(*) FROM devices") == 1


def test_a_value_too_large_for_its_column_is_dead_lettered_alone(db):
    items = prepare(db, [uplink(n) for n in range(1, 9)])
    item = items[3]
    radio = dataclasses.replace(item.uplink.radio, bandwidth=2**70)
    item.uplink = dataclasses.replace(item.uplink, radio=radio)
    store = Store(db)
    try:
        report = store.write(items)
    finally:
        store.close()
    assert report.inserted == 7 and len(report.dead_letters) == 1
    assert report.dead_letters[0].reason == "database refused the message: integer out of range"
    assert item.refused and not item.inserted


def test_a_smallint_column_refuses_what_int8_staging_carried(db):
    items = prepare(db, [uplink(1), uplink(2)])
    item = items[1]
    item.uplink = dataclasses.replace(item.uplink, radio=Radio(spreading_factor=70000))
    store = Store(db)
    try:
        report = store.write(items)
    finally:
        store.close()
    assert report.inserted == 1
    assert report.dead_letters[0].reason == "database refused the message: smallint out of range"


def test_the_staging_tables_come_back_when_the_session_lost_them(db):
    store = Store(db)
    try:
        store.write(prepare(db, [uplink(1)]))
        conn = store.connection()
        conn.execute("DISCARD TEMP")  # what a pooler's other server session looks like
        conn.commit()
        report = store.write(prepare(db, [uplink(2)]))
    finally:
        store.close()
    assert report.inserted == 1
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 2


def test_two_new_uplinks_at_the_same_time_keep_the_first_reading(db):
    # Same device and reception time, different frame counters: two uplinks, one reading time.
    store = Store(db)
    try:
        report = store.write(prepare(db, [uplink(7, {"soil_moisture_pct": 7.0}, second=30),
                                          uplink(8, {"soil_moisture_pct": 8.0}, second=30)]))
    finally:
        store.close()
    assert report.inserted == 2
    assert count(db, "SELECT value::int FROM readings WHERE metric = 'soil_moisture_pct'") == 7
    assert count(db, "SELECT value::int FROM latest_readings"
                     " WHERE metric = 'soil_moisture_pct'") == 7
