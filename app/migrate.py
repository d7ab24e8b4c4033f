"""Apply ``migrations/NNN_name.sql`` in order, each once, recorded in ``schema_migrations``.

Safe to run twice and from two processes at once (an advisory lock serialises them). A
migration that was changed after it was applied is refused: the database would not match the
files any more; except the amendments listed in ``AMENDED``. What the server says while a
migration runs (NOTICE, WARNING) is logged.
"""
from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

log = logging.getLogger(__name__)

_LOCK_KEY = 0x6261_7568  # "bauh"
_NAME = re.compile(r"^(\d{3})_([a-z0-9_]+)\.sql$")

# Migrations changed in place after release: version -> the checksums of the texts they
# replace. An amendment may only make a migration run where its earlier text failed; where that
# text ran it must have built the same schema, so a database that applied it is up to date and
# only the recorded checksum moves on.
AMENDED: dict[int, frozenset[str]] = {
    # 002 degrades under TimescaleDB's Apache licence instead of failing (issue 14).
    2: frozenset({"748abbb4962da7c3526aee64e4ba5b4e1a15b44abf47e103eabd08235e9625d2"}),
}


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(RuntimeError):
    pass


def available() -> list[Migration]:
    found = []
    for entry in resources.files("migrations").iterdir():
        match = _NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number: {versions}")
    return found


def migrate(conninfo: str) -> list[Migration]:
    """Apply what is missing; return the migrations applied now."""
    applied_now = []
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = dict(conn.execute("SELECT version, checksum FROM schema_migrations").fetchall())
            conn.add_notice_handler(_log_notice)
            for migration in available():
                if migration.version in done:
                    recorded = done[migration.version]
                    if recorded in AMENDED.get(migration.version, ()):
                        log.info("migration %03d_%s was amended; the database is up to date,"
                                 " recording the new checksum", migration.version, migration.name)
                        conn.execute("UPDATE schema_migrations SET checksum = %s"
                                     " WHERE version = %s",
                                     (migration.checksum, migration.version))
                    elif recorded != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.version:03d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                log.info("applying migration %03d_%s", migration.version, migration.name)
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum)"
                        " VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration)
            _check_timescaledb_version(conn)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


def _check_timescaledb_version(conn: psycopg.Connection) -> None:
    """A newer TimescaleDB image or package leaves the database on the old extension version
    until someone updates it; say how, as updating is the operator's step (it must be the first
    statement of a new session, which a migration cannot be)."""
    row = conn.execute(
        "SELECT e.extversion, a.default_version FROM pg_extension e"
        " JOIN pg_available_extensions a ON a.name = e.extname"
        " WHERE e.extname = 'timescaledb'").fetchone()
    if row is not None and row[0] != row[1]:
        log.warning("this database has TimescaleDB %s, the server offers %s: update it with "
                    "`psql -X -c 'ALTER EXTENSION timescaledb UPDATE'` as the first command of "
                    "a new session (docs/architecture.md, Storage)", row[0], row[1])


def _log_notice(diag: psycopg.errors.Diagnostic) -> None:
    # A WARNING from a migration is meant for the operator: TimescaleDB without its features.
    level = logging.WARNING if diag.severity_nonlocalized == "WARNING" else logging.INFO
    log.log(level, "database: %s", diag.message_primary)
