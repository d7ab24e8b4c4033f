"""How long `bauhof demo` takes to load its week of history, and how long a restart takes.

    python benchmarks/demo_load.py

Runs the real `bauhof demo` twice in a temporary data directory (embedded PostgreSQL and
broker), reads `/api/v1/demo` until the history is loaded, and prints a table: the first start
(a new week) and the restart (continuing the saved simulation). Beside it: the simulator alone
on one core for the same week, without sending, which is the floor for the first start.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def demo_run(data_dir: Path) -> tuple[float, float]:
    """(seconds from start until the history is loaded, uplinks stored)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env.update(BAUHOF_DATA_DIR=str(data_dir), BAUHOF_HTTP_PORT="0")
    started = time.monotonic()
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "demo"], env=env, cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True).start()
    try:
        url = None
        while url is None:
            if process.poll() is not None:
                raise RuntimeError("the demo ended:\n" + "".join(lines[-20:]))
            url = next((m[1] for m in (re.search(r"Open (http://\S+)/api", x) for x in lines)
                        if m), None)
            time.sleep(0.2)
        while httpx.get(f"{url}/api/v1/demo", timeout=10).json()["loading"]:
            time.sleep(0.5)
        loaded = time.monotonic() - started
        metrics = httpx.get(f"{url}/metrics", timeout=10).text
        stored = float(re.search(r'^bauhof_uplinks_stored_total\{source="tts-mqtt"\} (\S+)$',
                                 metrics, re.M)[1])
        return loaded, stored
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(120)


def simulator_alone() -> tuple[float, int]:
    from simulator.engine import Simulation
    from simulator.scenario import load

    class Count:
        n = 0

        def send(self, delivery) -> None:
            self.n += 1

        def close(self) -> None:
            pass

    start = datetime.now(timezone.utc) - timedelta(days=7)
    simulation = Simulation(load(), seed=0, start=start, duration=timedelta(days=365))
    sink = Count()
    began = time.perf_counter()
    simulation.run([sink], until=start + timedelta(days=7))
    return time.perf_counter() - began, sink.n


def main() -> None:
    data_dir = Path(tempfile.mkdtemp(prefix="bauhof-demo-bench-"))
    os.chmod(data_dir, 0o755)  # as root the embedded PostgreSQL runs as another user
    try:
        first, stored_first = demo_run(data_dir)
        second, stored_second = demo_run(data_dir)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    alone, count = simulator_alone()
    print(f"# bauhof demo, default scenario, {os.cpu_count()} cores")
    print(f"{'run':<44} {'seconds':>8} {'uplinks':>9}")
    print(f"{'first start: a week of history, loaded':<44} {first:8.1f} {stored_first:9.0f}")
    print(f"{'restart: continuing the saved simulation':<44} {second:8.1f} {stored_second:9.0f}")
    print(f"{'the simulator alone for the week, no sending':<44} {alone:8.1f} {count:9d}")


if __name__ == "__main__":
    main()
