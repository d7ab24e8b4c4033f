"""Migrations: applied in order, recorded, safe to run twice, and guarded against edits."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timezone

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


def test_bauhof_migrate_command_twice(fresh_database):
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env["BAUHOF_DATABASE_URL"] = fresh_database
    command = [sys.executable, "-m", "app.cli", "migrate"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert first.returncode == 0, first.stderr
    assert "applied 001_core" in first.stdout
    second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert second.returncode == 0 and second.stdout.strip() == "database is up to date"
