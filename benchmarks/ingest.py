"""Ingest throughput and latency: TTS uplinks through a real broker into the database.

    python benchmarks/ingest.py                      # embedded PostgreSQL and broker
    python benchmarks/ingest.py --database-url postgresql://root@127.0.0.1/test \
        --mqtt-host 127.0.0.1 --rate 1000 5000 10000 0 --count 60000
    python benchmarks/ingest.py ... --rate 5000 --duration 600     # soak: memory over 10 min

A separate publisher process sends DL-MBX uplinks in TTS v3 JSON (QoS 0, as TTS does) at a
fixed rate (``--rate 0``: as fast as it can); each carries its publish time as ``received_at``.
The messages are rendered once per device by the simulator and then only get their frame
counter, payload and time filled in, so that one publisher process can send well over 10,000 a
second. The service runs in this process with its real pipeline and writer; latency is measured
from publish to the commit of the batch that held the uplink. The broker may drop messages for a
subscriber that falls behind (Mosquitto's per-client queue), so the table keeps apart what the
broker never delivered and what we lost after receiving it.

``--duration S`` publishes ``rate × S`` uplinks and samples this process's resident memory (the
service's) every ``--sample-every`` seconds; latencies go to a fixed-size histogram, so that the
benchmark's own bookkeeping does not grow either.
"""
from __future__ import annotations

import argparse
import base64
import multiprocessing as mp
import os
import socket
import sys
import threading
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

HISTOGRAM_MS = 0.1  # latency resolution
HISTOGRAM_BINS = 600_000  # up to 60 s; later ones land in the last bin


class TimedStore(Store):
    """Records, for every newly stored uplink, the time from its publish to our commit."""

    def __init__(self, conninfo: str) -> None:
        super().__init__(conninfo)
        self.histogram = np.zeros(HISTOGRAM_BINS, dtype=np.int64)
        self.first_commit: float | None = None
        self.last_commit: float | None = None
        self.stored = 0

    def write(self, items):
        report = super().write(items)
        now = time.time()
        self.first_commit = self.first_commit or now
        self.last_commit = now
        sent = [i.uplink.received_at.timestamp() for i in items
                if i.uplink is not None and i.inserted]
        if sent:
            bins = ((now - np.array(sent)) * (1000 / HISTOGRAM_MS)).astype(np.int64)
            np.add.at(self.histogram, np.clip(bins, 0, HISTOGRAM_BINS - 1), 1)
            self.stored += len(sent)
        return report

    def percentile(self, q: float) -> float:
        total = int(self.histogram.sum())
        if not total:
            return float("nan")
        index = int(np.searchsorted(np.cumsum(self.histogram), q / 100 * total))
        return (index + 0.5) * HISTOGRAM_MS


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def templates(app_id: str, devices: int) -> list[tuple[str, bytes]]:
    """One rendered uplink per device, with %-placeholders for counter, payload and time."""
    from decoders.decentlab_dl_mbx import frame as dl_mbx
    from simulator.tts import VirtualDevice, encode

    out = []
    for n in range(devices):
        device = VirtualDevice(f"bin-{n:05d}", f"70B3D57E{n:08X}", app_id,
                               brand_id="decentlab", model_id="dl-mbx")
        doc = device.uplink(dl_mbx(300, battery_v=3.0), received_at=datetime.now(timezone.utc))
        doc["received_at"] = doc["uplink_message"]["received_at"] = "@@TIME@@"
        doc["uplink_message"]["f_cnt"] = "@@FCNT@@"
        doc["uplink_message"]["frm_payload"] = "@@PAYLOAD@@"
        raw = (encode(doc).replace(b"%", b"%%").replace(b'"@@FCNT@@"', b"%(f)d")
               .replace(b"@@TIME@@", b"%(t)s").replace(b"@@PAYLOAD@@", b"%(p)s"))
        out.append((device.topic, raw))
    return out


def publisher(host: str, port: int, app_id: str, count: int, rate: float, devices: int,
              ready: mp.Event, go: mp.Event, result: mp.Queue) -> None:
    import paho.mqtt.client as mqtt

    from decoders.decentlab_dl_mbx import frame as dl_mbx

    fleet = templates(app_id, devices)
    payloads = [base64.b64encode(dl_mbx(200 + n % 800, battery_v=3.0)) for n in range(64)]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311,
                         client_id=f"bench-pub-{os.getpid()}")
    client.max_queued_messages_set(0)
    client.connect(host, port, keepalive=60)
    # Without it Nagle's algorithm holds small messages back for the broker's delayed ACK, and
    # at low rates latency would measure the publisher's socket, not the service.
    client.socket().setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client.loop_start()
    ready.set()
    go.wait()
    started = time.perf_counter()
    tick = 0.005
    now, second, prefix = time.time, -1, b""
    for n in range(count):
        if rate > 0:
            delay = started + n / rate - time.perf_counter()
            if delay > tick:
                time.sleep(delay)
        topic, template = fleet[n % devices]
        t = now()
        if int(t) != second:
            second = int(t)
            prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
        stamp = b"%s.%06d000Z" % (prefix, min(int((t - second) * 1e6), 999_999))
        client.publish(topic, template % {b"f": n // devices, b"t": stamp,
                                          b"p": payloads[n % 64]}, qos=0)
    elapsed = time.perf_counter() - started
    time.sleep(0.5)
    client.disconnect()
    client.loop_stop()
    result.put(elapsed)


def run(args: argparse.Namespace, rate: float, count: int) -> dict[str, float]:
    app_id = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(mqtt_host=args.mqtt_host, mqtt_port=args.mqtt_port,
                        mqtt_topics=[f"v3/{app_id}@ttn/devices/+/up"],
                        queue_max=args.queue_max, batch_max=args.batch_max)
    migrate(args.conninfo)
    with psycopg.connect(args.conninfo, autocommit=True) as conn:
        conn.execute("TRUNCATE devices, raw_uplinks, readings, latest_readings, ingest_errors")
        conn.execute("VACUUM ANALYZE")
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
    proc = ctx.Process(target=publisher, args=(args.mqtt_host, args.mqtt_port, app_id, count,
                                               rate, args.devices, ready, go, result))
    proc.start()
    ready.wait(120)
    received = metrics.received.labels("tts-mqtt")
    samples: list[tuple[float, float, int, int]] = []  # seconds, RSS MiB, received, stored
    stop_sampling = threading.Event()

    def sample() -> None:
        while True:
            samples.append((time.time() - started, rss_mib(), int(received._value.get()),
                            store.stored))
            if stop_sampling.wait(args.sample_every):
                return

    load = os.getloadavg()[0]
    cpu_before = os.times()
    started = time.time()
    go.set()
    sampler = threading.Thread(target=sample, daemon=True)
    if args.duration and rate:
        sampler.start()
    publish_s = result.get(timeout=args.duration * 2 + 3600 if args.duration else 3600)
    proc.join()

    stored = metrics.stored.labels("tts-mqtt")
    duplicate = metrics.duplicate.labels("tts-mqtt")
    # Wait until everything received has been written, then a little more for stragglers.
    deadline = time.time() + 120
    cpu_after, ended = None, None
    while time.time() < deadline:
        if pipeline.depth == 0 and (stored._value.get() + duplicate._value.get()
                                    >= received._value.get()):
            cpu_after, ended = cpu_after or os.times(), ended or time.time()
            time.sleep(1.0)
            if pipeline.depth == 0:
                break
        time.sleep(0.1)
    if args.duration and rate:
        stop_sampling.set()
        sampler.join()
        samples.append((time.time() - started, rss_mib(), int(received._value.get()),
                        store.stored))
    cpu_after, ended = cpu_after or os.times(), ended or time.time()
    cpu_s = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    source.stop()
    pipeline.stop()

    with psycopg.connect(args.conninfo) as conn:
        in_db = conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0]
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    got = int(received._value.get())
    wall = (store.last_commit or started) - started
    return {
        "rate": rate, "published": count, "publish_s": publish_s,
        "received": got, "broker_dropped": count - got, "stored": in_db,
        "lost_by_us": got - in_db, "readings": readings, "wall_s": wall,
        "per_s": in_db / wall if wall > 0 else 0.0,
        "p50_ms": store.percentile(50), "p99_ms": store.percentile(99),
        "max_ms": store.percentile(100), "samples": samples, "load": load,
        "cpu_pct": 100 * cpu_s / (ended - started),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=60_000, help="uplinks to publish per rate")
    parser.add_argument("--rate", type=float, nargs="+", default=[1000.0, 5000.0, 10000.0, 0.0],
                        help="publish rates per second to run (0: as fast as possible)")
    parser.add_argument("--duration", type=float, default=0.0,
                        help="publish for this many seconds at each fixed rate (instead of "
                        "--count) and sample the memory: a soak")
    parser.add_argument("--sample-every", type=float, default=10.0,
                        help="seconds between memory samples in a soak")
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

        migrate(args.conninfo)
        with psycopg.connect(args.conninfo) as conn:
            version = conn.execute("SHOW server_version").fetchone()[0]
            timescale = conn.execute("SELECT extversion FROM pg_extension"
                                     " WHERE extname = 'timescaledb'").fetchone()
        if timescale:
            version += f" with TimescaleDB {timescale[0]} (hypertables)"
        what = (f"{args.duration:.0f} s per fixed rate" if args.duration
                else f"{args.count} uplinks per rate")
        print(f"# ingest benchmark: {what} from {args.devices} devices, {db_name} {version}, "
              f"{broker_name}, {os.cpu_count()} cores, load average before "
              f"{os.getloadavg()[0]:.2f}")
        header = ("| publish rate/s | published | broker dropped | received | stored | lost by us "
                  "| stored/s | p50 ms | p99 ms | max ms | service CPU % | load before |")
        print(header)
        print("|" + "---|" * 12, flush=True)
        results = []
        for rate in args.rate:
            count = int(rate * args.duration) if args.duration and rate else args.count
            r = run(args, rate, count)
            results.append(r)
            shown = "max" if rate == 0 else f"{rate:.0f}"
            print(f"| {shown} | {r['published']} | {r['broker_dropped']} | {r['received']} | "
                  f"{r['stored']} | {r['lost_by_us']} | {r['per_s']:.0f} | {r['p50_ms']:.1f} | "
                  f"{r['p99_ms']:.1f} | {r['max_ms']:.0f} | {r['cpu_pct']:.0f} | "
                  f"{r['load']:.2f} |", flush=True)
        for r in results:
            if not r["samples"]:
                continue
            rss = [s[1] for s in r["samples"]]
            print(f"\n# memory (VmRSS of the service process) at {r['rate']:.0f} uplinks/s: "
                  f"start {rss[0]:.1f} MiB, max {max(rss):.1f} MiB, end {rss[-1]:.1f} MiB")
            print("| s | RSS MiB | received | stored |")
            print("|---|---|---|---|")
            for seconds, mib, got, stored in r["samples"]:
                print(f"| {seconds:.0f} | {mib:.1f} | {got} | {stored} |")


if __name__ == "__main__":
    main()
