"""The bauhof command as a newcomer uses it: demo on embedded servers, decode, config errors."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import httpx

from conftest import embedded_data_dir
from helpers import wait_until


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BAUHOF_")}
    env.update(extra)
    return env


def bauhof(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], env=clean_env(**env),
                          capture_output=True, text=True, timeout=60)


def test_demo_shows_devices_with_readings_on_embedded_servers():
    data_dir = embedded_data_dir()
    demo = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "demo", "--speed", "60"],
        env=clean_env(BAUHOF_DATA_DIR=str(data_dir), BAUHOF_HTTP_PORT="0"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    started = time.monotonic()
    try:
        url = None
        lines = []
        while url is None and time.monotonic() - started < 60:
            line = demo.stdout.readline()
            if not line:
                break
            lines.append(line)
            if match := re.search(r"Open (http://127\.0\.0\.1:\d+)", line):
                url = match[1]
        assert url, "demo printed no URL:\n" + "".join(lines)

        def bins_with_fill_levels():
            latest = httpx.get(f"{url}/api/v1/latest", params={"kind": "bin"}).json()
            return [d for d in latest if any(v["metric"] == "fill_level_pct"
                                             for v in d["values"])]

        filled = wait_until(lambda: len(bins_with_fill_levels()) >= 10, timeout=45,
                            what="bins with fill levels")
        assert filled
        assert time.monotonic() - started < 60  # "within a minute" on a fresh machine
        devices = httpx.get(f"{url}/api/v1/devices").json()
        assert {d["municipality"] for d in devices} >= {"Wächtersbach", "Bad Orb", "Sinntal"}
        assert httpx.get(f"{url}/health/ready").json()["status"] == "ready"

        demo.send_signal(signal.SIGINT)
        assert demo.wait(30) == 0
    finally:
        demo.kill()
        demo.wait()
        shutil.rmtree(data_dir, ignore_errors=True)
    postgres = subprocess.run(["pgrep", "-f", str(data_dir)], capture_output=True, text=True)
    assert postgres.stdout.strip() == "", "embedded PostgreSQL outlived the demo"


def test_decode_command():
    ok = bauhof("decode", "decentlab/dl-mbx", "02012f000304d200010bb1", "--port", "1")
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    assert out["decoded"]["distance"] == {"displayName": "Distance", "unit": "mm", "value": 1234}
    assert out["normalized"] == {"distance_m": 1.234, "fill_level_pct": None, "battery_v": 2.993}

    bad = bauhof("decode", "decentlab/dl-mbx", "02012f000304d2")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.strip() == "DL-MBX expects 11 bytes for sensor flags 0x0003, got 7"
    unknown = bauhof("decode", "nobody/nothing", "00")
    assert unknown.returncode == 2
    assert "unknown decoder 'nobody/nothing'; known decoders:" in unknown.stderr
    assert "decentlab/dl-mbx" in unknown.stderr and "dragino/lse01" in unknown.stderr


def test_help_lists_every_command_in_plain_text():
    shown = bauhof("--help")
    assert shown.returncode == 0
    for command in ("run", "migrate", "demo", "simulate", "decode", "plan", "evaluate",
                    "uninstall-data"):
        assert re.search(rf"^    {command}\s+\S", shown.stdout, re.M), command
    assert "`" not in shown.stdout and "BAUHOF_" in shown.stdout


def test_configuration_errors_never_show_secrets():
    secret = "hunter2-short"
    result = bauhof("migrate", BAUHOF_API_TOKENS=secret, BAUHOF_MQTT_PORT="not-a-port")
    assert result.returncode == 2
    assert "BAUHOF_API_TOKENS" in result.stderr and "BAUHOF_MQTT_PORT" in result.stderr
    assert secret not in result.stderr + result.stdout
