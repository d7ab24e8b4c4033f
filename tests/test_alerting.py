"""Alerts in the service: the table, evaluation cycles over the store, the API, and a stored
batch that raises an alert through the running service."""
from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import psycopg
import pytest

from alerts import AlertState, Router, RouterConfig, load_rules
from alerts.notify import DeliveryError, Notification
from app.alerting import _UPSERT, Alerting, _row, load_windows, state_of
from app.planning import load_config
from helpers import TOKEN, Publisher, running_service, wait_until
from simulator import reporters
from simulator.tts import VirtualDevice, encode

CREW = "crew-token-0123456789abcdef"
T0 = datetime(2026, 4, 8, 6, 0, tzinfo=timezone.utc)
BIN = {"distance_empty_m": 1.0, "distance_full_m": 0.15, "site_type": "bus_stop"}


def connect(db: str):
    return lambda: psycopg.connect(db)


def state(device: str = "bin-1", rule: str = "bin_full", status: str = "open",
          first_seen: datetime = T0, **changes) -> AlertState:
    base = AlertState(f"{device}|{rule}|{first_seen.isoformat()}|{status}", rule, device, status,
                      first_seen, "info", "Wächtersbach", "Bushaltestelle 1",
                      opened_at=first_seen if status != "pending" else None,
                      last_notified_at=first_seen, value=93.5,
                      detail={"fill_pct": 93.5, "threshold_pct": 90.0})
    return replace(base, **changes)


def add_device(db: str, device_id: str, kind: str = "bin", attributes: dict | None = None,
               municipality: str = "Wächtersbach", decoder: str = "decentlab/dl-mbx") -> None:
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO devices (device_id, kind, name, municipality, decoder,"
                     " attributes) VALUES (%s, %s, %s, %s, %s, %s)",
                     (device_id, kind, f"Name of {device_id}", municipality, decoder,
                      psycopg.types.json.Jsonb(attributes if attributes is not None else BIN)))


def add_readings(db: str, device_id: str, metric: str, points: list[tuple[datetime, float]],
                 uplinks: bool = True) -> None:
    with psycopg.connect(db) as conn:
        for t, value in points:
            conn.execute("INSERT INTO readings (time, device_id, metric, value)"
                         " VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                         (t, device_id, metric, value))
            if uplinks:
                conn.execute(
                    "INSERT INTO raw_uplinks (received_at, device_id, dedup_key, network,"
                    " source, f_port, f_cnt, frm_payload) VALUES (%s, %s, %s, 'tts', 'test', 1,"
                    " 0, '') ON CONFLICT DO NOTHING", (t, device_id, f"k-{t.timestamp()}"))
            conn.execute("INSERT INTO latest_readings (device_id, metric, time, value)"
                         " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id, metric) DO UPDATE"
                         " SET time = EXCLUDED.time, value = EXCLUDED.value"
                         " WHERE latest_readings.time < EXCLUDED.time",
                         (device_id, metric, t, value))


def every(start: datetime, n: int, step: timedelta = timedelta(minutes=30)) -> list[datetime]:
    return [start + k * step for k in range(n)]


# ------------------------------------------------------------------------------------ table

def test_alert_rows_round_trip(db):
    with psycopg.connect(db) as conn:
        for s in (state(), state("bin-2", "bin_fire", "acknowledged", severity="critical",
                                 acknowledged_at=T0 + timedelta(minutes=5),
                                 acknowledged_by="crew", reminders_sent=2,
                                 clear_since=T0 + timedelta(minutes=30)),
                  state("bin-3", status="closed", closed_at=T0 + timedelta(hours=1)),
                  state("bin-4", status="pending")):
            conn.execute(_UPSERT, _row(s))
            back = state_of(conn.execute(
                "SELECT id, rule_id, device_id, device_name, municipality, severity, status,"
                " first_seen, opened_at, acknowledged_at, acknowledged_by, closed_at,"
                " clear_since, last_notified_at, reminders_sent, value, detail FROM alerts"
                " WHERE id = %s", (s.id,)).fetchone())
            assert back == s


def test_only_one_alert_per_device_and_rule_is_not_closed(db):
    with psycopg.connect(db, autocommit=True) as conn:
        first = state()
        conn.execute(_UPSERT, _row(first))
        later = state(first_seen=T0 + timedelta(hours=2))
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(_UPSERT, _row(later))
        conn.execute(_UPSERT, _row(state("bin-1", "bin_fire")))  # another rule: fine
        conn.execute(_UPSERT, _row(replace(first, status="closed",
                                           closed_at=T0 + timedelta(hours=1))))
        conn.execute(_UPSERT, _row(later))  # once the first is closed, a new one may open
        with pytest.raises(psycopg.errors.CheckViolation):  # a role, never a person
            conn.execute(_UPSERT, _row(state("bin-9", status="acknowledged",
                                             acknowledged_at=T0, acknowledged_by="Hans Meier")))


# ------------------------------------------------------------------------- evaluation cycles

class Recorder:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail, self.sent = name, fail, []

    def send(self, n: Notification) -> None:
        if self.fail:
            raise DeliveryError(f"{self.name} is down")
        self.sent.append(n)


def router(*channels: Recorder) -> Router:
    config = RouterConfig.model_validate({
        "channels": {c.name: {"type": "webhook", "url": "http://127.0.0.1:9/"} for c in channels},
        "routes": [{"channels": [c.name for c in channels]}]})
    return Router(config, {c.name: c for c in channels})


def test_a_cycle_opens_persists_notifies_and_closes(db):
    add_device(db, "bin-1")
    add_device(db, "bin-2")
    times = every(T0 - timedelta(hours=2), 5)
    add_readings(db, "bin-1", "fill_level_pct", list(zip(times, [80, 88, 91, 93, 95])))
    add_readings(db, "bin-2", "fill_level_pct", list(zip(times, [20, 21, 22, 23, 24])))
    good, broken = Recorder("good"), Recorder("broken", fail=True)
    alerting = Alerting(load_rules(), router(good, broken), connect(db), load_config(None))

    report = alerting.evaluate(now=T0)
    assert [(e.kind, e.alert.rule_id, e.alert.device_id) for e in report.events] == [
        ("opened", "bin_full", "bin-1")]
    assert [n.kind for n in good.sent] == ["opened"]  # the broken channel did not stop it
    with psycopg.connect(db) as conn:
        rows = conn.execute("SELECT device_id, rule_id, status, opened_at, value FROM alerts"
                            ).fetchall()
        assert rows == [("bin-1", "bin_full", "open", T0, 93.0)]
        audit = conn.execute("SELECT channel, event, ok, error IS NOT NULL, time"
                             " FROM alert_notifications ORDER BY channel").fetchall()
        assert audit == [("broken", "opened", False, True, T0), ("good", "opened", True, False, T0)]

    # nothing new: the same alert, no second one, no notification
    assert alerting.evaluate(now=T0 + timedelta(minutes=5)).events == []
    # emptied: the median of the last three readings drops below 70 %
    later = every(T0 + timedelta(minutes=30), 3)
    add_readings(db, "bin-1", "fill_level_pct", list(zip(later, [5, 5, 6])))
    add_readings(db, "bin-2", "fill_level_pct", list(zip(later, [25, 26, 27])))
    report = alerting.evaluate(now=later[-1])
    assert [e.kind for e in report.events] == ["closed"]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT status, closed_at FROM alerts").fetchall() == [
            ("closed", later[-1])]
    assert [n.kind for n in good.sent] == ["opened", "closed"]


def test_windows_hold_only_readings_up_to_now_and_forecast_bins(db):
    add_device(db, "bin-1")
    add_device(db, "wetter-1", "weather", {}, decoder="decentlab/dl-atm41")
    times = every(T0 - timedelta(days=3), 6 * 24 * 2)  # 6 days every 30 min, 3 in the future
    add_readings(db, "bin-1", "fill_level_pct",
                 [(t, 10 + 0.4 * n % 60) for n, t in enumerate(times)])
    add_readings(db, "wetter-1", "temperature_c", [(t, 5.0) for t in times])
    rules = load_rules()
    with psycopg.connect(db) as conn:
        windows = {w.device_id: w for w in load_windows(conn, rules, load_config(None), T0)}
    assert set(windows) == {"bin-1", "wetter-1"}
    fill = windows["bin-1"].readings["fill_level_pct"]
    assert fill[:, 0].max() <= T0.timestamp()
    assert fill[:, 0].min() > (T0 - timedelta(hours=48)).timestamp()  # the rule's look-back
    assert windows["bin-1"].uplinks.max() <= T0.timestamp()
    assert windows["bin-1"].full_at is not None  # the planner's forecast
    # no plans stored: the next collection is the next working day's shift start
    assert windows["bin-1"].next_collection == datetime(
        2026, 4, 9, 6, 30, tzinfo=ZoneInfo("Europe/Berlin")).timestamp()
    assert windows["wetter-1"].full_at is None
    assert windows["wetter-1"].readings["temperature_c"][:, 0].max() <= T0.timestamp()


def test_a_pending_alert_that_clears_is_forgotten(db):
    add_device(db, "boden-1", "soil", {}, decoder="dragino/lse01")
    times = every(T0 - timedelta(hours=3), 4, timedelta(hours=1))
    add_readings(db, "boden-1", "soil_moisture_vwc_pct", list(zip(times, [16, 15, 15, 15])))
    alerting = Alerting(load_rules(), None, connect(db), load_config(None))
    alerting.evaluate(now=T0)
    with psycopg.connect(db) as conn:  # soil_dry waits 12 h before it opens: pending
        assert conn.execute("SELECT rule_id, status FROM alerts").fetchall() == [
            ("soil_dry", "pending")]
    rain = every(T0 + timedelta(hours=1), 3, timedelta(hours=1))
    add_readings(db, "boden-1", "soil_moisture_vwc_pct", list(zip(rain, [30, 31, 31])))
    assert alerting.evaluate(now=rain[-1]).events == []
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM alerts").fetchone()[0] == 0


# ----------------------------------------------------------------------------------------- API

def insert(db: str, *states: AlertState) -> None:
    with psycopg.connect(db) as conn:
        for s in states:
            conn.execute(_UPSERT, _row(s))


def test_api_lists_filters_and_acknowledges(db, tmp_path):
    add_device(db, "bin-1")
    add_device(db, "bin-2", municipality="Birstein")
    insert(db,
           state("bin-1", "bin_full", first_seen=T0),
           state("bin-1", "bin_fire", severity="critical", first_seen=T0 + timedelta(hours=1),
                 detail={"temperature_c": 81.0, "rise_k": 60.0,
                         "reading_at": (T0 + timedelta(hours=1)).timestamp()}, value=81.0),
           # Closed, but newer than every open one: still listed after them.
           state("bin-1", "device_offline", status="closed", first_seen=T0 + timedelta(hours=3),
                 closed_at=T0 + timedelta(hours=4)),
           state("bin-2", "bin_full", municipality="Birstein", status="closed",
                 first_seen=T0 - timedelta(days=1), closed_at=T0 - timedelta(hours=20)),
           state("bin-2", "device_offline", municipality="Birstein", severity="warning",
                 first_seen=T0 + timedelta(hours=2)),
           state("bin-2", "soil_dry", status="pending"))
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: storm\n    enabled: false\n"
                     "  - id: bin_full\n    params: {fill_pct: 85}\n")
    with running_service(db, alert_interval_s=0, alert_on_batch=False, alert_rules=rules,
                         crew_tokens=[CREW]) as (service, client):
        listed = client.get("/api/v1/alerts").json()
        # the open ones first, each group newest first; the pending one is no alert yet
        assert [(a["device_id"], a["rule_id"]) for a in listed] == [
            ("bin-2", "device_offline"), ("bin-1", "bin_fire"), ("bin-1", "bin_full"),
            ("bin-1", "device_offline"), ("bin-2", "bin_full")]
        fire = listed[1]
        assert set(fire) >= {"id", "rule_id", "device_id", "device_name", "municipality",
                             "severity", "status", "first_seen", "opened_at", "acknowledged_at",
                             "closed_at", "value", "detail", "title_de", "title_en"}
        assert (fire["title_de"], fire["title_en"]) == ("Brandverdacht", "Suspected fire")
        assert fire["device_name"] == "Name of bin-1" and fire["value"] == 81.0
        # times in the detail as ISO 8601, like every other time in the answer
        assert fire["detail"] == {"temperature_c": 81.0, "rise_k": 60.0,
                                  "reading_at": "2026-04-08T07:00:00Z"}

        def ids(**query) -> list[str]:
            answer = client.get("/api/v1/alerts", params=query)
            assert answer.status_code == 200, answer.text
            return [(a["device_id"], a["rule_id"]) for a in answer.json()]

        assert ids(status="closed") == [("bin-1", "device_offline"), ("bin-2", "bin_full")]
        assert ids(status="active", municipality="Birstein") == [("bin-2", "device_offline")]
        assert ids(severity="critical") == [("bin-1", "bin_fire")]
        assert ids(device_id="bin-1", rule_id="bin_full") == [("bin-1", "bin_full")]
        assert ids(limit=1, offset=1) == [("bin-1", "bin_fire")]
        assert client.get("/api/v1/alerts", params={"status": "pending"}).status_code == 422
        # An offset PostgreSQL cannot take is the caller's error, not the server's.
        assert client.get("/api/v1/alerts", params={"offset": 10**32}).status_code == 422

        url = f"/api/v1/alerts/{fire['id']}/acknowledge"
        assert client.post(url).status_code == 401
        assert client.post(url, headers={"Authorization": "Bearer wrong-token-0123456789"}
                           ).status_code == 401
        answer = client.post(url, headers={"Authorization": f"Bearer {CREW}"})
        assert answer.status_code == 200, answer.text
        acked = answer.json()
        assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "crew"
        assert acked["acknowledged_at"] is not None
        again = client.post(url, headers={"Authorization": f"Bearer {TOKEN}"}).json()
        assert again == acked  # acknowledging again changes nothing
        assert ids(status="acknowledged") == [("bin-1", "bin_fire")]
        assert ids(status="open") == [("bin-2", "device_offline"), ("bin-1", "bin_full")]
        closed = client.get("/api/v1/alerts", params={"status": "closed"}).json()[0]
        assert client.post(f"/api/v1/alerts/{closed['id']}/acknowledge",
                           headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 409
        assert client.post("/api/v1/alerts/nope/acknowledge",
                           headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404

        rules_now = {r["id"]: r for r in client.get("/api/v1/alert-rules").json()}
        assert rules_now["storm"]["enabled"] is False
        assert rules_now["bin_full"]["params"]["fill_pct"] == 85
        assert rules_now["bin_full"]["params"]["clear_pct"] == 70
        assert rules_now["bin_fire"]["remind_every"] == "30min"
        assert rules_now["frost"]["title_de"] == "Glättegefahr"


def test_broken_alert_rules_stop_the_start(db, tmp_path):
    from app.service import Service
    from helpers import make_settings

    rules = tmp_path / "rules.yaml"
    rules.write_text("rules:\n  - id: bin_full\n    params: {fill_percent: 85}\n")
    with pytest.raises(ValueError, match="bin_full"):
        Service(make_settings(alert_rules=rules), db)


# ------------------------------------------------------------- a stored batch, end to end

def test_a_stored_batch_raises_an_alert_through_the_service(db, mqtt_broker, app_id):
    device = VirtualDevice("bin-alarm-001", "70B3D57EDF0000A1", app_id,
                           brand_id="decentlab", model_id="dl-mbx")
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"],
                         alert_interval_s=3600, alert_batch_delay_s=0.2) as (service, client), \
            Publisher(mqtt_broker) as pub:
        client.put(f"/api/v1/devices/{device.device_id}",
                   json={"kind": "bin", "name": "Bushaltestelle 1", "municipality": "Bad Orb",
                         "decoder": "decentlab/dl-mbx",
                         "attributes": {"distance_empty_m": 1.0, "distance_full_m": 0.15}},
                   headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        time.sleep(0.5)  # the writer reloads the registry
        assert client.get("/api/v1/alerts").json() == []
        f_port, payload = reporters.report("decentlab/dl-mbx",
                                           {"distance_m": 0.2, "battery_v": 3.0})
        pub.publish(device.topic, encode(device.uplink(payload, f_port)))

        def alert():
            found = client.get("/api/v1/alerts", params={"status": "open",
                                                         "device_id": device.device_id}).json()
            return found if found else None

        found, = wait_until(alert, timeout=15, what="the bin_full alert")
        assert found["rule_id"] == "bin_full" and found["municipality"] == "Bad Orb"
        assert found["value"] == pytest.approx(94.1, abs=0.2)
        assert found["title_de"] == "Mülleimer voll"
        assert service.alerting_job.cycles >= 2  # the start's round and the batch's


def test_passwords_of_the_alert_routes_never_reach_the_log(tmp_path, capfd):
    import logging

    from app import logs
    from app.alerting import Alerting
    from planner import config as planner_config

    routes = tmp_path / "routes.yaml"
    routes.write_text(
        "channels:\n"
        "  mail: {type: email, host: 127.0.0.1, port: 2525, sender: a@b.de,\n"
        "         recipients: [c@d.de], username: bauhof, password: Geheim-Passwort-4711}\n"
        "routes:\n  - {channels: [mail]}\n", encoding="utf-8")
    logs.configure("INFO")
    try:
        Alerting.from_settings(None, routes, lambda: None, planner_config.load())
        logging.getLogger("test").warning("login with Geheim-Passwort-4711 failed")
    finally:
        logs.configure("WARNING")
    err = capfd.readouterr().err
    assert "Geheim-Passwort-4711" not in err and "***" in err


def test_a_fresh_start_opens_no_offline_alerts_until_devices_had_their_chance(db):
    """The first start of a service (or the demo) finds every device silent since the data it
    has: each device gets its threshold to report before it is called offline."""
    now = datetime.now(timezone.utc).replace(microsecond=0)
    for n in range(3):
        add_device(db, f"bin-{n}")
        add_readings(db, f"bin-{n}", "fill_level_pct",
                     [(now - timedelta(days=2, minutes=15 * i), 40.0) for i in range(8)])
    with running_service(db, alert_interval_s=0, alert_on_batch=False, plan_at="") as (
            service, client):
        assert service.alerting.watching_since is not None
        assert service.alerting.evaluate().events == []
        assert client.get("/api/v1/alerts").json() == []
        # Two hours later (bins: at least 2 h of silence) they are offline, once each.
        later = now + timedelta(hours=2, minutes=5)
        events = service.alerting.evaluate(now=later).events
    assert sorted((e.kind, e.alert.device_id, e.alert.rule_id) for e in events) == [
        ("opened", f"bin-{n}", "device_offline") for n in range(3)]
