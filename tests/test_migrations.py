"""Migrations: applied in order, recorded, safe to run twice, and guarded against edits."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from app import migrate as migrations
from app.migrate import Migration, MigrationError, migrate


def test_migrate_twice(fresh_database):
    first = migrate(fresh_database)
    assert [m.version for m in first] == [m.version for m in migrations.available()]
    assert migrate(fresh_database) == []
    with psycopg.connect(fresh_database) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        recorded = conn.execute("SELECT count(*) FROM schema_migrations").fetchone()[0]
    assert {"devices", "raw_uplinks", "readings", "latest_readings", "ingest_errors",
            "schema_migrations"} <= tables
    assert recorded == len(first)


def test_hourly_series_relation_works_on_plain_postgresql(fresh_database):
    migrate(fresh_database)
    t0 = datetime(2025, 6, 3, 5, 10, tzinfo=timezone.utc)
    with psycopg.connect(fresh_database) as conn:
        conn.execute(
            "INSERT INTO readings VALUES (%s, 'bin-1', 'fill_level_pct', 10),"
            " (%s, 'bin-1', 'fill_level_pct', 30), (%s, 'bin-1', 'fill_level_pct', 50)",
            (t0, t0.replace(minute=40), t0.replace(hour=6)))
        rows = conn.execute("SELECT bucket, avg, min, max, last, n FROM readings_hourly"
                            " ORDER BY bucket").fetchall()
    assert rows == [(t0.replace(minute=0), 20.0, 10.0, 30.0, 30.0, 2),
                    (t0.replace(hour=6, minute=0), 50.0, 50.0, 50.0, 50.0, 1)]


def test_changed_migration_is_refused(fresh_database, monkeypatch):
    migrate(fresh_database)
    original = migrations.available()
    edited = [Migration(m.version, m.name, m.sql + "\n-- edited") if m.version == 1 else m
              for m in original]
    monkeypatch.setattr(migrations, "available", lambda: edited)
    with pytest.raises(MigrationError, match="001_core was changed after it was applied"):
        migrate(fresh_database)


def test_an_amended_migration_is_accepted_where_its_earlier_text_ran(fresh_database,
                                                                      monkeypatch):
    migrate(fresh_database)
    original = migrations.available()
    [earlier] = [m for m in original if m.version == 2]
    amended = [Migration(m.version, m.name, m.sql + "\n-- amended") if m.version == 2 else m
               for m in original]
    monkeypatch.setattr(migrations, "available", lambda: amended)
    with pytest.raises(MigrationError, match="002_timescale was changed"):
        migrate(fresh_database)
    monkeypatch.setitem(migrations.AMENDED, 2, frozenset({earlier.checksum}))
    assert migrate(fresh_database) == []
    with psycopg.connect(fresh_database) as conn:
        recorded = conn.execute("SELECT checksum FROM schema_migrations WHERE version = 2")
        assert recorded.fetchone()[0] == amended[1].checksum != earlier.checksum
    assert migrate(fresh_database) == []


def test_bauhof_migrate_twice_builds_the_time_series_this_database_can_hold(
        fresh_database, timescaledb):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env["BAUHOF_DATABASE_URL"] = fresh_database
    command = [sys.executable, "-m", "app.cli", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "applied 001_core" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0 and second.stdout.strip() == "database is up to date"

    with psycopg.connect(fresh_database) as conn:
        has_extension = conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension"
                                     " WHERE extname = 'timescaledb')").fetchone()[0]
        assert has_extension == timescaledb
        if not timescaledb:
            # Plain tables and a view with the aggregate's columns.
            kinds = dict(conn.execute("SELECT relname, relkind::text FROM pg_class WHERE relname"
                                      " IN ('raw_uplinks', 'readings', 'readings_hourly')"))
            assert kinds == {"raw_uplinks": "r", "readings": "r", "readings_hourly": "v"}
            return

        hypertables = dict(conn.execute(
            "SELECT hypertable_name, compression_enabled FROM timescaledb_information.hypertables"
            " WHERE hypertable_schema = 'public'"))
        assert hypertables == {"raw_uplinks": True, "readings": True}
        intervals = dict(conn.execute(
            "SELECT hypertable_name, time_interval FROM timescaledb_information.dimensions"
            " WHERE hypertable_schema = 'public'"))
        assert intervals == {"raw_uplinks": timedelta(days=1), "readings": timedelta(days=1)}
        # (Without the ids, which only number the hypertables.)
        policies = {(r[0], r[1]): {k: v for k, v in r[2].items() if not k.endswith("_id")}
                    for r in conn.execute(
            "SELECT proc_name, hypertable_name, config FROM timescaledb_information.jobs"
            " WHERE proc_name LIKE 'policy_%' AND hypertable_name IS NOT NULL")}
        # One device's metric over a time range, as /series asks (migration 007).
        [index] = conn.execute("SELECT indexdef FROM pg_indexes"
                               " WHERE indexname = 'readings_hourly_device_metric_bucket_idx'"
                               ).fetchone()
        assert index.endswith(
            "(device_id, metric, bucket DESC) INCLUDE (avg, min, max, last, n)"), index
        # Real time: hours the policy has not materialised yet come from the readings.
        assert conn.execute("SELECT materialized_only FROM"
                            " timescaledb_information.continuous_aggregates"
                            " WHERE view_name = 'readings_hourly'").fetchone() == (False,)
        assert policies == {
            ("policy_compression", "raw_uplinks"): {"compress_after": "7 days"},
            ("policy_compression", "readings"): {"compress_after": "7 days"},
            ("policy_retention", "raw_uplinks"): {"drop_after": "180 days"},
            ("policy_retention", "readings"): {"drop_after": "730 days"},
            ("policy_refresh_continuous_aggregate", "readings_hourly"): {
                "start_offset": "3 days", "end_offset": "01:00:00"},
        }
