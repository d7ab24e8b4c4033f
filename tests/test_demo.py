"""`bauhof demo` as a newcomer runs it twice: the week loads with its progress shown, every
button works with the printed token, and a restart continues instead of sending a second week
(issue 17). Slow: two real demos on embedded servers, the first loading a simulated week."""
from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from conftest import embedded_data_dir
from helpers import wait_until
from test_cli import clean_env

pytestmark = pytest.mark.slow


class Demo:
    def __init__(self, data_dir, *args: str) -> None:
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", *args],
            env=clean_env(BAUHOF_DATA_DIR=str(data_dir), BAUHOF_HTTP_PORT="0"),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        threading.Thread(target=self._read, daemon=True).start()
        self.url = wait_until(lambda: self._find(r"Open (http://127\.0\.0\.1:\d+)"), timeout=90,
                              what="the demo's address")
        self.crew = self._find(r"crew ([\w-]{20,})")
        self.admin = self._find(r"admin ([\w-]{20,})")

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)

    def _find(self, pattern: str) -> str | None:
        for line in list(self.lines):
            if match := re.search(pattern, line):
                return match[1]
        return None

    def get(self, path: str, **params) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, timeout=30)

    def loaded(self, timeout: float) -> None:
        wait_until(lambda: not self.get("/api/v1/demo").json()["loading"], timeout=timeout,
                   interval=1, what="the demo's history to load")

    def metric(self, name: str) -> float:
        match = re.search(rf"^{name}{{source=\"tts-mqtt\"}} (\S+)$",
                          self.get("/metrics").text, re.M)
        return float(match[1]) if match else 0.0

    def stop(self) -> None:
        self.process.send_signal(signal.SIGINT)
        assert self.process.wait(60) == 0, "".join(self.lines[-30:])


def first_hour_in_chromium(demo: Demo) -> bool:
    """A newcomer in Chromium on a phone: the printed link, "geleert" on the first stop, then
    the overview, "quittieren" on an alert. False where no browser is installed."""
    try:
        from playwright.sync_api import sync_playwright
        from test_browser import ARGS, ARTIFACTS, CHROMIUM, PHONE
    except ImportError:
        return False
    if not Path(CHROMIUM).exists():
        return False
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport=PHONE, locale="de-DE", is_mobile=True,
                                          has_touch=True, timezone_id="Europe/Berlin")
            context.route(lambda url: not url.startswith(demo.url),
                          lambda route: route.abort("internetdisconnected"))
            page = context.new_page()
            page.set_default_timeout(30000)
            page.goto(f"{demo.url}/tagesroute#token={demo.crew}")  # as the demo printed it
            page.locator("#stop-1 button.btn-done").click()
            page.locator("#stop-1[data-status=done]").wait_for()
            page.screenshot(path=ARTIFACTS / "demo-tagesroute.png")
            page.goto(f"{demo.url}/uebersicht")  # the token stays in the browser
            item = page.locator("li.alert[data-status=open]:visible").first
            item.wait_for()
            alert = item.get_attribute("data-alert")
            item.locator("button.alert-ack").click()
            page.locator(f"li[data-alert='{alert}'][data-status=acknowledged]").wait_for()
            page.screenshot(path=ARTIFACTS / "demo-uebersicht.png")
        finally:
            browser.close()
    assert demo.get("/api/v1/alerts", status="acknowledged").json()[0]["acknowledged_by"] == \
        "crew"
    return True


def test_the_demo_loads_works_and_resumes_without_a_second_week():
    data_dir = embedded_data_dir()
    first = second = None
    try:
        first = Demo(data_dir)
        started = time.monotonic()
        assert first.crew and first.admin and f"#token={first.crew}" in "".join(first.lines)
        progress = first.get("/api/v1/demo").json()
        assert progress["loading"] and not progress["resumed"]
        first.loaded(timeout=300)
        load_s = time.monotonic() - started
        stored = first.metric("bauhof_uplinks_stored_total")
        assert stored > 100_000  # a week of 451 devices
        assert any("Vorgeschichte wird geladen: 100 %" in line for line in first.lines)
        # No device was called offline for the silence of a fresh start.
        assert first.get("/api/v1/alerts", rule_id="device_offline").json() == []
        # The printed crew token marks a stop done and acknowledges an alert: in Chromium
        # through the printed link where it is installed (CI), else through the API.
        day = wait_until(lambda: first._find(r"tagesroute\?datum=(\d{4}-\d{2}-\d{2})"),
                         timeout=60, what="the demo's plan")
        if not first_hour_in_chromium(first):
            plans = first.get("/api/v1/routes", date=day, kind="collection").json()["plans"]
            stop = next(s for p in plans for s in p["stops"])
            done = httpx.patch(
                f"{first.url}/api/v1/routes/{stop['plan_id']}/stops/{stop['seq']}",
                json={"status": "done"}, timeout=30,
                headers={"Authorization": f"Bearer {first.crew}"})
            assert done.status_code == 200, done.text
        plans = first.get("/api/v1/routes", date=day, kind="collection").json()["plans"]
        stop = next(s for p in plans for s in p["stops"] if s["status"] == "done")
        assert stop["done_by"] == "crew"
        first.stop()

        second = Demo(data_dir)
        assert (second.crew, second.admin) == (first.crew, first.admin)
        assert any("weiter, wo sie beim letzten Lauf stand" in line for line in second.lines)
        second.loaded(timeout=120)
        again = second.get("/api/v1/routes", date=day, kind="collection").json()["plans"]
        kept = next(s for p in again for s in p["stops"]
                    if (s["plan_id"], s["seq"]) == (stop["plan_id"], stop["seq"]))
        assert kept["status"] == "done"  # the same plan, not a new one
        # Only what the fleet sent since it stopped; nothing of the week again.
        assert second.metric("bauhof_uplinks_duplicate_total") == 0
        assert second.metric("bauhof_uplinks_stored_total") < stored / 50
        # The CLI beside the running demo: it uses the demo's embedded database.
        shown = subprocess.run(
            [sys.executable, "-m", "app.cli", "plan", "--show", "--date", day,
             "--kind", "collection"], env=clean_env(BAUHOF_DATA_DIR=str(data_dir)),
            capture_output=True, text=True, timeout=120)
        assert shown.returncode == 0, shown.stderr
        assert "erledigt (Team)" in shown.stdout  # the stop the crew marked, day only
        second.stop()
    finally:
        for demo in (first, second):
            if demo is not None and demo.process.poll() is None:
                demo.process.kill()
                demo.process.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    print(f"the demo's week loaded in {load_s:.0f} s")
