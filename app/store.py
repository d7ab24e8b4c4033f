"""Write batches of uplinks, readings, device sightings and dead letters in one transaction.

Rows go in as arrays through ``unnest`` (one statement per table per batch), the duplicates are
decided by the database (``ON CONFLICT DO NOTHING`` on the idempotency key), and readings are
written only for the uplinks that were new, so a delivered-twice uplink is stored once whatever
path it came by. A row the database refuses (a constraint, an encoding) would fail the whole
batch; the batch is then split in halves until the offending message stands alone and goes to
the dead-letter table instead.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import psycopg
from psycopg.types.json import Jsonb

from app.decoding import DeviceConfig, Decoding
from app.model import DeadLetter, Uplink

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


@dataclass(slots=True)
class BatchReport:
    inserted: int = 0
    duplicates: int = 0
    readings: int = 0
    dead_letters: list[DeadLetter] = field(default_factory=list)


class Store:
    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo
        self._conn: psycopg.Connection | None = None

    # --- connection ----------------------------------------------------------------------------

    def connection(self) -> psycopg.Connection:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self.close()
            self._conn = psycopg.connect(self.conninfo, connect_timeout=5,
                                         application_name="bauhof-writer")
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

    def load_devices(self) -> dict[str, DeviceConfig]:
        conn = self.connection()
        try:
            rows = conn.execute("SELECT device_id, decoder, kind, attributes FROM devices").fetchall()
            conn.commit()
        except TRANSIENT:
            self.close()
            raise
        return {r[0]: DeviceConfig(decoder=r[1], kind=r[2], attributes=r[3] or {}) for r in rows}

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
        conn = self.connection()
        report = BatchReport()
        uplinks = _unique_uplinks(items)
        with conn.transaction():
            with conn.cursor() as cur:
                if uplinks:
                    self._upsert_devices(cur, uplinks)
                    new_keys = self._insert_uplinks(cur, uplinks)
                    for item in uplinks:
                        item.inserted = (item.uplink.device_id, item.uplink.received_at,
                                         item.uplink.dedup_key) in new_keys
                    report.inserted = sum(1 for i in uplinks if i.inserted)
                    report.readings = self._insert_readings(cur, [i for i in uplinks if i.inserted])
                report.duplicates = len([i for i in items if i.uplink]) - report.inserted
                letters = [
                    i.dead_letter for i in items
                    if i.dead_letter is not None and (i.uplink is None or i.inserted)
                ]
                self._insert_dead_letters(cur, letters)
                report.dead_letters = letters
        return report

    @staticmethod
    def _upsert_devices(cur: psycopg.Cursor, items: Sequence[Prepared]) -> None:
        latest: dict[str, tuple[Uplink, Decoding | None]] = {}
        for item in items:
            u = item.uplink
            seen = latest.get(u.device_id)
            if seen is None or u.received_at > seen[0].received_at:
                latest[u.device_id] = (u, item.decoding)
        # Sorted, so that two writers lock device rows in the same order and cannot deadlock.
        rows = [latest[k] for k in sorted(latest)]
        cur.execute(
            """
            INSERT INTO devices (device_id, dev_eui, application_id, network, brand_id, model_id,
                                 name, kind, last_seen)
            SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[],
                                 %s::text[], %s::text[], %s::text[], %s::timestamptz[])
            ON CONFLICT (device_id) DO UPDATE SET
                last_seen = GREATEST(devices.last_seen, EXCLUDED.last_seen),
                dev_eui = COALESCE(EXCLUDED.dev_eui, devices.dev_eui),
                application_id = COALESCE(EXCLUDED.application_id, devices.application_id),
                network = EXCLUDED.network,
                brand_id = COALESCE(EXCLUDED.brand_id, devices.brand_id),
                model_id = COALESCE(EXCLUDED.model_id, devices.model_id),
                name = COALESCE(devices.name, EXCLUDED.name),
                kind = COALESCE(devices.kind, EXCLUDED.kind)
            """,
            (
                [u.device_id for u, _ in rows],
                [u.dev_eui for u, _ in rows],
                [u.application_id for u, _ in rows],
                [u.network.value for u, _ in rows],
                [u.brand_id for u, _ in rows],
                [u.model_id for u, _ in rows],
                [u.device_name for u, _ in rows],
                [d.kind if d else None for _, d in rows],
                [u.received_at for u, _ in rows],
            ),
        )

    @staticmethod
    def _insert_uplinks(cur: psycopg.Cursor,
                        items: Sequence[Prepared]) -> set[tuple[str, datetime, str]]:
        ups = [i.uplink for i in items]
        cur.execute(
            """
            INSERT INTO raw_uplinks (received_at, device_id, dedup_key, network, source,
                application_id, dev_eui, dev_addr, session_key_id, f_port, f_cnt, frm_payload,
                decoded_payload, decoder, simulated, confirmed, correlation_id, gateway_count,
                rssi, snr, spreading_factor, bandwidth, frequency, airtime_s)
            SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::text[],
                %s::text[], %s::text[], %s::text[], %s::text[], %s::text[], %s::int[],
                %s::bigint[], %s::bytea[], %s::jsonb[], %s::text[], %s::bool[], %s::bool[],
                %s::text[], %s::smallint[], %s::real[], %s::real[], %s::smallint[], %s::int[],
                %s::bigint[], %s::real[])
            ON CONFLICT DO NOTHING
            RETURNING device_id, received_at, dedup_key
            """,
            (
                [u.received_at for u in ups],
                [u.device_id for u in ups],
                [u.dedup_key for u in ups],
                [u.network.value for u in ups],
                [u.source for u in ups],
                [u.application_id for u in ups],
                [u.dev_eui for u in ups],
                [u.dev_addr for u in ups],
                [u.session_key_id for u in ups],
                [u.f_port for u in ups],
                [u.f_cnt for u in ups],
                [u.payload for u in ups],
                [Jsonb(u.decoded_payload) if u.decoded_payload is not None else None
                 for u in ups],
                [i.decoding.decoder if i.decoding else None for i in items],
                [u.simulated for u in ups],
                [u.confirmed for u in ups],
                [u.correlation_id for u in ups],
                [min(u.radio.gateway_count, 32767) for u in ups],
                [u.radio.rssi for u in ups],
                [u.radio.snr for u in ups],
                [u.radio.spreading_factor for u in ups],
                [u.radio.bandwidth for u in ups],
                [u.radio.frequency for u in ups],
                [u.radio.airtime_s for u in ups],
            ),
        )
        return set(cur.fetchall())

    @staticmethod
    def _insert_readings(cur: psycopg.Cursor, items: Sequence[Prepared]) -> int:
        readings = [r for i in items if i.decoding for r in i.decoding.readings]
        if not readings:
            return 0
        cur.execute(
            """
            INSERT INTO readings (time, device_id, metric, value)
            SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::float8[])
            ON CONFLICT DO NOTHING
            """,
            ([r.time for r in readings], [r.device_id for r in readings],
             [r.metric for r in readings], [r.value for r in readings]),
        )
        newest: dict[tuple[str, str], tuple] = {}
        for r in readings:
            key = (r.device_id, r.metric)
            if key not in newest or r.time > newest[key][2]:
                newest[key] = (r.device_id, r.metric, r.time, r.value)
        rows = [newest[k] for k in sorted(newest)]
        # An older reading (late delivery, backfill) must not overwrite a newer one.
        cur.execute(
            """
            INSERT INTO latest_readings (device_id, metric, time, value)
            SELECT * FROM unnest(%s::text[], %s::text[], %s::timestamptz[], %s::float8[])
            ON CONFLICT (device_id, metric) DO UPDATE
                SET time = EXCLUDED.time, value = EXCLUDED.value
                WHERE latest_readings.time < EXCLUDED.time
            """,
            ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows],
             [r[3] for r in rows]),
        )
        return len(readings)

    @staticmethod
    def _insert_dead_letters(cur: psycopg.Cursor, letters: Sequence[DeadLetter]) -> None:
        if not letters:
            return
        for letter in letters:
            if not letter.id:
                letter.id = str(uuid.uuid4())
        cur.execute(
            """
            INSERT INTO ingest_errors (id, source, stage, reason, topic, device_id, raw,
                                       raw_size, truncated)
            SELECT * FROM unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[],
                                 %s::text[], %s::bytea[], %s::int[], %s::bool[])
            ON CONFLICT (id) DO NOTHING
            """,
            (
                [x.id for x in letters],
                [_text(x.source) for x in letters],
                [x.stage for x in letters],
                [_text(x.reason) for x in letters],
                [_text(x.topic) if x.topic else None for x in letters],
                [_text(x.device_id) if x.device_id else None for x in letters],
                [x.raw for x in letters],
                [max(x.raw_size, len(x.raw)) for x in letters],
                [x.truncated for x in letters],
            ),
        )


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
