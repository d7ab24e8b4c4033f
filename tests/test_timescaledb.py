"""What TimescaleDB adds, and what plain PostgreSQL does instead (issue 14).

The suite runs on whichever server ``BAUHOF_TEST_DATABASE_URL`` names; CI runs every storage
test on both (``.ci/run``). Tests here assert what is right for the database they run on; those
of what only TimescaleDB has (compression, the continuous aggregate's materialised hours) skip
on plain PostgreSQL, saying so. The Apache-licence test starts a TimescaleDB server of its own.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
from fixtures_data import DATA
from helpers import SECRET, running_service, wait_until

from simulator.engine import Simulation
from simulator.scenario import expand, load
from simulator.sinks import MemorySink
from simulator.storage import StorageServer, UplinkArchive

UTC = timezone.utc
HOOK = {"X-Webhook-Secret": SECRET, "Content-Type": "application/json"}
KEY = "NNSXS.TESTKEY.0123456789"
PG15_BIN = Path("/usr/lib/postgresql/15/bin")


def needs_timescaledb(timescaledb: bool) -> None:
    if not timescaledb:
        pytest.skip("TimescaleDB only: run with BAUHOF_TEST_DATABASE_URL on a TimescaleDB server "
                    "(as root: ../shared/timescaledb/install.sh, then port 5433); CI does")


def midnight(days_ago: int) -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days_ago)


def simulated(app_id: str, start: datetime, hours: float, devices: int = 4
              ) -> tuple[UplinkArchive, list]:
    """What TTS would have sent (and kept in its Storage Integration) for a few bins."""
    scenario = load().model_copy(update={"application_id": app_id})
    specs = [s for s in expand(scenario) if s.kind == "bin"][:devices]
    archive, memory = UplinkArchive(), MemorySink()
    Simulation(scenario, seed=14, start=start, duration=timedelta(hours=hours), devices=specs,
               archive=archive).run([memory])
    uplinks = [d for d in memory.deliveries if d.topic.endswith("/up")]
    assert uplinks, "the simulation sent nothing"
    return archive, uplinks


def post_all(client, deliveries) -> None:
    for d in deliveries:
        answer = client.post("/api/v1/webhooks/tts", content=d.body, headers=HOOK)
        assert answer.status_code == 200 and answer.json()["result"] == "stored", answer.text


def run_jobs(conn: psycopg.Connection, proc_name: str) -> int:
    """Run TimescaleDB's policy jobs of one kind now, as its scheduler would."""
    jobs = [r[0] for r in conn.execute("SELECT job_id FROM timescaledb_information.jobs"
                                       " WHERE proc_name = %s", (proc_name,))]
    for job in jobs:
        conn.execute("CALL run_job(%s)", (job,))
    return len(jobs)


def chunks(conn: psycopg.Connection, table: str) -> list[tuple[datetime, datetime, bool]]:
    return conn.execute("SELECT range_start, range_end, is_compressed"
                        " FROM timescaledb_information.chunks WHERE hypertable_name = %s"
                        " ORDER BY range_start", (table,)).fetchall()


def materialised(conn: psycopg.Connection, device_id: str, since: datetime,
                 until: datetime) -> dict[datetime, int]:
    """The hours of readings_hourly's own table: what a refresh wrote, not real-time rows."""
    schema, table = conn.execute(
        "SELECT materialization_hypertable_schema, materialization_hypertable_name"
        " FROM timescaledb_information.continuous_aggregates"
        " WHERE view_name = 'readings_hourly'").fetchone()
    # The materialised table keeps the view's column names.
    return dict(conn.execute(
        f'SELECT bucket, sum(n)::int FROM "{schema}"."{table}" WHERE device_id = %s'
        " AND bucket >= %s AND bucket < %s GROUP BY bucket", (device_id, since, until)).fetchall())


def count(db: str, sql: str) -> int:
    with psycopg.connect(db) as conn:
        return conn.execute(sql).fetchone()[0]


def hourly_counts(client, device_id: str, since: datetime, until: datetime) -> tuple[str, dict]:
    answer = client.get(f"/api/v1/devices/{device_id}/series",
                        params={"bucket": "1h", "metric": "battery_v",
                                "since": since.isoformat(), "until": until.isoformat()})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    [series] = body["series"]
    return body["source"], {p["time"]: p["n"] for p in series["points"]}


def test_old_chunks_are_compressed_and_still_answered(db, timescaledb, app_id):
    """Readings two weeks old and of today; the compression policy compresses the old days'
    chunks, and every answer of the API is the same afterwards."""
    needs_timescaledb(timescaledb)
    _, old = simulated(app_id, midnight(14), 36)
    _, new = simulated(app_id, datetime.now(UTC) - timedelta(hours=3), 2.5)
    device = old[0].device_id
    since, until = midnight(14), midnight(12)
    queries = [f"/api/v1/devices/{device}/series?bucket=1h&since={since:%Y-%m-%dT%H:%M:%SZ}"
               f"&until={until:%Y-%m-%dT%H:%M:%SZ}",
               f"/api/v1/devices/{device}/series?bucket=15m&since={since:%Y-%m-%dT%H:%M:%SZ}"
               f"&until={until:%Y-%m-%dT%H:%M:%SZ}",
               f"/api/v1/devices/{device}/readings?since={since:%Y-%m-%dT%H:%M:%SZ}"
               f"&until={until:%Y-%m-%dT%H:%M:%SZ}&limit=1000",
               "/api/v1/latest", f"/api/v1/devices/{device}/latest",
               f"/api/v1/devices/{device}/readings.csv"
               f"?since={since:%Y-%m-%dT%H:%M:%SZ}&until={until:%Y-%m-%dT%H:%M:%SZ}"]
    with running_service(db) as (service, client):
        post_all(client, old + new)
        before = [client.get(q) for q in queries]
        assert all(a.status_code == 200 for a in before), [a.text for a in before]
        with psycopg.connect(db, autocommit=True) as conn:
            # The scheduler would do both: compress what is older than 7 days, refresh the
            # aggregate's last 3 days.
            assert run_jobs(conn, "policy_compression") == 2
            assert run_jobs(conn, "policy_refresh_continuous_aggregate") == 1
            horizon = datetime.now(UTC) - timedelta(days=7)
            for table in ("readings", "raw_uplinks"):
                listed = chunks(conn, table)
                assert [c[2] for c in listed if c[1] <= horizon] == [True, True], table
                # today's chunk, and yesterday's when the test runs just after midnight
                recent = [c[2] for c in listed if c[0] >= horizon]
                assert recent and not any(recent), table
        after = [client.get(q) for q in queries]
    for query, a, b in zip(queries, before, after):
        assert b.status_code == 200 and b.content == a.content, query
    assert before[0].json()["source"] == "readings_hourly"
    assert len(before[0].json()["series"][0]["points"]) >= 30


def test_backfill_into_a_compressed_chunk_stores_once_and_is_aggregated(db, timescaledb,
                                                                         app_id):
    """Ten days ago the webhook delivered the morning; TTS stored the whole day. The chunk is
    compressed and the aggregate materialised when the backfill brings the rest of the day."""
    needs_timescaledb(timescaledb)
    day = midnight(10)
    archive, uplinks = simulated(app_id, day + timedelta(hours=1), 19)
    noon = day + timedelta(hours=12)
    morning = [d for d in uplinks if datetime.fromisoformat(d.doc["received_at"]) < noon]
    assert 0 < len(morning) < len(uplinks) == len(archive)
    device = uplinks[0].device_id
    with running_service(db) as (service, client):
        post_all(client, morning)
        with psycopg.connect(db, autocommit=True) as conn:
            run_jobs(conn, "policy_compression")
            run_jobs(conn, "policy_refresh_continuous_aggregate")
            assert [c[2] for c in chunks(conn, "readings") if c[0] == day] == [True]
            # The morning was refreshed as it was written: the policy's 3 days are far away.
            morning_hours = materialised(conn, device, day, day + timedelta(days=1))
        assert morning_hours and max(morning_hours) < noon
        source, counts = hourly_counts(client, device, day, day + timedelta(days=1))
        assert source == "readings_hourly" and len(counts) == len(morning_hours)

    settings = {"backfill_url": None, "backfill_api_keys": {app_id: KEY}, "backfill_page": 50,
                "backfill_interval_s": 0, "backfill_max_age_h": 24 * 11}
    with StorageServer(archive, {KEY: app_id}) as storage, \
            running_service(db, **{**settings, "backfill_url": storage.url}) as (service, client):
        wait_until(lambda: count(db, "SELECT count(*) FROM backfill_runs") == 1, timeout=60,
                   what="a completed backfill run")
        with psycopg.connect(db) as conn:
            stored, distinct = conn.execute(
                "SELECT count(*), count(DISTINCT (device_id, received_at, dedup_key))"
                " FROM raw_uplinks").fetchone()
            assert stored == distinct == len(archive)
            hours = materialised(conn, device, day, day + timedelta(days=1))
            raw_hours = dict(conn.execute(
                "SELECT date_trunc('hour', time), count(*)::int FROM readings"
                " WHERE device_id = %s AND metric = 'battery_v' GROUP BY 1", (device,)))
            newest = conn.execute("SELECT max(received_at) FROM raw_uplinks"
                                  " WHERE device_id = %s", (device,)).fetchone()[0]
        # The afternoon is materialised too, hour by hour as in the readings.
        assert max(hours) > noon
        source, counts = hourly_counts(client, device, day, day + timedelta(days=1))
        assert source == "readings_hourly"
        assert counts == {t.strftime("%Y-%m-%dT%H:%M:%SZ"): n for t, n in raw_hours.items()}
        latest = {r["metric"]: r["time"]
                  for r in client.get(f"/api/v1/devices/{device}/latest").json()}
        assert datetime.fromisoformat(latest["battery_v"].replace("Z", "+00:00")) == newest



# --- TimescaleDB under its Apache licence ---------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def apache_timescaledb() -> Iterator[str]:
    """A PostgreSQL 15 server of its own with TimescaleDB loaded under ``timescaledb.license =
    'apache'``, as some distributions ship it: a setting of the server, not of a database."""
    pkglib = Path("/usr/lib/postgresql/15/lib")
    if not (PG15_BIN / "initdb").exists() or not (pkglib / "timescaledb.so").exists():
        pytest.skip("needs PostgreSQL 15 with TimescaleDB installed (as root: "
                    "../shared/timescaledb/install.sh); CI has it")
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root without a postgres user to run initdb as")
        as_user = ["runuser", "-u", "postgres", "--"]
    top = Path(tempfile.mkdtemp(prefix="bauhof-apache-"))
    if as_user:
        shutil.chown(top, "postgres")
    data, port = top / "data", _free_port()
    try:
        subprocess.run([*as_user, str(PG15_BIN / "initdb"), "-D", str(data), "-A", "trust",
                        "-U", "root"], check=True, capture_output=True, timeout=120)
        options = (f"-p {port} -k {top} -c listen_addresses=127.0.0.1"
                   " -c shared_preload_libraries=timescaledb -c timescaledb.license=apache"
                   " -c timescaledb.telemetry_level=off")
        subprocess.run([*as_user, str(PG15_BIN / "pg_ctl"), "-D", str(data), "-o", options,
                        "-l", str(top / "log"), "-w", "start"], check=True, capture_output=True,
                       timeout=120)
        try:
            yield f"postgresql://root@127.0.0.1:{port}/postgres"
        finally:
            subprocess.run([*as_user, str(PG15_BIN / "pg_ctl"), "-D", str(data), "-m",
                            "immediate", "stop"], capture_output=True, timeout=60)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_apache_licence_gets_hypertables_a_view_and_a_warning(apache_timescaledb, caplog):
    from app.migrate import migrate

    with caplog.at_level("INFO", logger="app.migrate"):
        migrate(apache_timescaledb)
    assert migrate(apache_timescaledb) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "Apache licence only" in warnings[0], caplog.text
    with psycopg.connect(apache_timescaledb) as conn:
        assert conn.execute("SHOW timescaledb.license").fetchone()[0] == "apache"
        hypertables = dict(conn.execute(
            "SELECT hypertable_name, compression_enabled"
            " FROM timescaledb_information.hypertables"))
        assert hypertables == {"raw_uplinks": False, "readings": False}
        assert conn.execute("SELECT relkind::text FROM pg_class"
                            " WHERE relname = 'readings_hourly'").fetchone()[0] == "v"
        assert conn.execute("SELECT count(*) FROM timescaledb_information.jobs"
                            " WHERE hypertable_name IS NOT NULL").fetchone()[0] == 0

    # The service runs on it: stores an uplink and answers a series from the readings.
    decoded = (DATA / "examples" / "tts_uplink_decoded.json").read_bytes()
    with running_service(apache_timescaledb) as (service, client):
        assert client.post("/api/v1/webhooks/tts", content=decoded,
                           headers=HOOK).json()["result"] == "stored"
        device = client.get("/api/v1/devices").json()[0]["device_id"]
        answer = client.get(f"/api/v1/devices/{device}/series",
                            params={"bucket": "1h", "since": "2025-06-03T00:00:00Z",
                                    "until": "2025-06-04T00:00:00Z"})
        assert answer.status_code == 200 and answer.json()["source"] == "readings"
        [point] = answer.json()["series"][0]["points"]
        assert point["time"] == "2025-06-03T05:00:00Z" and point["n"] == 1
