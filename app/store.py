"""Write batches of uplinks, readings, device sightings and dead letters in one transaction.

The rows of a batch go to the server by binary ``COPY`` into two staging tables (temporary,
emptied at every commit), and from there into the real tables with one ``INSERT ... SELECT``
each: per batch a handful of round trips, and per row no Python work beyond building a tuple.
The duplicates are decided by the database (``ON CONFLICT DO NOTHING`` on the idempotency key),
and readings are written only for the uplinks that were new, so a delivered-twice uplink is
stored once whatever path it came by. A row the database refuses (a constraint, an encoding)
would fail the whole batch; the batch is then split in halves until the offending message
stands alone and goes to the dead-letter table instead.
"""
from __future__ import annotations

import hashlib
import logging
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from app.aggregates import HourlyAggregate
from app.decoding import DeviceConfig, Decoding
from app.device_keys import KeyRow
from app.model import DeadLetter, DeviceStatus, Reading, Uplink

log = logging.getLogger(__name__)

TRANSIENT = (psycopg.OperationalError, psycopg.InterfaceError)


@dataclass(slots=True)
class Prepared:
    """One message after parsing and decoding, ready to write."""

    raw: bytes
    source: str
    topic: str | None = None
    uplink: Uplink | None = None
    decoding: Decoding | None = None
    dead_letter: DeadLetter | None = None  # the message's own, or its decode error
    inserted: bool = False  # set by the writer
    refused: bool = False  # the database would not take it; dead-lettered instead
    kind: str | None = None  # a valid message that is no uplink: its kind (join_accept, log)
    status: DeviceStatus | None = None  # a device's health report (ChirpStack status event)


@dataclass(slots=True)
class BatchReport:
    inserted: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


# Staging tables, one pair per writer connection. Numbers are staged as 64-bit and cast by the
# INSERT, so that a value too large for its column fails there, as an error the batch split
# isolates, and is never cut short silently by a narrower binary encoding.
_STAGING = """
CREATE TEMP TABLE IF NOT EXISTS bauhof_stage_uplinks (
    n int4, received_at timestamptz, device_id text, dedup_key text, network text, source text,
    application_id text, dev_eui text, dev_addr text, session_key_id text, f_port int8,
    f_cnt int8, frm_payload bytea, decoded_payload jsonb, decoder text, simulated bool,
    confirmed bool, correlation_id text, gateway_count int8, rssi float8, snr float8,
    spreading_factor int8, bandwidth int8, frequency int8, airtime_s float8, brand_id text,
    model_id text, device_name text, kind text, network_device_id text
) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS bauhof_stage_readings (
    n int4, time timestamptz, device_id text, metric text, value float8
) ON COMMIT DELETE ROWS
"""
_UPLINK_TYPES = [
    "int4", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "text",
    "int8", "int8", "bytea", "jsonb", "text", "bool", "bool", "text", "int8", "float8",
    "float8", "int8", "int8", "int8", "float8", "text", "text", "text", "text", "text",
]
_READING_TYPES = ["int4", "timestamptz", "text", "text", "float8"]
_COPY_UPLINKS = "COPY bauhof_stage_uplinks FROM STDIN (FORMAT BINARY)"
_COPY_READINGS = "COPY bauhof_stage_readings FROM STDIN (FORMAT BINARY)"

# The newest sighting per device (the first of equals); sorted by device, so that two writers
# lock device rows in the same order and cannot deadlock.
_UPSERT_DEVICES = """
INSERT INTO devices (device_id, dev_eui, application_id, network, brand_id, model_id, name, kind,
                     last_seen, network_device_id)
SELECT DISTINCT ON (device_id) device_id, dev_eui, application_id, network, brand_id, model_id,
       device_name, kind, received_at, network_device_id
  FROM bauhof_stage_uplinks
 ORDER BY device_id, received_at DESC, n
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen),
    dev_eui = COALESCE(EXCLUDED.dev_eui, devices.dev_eui),
    -- A key belongs to one (network, application, device id): app/device_keys.py.
    application_id = COALESCE(devices.application_id, EXCLUDED.application_id),
    network_device_id = COALESCE(devices.network_device_id, EXCLUDED.network_device_id),
    network = EXCLUDED.network,
    brand_id = COALESCE(EXCLUDED.brand_id, devices.brand_id),
    model_id = COALESCE(EXCLUDED.model_id, devices.model_id),
    name = COALESCE(devices.name, EXCLUDED.name),
    kind = COALESCE(devices.kind, EXCLUDED.kind)
"""
_INSERT_UPLINKS = """
INSERT INTO raw_uplinks (received_at, device_id, dedup_key, network, source, application_id,
    dev_eui, dev_addr, session_key_id, f_port, f_cnt, frm_payload, decoded_payload, decoder,
    simulated, confirmed, correlation_id, gateway_count, rssi, snr, spreading_factor, bandwidth,
    frequency, airtime_s)
SELECT received_at, device_id, dedup_key, network, source, application_id, dev_eui, dev_addr,
       session_key_id, f_port, f_cnt, frm_payload, decoded_payload, decoder, simulated,
       confirmed, correlation_id, gateway_count, rssi, snr, spreading_factor, bandwidth,
       frequency, airtime_s
  FROM bauhof_stage_uplinks
 ORDER BY device_id, received_at, dedup_key
ON CONFLICT DO NOTHING
RETURNING device_id, received_at, dedup_key
"""
_INSERT_READINGS = """
INSERT INTO readings (time, device_id, metric, value)
SELECT time, device_id, metric, value FROM bauhof_stage_readings
 ORDER BY device_id, metric, time, n
ON CONFLICT DO NOTHING
"""
# An older reading (late delivery, backfill) must not overwrite a newer one.
_UPSERT_LATEST = """
INSERT INTO latest_readings (device_id, metric, time, value)
SELECT DISTINCT ON (device_id, metric) device_id, metric, time, value
  FROM bauhof_stage_readings
 ORDER BY device_id, metric, time DESC, n
ON CONFLICT (device_id, metric) DO UPDATE
    SET time = EXCLUDED.time, value = EXCLUDED.value
    WHERE latest_readings.time < EXCLUDED.time
"""
# A device's health report: sighted like an uplink's device, its status kept where it is newer.
_UPSERT_STATUS = """
INSERT INTO devices (device_id, dev_eui, application_id, network, name, last_seen, status_at,
                     battery_pct, external_power, link_margin_db, network_device_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (device_id) DO UPDATE SET
    last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen),
    dev_eui = COALESCE(devices.dev_eui, EXCLUDED.dev_eui),
    application_id = COALESCE(devices.application_id, EXCLUDED.application_id),
    network_device_id = COALESCE(devices.network_device_id, EXCLUDED.network_device_id),
    network = COALESCE(devices.network, EXCLUDED.network),
    name = COALESCE(devices.name, EXCLUDED.name),
    status_at = GREATEST(devices.status_at, EXCLUDED.status_at),
    battery_pct = CASE WHEN devices.status_at >= EXCLUDED.status_at THEN devices.battery_pct
                       ELSE EXCLUDED.battery_pct END,
    external_power = CASE WHEN devices.status_at >= EXCLUDED.status_at
                          THEN devices.external_power ELSE EXCLUDED.external_power END,
    link_margin_db = CASE WHEN devices.status_at >= EXCLUDED.status_at
                          THEN devices.link_margin_db ELSE EXCLUDED.link_margin_db END
"""
_INSERT_READING = ("INSERT INTO readings (time, device_id, metric, value) VALUES (%s, %s, %s, %s)"
                   " ON CONFLICT DO NOTHING")
_UPSERT_LATEST_ONE = """
INSERT INTO latest_readings (device_id, metric, time, value) VALUES (%s, %s, %s, %s)
ON CONFLICT (device_id, metric) DO UPDATE SET time = EXCLUDED.time, value = EXCLUDED.value
    WHERE latest_readings.time < EXCLUDED.time
"""
_NUL_ESCAPE = b"\\u0000"  # how JSON spells NUL, which PostgreSQL text cannot hold


class Store:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection | None = None
        self.hourly = HourlyAggregate()

    # --- connection ----------------------------------------------------------------------------

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            conn = psycopg.connect(self.conninfo, connect_timeout=5,
                                   application_name="bauhof-writer")
            try:
                conn.execute(_STAGING)
                conn.commit()
                self.hourly.detect(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - a broken connection may fail to close; ignore
                pass

    def ping(self) -> None:
        conn = self.connection()
        try:
            conn.execute("SELECT 1")
            conn.commit()
        except TRANSIENT:
            self.close()
            raise

    def load_devices(self) -> tuple[dict[str, DeviceConfig], list[KeyRow]]:
        """Each device's configuration by key, and what gives uplinks their keys."""
        conn = self.connection()
        try:
            rows = conn.execute(
                "SELECT device_id, decoder, kind, attributes, network, application_id,"
                " network_device_id FROM devices").fetchall()
            conn.commit()
        except TRANSIENT:
            self.close()
            raise
        return ({r[0]: DeviceConfig(decoder=r[1], kind=r[2], attributes=r[3] or {}) for r in rows},
                [KeyRow(r[0], r[4], r[5], r[6]) for r in rows])

    # --- writing -------------------------------------------------------------------------------

    def write(self, items: Sequence[Prepared]) -> BatchReport:
        """Write all items; bisect around rows the database refuses. Raises TRANSIENT errors."""
        try:
            return self._write_once(items)
        except TRANSIENT:
            self.close()
            raise
        except psycopg.Error as err:
            self._rollback()
            if len(items) == 1:
                return self._refuse(items[0], err)
            middle = len(items) // 2
            first = self.write(items[:middle])
            second = self.write(items[middle:])
            return BatchReport(
                first.inserted + second.inserted, first.duplicates + second.duplicates,
                first.readings + second.readings, first.dead_letters + second.dead_letters,
            )

    def _rollback(self) -> None:
        try:
            if self._conn is not None:
                self._conn.rollback()
        except TRANSIENT:
            self.close()
            raise

    def _refuse(self, item: Prepared, err: psycopg.Error) -> BatchReport:
        letter = DeadLetter(
            stage="store",
            reason=f"database refused the message: {err.diag.message_primary or err}"[:500],
            source=item.source,
            raw=item.raw,
            raw_size=item.dead_letter.raw_size if item.dead_letter else len(item.raw),
            truncated=item.dead_letter.truncated if item.dead_letter else False,
            topic=item.topic,
            device_id=item.uplink.device_id if item.uplink else None,
        )
        log.warning("database refused a message: %s", letter.reason,
                    extra={"device": letter.device_id or "-", "stage": "store"})
        self._write_once([Prepared(raw=item.raw, source=item.source, dead_letter=letter)])
        item.refused, item.inserted, item.dead_letter = True, False, letter
        return BatchReport(dead_letters=[letter])

    def _write_once(self, items: Sequence[Prepared]) -> BatchReport:
        try:
            return self._write_transaction(items)
        except psycopg.errors.UndefinedTable as err:
            if "bauhof_stage_" not in str(err):
                raise
            # A pooler in transaction mode handed us another server session, which has no
            # staging tables (they are per session): make them there and go on.
            conn = self.connection()
            conn.execute(_STAGING)
            conn.commit()
            return self._write_transaction(items)

    def _write_transaction(self, items: Sequence[Prepared]) -> BatchReport:
        conn = self.connection()
        report = BatchReport()
        uplinks = _unique_uplinks(items)
        with conn.transaction():
            with conn.cursor(binary=True) as cur:
                if uplinks:
                    new = self._insert_uplinks(cur, uplinks)
                    report.inserted = len(new)
                    report.readings = self._insert_readings(cur, new)
                report.duplicates = sum(1 for i in items if i.uplink is not None) - report.inserted
                letters = [
                    i.dead_letter for i in items
                    if i.dead_letter is not None and (i.uplink is None or i.inserted)
                ]
                self._insert_dead_letters(cur, letters)
                report.dead_letters = letters
                statuses = [i.status for i in items if i.status is not None]
                if statuses:
                    report.readings += self._record_statuses(cur, statuses)
        if report.readings and self.hourly.continuous:
            self._refresh_late(conn, items)
        return report

    @staticmethod
    def _record_statuses(cur: psycopg.Cursor, statuses: list[DeviceStatus]) -> int:
        """Device health reports: rare (a network server asks about once a day), so plain
        statements. Several of one device in a batch: the newest decides, in time order."""
        readings = 0
        for status in sorted(statuses, key=lambda s: (s.device_id, s.time)):
            cur.execute(_UPSERT_STATUS, (
                status.device_id, status.dev_eui, status.application_id, status.network.value,
                status.device_name, status.time, status.time, status.battery_pct,
                status.external_power, status.margin_db,
                status.network_device_id or status.device_id))
            for r in status.readings():
                cur.execute(_INSERT_READING, (r.time, r.device_id, r.metric, r.value))
                readings += cur.rowcount
                cur.execute(_UPSERT_LATEST_ONE, (r.device_id, r.metric, r.time, r.value))
        return readings

    def _refresh_late(self, conn: psycopg.Connection, items: list[Prepared]) -> None:
        """After the commit: readings written into hours TimescaleDB's aggregate may have
        materialised already get those hours refreshed (app/aggregates.py)."""
        try:
            self.hourly.after_commit(conn, (r.time for i in items for r in _written(i)))
        except TRANSIENT:
            self.close()  # the batch is committed; the refresh waits for the next late batch

    @staticmethod
    def _insert_uplinks(cur: psycopg.Cursor, items: list[Prepared]) -> list[Prepared]:
        """Stage the batch's uplinks, sight their devices, insert the new ones; return those."""
        by_key: dict[tuple[str, datetime, str], Prepared] = {}
        with cur.copy(_COPY_UPLINKS) as copy:
            copy.set_types(_UPLINK_TYPES)
            write_row = copy.write_row
            for n, item in enumerate(items):
                item.inserted = False  # a retried half of a split batch is decided anew
                u = item.uplink
                r = u.radio
                d = item.decoding
                key = u.dedup_key
                by_key[(u.device_id, u.received_at, key)] = item
                row = (
                    n, u.received_at, u.device_id, key, u.network.value, u.source,
                    u.application_id, u.dev_eui, u.dev_addr, u.session_key_id, u.f_port, u.f_cnt,
                    u.payload, u.decoded_payload, d.decoder if d else None, u.simulated,
                    u.confirmed, u.correlation_id, min(r.gateway_count, 32767), r.rssi, r.snr,
                    r.spreading_factor, r.bandwidth, r.frequency, r.airtime_s, u.brand_id,
                    u.model_id, u.device_name, d.kind if d else None,
                    u.network_device_id or u.device_id,
                )
                if _NUL_ESCAPE in item.raw:
                    _check_text(row)
                if not (_fits(r.spreading_factor) and _fits(r.bandwidth) and _fits(r.frequency)):
                    _check_ranges(r)
                write_row(row)
        cur.execute(_UPSERT_DEVICES)
        cur.execute(_INSERT_UPLINKS)
        for key in cur.fetchall():
            by_key[key].inserted = True
        return [i for i in items if i.inserted]

    @staticmethod
    def _insert_readings(cur: psycopg.Cursor, items: list[Prepared]) -> int:
        if not any(i.decoding is not None and i.decoding.readings for i in items):
            return 0
        count = 0
        with cur.copy(_COPY_READINGS) as copy:
            copy.set_types(_READING_TYPES)
            write_row = copy.write_row
            for item in items:
                if item.decoding is None:
                    continue
                for r in item.decoding.readings:
                    write_row((count, r.time, r.device_id, r.metric, r.value))
                    count += 1
        cur.execute(_INSERT_READINGS)
        cur.execute(_UPSERT_LATEST)
        return count

    @staticmethod
    def _insert_dead_letters(cur: psycopg.Cursor, letters: Sequence[DeadLetter]) -> None:
        """One row per distinct message (its fingerprint): a message that comes again counts
        up its row and takes the newest reason. Repeats within the batch are folded first, as
        one statement may not update a row twice."""
        if not letters:
            return
        newest: dict[bytes, DeadLetter] = {}  # the last of each message: its reason wins
        times: Counter[bytes] = Counter()
        for letter in letters:
            if not letter.id:
                letter.id = str(uuid.uuid4())
            if not letter.fingerprint:
                letter.fingerprint = fingerprint(letter.source, letter.raw)
            newest[letter.fingerprint] = letter
            times[letter.fingerprint] += 1
        unique = [(x, times[key]) for key, x in newest.items()]
        cur.execute(
            """
            INSERT INTO ingest_errors AS e (id, source, stage, reason, topic, device_id, raw,
                                            raw_size, truncated, fingerprint, count)
            SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[],
                                 %s::text[], %s::bytea[], %s::int[], %s::bool[], %s::bytea[],
                                 %s::int[])
            ON CONFLICT (fingerprint) DO UPDATE SET
                count = e.count + EXCLUDED.count, last_seen = now(),
                stage = EXCLUDED.stage, reason = EXCLUDED.reason
            """,
            (
                [x.id for x, _ in unique],
                [_text(x.source) for x, _ in unique],
                [x.stage for x, _ in unique],
                [_text(x.reason) for x, _ in unique],
                [_text(x.topic) if x.topic else None for x, _ in unique],
                [_text(x.device_id) if x.device_id else None for x, _ in unique],
                [x.raw for x, _ in unique],
                [max(x.raw_size, len(x.raw)) for x, _ in unique],
                [x.truncated for x, _ in unique],
                [x.fingerprint for x, _ in unique],
                [n for _, n in unique],
            ),
        )


def _written(item: Prepared) -> list[Reading]:
    """The readings a committed item wrote (or would have, had they been new)."""
    if item.status is not None:
        return item.status.readings()
    if item.inserted and item.decoding is not None:
        return item.decoding.readings
    return []


def fingerprint(source: str, raw: bytes) -> bytes:
    """What makes two dead letters one: the same source and the same bytes (migration 009)."""
    return hashlib.sha256(source.encode("utf-8", "surrogatepass") + b"\0" + raw).digest()


def _unique_uplinks(items: Sequence[Prepared]) -> list[Prepared]:
    """The first of each idempotency key in the batch; later copies count as duplicates."""
    seen: set[tuple[str, datetime, str]] = set()
    unique = []
    for item in items:
        if item.uplink is None:
            continue
        u = item.uplink
        key = (u.device_id, u.received_at, u.dedup_key)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _text(value: str) -> str:
    # PostgreSQL text cannot hold NUL; a hostile topic or reason must not fail the batch.
    return value.replace("\x00", "\\x00")


def _fits(value: int | None) -> bool:
    return value is None or -(2**63) <= value < 2**63


def _check_ranges(radio) -> None:
    """What the binary COPY could not carry; fail as the database would for the column."""
    for value, column in ((radio.spreading_factor, "smallint"), (radio.bandwidth, "integer"),
                          (radio.frequency, "bigint")):
        if not _fits(value):
            raise psycopg.errors.NumericValueOutOfRange(f"{column} out of range")


def _check_text(row: tuple) -> None:
    """NUL cannot be stored as text; fail as psycopg does for a text parameter."""
    for value in row:
        if type(value) is str and "\x00" in value:
            raise psycopg.DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")
