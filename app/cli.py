"""The bauhof command: run the service, try it with the demo, and the tools around it."""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
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
def database(settings: Settings, share: bool = False) -> Iterator[str]:
    """The configured database, or an embedded one started for as long as we run.

    ``share``: if ``bauhof run`` or ``demo`` already runs the embedded database of this data
    directory, use theirs (``bauhof plan`` beside a running demo) instead of refusing.
    """
    if settings.database_url is not None:
        url = settings.database_url.get_secret_value()
        log.info("using database %s", redact_url(url))
        yield url
        return
    from app.embedded.postgres import EmbeddedPostgres

    embedded = EmbeddedPostgres(settings.data_dir)
    if share and settings.data_dir.exists() and embedded.running_pid() is not None:
        import psycopg

        try:
            psycopg.connect(embedded.conninfo, connect_timeout=5).close()
        except psycopg.OperationalError as err:
            log.warning("the embedded PostgreSQL in %s looks running but does not answer: %s",
                        embedded.pgdata, err)
        else:
            log.info("using the embedded PostgreSQL of the running bauhof in %s",
                     embedded.pgdata)
            yield embedded.conninfo
            return
    with embedded as pg:
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

    with database(settings, share=True) as conninfo:
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
            # A restarted demo keeps the plan it made (and what the crew marked on it).
            service.planning.plan(day, kind, only_if_missing=True)
        except Exception as err:  # noqa: BLE001 - a demo without a route still demonstrates
            log.warning("demo: no %s plan for %s: %s", kind, day, err)
    print(f"Routes for {day:%d.%m.%Y}: {url}/tagesroute?datum={day.isoformat()}", flush=True)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    import multiprocessing
    import queue

    from app import demo
    from app.registry import DeviceSettings, configure_device
    from simulator.engine import device_settings
    from simulator.scenario import expand, load

    if args.reset:
        if settings.database_url is not None:
            print("bauhof demo --reset deletes the embedded database; with BAUHOF_DATABASE_URL "
                  "set, give the demo a fresh database instead", file=sys.stderr)
            return 2
        running = _embedded_running(settings)
        if running is not None:
            print(f"bauhof demo --reset: the embedded PostgreSQL in {settings.data_dir} is "
                  f"running (pid {running}); stop the demo first", file=sys.stderr)
            return 1
        print("bauhof demo --reset löscht / deletes:")
        for path in (settings.data_dir / "postgres", settings.data_dir / "demo",
                     settings.spool_path):
            print(f"  {demo.describe(path)}")
        demo.reset(settings)

    scenario = load()
    specs = expand(scenario, args.seed)
    store = demo.DemoStore(settings.data_dir)
    progress = demo.Progress()
    with database(settings) as conninfo, broker(settings) as settings:
        identity = demo.database_identity(conninfo)
        state, resumed = store.load(identity, args.seed)
        if state is None:
            state = demo.new_state(args.seed, identity)
            store.save_state(state)
        settings = demo.with_tokens(settings, state)
        # The simulator runs in a process of its own: in ours it would share one core with
        # the service that ingests what it sends, and the week would load at half the speed.
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        events = context.Queue()
        job = demo.FleetJob(str(settings.data_dir), args.seed, args.speed, settings.mqtt_host,
                            settings.mqtt_port,
                            None if resumed else demo.utc_now() - demo.HISTORY)
        fleet = context.Process(target=demo.run_fleet, args=(job, stop, events),
                                name="bauhof-demo-fleet", daemon=True)
        saved: list[bool] = []

        def stop_simulating() -> None:
            # Before the service stops listening: what the fleet sends then would be lost.
            stop.set()
            if fleet.pid is not None:
                fleet.join(30)

        def follow(service, url: str) -> None:
            bar = demo.ConsoleBar()
            label = ("Demo: die Zeit seit dem letzten Lauf wird nachgeholt" if resumed
                     else "Demo: eine Woche Vorgeschichte wird geladen")
            while True:
                try:
                    event = events.get(timeout=1.0)
                except queue.Empty:
                    if not fleet.is_alive():
                        return
                    continue
                if event[0] == "progress":
                    progress.update(event[1])
                    bar.show(progress, label)
                elif event[0] == "loaded":
                    _demo_plans(service, url)
                    progress.finish()
                elif event[0] == "saved":
                    saved.append(event[1])
                    return

        def start_demo(service, url: str) -> None:
            service.demo = progress
            service.on_stop.append(stop_simulating)
            if not resumed:
                with service.pool.connection() as conn:
                    for spec in specs:
                        configure_device(conn, spec.device_id,
                                         DeviceSettings(**device_settings(spec)))
                service.pipeline.invalidate_devices()
            progress.begin(resumed)
            fleet.start()
            threading.Thread(target=follow, args=(service, url), name="demo-progress",
                             daemon=True).start()
            kinds: dict[str, int] = {}
            for spec in specs:
                kinds[spec.kind] = kinds.get(spec.kind, 0) + 1
            crew = settings.crew_tokens[0].get_secret_value()
            admin = settings.api_tokens[0].get_secret_value()
            print(
                f"\nbauhof-sense demo: {kinds.get('bin', 0)} Abfallbehälter, "
                f"{kinds.get('weather', 0)} Wetterstationen, {kinds.get('soil', 0)} "
                f"Bodenfeuchtesensoren und {kinds.get('irrigation', 0)} Bewässerungssteuerungen in "
                f"{len(scenario.municipalities)} Orten senden über MQTT "
                f"({settings.mqtt_host}:{settings.mqtt_port}); die simulierte Zeit läuft "
                f"{args.speed:g}-mal so schnell wie die Uhr"
                + (", weiter, wo sie beim letzten Lauf stand.\n" if resumed
                   else ", nach einer Woche Vorgeschichte.\n")
                + f"Open {url}/api/v1/latest   (devices: {url}/api/v1/devices, API: {url}/docs)\n"
                f"Crews (the link carries the demo's crew token): {url}/tagesroute#token={crew}\n"
                f"               and {url}/uebersicht#token={crew}\n"
                f"Tokens of this demo: crew {crew}   admin {admin}\n"
                f"Data: {settings.data_dir} (bauhof demo --reset starts anew; "
                "bauhof uninstall-data removes it)\n"
                "Stop with Ctrl+C; the next bauhof demo continues where this one stopped.",
                flush=True)

        try:
            _serve(settings, conninfo, start_demo)
        finally:
            stop_simulating()
            if fleet.pid is not None and fleet.is_alive():
                log.warning("demo: the simulator did not stop in time; its state is not saved")
                fleet.kill()
            elif saved == [False]:
                log.warning("demo: the simulation could not be saved; the next demo starts "
                            "a new week")
    return 0


def _embedded_running(settings: Settings) -> int | None:
    """The pid of the embedded PostgreSQL running on this data directory, if one is."""
    from app.embedded.postgres import EmbeddedPostgres

    return EmbeddedPostgres(settings.data_dir).running_pid() if settings.data_dir.exists() \
        else None


def cmd_uninstall_data(settings: Settings, args: argparse.Namespace) -> int:
    """Remove what bauhof created on this machine: the data directory (embedded database,
    demo state, spool) and, as root, the system user the embedded database runs as."""
    import pwd
    import shutil
    import subprocess

    from app import demo
    from app.embedded.postgres import SYSTEM_USER

    data = settings.data_dir
    running = _embedded_running(settings)
    if running is not None:
        print(f"bauhof uninstall-data: the embedded PostgreSQL in {data} is running (pid "
              f"{running}); stop bauhof run or bauhof demo first", file=sys.stderr)
        return 1
    try:
        user = pwd.getpwnam(SYSTEM_USER) if os.geteuid() == 0 else None
    except KeyError:
        user = None
    if not data.exists() and user is None:
        print(f"nothing to remove: {data} does not exist and there is no {SYSTEM_USER} user")
        return 0
    print("bauhof uninstall-data removes:")
    if data.exists():
        print(f"  {demo.describe(data)}")
    if user is not None:
        print(f"  the system user {SYSTEM_USER} (uid {user.pw_uid})")
    if settings.database_url is not None:
        print("  (not the database of BAUHOF_DATABASE_URL: that one is yours to drop)")
    if not args.yes:
        if not sys.stdin.isatty():
            print("bauhof uninstall-data: confirm with --yes", file=sys.stderr)
            return 2
        if input("Remove? [y/N] ").strip().lower() not in ("y", "yes", "j", "ja"):
            print("nothing removed")
            return 1
    if data.exists():
        shutil.rmtree(data)
    if user is not None:
        subprocess.run(["userdel", SYSTEM_USER], check=True, capture_output=True)
    print("removed")
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
    with database(settings, share=True) as conninfo:
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
    demo.add_argument("--reset", action="store_true",
                      help="delete the demo's embedded database and saved simulation first "
                           "(says what), and start anew")
    simulate = sub.add_parser("simulate", help="run a simulated Bauhof that speaks TTS")
    from simulator.runner import add_arguments

    add_arguments(simulate)
    decode = sub.add_parser("decode", help="decode one payload: bauhof decode VENDOR/MODEL HEX "
                            "(an unknown model lists the known ones)")
    decode.add_argument("decoder", help="decoder id, e.g. decentlab/dl-mbx")
    decode.add_argument("hex", help="payload bytes as hex")
    decode.add_argument("--port", type=int, default=1, help="LoRaWAN fPort (default 1)")
    plan = sub.add_parser("plan", help="plan a day's rounds now and print them (also beside "
                                       "a running bauhof run or demo: it uses their database)")
    plan.add_argument("--date", type=_date, default=None,
                      help="YYYY-MM-DD (default: today in the planner's time zone)")
    plan.add_argument("--kind", choices=["collection", "watering"], default=None,
                      help="default: both")
    plan.add_argument("--show", action="store_true", help="print the stored plan, plan nothing")
    plan.add_argument("--force", action="store_true",
                      help="replace the day's plan even if stops of it are done")
    plan.add_argument("--time-limit", type=float, default=None,
                      help="solver seconds (default: from the planner configuration)")
    uninstall = sub.add_parser(
        "uninstall-data", help="remove the data directory (embedded database, demo, spool) "
                               "and the system user the embedded database runs as")
    uninstall.add_argument("--yes", action="store_true", help="do not ask")
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
                "simulate": cmd_simulate, "plan": cmd_plan, "evaluate": cmd_evaluate,
                "uninstall-data": cmd_uninstall_data}
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
