"""``bauhof simulate``: run a scenario against a service, a broker or just into files."""
from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from simulator import scenario as scenarios
from simulator.engine import Simulation, device_settings
from simulator.faults import Faults
from simulator.sinks import ChirpStackSink, MemorySink, MqttSink, WebhookSink, kick
from simulator.storage import StorageServer, UplinkArchive
from simulator.truth import GroundTruth

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (e.g. 90m, 6h, 7d, 12w)")
    return timedelta(**{_UNITS[match[2]]: float(match[1])})


def speed(text: str) -> float | None:
    if text == "max":
        return None
    if text == "realtime":
        return 1.0
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("speed must be positive")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scenario", type=Path, default=scenarios.DEFAULT_SCENARIO,
                        help="scenario YAML (default: the six Main-Kinzig towns)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=datetime.fromisoformat,
                        help="simulated start (ISO 8601); default the scenario's, or now with "
                             "--speed realtime")
    parser.add_argument("--duration", type=duration, default=timedelta(days=7),
                        help="simulated time to run: 90m, 6h, 7d, 12w (default 7d)")
    parser.add_argument("--speed", type=speed, default=None,
                        help="simulated seconds per real second, 'realtime' or 'max' (default)")
    parser.add_argument("--faults", type=Faults.parse, default=Faults(),
                        help="e.g. loss=0.02,duplicate=0.01,late=0.01,bad_frame=0.005,"
                             "bad_json=0.005,rejoin=0.001,simulated=0.001,glitch=0.002,"
                             "disconnect_s=3600")
    parser.add_argument("--mqtt-host", default="127.0.0.1")
    parser.add_argument("--mqtt-port", type=int, default=1883)
    parser.add_argument("--no-mqtt", action="store_true", help="do not publish TTS MQTT")
    parser.add_argument("--max-rate", type=float,
                        help="publish at most this many messages per second (a broker drops "
                             "what a slow subscriber cannot take)")
    parser.add_argument("--chirpstack", action="store_true",
                        help="also publish each uplink as a ChirpStack v4 event")
    parser.add_argument("--webhook", help="also POST every uplink to this TTS webhook URL")
    parser.add_argument("--webhook-secret", default="")
    parser.add_argument("--storage-port", type=int,
                        help="serve the TTS Storage Integration emulation on this port")
    parser.add_argument("--storage-key", default="NNSXS.SIMULATOR",
                        help="the API key the Storage Integration emulation accepts")
    parser.add_argument("--archive", type=Path, help="keep what TTS would store in this JSONL")
    parser.add_argument("--truth", type=Path, help="write truth.csv and events.csv here")
    parser.add_argument("--register", metavar="API_URL",
                        help="configure every device in the service first (PUT /api/v1/devices)")
    parser.add_argument("--token", default="", help="API token for --register")
    parser.add_argument("--kick-client-id", default="",
                        help="the service's MQTT client id, for the disconnect_s fault")
    parser.add_argument("--no-collections", action="store_true",
                        help="never empty bins (no fixed schedule)")
    parser.add_argument("--throughput", type=int, metavar="N",
                        help="benchmark: render N uplinks, then publish them as fast as possible")


def register(api_url: str, token: str, simulation: Simulation) -> None:
    import httpx

    with httpx.Client(base_url=api_url, timeout=10,
                      headers={"Authorization": f"Bearer {token}"}) as http:
        for device in simulation.devices:
            answer = http.put(f"/api/v1/devices/{device.spec.device_id}",
                              json=device_settings(device.spec))
            answer.raise_for_status()


def run(args: argparse.Namespace) -> int:
    scenario = scenarios.load(args.scenario)
    start = args.start
    if start is None and args.speed == 1.0:
        start = datetime.now(timezone.utc)
    if start is not None and start.tzinfo is None:
        start = start.replace(tzinfo=timezone.utc)
    if args.throughput:
        return throughput(args, scenario, start)

    archive = UplinkArchive(args.archive) if (args.archive or args.storage_port) else None
    kicker = None
    if args.faults.disconnect_s and args.kick_client_id:
        kicker = lambda: kick(args.mqtt_host, args.mqtt_port, args.kick_client_id)  # noqa: E731
    simulation = Simulation(scenario, seed=args.seed, start=start, duration=args.duration,
                            faults=args.faults, truth=GroundTruth(args.truth), archive=archive,
                            collect=not args.no_collections, kick=kicker)
    if args.register:
        register(args.register, args.token, simulation)
    with contextlib.ExitStack() as stack:
        sinks = []
        if not args.no_mqtt:
            sinks.append(MqttSink(args.mqtt_host, args.mqtt_port, max_rate=args.max_rate))
        if args.chirpstack:
            sinks.append(ChirpStackSink(args.mqtt_host, args.mqtt_port, max_rate=args.max_rate))
        if args.webhook:
            sinks.append(WebhookSink(args.webhook, args.webhook_secret))
        for sink in sinks:
            stack.callback(sink.close)
        if args.storage_port is not None:
            # `last=3h` counts back from simulated time, which may run ahead of the wall clock.
            server = StorageServer(archive, {args.storage_key: scenario.application_id},
                                   port=args.storage_port, clock=lambda: simulation.now)
            url = server.start()
            stack.callback(server.stop)
            print(f"Storage Integration: {url}/api/v3/as/applications/"
                  f"{scenario.application_id}/packages/storage/uplink_message", flush=True)
        print(f"simulating {len(simulation.devices)} devices of {scenario.name!r} from "
              f"{simulation.start.isoformat()} for {args.duration} (seed {args.seed})", flush=True)
        stop = threading.Event()
        try:
            report = simulation.run(sinks, speed=args.speed, stop=stop)
        except KeyboardInterrupt:
            stop.set()
            report = simulation.report
        print_report(report)
        if args.storage_port is not None:
            print("serving the Storage Integration until Ctrl+C", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
    return 0


def throughput(args: argparse.Namespace, scenario, start) -> int:
    memory = MemorySink()
    simulation = Simulation(scenario, seed=args.seed, start=start, duration=timedelta(days=3650),
                            faults=Faults())
    stop = threading.Event()

    class Counting(MemorySink):
        def send(self, delivery) -> None:
            memory.send(delivery)
            if len(memory.deliveries) >= args.throughput:
                stop.set()

    rendered_at = time.perf_counter()
    simulation.run([Counting()], stop=stop)
    render_s = time.perf_counter() - rendered_at
    sink = MqttSink(args.mqtt_host, args.mqtt_port)
    sent_at = time.perf_counter()
    for delivery in memory.deliveries:
        sink.send(delivery)
    sink.flush()
    publish_s = time.perf_counter() - sent_at
    sink.close()
    n = len(memory.deliveries)
    print("| uplinks | render s | render uplinks/s | publish s | publish uplinks/s |")
    print("|---|---|---|---|---|")
    print(f"| {n} | {render_s:.2f} | {n / render_s:,.0f} | {publish_s:.2f} | "
          f"{n / publish_s:,.0f} |", flush=True)
    return 0


def print_report(report) -> None:
    rows = report.as_dict()
    width = max(len(k) for k in rows)
    for key, value in rows.items():
        shown = f"{value:.1f}" if isinstance(value, float) else str(value)
        print(f"  {key.ljust(width)}  {shown}")
    sys.stdout.flush()
