"""Ingest throughput and latency: TTS uplinks through a real broker into the database.

    python benchmarks/ingest.py                      # embedded PostgreSQL and broker
    python benchmarks/ingest.py --database-url postgresql://root@127.0.0.1/test \
        --mqtt-host 127.0.0.1 --rate 3000 --count 60000

A separate publisher process sends DL-MBX uplinks in TTS v3 JSON (QoS 0, as TTS does) at a
fixed rate (``--rate 0``: as fast as it can); each carries its publish time as ``received_at``.
The service runs in this process with its real pipeline and writer; latency is measured from
publish to the commit of the batch that held the uplink. The broker may drop messages for a
subscriber that falls behind (Mosquitto's per-client queue), so the table keeps apart what the
broker never delivered and what we lost after receiving it.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.config import Settings  # noqa: E402
from app.metrics import Metrics  # noqa: E402
from app.migrate import migrate  # noqa: E402
from app.pipeline import Pipeline  # noqa: E402
from app.sources.mqtt import MqttSource  # noqa: E402
from app.store import Store  # noqa: E402


class TimedStore(Store):
    """Records, for every newly stored uplink, the time from its publish to our commit."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo)
        self.latencies: list[float] = []
        self.first_commit: float | None = None
        self.last_commit: float | None = None

    def write(self, items):
        report = super().write(items)
        now = time.time()
        self.first_commit = self.first_commit or now
        self.last_commit = now
        self.latencies.extend(now - i.uplink.received_at.timestamp()
                              for i in items if i.uplink is not None and i.inserted)
        return report


def publisher(host: str, port: int, app_id: str, count: int, rate: float, devices: int,
              ready: mp.Event, go: mp.Event, result: mp.Queue) -> None:
    import paho.mqtt.client as mqtt

    from decoders.decentlab_dl_mbx import frame as dl_mbx
    from simulator.tts import VirtualDevice, encode

    fleet = [VirtualDevice(f"bin-{n:05d}", f"70B3D57E{n:08X}", app_id, brand_id="decentlab",
                           model_id="dl-mbx") for n in range(devices)]
    payloads = [dl_mbx(200 + n % 800, battery_v=3.0) for n in range(64)]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                         client_id=f"bench-pub-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    client.loop_start()
    ready.set()
    go.wait()
    started = time.perf_counter()
    tick = 0.01
    for n in range(count):
        if rate > 0:
            due = started + n / rate
            delay = due - time.perf_counter()
            if delay > tick:
                time.sleep(delay)
        device = fleet[n % devices]
        doc = device.uplink(payloads[n % 64], received_at=datetime.now(timezone.utc))
        client.publish(device.topic, encode(doc), qos=0)
    elapsed = time.perf_counter() - started
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    result.put(elapsed)


def run(args: argparse.Namespace) -> dict[str, float]:
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                        mqtt_topics=[f"v3/{app_id}@ttn/devices/+/up"],
                        queue_max=args.queue_max, batch_max=args.batch_max)
    migrate(args.conninfo)
    with psycopg.connect(args.conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE devices, raw_uplinks, readings, latest_readings, ingest_errors")
    metrics = Metrics()
    store = TimedStore(args.conninfo)
    pipeline = Pipeline(settings, store, metrics)
    source = MqttSource(settings, pipeline)
    pipeline.start()
    source.start()
    if not source.wait_connected(10):
        raise SystemExit("could not connect to the broker")
    time.sleep(0.5)

    ctx = mp.get_context("spawn")
    ready, go, result = ctx.Event(), ctx.Event(), ctx.Queue()
    proc = ctx.Process(target=publisher, args=(args.mqtt_host, args.mqtt_port, app_id,
                                               args.count, args.rate, args.devices, ready, go,
                                               result))
    proc.start()
    ready.wait(60)
    started = time.time()
    go.set()
    publish_s = result.get(timeout=3600)
    proc.join()

    received = metrics.received.labels("tts-mqtt")
    stored = metrics.stored.labels("tts-mqtt")
    # Wait until everything received has been written, then a little more for stragglers.
    deadline = time.time() + 120
    while time.time() < deadline:
        if pipeline.depth == 0 and stored._value.get() + metrics.duplicate.labels(
                "tts-mqtt")._value.get() >= received._value.get():
            time.sleep(1.0)
            if pipeline.depth == 0:
                break
        time.sleep(0.1)
    source.stop()
    pipeline.stop()

    with psycopg.connect(args.conninfo) as conn:
        in_db = conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0]
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    got = int(received._value.get())
    lat = np.array(store.latencies) * 1000
    wall = (store.last_commit or started) - started
    return {
        "rate": args.rate, "published": args.count, "publish_s": publish_s,
        "received": got, "broker_dropped": args.count - got, "stored": in_db,
        "lost_by_us": got - in_db, "readings": readings, "wall_s": wall,
        "per_s": in_db / wall if wall > 0 else 0.0,
        "p50_ms": float(np.percentile(lat, 50)) if lat.size else float("nan"),
        "p99_ms": float(np.percentile(lat, 99)) if lat.size else float("nan"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=60_000, help="uplinks to publish")
    parser.add_argument("--rate", type=float, nargs="+", default=[3000.0, 0.0],
                        help="publish rates per second to run (0: as fast as possible)")
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--database-url", help="a server we may write to (default: embedded)")
    parser.add_argument("--mqtt-host", help="broker (default: embedded rumqttd)")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--queue-max", type=int, default=50_000)
    parser.add_argument("--batch-max", type=int, default=2_000)
    args = parser.parse_args()

    import contextlib
    import shutil
    import tempfile

    with contextlib.ExitStack() as stack:
        if args.database_url:
            name = f"bauhof_bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.database_url, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            params = psycopg.conninfo.conninfo_to_dict(args.database_url)
            params["dbname"] = name
            args.conninfo = psycopg.conninfo.make_conninfo(**params)

            def drop() -> None:
                with psycopg.connect(args.database_url, autocommit=True) as conn:
                    conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            stack.callback(drop)
            db_name = "PostgreSQL at " + params.get("host", "localhost")
        else:
            from app.embedded.postgres import EmbeddedPostgres

            data = Path(tempfile.mkdtemp(prefix="bauhof-bench-"))
            stack.callback(shutil.rmtree, data, True)
            args.conninfo = stack.enter_context(EmbeddedPostgres(data)).conninfo
            db_name = "embedded PostgreSQL"
        if args.mqtt_host:
            broker_name = f"broker at {args.mqtt_host}:{args.mqtt_port}"
        else:
            from app.embedded.broker import EmbeddedBroker

            broker = stack.enter_context(EmbeddedBroker())
            args.mqtt_host, args.mqtt_port = broker.host, broker.port
            broker_name = "embedded rumqttd"

        with psycopg.connect(args.conninfo) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
        print(f"# ingest benchmark: {args.count} uplinks from {args.devices} devices, "
              f"{db_name} {version}, {broker_name}, {os.cpu_count()} cores")
        header = ("| publish rate/s | published | broker dropped | received | stored | lost by us "
                  "| stored/s | p50 ms | p99 ms |")
        print(header)
        print("|" + "---|" * 9)
        rates = list(args.rate)
        for rate in rates:
            args.rate = rate
            r = run(args)
            shown = "max" if rate == 0 else f"{rate:.0f}"
            print(f"| {shown} | {r['published']} | {r['broker_dropped']} | {r['received']} | "
                  f"{r['stored']} | {r['lost_by_us']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} |", flush=True)


if __name__ == "__main__":
    main()
