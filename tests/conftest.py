"""Fixtures: a real PostgreSQL and a real MQTT broker, never a production one.

``BAUHOF_TEST_DATABASE_URL`` (a server where we may create databases) and
``BAUHOF_TEST_MQTT_HOST``/``_PORT`` name the servers to use; if they are set but unreachable the
run stops at once. Without them the embedded servers are started, as a newcomer's machine has
neither. Production variables (``BAUHOF_DATABASE_URL`` ...) are removed before any test runs, so
no test can reach a production system by accident.
"""
from __future__ import annotations

import os
import shutil
import socket
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).parent))

TEST_DB = os.environ.get("BAUHOF_TEST_DATABASE_URL")
TEST_MQTT_HOST = os.environ.get("BAUHOF_TEST_MQTT_HOST")
TEST_MQTT_PORT = int(os.environ.get("BAUHOF_TEST_MQTT_PORT", "1883"))

for _name in list(os.environ):
    if _name.startswith("BAUHOF_") and not _name.startswith("BAUHOF_TEST_"):
        del os.environ[_name]

TABLES = ("devices", "raw_uplinks", "readings", "latest_readings", "ingest_errors",
          "backfill_runs", "intake_outages", "intake_heartbeat", "route_plans", "route_stops",
          "alerts", "alert_notifications")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test that reaches the database as ``storage``: CI runs those a second time on
    TimescaleDB (``-m storage``), and the pure ones only once."""
    for item in items:
        if "pg_admin" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.storage)


def _with_dbname(conninfo: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


def embedded_data_dir() -> Path:
    # Not pytest's tmp_path: that is private to root (0700), and as root the embedded server
    # runs as another user that must reach its directory.
    return Path(tempfile.mkdtemp(prefix="bauhof-test-"))


@pytest.fixture(scope="session")
def pg_admin() -> Iterator[str]:
    """Connection string of a server on which the tests may create databases."""
    if TEST_DB:
        try:
            psycopg.connect(TEST_DB, connect_timeout=5).close()
        except psycopg.OperationalError as err:
            pytest.exit(f"BAUHOF_TEST_DATABASE_URL is set but unreachable: {err}", returncode=3)
        yield TEST_DB
        return
    from app.embedded.postgres import EmbeddedPostgres

    data_dir = embedded_data_dir()
    try:
        with EmbeddedPostgres(data_dir) as pg:
            _EMBEDDED.append(pg)
            yield pg.conninfo
    finally:
        _EMBEDDED.clear()
        shutil.rmtree(data_dir, ignore_errors=True)


_EMBEDDED: list = []


class PostgresControl:
    """Stops and starts the test PostgreSQL server for real; calling it restarts it."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def __call__(self) -> None:
        self._control("restart")

    def stop(self) -> None:
        self._control("stop")

    def start(self) -> None:
        self._control("start")

    def _control(self, action: str) -> None:
        import subprocess

        if _EMBEDDED:
            if action in ("stop", "restart"):
                _EMBEDDED[0].stop()
            if action in ("start", "restart"):
                _EMBEDDED[0].start()
            return
        for command in (["pg_ctlcluster", "--skip-systemctl-redirect",
                         *_cluster_of(self.conninfo), action],
                        ["service", "postgresql", action]):
            try:
                if subprocess.run(command, capture_output=True, timeout=60).returncode == 0:
                    return
            except FileNotFoundError:
                continue
        pytest.fail(f"could not {action} PostgreSQL (pg_ctlcluster/service not available)")


@pytest.fixture
def restart_postgres(pg_admin: str) -> PostgresControl:
    """The test PostgreSQL server, to restart (chaos test) or stop and start (spool test)."""
    return PostgresControl(pg_admin)


def _cluster_of(conninfo: str) -> list[str]:
    """Debian's name (version, cluster) of the local cluster listening on the URL's port: the
    TimescaleDB pass runs on a second cluster, which is the one to restart."""
    import subprocess

    port = psycopg.conninfo.conninfo_to_dict(conninfo).get("port") or "5432"
    try:
        listing = subprocess.run(["pg_lsclusters", "-h"], capture_output=True, text=True,
                                 timeout=30).stdout
    except FileNotFoundError:
        return ["15", "main"]
    for line in listing.splitlines():
        version, name, cluster_port, *_ = line.split()
        if cluster_port == str(port):
            return [version, name]
    return ["15", "main"]


@pytest.fixture(scope="session")
def database(pg_admin: str) -> Iterator[str]:
    """A fresh database for this test session, migrated; dropped afterwards."""
    from app.migrate import migrate

    name = f"bauhof_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = _with_dbname(pg_admin, name)
    migrate(url)
    yield url
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def fresh_database(pg_admin: str) -> Iterator[str]:
    """An empty, unmigrated database for one test."""
    name = f"bauhof_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    yield _with_dbname(pg_admin, name)
    with psycopg.connect(pg_admin, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def db(database: str, timescaledb: bool) -> str:
    """The session database, emptied for this test."""
    with psycopg.connect(database, autocommit=True) as conn:
        conn.execute(f"TRUNCATE {', '.join(TABLES)}")
        if timescaledb:
            # The aggregate keeps its materialised hours when its readings are truncated;
            # a refresh over everything empties it. (Its watermark stays where earlier tests
            # moved it: readings written below it appear in the aggregate once refreshed, as
            # the writer does, app/aggregates.py.)
            conn.execute("CALL refresh_continuous_aggregate('readings_hourly', NULL, NULL)")
    return database


@pytest.fixture(scope="session")
def mqtt_broker() -> Iterator[tuple[str, int]]:
    if TEST_MQTT_HOST:
        try:
            socket.create_connection((TEST_MQTT_HOST, TEST_MQTT_PORT), timeout=5).close()
        except OSError as err:
            pytest.exit(f"BAUHOF_TEST_MQTT_HOST is set but {TEST_MQTT_HOST}:{TEST_MQTT_PORT} is "
                        f"unreachable: {err}", returncode=3)
        yield TEST_MQTT_HOST, TEST_MQTT_PORT
        return
    from app.embedded.broker import EmbeddedBroker

    with EmbeddedBroker() as broker:
        yield broker.host, broker.port


@pytest.fixture
def app_id() -> str:
    """A TTS application id of this test alone, so that tests never see each other's traffic."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="session")
def timescaledb(database: str) -> bool:
    """Whether the tests run on TimescaleDB: hypertables and the continuous aggregate, where
    plain PostgreSQL has tables and a view."""
    with psycopg.connect(database) as conn:
        return bool(conn.execute("SELECT EXISTS (SELECT 1 FROM pg_extension"
                                 " WHERE extname = 'timescaledb')").fetchone()[0])
