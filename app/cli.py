"""The bauhof command: run the service, try it with the demo, and the tools around it."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import signal
import sys
import threading
from collections.abc import Iterator

from pydantic import ValidationError

from app import logs
from app.config import Settings, redact_url

log = logging.getLogger("bauhof")


class Stopped(BaseException):
    """SIGTERM or Ctrl+C: a requested stop, unwound through every ``with`` so that embedded
    servers are shut down after the service has flushed."""


def _stop_on_sigterm(signum, frame) -> None:
    raise Stopped()


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The configured database, or an embedded one started for as long as we run."""
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        log.info("using database %s", redact_url(url))
        yield url
        return
    from app.embedded.postgres import EmbeddedPostgres

    with EmbeddedPostgres(settings.data_dir) as pg:
        log.info("no BAUHOF_DATABASE_URL: embedded PostgreSQL in %s", pg.pgdata)
        yield pg.conninfo


@contextlib.contextmanager
def broker(settings: Settings) -> Iterator[Settings]:
    """The configured broker, or an embedded one; yields settings that point at it."""
    if settings.mqtt_host:
        yield settings
        return
    from app.embedded.broker import EmbeddedBroker

    with EmbeddedBroker() as embedded:
        yield settings.model_copy(update={"mqtt_host": embedded.host, "mqtt_port": embedded.port,
                                          "mqtt_tls": False, "mqtt_username": None,
                                          "mqtt_password": None})


def _serve(settings: Settings, conninfo: str, on_started=None) -> None:
    import uvicorn

    from app.api.app import create_app
    from app.service import Service

    service = Service(settings, conninfo)
    config = uvicorn.Config(create_app(service), host=settings.http_host, port=settings.http_port,
                            log_config=None, lifespan="on", timeout_graceful_shutdown=10)
    server = uvicorn.Server(config)
    if on_started is not None:
        def wait_and_announce() -> None:
            while not server.started:
                if server.should_exit:
                    return
                threading.Event().wait(0.05)
            port = server.servers[0].sockets[0].getsockname()[1]
            on_started(service, f"http://{settings.http_host}:{port}")

        threading.Thread(target=wait_and_announce, daemon=True).start()
    server.run()


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    with database(settings) as conninfo:
        def announce(service, url: str) -> None:
            print(f"bauhof-sense läuft / is running: {url}/docs", flush=True)

        _serve(settings, conninfo, announce)
    return 0


def cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    from app.migrate import migrate

    with database(settings) as conninfo:
        applied = migrate(conninfo)
    if applied:
        for m in applied:
            print(f"applied {m.version:03d}_{m.name}")
    else:
        print("database is up to date")
    return 0


def _demo_plans(service, url: str) -> None:
    """The next rounds from the loaded week, so that the crews' pages show a route."""
    import time

    from planner.config import WEEKDAYS
    from planner.plan import next_working_day, shift_window

    deadline = time.monotonic() + 120
    time.sleep(2)  # the last messages on their way through the broker
    while service.pipeline.pending() and time.monotonic() < deadline:
        time.sleep(0.5)  # let the history reach the database first
    config = service.planning.config
    day = service.planning.today()
    if (time.time() > shift_window(day, config)[0]
            or WEEKDAYS[day.weekday()] not in config.working_days):
        day = next_working_day(day, config)  # today's shift has begun: plan the next one
    for kind in ("collection", "watering"):
        try:
            service.planning.plan(day, kind, force=True)
        except Exception as err:  # noqa: BLE001 - a demo without a route still demonstrates
            log.warning("demo: no %s plan for %s: %s", kind, day, err)
    print(f"Routes for {day:%d.%m.%Y}: {url}/tagesroute?datum={day.isoformat()}", flush=True)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import datetime, timedelta, timezone

    from app.registry import DeviceSettings, configure_device
    from simulator.engine import Simulation, device_settings
    from simulator.scenario import load
    from simulator.sinks import MqttSink

    scenario = load()
    # A week of history first, sent at full speed, so that forecasts, routes and alerts have
    # something to work on; then the fleet goes on at --speed (1: live, in step with the clock).
    started = datetime.now(timezone.utc)
    simulation = Simulation(scenario, seed=args.seed, start=started - timedelta(days=7),
                            duration=timedelta(days=365))
    stop = threading.Event()
    with database(settings) as conninfo, broker(settings) as settings:
        runner: list[threading.Thread] = []

        def start_demo(service, url: str) -> None:
            with service.pool.connection() as conn:
                for device in simulation.devices:
                    configure_device(conn, device.spec.device_id,
                                     DeviceSettings(**device_settings(device.spec)))
            service.pipeline.invalidate_devices()
            sink = MqttSink(settings.mqtt_host, settings.mqtt_port, client_id="bauhof-demo")
            # The history at a rate the broker and the embedded database keep up with.
            history = MqttSink(settings.mqtt_host, settings.mqtt_port,
                               client_id="bauhof-demo-history", max_rate=2000)

            def simulate() -> None:
                try:
                    simulation.run([history], stop=stop, until=datetime.now(timezone.utc))
                    history.close()
                    if stop.is_set():
                        return
                    _demo_plans(service, url)
                    simulation.run([sink], speed=args.speed, stop=stop)
                finally:
                    sink.close()

            thread = threading.Thread(target=simulate, name="demo-simulator", daemon=True)
            thread.start()
            runner.append(thread)
            kinds = {}
            for device in simulation.devices:
                kinds[device.spec.kind] = kinds.get(device.spec.kind, 0) + 1
            print(
                f"\nbauhof-sense demo: {kinds.get('bin', 0)} Abfallbehälter, "
                f"{kinds.get('weather', 0)} Wetterstationen, {kinds.get('soil', 0)} "
                f"Bodenfeuchtesensoren und {kinds.get('irrigation', 0)} Bewässerungssteuerungen in "
                f"{len(scenario.municipalities)} Orten senden über MQTT "
                f"({settings.mqtt_host}:{settings.mqtt_port}); die simulierte Zeit läuft "
                f"{args.speed:g}-mal so schnell wie die Uhr, nach einer Woche Vorgeschichte.\n"
                f"Open {url}/api/v1/latest   (devices: {url}/api/v1/devices, API: {url}/docs)\n"
                f"Crews: {url}/tagesroute and {url}/uebersicht (routes once the week is loaded)\n"
                "Stop with Ctrl+C.", flush=True)

        try:
            _serve(settings, conninfo, start_demo)
        finally:
            stop.set()
            for thread in runner:
                thread.join(10)
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulator.runner import run

    return run(args)


def cmd_decode(settings: Settings, args: argparse.Namespace) -> int:
    from decoders import DecodeError, by_id

    model = by_id(args.decoder)
    if model is None:
        from decoders import MODELS

        print(f"unknown decoder {args.decoder!r}; known decoders:", file=sys.stderr)
        for known in sorted(MODELS, key=lambda m: m.id):
            print(f"  {known.id:<40} {known.name}", file=sys.stderr)
        return 2
    try:
        payload = bytes.fromhex(args.hex)
    except ValueError:
        print(f"not a hex string: {args.hex!r}", file=sys.stderr)
        return 2
    try:
        decoded = model.decode(args.port, payload)
    except DecodeError as err:
        print(str(err), file=sys.stderr)
        return 2
    normalized = model.normalize(decoded, {})
    print(json.dumps({"decoded": decoded, "normalized": normalized}, ensure_ascii=False))
    return 0


def cmd_plan(settings: Settings, args: argparse.Namespace) -> int:
    import psycopg

    from app.migrate import migrate
    from app.planning import Planning, PlanningError, load_config, load_plans

    try:
        config = load_config(settings.planner_config)
    except PlanningError as err:
        print(f"bauhof plan: {err}", file=sys.stderr)
        return 2
    with database(settings) as conninfo:
        migrate(conninfo)
        planning = Planning(config, lambda: psycopg.connect(conninfo),
                            done_times=settings.record_done_times)
        day = args.date or planning.today()
        kinds = [args.kind] if args.kind else ["collection", "watering"]
        plans = []
        for kind in kinds:
            if args.show:
                with psycopg.connect(conninfo) as conn:
                    plans += load_plans(conn, day, kind, planning.tz)
                continue
            if not planning.fleet(kind):
                print(f"no vehicle for {kind} in the planner configuration", file=sys.stderr)
                continue
            try:
                plans += planning.plan(day, kind, force=args.force,
                                       time_limit_s=args.time_limit) or []
            except PlanningError as err:
                print(f"bauhof plan: {err}", file=sys.stderr)
                return 1
    print(format_plans(day, plans, settings.record_done_times))
    return 0


def format_plans(day, plans, done_times: str = "time") -> str:
    """Plans as text tables for a terminal or a printout (German headings: the crew's)."""
    if not plans:
        return f"Keine Tourenpläne für den {day:%d.%m.%Y}."
    weekday = ("Mo", "Di", "Mi", "Do", "Fr", "Sa", "So")[day.weekday()]
    lines = []
    for kind, title in (("collection", "Leerung"), ("watering", "Bewässerung")):
        of_kind = [p for p in plans if p.kind == kind]
        if not of_kind:
            continue
        # Counts and the fixed round are the day's (the same on each vehicle's row).
        first = of_kind[0]
        total = sum(p.distance_m for p in of_kind) / 1000
        baseline = ("" if first.baseline_distance_m is None else
                    f"; feste Tour: {first.baseline_distance_m / 1000:.1f} km, "
                    f"{first.baseline_stops} Stopps")
        lines.append(f"{title} {weekday} {day:%d.%m.%Y}: {sum(len(p.stops) for p in of_kind)} "
                     f"Stopps ({first.must_count} dringend, {first.may_count} optional "
                     f"angeboten), {total:.1f} km{baseline}")
        if first.unserved_must:
            lines.append(f"NICHT EINGEPLANT (dringend): {', '.join(first.unserved_must)}")
        lines.append("")
        for p in of_kind:
            lines.extend(_format_vehicle(p, done_times))
            lines.append("")
    return "\n".join(lines).rstrip()


def _format_vehicle(p, done_times: str) -> list[str]:
    lines = [f"  {p.vehicle_name} ({p.vehicle_id}), Start {p.start_at:%H:%M}: {len(p.stops)} "
             f"Stopps, {p.distance_m / 1000:.1f} km, {p.duration_s / 3600:.1f} h, "
             f"{p.trips} Fahrt(en)"]
    if not p.stops:
        return lines + ["  (keine Stopps)"]
    unit = "Füllung" if p.kind == "collection" else "Feuchte"
    header = (f"  {'Nr':>3}  {'Ankunft':<7}  {'Ort':<22}  {'Standort':<28}  {'Grund':<5}  "
              f"{unit + ' %':>10}  {'bei Ank.':>8}  {'Liter':>5}  Status")
    lines += [header, "  " + "-" * (len(header) - 2)]
    for s in p.stops:
        now = "" if s.value_now is None else f"{s.value_now:.0f}"
        due = "" if s.value_expected is None else f"{s.value_expected:.0f}"
        when = f" {s.done_at:%H:%M}" if done_times == "time" and s.done_at else ""
        state = "offen" if s.status == "planned" else (
            f"erledigt{when} ({'Team' if s.done_by == 'crew' else 'Sensor'})")
        lines.append(f"  {s.seq:>3}  {s.eta:%H:%M}    {(s.municipality or '')[:22]:<22}  "
                     f"{(s.name or s.device_id)[:28]:<28}  "
                     f"{'muss' if s.reason == 'must' else 'kann':<5}  {now:>10}  {due:>8}  "
                     f"{s.demand_l:>5}  {state}")
    return lines


def _date(text: str):
    import datetime as dt

    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def cmd_evaluate(settings: Settings, args: argparse.Namespace) -> int:
    from simulator.evaluate import main as evaluate

    return evaluate(args)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bauhof", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="bauhof-sense: LoRaWAN sensors of a municipal works yard (litter bins, "
                    "weather,\nsoil moisture) stored, planned into rounds and served.",
        epilog="Configuration comes from BAUHOF_* environment variables (see README.md).\n"
               "Without BAUHOF_DATABASE_URL, run, demo, migrate and plan start an embedded\n"
               "PostgreSQL of their own in BAUHOF_DATA_DIR.\n\n"
               "bauhof COMMAND --help tells more about each command.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                title="commands")
    sub.add_parser("run", help="ingest (MQTT, webhooks) and serve the API")
    sub.add_parser("migrate", help="apply database migrations and exit")
    demo = sub.add_parser("demo", help="run everything with the simulated Main-Kinzig fleet")
    demo.add_argument("--speed", type=float, default=1.0,
                      help="after the week of history: simulated seconds per real second "
                           "(default 1, live)")
    demo.add_argument("--seed", type=int, default=0)
    simulate = sub.add_parser("simulate", help="run a simulated Bauhof that speaks TTS")
    from simulator.runner import add_arguments

    add_arguments(simulate)
    decode = sub.add_parser("decode", help="decode one payload: bauhof decode VENDOR/MODEL HEX "
                            "(an unknown model lists the known ones)")
    decode.add_argument("decoder", help="decoder id, e.g. decentlab/dl-mbx")
    decode.add_argument("hex", help="payload bytes as hex")
    decode.add_argument("--port", type=int, default=1, help="LoRaWAN fPort (default 1)")
    plan = sub.add_parser("plan", help="plan a day's rounds now and print them")
    plan.add_argument("--date", type=_date, default=None,
                      help="YYYY-MM-DD (default: today in the planner's time zone)")
    plan.add_argument("--kind", choices=["collection", "watering"], default=None,
                      help="default: both")
    plan.add_argument("--show", action="store_true", help="print the stored plan, plan nothing")
    plan.add_argument("--force", action="store_true",
                      help="replace the day's plan even if stops of it are done")
    plan.add_argument("--time-limit", type=float, default=None,
                      help="solver seconds (default: from the planner configuration)")
    evaluate = sub.add_parser(
        "evaluate", help="compare collection policies in closed loop with the simulator")
    from simulator.evaluate import add_arguments as evaluate_arguments

    evaluate_arguments(evaluate)
    args = parser.parse_args(argv)

    try:
        settings = Settings()
    except ValidationError as err:
        # Without the input values: they may be secrets.
        for item in err.errors(include_input=False, include_url=False):
            name = "BAUHOF_" + "_".join(str(p) for p in item["loc"]).upper()
            print(f"configuration error: {name}: {item['msg']}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, settings.log_format, settings.secret_values())
    commands = {"run": cmd_run, "migrate": cmd_migrate, "demo": cmd_demo, "decode": cmd_decode,
                "simulate": cmd_simulate, "plan": cmd_plan, "evaluate": cmd_evaluate}
    from app.embedded.broker import EmbeddedBrokerError
    from app.embedded.postgres import EmbeddedPostgresError
    from app.planning import PlanningError

    # uvicorn handles both signals while it serves and raises them again when it has shut down;
    # then they arrive here.
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        return commands[args.command](settings, args)
    except (EmbeddedPostgresError, EmbeddedBrokerError, PlanningError) as err:
        print(f"bauhof: {err}", file=sys.stderr)
        return 1
    except (Stopped, KeyboardInterrupt):
        log.info("stopped")
        return 0


if __name__ == "__main__":
    sys.exit(main())
