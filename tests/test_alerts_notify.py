"""Notifications: texts, routing with quiet hours, and the channels against real servers
(aiosmtpd for e-mail, the test MQTT broker, a local HTTP server for the webhook)."""
from __future__ import annotations

import email
import email.policy
import http.server
import json
import queue
import shutil
import socket
import ssl
import subprocess
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import paho.mqtt.client as mqtt
import pytest

from alerts import messages
from alerts.lifecycle import AlertState, Closed, Opened, Reminder
from alerts.notify import (DeliveryError, EmailChannel, MqttChannel, Notification, QuietHours,
                           Router, RouterConfig, WebhookChannel, compose, load_router_config,
                           topic_part)
from alerts.rules import load_rules

RULES = load_rules()
BERLIN = ZoneInfo("Europe/Berlin")


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=BERLIN)


def alert(rule_id: str = "bin_full", severity: str = "info", *, municipality: str = "Wächtersbach",
          detail: dict | None = None, value: float | None = 95.0, alert_id: str = "a-1",
          opened: datetime = local(2026, 4, 7, 21, 30)) -> AlertState:
    return AlertState(alert_id, rule_id, "bin-waechtersbach-bs-003", "open", opened, severity,
                      municipality, "Bushaltestelle 3, Wächtersbach", opened_at=opened,
                      last_notified_at=opened, value=value,
                      detail=detail if detail is not None else {"fill_pct": 95.0,
                                                                "threshold_pct": 90.0})


def opened(a: AlertState) -> Notification:
    return compose(Opened(a, a.opened_at), RULES)


def closed(a: AlertState, at: datetime) -> Notification:
    return compose(Closed(replace(a, status="closed", closed_at=at), at), RULES)


def reminder(a: AlertState, at: datetime, n: int = 1) -> Notification:
    return compose(Reminder(replace(a, reminders_sent=n, last_notified_at=at), at), RULES)


# ------------------------------------------------------------------------------------ texts

def test_both_languages_have_the_same_keys_and_fields():
    de, en = messages.MESSAGES["de"], messages.MESSAGES["en"]
    assert set(de) == set(en)
    for key in de:
        assert messages.fields_of(de[key]) == messages.fields_of(en[key]), key
    for rule in RULES:
        for lang in messages.LANGUAGES:
            assert messages.has(f"rule.{rule.message_key}.title", lang)
            assert messages.has(f"rule.{rule.message_key}.body", lang)


def test_key_texts_the_bauhof_asked_for():
    de = messages.MESSAGES["de"]
    assert de["rule.bin_full.title"] == "Mülleimer voll"
    assert de["rule.bin_fire.title"] == "Brandverdacht"
    assert de["rule.frost.title"] == "Glättegefahr"
    assert de["rule.device_offline.title"] == "Gerät meldet sich nicht"


def test_render_never_fails():
    assert messages.render("rule.bin_full.body", "de", {}) == "Füllstand – % (voll ab – %)."
    assert messages.render("rule.bin_full.body", "de", {"fill_pct": "x", "threshold_pct": 90}) \
        == "Füllstand x % (voll ab 90 %)."
    assert messages.render("no.such.key", "de") == "no.such.key"


def test_compose_german_first_with_local_times_and_variants():
    n = opened(alert())
    assert n.subject["de"] == ("[Hinweis] Alarm: Mülleimer voll – Bushaltestelle 3, "
                               "Wächtersbach")
    assert n.subject["en"].startswith("[Info] Alert: Bin full")
    assert "Füllstand 95 % (voll ab 90 %)." in n.text["de"]
    assert "Seit: 07.04.2026 21:30" in n.text["de"]
    assert "Gemeinde: Wächtersbach" in n.text["de"]
    data = n.to_json()
    assert data["event"] == "opened" and data["severity"] == "info"
    assert data["title"] == {"de": "Mülleimer voll", "en": "Bin full"}
    json.dumps(data)  # serialisable as it is
    offline = alert("device_offline", "warning", detail={
        "last_seen_at": local(2026, 4, 7, 20, 5).timestamp(), "silent_h": 1.5,
        "interval_min": 10.0})
    assert "Letzte Meldung am 07.04.2026 20:05, seit 1.5 h" in opened(offline).text["de"]
    tilted = alert("bin_tilted", "warning", detail={"variant": "tilt", "tilt_deg": 80.0,
                                                     "threshold_deg": 45.0})
    assert opened(tilted).body["de"] == "Sensor um 80° geneigt (ab 45°)."
    gone = closed(alert(), local(2026, 4, 8, 7, 10))
    assert gone.subject["de"].startswith("[Hinweis] Entwarnung: Mülleimer voll")
    assert "Behoben: 08.04.2026 07:10" in gone.text["de"]


# ----------------------------------------------------------------------------------- routing

class Recorder:
    def __init__(self, name: str, fail: bool = False) -> None:
        self.name, self.fail, self.sent = name, fail, []

    def send(self, n: Notification) -> None:
        if self.fail:
            raise DeliveryError("down")
        self.sent.append(n)


CONFIG = """
notifications:
  timezone: Europe/Berlin
  channels:
    leitstelle: {type: webhook, url: "http://127.0.0.1:9/hook", secret: s3cret}
    bauhof_mail: {type: email, host: 127.0.0.1, port: 2525, sender: alarm@bauhof.example,
                  recipients: [leitung@bauhof.example]}
    broker: {type: mqtt, host: 127.0.0.1}
  routes:
    - name: alles
      municipalities: ["*"]
      min_severity: warning
      channels: [leitstelle, broker]
      quiet_hours: {start: "20:00", end: "06:00", allow: critical}
    - name: waechtersbach
      municipalities: [Wächtersbach]
      min_severity: info
      events: [opened]
      channels: [bauhof_mail]
"""


def router() -> tuple[Router, dict[str, Recorder]]:
    config = load_router_config(text=CONFIG)
    recorders = {name: Recorder(name) for name in config.channels}
    return Router(config, recorders), recorders


def test_config_loads_and_builds_real_channels():
    config = load_router_config(text=CONFIG)
    built = Router(config)
    assert isinstance(built.channels["leitstelle"], WebhookChannel)
    assert isinstance(built.channels["bauhof_mail"], EmailChannel)
    assert isinstance(built.channels["broker"], MqttChannel)
    assert built.channels["leitstelle"].secret == "s3cret"
    with pytest.raises(ValueError, match="unknown channels"):
        RouterConfig.model_validate({"channels": {}, "routes": [{"channels": ["nope"]}]})


def test_routes_by_municipality_severity_and_event():
    r, _ = router()
    day = local(2026, 4, 7, 10, 0)
    info_w = opened(alert(severity="info", opened=day))
    assert [d.channel for d in r.route(info_w, day)] == ["bauhof_mail"]
    warning_elsewhere = opened(alert("frost", "warning", municipality="Birstein", opened=day))
    assert sorted(d.channel for d in r.route(warning_elsewhere, day)) == ["broker", "leitstelle"]
    info_elsewhere = opened(alert(severity="info", municipality="Birstein", opened=day))
    assert r.route(info_elsewhere, day) == []
    # the Wächtersbach route only takes "opened"
    assert r.route(closed(alert(severity="info", opened=day), day), day) == []


def test_quiet_hours_hold_a_warning_and_release_it_at_the_end():
    r, rec = router()
    night = local(2026, 4, 7, 22, 15)
    warning = opened(alert("frost", "warning", municipality="Birstein", opened=night))
    assert r.route(warning, night) == []
    assert [h.release_at for h in r.held] == [local(2026, 4, 8, 6, 0)] * 2
    assert r.flush(local(2026, 4, 8, 5, 59)) == []
    released = r.flush(local(2026, 4, 8, 6, 0))
    assert sorted(d.channel for d in released) == ["broker", "leitstelle"]
    assert r.held == [] and r.flush(local(2026, 4, 8, 7, 0)) == []
    results = r.deliver(released)
    assert all(x.ok for x in results) and rec["leitstelle"].sent == [warning]


def test_critical_goes_through_quiet_hours():
    r, _ = router()
    night = local(2026, 4, 8, 2, 0)
    fire = opened(alert("bin_fire", "critical", municipality="Birstein", opened=night,
                        detail={"temperature_c": 75.0, "rise_k": 30.0, "rise_window_min": 40}))
    assert sorted(d.channel for d in r.route(fire, night)) == ["broker", "leitstelle"]
    assert r.held == []
    assert "Brandverdacht" in fire.subject["de"] and "Notruf 112" in fire.text["de"]


def test_quiet_hours_outside_and_over_a_dst_change():
    quiet = QuietHours(start="20:00", end="06:00")
    assert not quiet.active(local(2026, 4, 7, 19, 59), BERLIN)
    assert quiet.active(local(2026, 4, 7, 20, 0), BERLIN)
    assert quiet.active(local(2026, 4, 8, 5, 59), BERLIN)
    assert not quiet.active(local(2026, 4, 8, 6, 0), BERLIN)
    # the night the clocks go forward: 06:00 local is 04:00 UTC, not 05:00
    end = quiet.ends_after(local(2026, 3, 28, 22, 0), BERLIN)
    assert end == datetime(2026, 3, 29, 4, 0, tzinfo=timezone.utc)
    day = QuietHours(start="12:00", end="13:00", allow="warning")
    assert day.active(local(2026, 4, 7, 12, 30), BERLIN)
    assert not day.holds("warning", local(2026, 4, 7, 12, 30), BERLIN)
    assert day.holds("info", local(2026, 4, 7, 12, 30), BERLIN)


def test_opened_and_closed_in_quiet_hours_say_nothing_and_reminders_collapse():
    r, _ = router()
    night = local(2026, 4, 7, 21, 0)
    a = alert("storm", "warning", municipality="Sinntal", opened=night,
              detail={"gust_ms": 22.0, "gust_kmh": 79.2, "beaufort": 9})
    r.route(opened(a), night)
    r.route(reminder(a, local(2026, 4, 7, 22, 0)), local(2026, 4, 7, 22, 0))
    assert {h.delivery.notification.kind for h in r.held} == {"opened"}
    r.route(closed(a, local(2026, 4, 7, 23, 0)), local(2026, 4, 7, 23, 0))
    assert r.held == []
    # an alert opened by day and still going at night: only the newest reminder waits
    b = alert("storm", "warning", municipality="Sinntal", alert_id="b-1",
              opened=local(2026, 4, 7, 18, 0))
    assert len(r.route(opened(b), local(2026, 4, 7, 18, 0))) == 2
    for n, hour in enumerate((21, 22, 23), start=1):
        r.route(reminder(b, local(2026, 4, 7, hour, 0), n), local(2026, 4, 7, hour, 0))
    assert [h.delivery.notification.reminders_sent for h in r.held] == [3, 3]
    released = r.flush(local(2026, 4, 8, 6, 0))
    assert len(released) == 2 and {d.notification.kind for d in released} == {"reminder"}


def test_deliver_reports_a_failing_channel_and_goes_on():
    config = load_router_config(text=CONFIG)
    recorders = {"leitstelle": Recorder("leitstelle", fail=True), "broker": Recorder("broker"),
                 "bauhof_mail": Recorder("bauhof_mail")}
    r = Router(config, recorders)
    day = local(2026, 4, 7, 10, 0)
    n = opened(alert("storm", "warning", municipality="Sinntal", opened=day,
                     detail={"gust_ms": 22.0}))
    results = r.notify([n], day)
    assert sorted((x.delivery.channel, x.ok) for x in results) == [("broker", True),
                                                                   ("leitstelle", False)]
    assert recorders["broker"].sent == [n]


def test_topic_part():
    assert topic_part("Bad Soden-Salmünster") == "bad-soden-salmuenster"
    assert topic_part("Wächtersbach") == "waechtersbach"
    assert topic_part("a/+#b") == "a-b" and topic_part("") == "unknown"


# ----------------------------------------------------------------------- webhook, real server

class _Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        body = self.rfile.read(length)
        server = self.server
        server.requests.append((dict(self.headers), body))
        status = server.statuses.pop(0) if server.statuses else 204
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    server.requests, server.statuses = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/alerts"


def test_webhook_posts_json_with_the_secret(hook):
    channel = WebhookChannel(_url(hook), secret="s3cret", timeout_s=2)
    n = opened(alert())
    channel.send(n)
    (headers, body), = hook.requests
    assert headers["X-Bauhof-Secret"] == "s3cret"
    assert headers["Content-Type"].startswith("application/json")
    data = json.loads(body.decode("utf-8"))
    assert data["alert_id"] == "a-1" and data["event"] == "opened"
    assert data["title"]["de"] == "Mülleimer voll" and data["municipality"] == "Wächtersbach"
    channel.close()


def test_webhook_retries_with_backoff_then_succeeds(hook):
    hook.statuses = [503, 500]
    sleeps: list[float] = []
    channel = WebhookChannel(_url(hook), retries=3, backoff_s=0.5, sleep=sleeps.append)
    channel.send(opened(alert()))
    assert len(hook.requests) == 3 and sleeps == [0.5, 1.0]
    assert "X-Bauhof-Secret" not in hook.requests[0][0]


def test_webhook_gives_up(hook):
    hook.statuses = [500] * 10
    sleeps: list[float] = []
    channel = WebhookChannel(_url(hook), retries=2, backoff_s=0.1, sleep=sleeps.append)
    with pytest.raises(DeliveryError, match="HTTP 500"):
        channel.send(opened(alert()))
    assert len(hook.requests) == 3 and sleeps == [0.1, 0.2]
    hook.requests.clear()
    hook.statuses = [401]
    with pytest.raises(DeliveryError, match="HTTP 401"):
        channel.send(opened(alert()))
    assert len(hook.requests) == 1  # a refusal is final


def test_webhook_unreachable_and_timeout():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    channel = WebhookChannel(f"http://127.0.0.1:{port}/", retries=1, backoff_s=0,
                             timeout_s=1, sleep=lambda _: None)
    with pytest.raises(DeliveryError, match="ConnectError"):
        channel.send(opened(alert()))
    with socket.socket() as silent:  # accepts, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        channel = WebhookChannel(f"http://127.0.0.1:{silent.getsockname()[1]}/", retries=0,
                                 timeout_s=0.3)
        with pytest.raises(DeliveryError, match="Timeout"):
            channel.send(opened(alert()))


# -------------------------------------------------------------------------- e-mail, aiosmtpd

class _Inbox:
    def __init__(self) -> None:
        self.messages: queue.Queue = queue.Queue()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.messages.put((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content
                           or envelope.content, session.ssl is not None))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def smtp_server():
    from aiosmtpd.controller import Controller

    def start(**kwargs):
        inbox = _Inbox()
        controller = Controller(inbox, hostname="127.0.0.1", port=_free_port(), **kwargs)
        controller.start()
        started.append(controller)
        return inbox, controller.port

    started: list = []
    yield start
    for controller in started:
        controller.stop()


def _read(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)


def test_email_arrives_with_german_subject_and_umlauts(smtp_server):
    inbox, port = smtp_server()
    channel = EmailChannel("127.0.0.1", port, sender="alarm@bauhof.example",
                           recipients=["leitung@bauhof.example", "dienst@bauhof.example"],
                           timeout_s=5)
    fire = alert("bin_fire", "critical", detail={"temperature_c": 71.0, "rise_k": 25.0,
                                                 "rise_window_min": 40.0})
    channel.send(opened(fire))
    sender, recipients, raw, _ = inbox.messages.get(timeout=5)
    assert sender == "alarm@bauhof.example"
    assert recipients == ["leitung@bauhof.example", "dienst@bauhof.example"]
    msg = _read(raw)
    assert msg["Subject"] == ("[Kritisch] Alarm: Brandverdacht – Bushaltestelle 3, "
                              "Wächtersbach")
    assert msg["X-Bauhof-Alert"] == "a-1"
    body = msg.get_content()
    german = body.index("Temperatur im Mülleimer 71 °C")
    english = body.index("Temperature in the bin 71 °C")
    assert german < body.index("-- English --") < english
    assert "Gemeinde: Wächtersbach" in body and "Municipality: Wächtersbach" in body


def test_email_with_starttls(smtp_server, tmp_path):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox, port = smtp_server(tls_context=server_context, require_starttls=True)
    plain = EmailChannel("127.0.0.1", port, sender="a@b.example", recipients=["c@d.example"],
                         timeout_s=5)
    with pytest.raises(DeliveryError):  # the server insists on STARTTLS
        plain.send(opened(alert()))
    client_context = ssl.create_default_context(cafile=str(cert))
    secure = EmailChannel("127.0.0.1", port, sender="a@b.example", recipients=["c@d.example"],
                          starttls=True, ssl_context=client_context, timeout_s=5)
    secure.send(opened(alert()))
    _, _, raw, tls = inbox.messages.get(timeout=5)
    assert tls and _read(raw)["Subject"].startswith("[Hinweis] Alarm: Mülleimer voll")


def test_email_server_down():
    channel = EmailChannel("127.0.0.1", _free_port(), sender="a@b.example",
                           recipients=["c@d.example"], timeout_s=2)
    with pytest.raises(DeliveryError):
        channel.send(opened(alert()))


# ------------------------------------------------------------------------------ MQTT, broker

def test_mqtt_publishes_to_municipality_and_severity(mqtt_broker):
    host, port = mqtt_broker
    prefix = f"test-{uuid.uuid4().hex[:8]}/alerts"
    received: queue.Queue = queue.Queue()
    subscribed = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    sub.on_connect = lambda c, *_: c.subscribe(f"{prefix}/#", qos=1)
    sub.on_subscribe = lambda *_: subscribed.set()
    sub.on_message = lambda _c, _u, m: received.put(m)
    sub.connect(host, port)
    sub.loop_start()
    try:
        assert subscribed.wait(5)
        channel = MqttChannel(host, port, topic_prefix=prefix, timeout_s=5)
        fire = alert("bin_fire", "critical", municipality="Bad Soden-Salmünster",
                     detail={"temperature_c": 71.0})
        channel.send(opened(fire))
        message = received.get(timeout=5)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert message.topic == f"{prefix}/bad-soden-salmuenster/critical"
    assert message.qos == 1 and not message.retain
    data = json.loads(message.payload.decode("utf-8"))
    assert data["municipality"] == "Bad Soden-Salmünster" and data["rule_id"] == "bin_fire"
    assert data["title"]["de"] == "Brandverdacht"


def test_mqtt_broker_unreachable():
    channel = MqttChannel("127.0.0.1", _free_port(), timeout_s=1)
    with pytest.raises(DeliveryError):
        channel.send(opened(alert()))


def test_router_delivers_over_all_three_real_channels(mqtt_broker, hook, smtp_server):
    host, port = mqtt_broker
    inbox, smtp_port = smtp_server()
    prefix = f"test-{uuid.uuid4().hex[:8]}/alerts"
    config = RouterConfig.model_validate({
        "channels": {
            "hook": {"type": "webhook", "url": _url(hook)},
            "mail": {"type": "email", "host": "127.0.0.1", "port": smtp_port,
                     "sender": "alarm@bauhof.example", "recipients": ["x@bauhof.example"]},
            "mqtt": {"type": "mqtt", "host": host, "port": port, "topic_prefix": prefix},
        },
        "routes": [{"channels": ["hook", "mail", "mqtt"], "min_severity": "warning",
                    "quiet_hours": {"start": "20:00", "end": "06:00"}}],
    })
    r = Router(config)
    night = local(2026, 4, 7, 23, 0)
    frost = alert("frost", "warning", municipality="Birstein", opened=night,
                  detail={"temperature_c": 0.5, "dew_point_c": -0.5, "humidity_pct": 93.0,
                          "precipitation_mm": 0.0, "precipitation_window_h": 3.0})
    assert r.notify([opened(frost)], night) == []           # held: quiet hours
    results = r.notify([], local(2026, 4, 8, 6, 0))          # released at 06:00
    assert sorted((x.delivery.channel, x.ok) for x in results) == [
        ("hook", True), ("mail", True), ("mqtt", True)], results
    assert json.loads(hook.requests[0][1])["title"]["de"] == "Glättegefahr"
    assert _read(inbox.messages.get(timeout=5)[2])["Subject"].startswith(
        "[Warnung] Alarm: Glättegefahr")


def test_the_examples_in_the_docs_load():
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[1] / "docs" / "alerts.md").read_text("utf-8")
    blocks = [b.split("```", 1)[0] for b in text.split("```yaml\n")[1:]]
    rules_block = next(b for b in blocks if b.startswith("rules:"))
    notifications_block = next(b for b in blocks if b.startswith("notifications:"))
    rules = load_rules(text=rules_block)
    assert rules["bin_full"].params.fill_pct == 85 and rules["gale"].params.gust_ms == 28.5
    assert not rules["storm"].enabled and rules["soil_dry"].max_reminders == 6
    config = load_router_config(text=notifications_block)
    assert [r.name for r in config.routes] == ["bereitschaft", "waechtersbach-mail"]
    assert yaml.safe_load(notifications_block)["notifications"]["channels"]["broker"]["type"] == "mqtt"
