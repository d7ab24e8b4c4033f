"""Nothing lost on shutdown (issue 15): what a stop while the database is away leaves unwritten
is spooled to disk and written at the next start, once."""
from __future__ import annotations

import base64
import json
import os
import re
import signal

import psycopg
import pytest
from decoders.decentlab_dl_mbx import frame as dl_mbx
from helpers import (Publisher, TcpProxy, count, make_settings, proxied_conninfo,
                     running_service, upstream_of, wait_until)
from test_chaos import ServiceProcess

from app.pipeline import Message
from app.service import Service
from app.spool import PENDING
from simulator.tts import VirtualDevice, encode


def spooled(directory) -> list[dict]:
    lines = []
    for path in sorted(directory.glob("*.jsonl")):
        lines += [json.loads(line) for line in path.read_bytes().splitlines()]
    return lines


def received(url: str) -> float:
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r'^bauhof_uplinks_received_total\{source="tts-mqtt"\} (\S+)$', text, re.M)
    return float(match[1]) if match else 0.0


@pytest.mark.slow
def test_sigterm_while_the_database_is_down_loses_nothing(db, mqtt_broker, app_id, tmp_path,
                                                          restart_postgres):
    """The issue's kill test: database down, 1,000 uplinks received, SIGTERM, database up,
    restart: 1,000 stored, none twice. QoS 0, as TTS sends: no broker delivers them again."""
    devices = [VirtualDevice(f"bin-{n:03d}", f"70B3D57ED00002{n:02X}", app_id,
                             brand_id="decentlab", model_id="dl-mbx") for n in range(20)]
    spool = tmp_path / "spool"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env.update({"BAUHOF_DATABASE_URL": db, "BAUHOF_MQTT_HOST": mqtt_broker[0],
                "BAUHOF_MQTT_PORT": str(mqtt_broker[1]),
                "BAUHOF_MQTT_TOPICS": f"v3/{app_id}@ttn/devices/+/up",
                "BAUHOF_HTTP_PORT": "0", "BAUHOF_SPOOL_DIR": str(spool),
                "BAUHOF_DATA_DIR": str(tmp_path / "data"), "BAUHOF_PLAN_AT": "",
                "BAUHOF_ALERT_INTERVAL_S": "0", "BAUHOF_LOG_LEVEL": "INFO"})
    service = ServiceProcess(env)
    database_up = True
    try:
        service.start()
        url = next(re.search(r"(http://\S+)/docs", line)[1] for line in service.log
                   if "is running" in line)
        restart_postgres.stop()
        database_up = False
        with Publisher(mqtt_broker) as pub:
            for round_ in range(50):
                for device in devices:
                    pub.publish(device.topic, encode(device.uplink(dl_mbx(300 + round_, 3.0))))
        wait_until(lambda: received(url) == 1000, timeout=30, what="1,000 uplinks received")
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(30) == 0
        assert len(spooled(spool)) == 1000
        assert any("spooled 1000 unwritten messages" in line for line in service.log)

        restart_postgres.start()
        database_up = True
        service.log.clear()
        service.start()
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 1000, timeout=60,
                   what="the spooled uplinks to be written")
        wait_until(lambda: not list(spool.glob("*.jsonl")), timeout=10,
                   what="the replayed spool to be deleted")
    finally:
        if not database_up:
            restart_postgres.start()
        service.stop()
    assert count(db, "SELECT count(DISTINCT (device_id, received_at, dedup_key))"
                     " FROM raw_uplinks") == 1000
    assert count(db, "SELECT count(*) FROM readings WHERE metric = 'distance_m'") == 1000
    assert count(db, "SELECT count(*) FROM ingest_errors") == 0
    # A later start finds nothing to replay.
    service.log.clear()
    service.start()
    service.stop()
    assert not any("replaying" in line for line in service.log)
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 1000


def spool_file(directory, docs: list[bytes], torn: bool = False):
    directory.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"source": "tts-webhook", "topic": None, "event": None,
                         "raw": base64.b64encode(doc).decode()}).encode() for doc in docs]
    text = b"\n".join(lines) + b"\n"
    if torn:
        text += lines[0][:25]  # a write cut short by a crash
    (directory / PENDING).write_bytes(text)


def uplinks(app_id: str, n: int) -> list[bytes]:
    device = VirtualDevice("bin-001", "70B3D57ED0000301", app_id, brand_id="decentlab",
                           model_id="dl-mbx")
    return [encode(device.uplink(dl_mbx(400 + i, 3.0))) for i in range(n)]


def test_a_spool_is_replayed_at_start_and_a_torn_last_line_skipped(db, app_id, tmp_path,
                                                                   caplog):
    spool = tmp_path / "spool"
    docs = uplinks(app_id, 3)
    spool_file(spool, docs + docs[:1], torn=True)  # and one twice: stored once
    with running_service(db, spool_dir=spool) as (service, client):
        assert service.spool.wait(30)
        wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 3)
    assert not list(spool.iterdir())
    assert count(db, "SELECT count(*) FROM ingest_errors") == 0
    assert any("line 5 unreadable" in r.getMessage() for r in caplog.records)


def test_a_stop_during_the_replay_spools_the_rest_again(db, app_id, tmp_path):
    """Stopped while its replay waits for the database: the messages go back into the spool,
    none lost, and the next start writes each once."""
    spool = tmp_path / "spool"
    docs = uplinks(app_id, 40)
    spool_file(spool, docs)
    proxy = TcpProxy(upstream_of(db))
    try:
        with psycopg.connect(db) as holder:
            # The replay's first batch waits for this lock, so that nothing of it can be
            # committed before the database goes away.
            holder.execute("LOCK TABLE raw_uplinks IN EXCLUSIVE MODE")
            first = Service(make_settings(spool_dir=spool), proxied_conninfo(db, proxy))
            first.start()
            wait_until(lambda: first.pipeline.pending() == 0, what="the replay taken")
            proxy.cut()
            first.stop()
        again = spooled(spool)
        assert sorted(base64.b64decode(r["raw"]) for r in again) == sorted(docs)
        assert [p.name for p in spool.iterdir()] == [PENDING]
        proxy.restore()
        with running_service(db, spool_dir=spool) as (service, client):
            assert service.spool.wait(30)
    finally:
        proxy.close()
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 40
    assert not list(spool.iterdir())


def test_an_unwritable_spool_is_said_and_the_stop_goes_on(db, app_id, tmp_path, caplog):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")
    proxy = TcpProxy(upstream_of(db))
    try:
        service = Service(make_settings(spool_dir=blocked), proxied_conninfo(db, proxy))
        service.start()
        proxy.cut()
        for doc in uplinks(app_id, 2):
            assert service.pipeline.submit(Message(raw=doc, source="tts-webhook"))
        service.stop()
    finally:
        proxy.close()
    said = [r.getMessage() for r in caplog.records if "nor spooled" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("2 messages")


def test_the_spool_lives_in_the_data_directory_unless_told_otherwise(tmp_path):
    from app.config import Settings

    assert Settings(data_dir=tmp_path).spool_path == tmp_path / "spool"
    assert Settings(data_dir=tmp_path, spool_dir=tmp_path / "s").spool_path == tmp_path / "s"
