"""The demo: a simulated Main-Kinzig fleet that speaks TTS to a real service, and resumes.

The first start simulates a week of history at full speed, then goes on in step with the clock.
At a stop the simulation (fill levels, frame counters, batteries, what is due next) is saved
beside the embedded database; the next start continues it: the time the demo was stopped is
simulated as history, nothing is sent twice and no second week appears. ``--reset`` starts
from scratch after saying what it deletes.

The demo also makes an admin and a crew token of its own (kept with its state), so that every
button of the pages works; the links it prints carry them in their fragment (``#token=``),
which the pages keep in the browser and browsers never send to a server.
"""
from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import shutil
import sys
import threading
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg

from app.config import Settings

log = logging.getLogger(__name__)

HISTORY = timedelta(days=7)
DURATION = timedelta(days=365)
HISTORY_RATE = 4000  # messages/s the embedded broker and database keep up with


@dataclass
class DemoState:
    seed: int
    database: str  # which database the simulation's data went to
    admin_token: str
    crew_token: str


def database_identity(conninfo: str) -> str:
    """The cluster's system identifier and the database: a simulation resumes only into the
    database that holds its past."""
    with psycopg.connect(conninfo) as conn:
        ident, name = conn.execute("SELECT (SELECT system_identifier FROM pg_control_system()),"
                                   " current_database()").fetchone()
    return f"{ident}/{name}"


class DemoStore:
    """The demo's state beside the embedded database: a JSON file and the pickled simulation."""

    def __init__(self, data_dir: Path) -> None:
        self.dir = data_dir / "demo"
        self.state_path = self.dir / "demo.json"
        self.simulation_path = self.dir / "simulation.pickle"

    def load(self, database: str, seed: int) -> tuple[DemoState | None, bool]:
        """The state of a demo of this seed that ran on this database before, and whether its
        simulation was saved (then it resumes)."""
        try:
            state = DemoState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None, False
        if state.database != database or state.seed != seed:
            return None, False
        return state, self.simulation_path.exists()

    def save_state(self, state: DemoState) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._replace(self.state_path, json.dumps(asdict(state)).encode())
        os.chmod(self.state_path, 0o600)  # it holds the demo's tokens

    def save_simulation(self, simulation) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._replace(self.simulation_path, pickle.dumps(simulation))

    @staticmethod
    def _replace(path: Path, data: bytes) -> None:
        partial = path.with_suffix(path.suffix + ".partial")
        partial.write_bytes(data)
        partial.replace(path)  # a stop in the middle leaves the old file, not half a new one


def new_state(seed: int, database: str) -> DemoState:
    return DemoState(seed=seed, database=database, admin_token=secrets.token_urlsafe(18),
                     crew_token=secrets.token_urlsafe(18))


def with_tokens(settings: Settings, state: DemoState) -> Settings:
    """The demo's tokens, unless the environment configured some."""
    from pydantic import SecretStr

    update = {}
    if not settings.api_tokens:
        update["api_tokens"] = [SecretStr(state.admin_token)]
    if not settings.crew_tokens:
        update["crew_tokens"] = [SecretStr(state.crew_token)]
    return settings.model_copy(update=update)


# --- deleting ------------------------------------------------------------------------------------

def size_of(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return total


def describe(path: Path) -> str:
    return f"{path} ({size_of(path) / 1e6:.0f} MB)" if path.exists() else f"{path} (absent)"


def reset(settings: Settings) -> list[Path]:
    """Delete the embedded database's data and the demo's state; returns what was deleted."""
    gone = []
    for path in (settings.data_dir / "postgres", settings.data_dir / "demo",
                 settings.spool_path):
        if path.exists():
            shutil.rmtree(path)
            gone.append(path)
    return gone


# --- progress ------------------------------------------------------------------------------------

class Progress:
    """How far the history is loaded; read by the API (``/api/v1/demo``) and the console."""

    def __init__(self) -> None:
        self.loading = False
        self.fraction = 0.0
        self.eta_s: float | None = None
        self.resumed = False
        self._started = time.monotonic()

    def begin(self, resumed: bool) -> None:
        self.loading, self.resumed, self.fraction = True, resumed, 0.0
        self._started = time.monotonic()

    def update(self, fraction: float) -> None:
        self.fraction = min(1.0, max(0.0, fraction))
        spent = time.monotonic() - self._started
        self.eta_s = spent * (1 - self.fraction) / self.fraction if self.fraction > 0.02 else None

    def finish(self) -> None:
        self.loading, self.fraction, self.eta_s = False, 1.0, 0.0

    def as_json(self) -> dict:
        return {"loading": self.loading, "progress_pct": round(self.fraction * 100),
                "eta_s": None if self.eta_s is None else round(self.eta_s),
                "resumed": self.resumed}


class ConsoleBar:
    """A progress bar on a terminal; on a pipe (a log, a test) a line every 10 %."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self._last_step = -1
        self._last_draw = 0.0

    def show(self, progress: Progress, label: str) -> None:
        pct = int(progress.fraction * 100)
        eta = "" if progress.eta_s is None else f" · noch ~{progress.eta_s:.0f} s"
        if self.tty:
            if time.monotonic() - self._last_draw < 0.5 and pct < 100:
                return
            self._last_draw = time.monotonic()
            filled = pct // 4
            self.stream.write(f"\r{label}: [{'#' * filled}{'.' * (25 - filled)}] {pct:3d} %{eta}  ")
            if pct >= 100:
                self.stream.write("\n")
        elif pct // 10 > self._last_step:
            self._last_step = pct // 10
            self.stream.write(f"{label}: {pct} %{eta}\n")
        self.stream.flush()


def load_history(simulation, sink, until: datetime, stop: threading.Event, progress: Progress,
                 bar: ConsoleBar, label: str, step: timedelta = timedelta(hours=2)) -> None:
    """Run the simulation up to ``until`` in steps, reporting how far it got."""
    begin = cursor = simulation.now
    span = max((until - begin).total_seconds(), 1.0)
    while not stop.is_set() and cursor < until:
        cursor = min(until, cursor + step)
        simulation.run([sink], stop=stop, until=cursor)
        progress.update((cursor - begin).total_seconds() / span)
        bar.show(progress, label)


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


# --- the fleet, in a process of its own ------------------------------------------------------------

@dataclass(frozen=True)
class FleetJob:
    """What the fleet's process needs; plain values, as it is spawned, not forked."""

    data_dir: str
    seed: int
    speed: float
    mqtt_host: str
    mqtt_port: int
    fresh_start: datetime | None  # None: continue the saved simulation


def run_fleet(job: FleetJob, stop, events) -> None:
    """The simulator's process: load or create the simulation, send its history at full speed,
    then go on live until ``stop``; then save it. Reports on ``events``:
    ("progress", fraction, eta_s), ("loaded",), ("saved", ok)."""
    from simulator.engine import Simulation
    from simulator.scenario import load
    from simulator.sinks import MqttSink

    store = DemoStore(Path(job.data_dir))
    simulation = None
    if job.fresh_start is None:
        try:
            with open(store.simulation_path, "rb") as saved:
                simulation = pickle.load(saved)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError) as err:
            log.warning("demo: the saved simulation cannot be read (%s); the fleet starts "
                        "anew", err)
    if simulation is None:
        simulation = Simulation(load(), seed=job.seed, start=job.fresh_start or utc_now() - HISTORY,
                                duration=DURATION)
    progress = Progress()
    progress.begin(job.fresh_start is None)

    class Reporter:
        def show(self, p: Progress, label: str) -> None:
            events.put(("progress", p.fraction, p.eta_s))

    history = MqttSink(job.mqtt_host, job.mqtt_port, client_id="bauhof-demo-history",
                       max_rate=HISTORY_RATE)
    sink = MqttSink(job.mqtt_host, job.mqtt_port, client_id="bauhof-demo")
    halt = threading.Event()
    parent = os.getppid()
    orphaned = threading.Event()

    def watch() -> None:
        # A parent killed with SIGKILL sets no event: the fleet would simulate on forever.
        while not stop.wait(1.0):
            if os.getppid() != parent:
                orphaned.set()
                break
        halt.set()

    threading.Thread(target=watch, daemon=True).start()
    try:
        load_history(simulation, history, utc_now(), halt, progress, Reporter(), "")
        history.close()
        if not halt.is_set():
            events.put(("loaded",))
            simulation.run([sink], speed=job.speed, stop=halt)
    finally:
        sink.close()
        if orphaned.is_set():
            # What it sent since the service died was never stored: the next demo starts from
            # the last saved state and sends it again (deduplicated where it was stored).
            return
        try:
            store.save_simulation(simulation)
            events.put(("saved", True))
        except OSError as err:
            log.error("demo: the simulation could not be saved: %s", err)
            events.put(("saved", False))
