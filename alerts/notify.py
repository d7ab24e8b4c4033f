"""Notifications: lifecycle events -> texts -> routes -> channels (webhook, e-mail, MQTT).

- :func:`compose` turns an event of alerts/lifecycle.py into a :class:`Notification` with German
  and English texts (alerts/messages.py) and a JSON form.
- :class:`Router` decides, from a :class:`RouterConfig`, which channels get a notification and
  when: routes match by municipality (or ``"*"``), minimum severity and event kind; a route's
  quiet hours (local time) hold everything below the allowed severity until they end.
  :meth:`Router.route` returns what is due now and holds the rest; :meth:`Router.flush` returns
  what has become due. A held "opened" that is followed by its "closed" before release is
  dropped with it (nobody needs to read about a warning that is already over), and of several
  held reminders of one alert only the newest is kept. Routing is pure; only
  :meth:`Router.deliver` does I/O.
- Channels: :class:`WebhookChannel` (JSON POST, httpx, timeout, retries with exponential
  back-off, optional secret header), :class:`EmailChannel` (smtplib, optional STARTTLS or
  SMTPS, German first then English), :class:`MqttChannel` (paho, QoS 1, not retained, topic
  ``bauhof/alerts/{municipality}/{severity}``). Each ``send`` raises :class:`DeliveryError`.
"""
from __future__ import annotations

import json
import logging
import re
import smtplib
import ssl
import threading
import time as wallclock
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol
from zoneinfo import ZoneInfo

import httpx
import paho.mqtt.client as mqtt
import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from alerts import messages
from alerts.lifecycle import AlertState, Event
from alerts.params import SEVERITY_RANK, Severity
from alerts.rules import RuleSet

log = logging.getLogger(__name__)

EventKind = Literal["opened", "reminder", "closed"]
DEFAULT_TZ = "Europe/Berlin"


class DeliveryError(RuntimeError):
    """A channel could not deliver a notification (after its own retries)."""


# ------------------------------------------------------------------------- notification

@dataclass(frozen=True)
class Notification:
    """One thing to tell people, in both languages, independent of the channel."""

    kind: EventKind
    at: datetime
    alert_id: str
    rule_id: str
    rule_kind: str
    severity: Severity
    device_id: str
    device_name: str | None
    municipality: str | None
    value: float | None
    detail: Mapping[str, Any]
    first_seen: datetime
    opened_at: datetime | None
    closed_at: datetime | None
    reminders_sent: int
    subject: Mapping[str, str]  # language -> subject line
    text: Mapping[str, str]  # language -> full plain text (what an e-mail body holds)
    title: Mapping[str, str] = field(default_factory=dict)
    body: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        def iso(t: datetime | None) -> str | None:
            return None if t is None else t.astimezone(timezone.utc).isoformat()

        return {
            "type": "bauhof.alert", "event": self.kind, "at": iso(self.at),
            "alert_id": self.alert_id, "rule_id": self.rule_id, "rule_kind": self.rule_kind,
            "severity": self.severity, "device_id": self.device_id,
            "device_name": self.device_name, "municipality": self.municipality,
            "value": self.value, "detail": iso_detail(self.detail),
            "first_seen": iso(self.first_seen), "opened_at": iso(self.opened_at),
            "closed_at": iso(self.closed_at), "reminders_sent": self.reminders_sent,
            "title": dict(self.title), "message": dict(self.body), "subject": dict(self.subject),
        }


def iso_detail(detail: Mapping[str, Any]) -> dict[str, Any]:
    """A detail for JSON readers: the times the checks keep as epoch seconds (``*_at``) as ISO
    8601 in UTC (``Z``), as pydantic writes every other time of the API."""
    return {key: (datetime.fromtimestamp(value, tz=timezone.utc).isoformat()
                  .replace("+00:00", "Z")
                  if key.endswith("_at") and isinstance(value, (int, float))
                  and not isinstance(value, bool) else value)
            for key, value in detail.items()}


def _local(t: datetime | None, tz: ZoneInfo) -> str | None:
    return None if t is None else t.astimezone(tz).strftime("%d.%m.%Y %H:%M")


def _fields(alert: AlertState, tz: ZoneInfo) -> dict[str, Any]:
    out: dict[str, Any] = dict(alert.detail)
    for key, value in alert.detail.items():
        # epoch seconds in the detail (full_at, collection_at, last_seen_at ...) as local time
        if key.endswith("_at") and isinstance(value, (int, float)):
            out[f"{key}_local"] = _local(datetime.fromtimestamp(value, tz=timezone.utc), tz)
    out["value"] = alert.value
    return out


def compose(event: Event, rules: RuleSet, tz: ZoneInfo | str = DEFAULT_TZ) -> Notification:
    """The notification of a lifecycle event, with texts in every language."""
    zone = ZoneInfo(tz) if isinstance(tz, str) else tz
    alert = event.alert
    rule = rules.get(alert.rule_id)
    key = rule.message_key if rule is not None else alert.rule_id
    kind = rule.kind if rule is not None else alert.rule_id
    fields = _fields(alert, zone)
    variant = alert.detail.get("variant")
    device = alert.device_name or alert.device_id
    subject, text, title, body = {}, {}, {}, {}
    for lang in messages.LANGUAGES:
        t = messages.render(f"rule.{key}.title", lang)
        body_key = f"rule.{key}.body_{variant}" if variant else ""
        if not (body_key and messages.has(body_key, lang)):
            body_key = f"rule.{key}.body"
        b = messages.render(body_key, lang, fields)
        severity = messages.render(f"severity.{alert.severity}", lang)
        what = messages.render(f"event.{event.kind}", lang)
        subject[lang] = messages.render("subject", lang, {"severity": severity, "event": what,
                                                          "title": t, "device": device})
        town = alert.municipality or messages.render("unknown_municipality", lang)
        lines = [f"{what}: {t} ({severity})", b, "",
                 f"{messages.render('label.device', lang)}: {device} ({alert.device_id})",
                 f"{messages.render('label.municipality', lang)}: {town}",
                 f"{messages.render('label.since', lang)}: "
                 f"{_local(alert.opened_at or alert.first_seen, zone)}"]
        if alert.closed_at is not None:
            lines.append(f"{messages.render('label.closed', lang)}: {_local(alert.closed_at, zone)}")
        if event.kind == "reminder":
            lines.append(f"{messages.render('label.reminders', lang)}: {alert.reminders_sent}")
        lines.append(f"{messages.render('label.alert', lang)}: {alert.id}")
        title[lang], body[lang], text[lang] = t, b, "\n".join(lines)
    return Notification(event.kind, event.at, alert.id, alert.rule_id, kind, alert.severity,
                        alert.device_id, alert.device_name, alert.municipality, alert.value,
                        dict(alert.detail), alert.first_seen, alert.opened_at, alert.closed_at,
                        alert.reminders_sent, subject, text, title, body)


# ------------------------------------------------------------------------------ channels

class Channel(Protocol):
    name: str

    def send(self, notification: Notification) -> None:
        """Deliver or raise DeliveryError."""


class WebhookChannel:
    """POST the notification's JSON. Retries on network errors, 408, 429 and 5xx with
    exponential back-off (``backoff_s`` · 2^attempt); other 4xx answers are final."""

    def __init__(self, url: str, *, secret: str | None = None,
                 secret_header: str = "X-Bauhof-Secret", timeout_s: float = 5.0,
                 retries: int = 3, backoff_s: float = 1.0, name: str = "webhook",
                 transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = wallclock.sleep) -> None:
        self.name, self.url = name, url
        self.secret, self.secret_header = secret, secret_header
        self.retries, self.backoff_s, self.sleep = retries, backoff_s, sleep
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def send(self, notification: Notification) -> None:
        body = json.dumps(notification.to_json(), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json; charset=utf-8",
                   "Idempotency-Key": f"{notification.alert_id}:{notification.kind}:"
                                      f"{notification.reminders_sent}"}
        if self.secret:
            headers[self.secret_header] = self.secret
        problem = ""
        for attempt in range(self.retries + 1):
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as err:
                problem = f"{type(err).__name__}: {err}"
            else:
                if response.status_code < 300:
                    return
                problem = f"HTTP {response.status_code}"
                if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
                    break
            if attempt < self.retries:
                self.sleep(self.backoff_s * 2 ** attempt)
        raise DeliveryError(f"webhook {self.name}: {problem}")

    def close(self) -> None:
        self._client.close()


class EmailChannel:
    """Plain-text e-mail over SMTP: German subject, German text first, English below."""

    def __init__(self, host: str, port: int = 25, *, sender: str, recipients: list[str],
                 username: str | None = None, password: str | None = None,
                 starttls: bool = False, use_ssl: bool = False, timeout_s: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, name: str = "email") -> None:
        if starttls and use_ssl:
            raise ValueError("starttls and use_ssl exclude each other")
        self.name, self.host, self.port = name, host, port
        self.sender, self.recipients = sender, list(recipients)
        self.username, self.password = username, password
        self.starttls, self.use_ssl, self.timeout_s = starttls, use_ssl, timeout_s
        self.ssl_context = ssl_context

    def message(self, notification: Notification) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = notification.subject["de"]
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.recipients)
        msg["Date"] = format_datetime(notification.at)
        msg["Message-ID"] = make_msgid(domain="bauhof-sense")
        msg["X-Bauhof-Alert"] = notification.alert_id
        english = "\n".join(["", "-- English --", notification.subject["en"], "",
                             notification.text["en"]])
        msg.set_content(notification.text["de"] + "\n" + english + "\n", charset="utf-8")
        return msg

    def send(self, notification: Notification) -> None:
        msg = self.message(notification)
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.use_ssl:
                server: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port,
                                                        timeout=self.timeout_s, context=context)
            else:
                server = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
            with server:
                server.ehlo()
                if self.starttls:
                    server.starttls(context=context)
                    server.ehlo()
                if self.username:
                    server.login(self.username, self.password or "")
                server.send_message(msg)
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryError(f"e-mail {self.name}: {type(err).__name__}: {err}") from err


_SLUG = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss"})


def topic_part(text: str) -> str:
    """A municipality as one MQTT topic level: ``Bad Soden-Salmünster`` -> ``bad-soden-salmuenster``
    (no spaces, wildcards or slashes)."""
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower().translate(_SLUG)).strip("-")
    return slug or "unknown"


class MqttChannel:
    """Publish the notification's JSON with QoS 1, not retained, to
    ``{topic_prefix}/{municipality}/{severity}``. One short connection per notification:
    alerts are rare, and nothing is left half-open between them."""

    def __init__(self, host: str, port: int = 1883, *, topic_prefix: str = "bauhof/alerts",
                 username: str | None = None, password: str | None = None, qos: int = 1,
                 tls: bool = False, ca_file: str | None = None, client_id: str = "",
                 timeout_s: float = 10.0, name: str = "mqtt") -> None:
        self.name, self.host, self.port = name, host, port
        self.topic_prefix = topic_prefix.rstrip("/")
        self.username, self.password, self.qos = username, password, qos
        self.tls, self.ca_file, self.client_id = tls, ca_file, client_id
        self.timeout_s = timeout_s

    def topic(self, notification: Notification) -> str:
        return (f"{self.topic_prefix}/{topic_part(notification.municipality or '')}/"
                f"{notification.severity}")

    def send(self, notification: Notification) -> None:
        payload = json.dumps(notification.to_json(), ensure_ascii=False).encode("utf-8")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                             protocol=mqtt.MQTTv311)
        if self.username:
            client.username_pw_set(self.username, self.password)
        if self.tls:
            client.tls_set(ca_certs=self.ca_file, cert_reqs=ssl.CERT_REQUIRED)
        connected = threading.Event()
        refused: list[str] = []

        def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            if reason.is_failure:
                refused.append(str(reason))
            connected.set()

        client.on_connect = on_connect
        try:
            client.connect(self.host, self.port, keepalive=30)
            client.loop_start()
            try:
                if not connected.wait(self.timeout_s) or refused:
                    raise DeliveryError(f"mqtt {self.name}: not connected "
                                        f"({refused[0] if refused else 'timeout'})")
                info = client.publish(self.topic(notification), payload, qos=self.qos,
                                      retain=False)
                info.wait_for_publish(self.timeout_s)
                if not info.is_published():
                    raise DeliveryError(f"mqtt {self.name}: publish not acknowledged")
            finally:
                client.disconnect()
                client.loop_stop()
        except (OSError, ValueError, RuntimeError) as err:
            if isinstance(err, DeliveryError):
                raise
            raise DeliveryError(f"mqtt {self.name}: {type(err).__name__}: {err}") from err


# ------------------------------------------------------------------------ configuration

class _Config(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookConfig(_Config):
    type: Literal["webhook"]
    url: str
    secret: SecretStr | None = None
    secret_header: str = "X-Bauhof-Secret"
    timeout_s: float = Field(default=5.0, gt=0)
    retries: int = Field(default=3, ge=0)
    backoff_s: float = Field(default=1.0, ge=0)


class EmailConfig(_Config):
    type: Literal["email"]
    host: str
    port: int = 25
    sender: str
    recipients: list[str] = Field(min_length=1)
    username: str | None = None
    password: SecretStr | None = None
    starttls: bool = False
    use_ssl: bool = False
    ca_file: str | None = None
    timeout_s: float = Field(default=10.0, gt=0)


class MqttConfig(_Config):
    type: Literal["mqtt"]
    host: str
    port: int = 1883
    topic_prefix: str = "bauhof/alerts"
    username: str | None = None
    password: SecretStr | None = None
    tls: bool = False
    ca_file: str | None = None
    client_id: str = ""
    timeout_s: float = Field(default=10.0, gt=0)


ChannelConfig = Annotated[WebhookConfig | EmailConfig | MqttConfig, Field(discriminator="type")]


class QuietHours(_Config):
    """Local times; ``start`` after ``end`` spans midnight (20:00-06:00). During quiet hours
    only notifications of severity ``allow`` and above go out; the rest wait for ``end``."""

    start: time
    end: time
    allow: Severity = "critical"

    def active(self, now: datetime, tz: ZoneInfo) -> bool:
        local = now.astimezone(tz).time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def holds(self, severity: str, now: datetime, tz: ZoneInfo) -> bool:
        return self.active(now, tz) and SEVERITY_RANK[severity] < SEVERITY_RANK[self.allow]

    def ends_after(self, now: datetime, tz: ZoneInfo) -> datetime:
        """The next end of quiet hours after ``now`` (wall clock, so DST moves it with us)."""
        local = now.astimezone(tz)
        end = datetime.combine(local.date(), self.end, tz)
        if end <= local:
            end = datetime.combine(local.date() + timedelta(days=1), self.end, tz)
        return end


class Route(_Config):
    name: str = ""
    municipalities: list[str] = ["*"]
    min_severity: Severity = "info"
    events: list[EventKind] = ["opened", "reminder", "closed"]
    channels: list[str] = Field(min_length=1)
    quiet_hours: QuietHours | None = None

    def matches(self, n: Notification) -> bool:
        return (("*" in self.municipalities or n.municipality in self.municipalities)
                and SEVERITY_RANK[n.severity] >= SEVERITY_RANK[self.min_severity]
                and n.kind in self.events)


class RouterConfig(_Config):
    timezone: str = DEFAULT_TZ
    channels: dict[str, ChannelConfig] = {}
    routes: list[Route] = []

    @model_validator(mode="after")
    def _known_channels(self) -> "RouterConfig":
        ZoneInfo(self.timezone)
        for n, route in enumerate(self.routes):
            unknown = [c for c in route.channels if c not in self.channels]
            if unknown:
                raise ValueError(f"route {route.name or n}: unknown channels {unknown}")
        return self


def load_router_config(path: str | Path | None = None, *, text: str | None = None) -> RouterConfig:
    """From YAML (``notifications:`` at the top, or the mapping itself)."""
    data = yaml.safe_load(text if text is not None else Path(path).read_text(encoding="utf-8"))
    if isinstance(data, Mapping) and "notifications" in data:
        data = data["notifications"]
    return RouterConfig.model_validate(data or {})


def build_channel(name: str, config: ChannelConfig) -> Channel:
    secret = lambda s: s.get_secret_value() if s is not None else None  # noqa: E731
    if isinstance(config, WebhookConfig):
        return WebhookChannel(config.url, secret=secret(config.secret),
                              secret_header=config.secret_header, timeout_s=config.timeout_s,
                              retries=config.retries, backoff_s=config.backoff_s, name=name)
    if isinstance(config, EmailConfig):
        context = ssl.create_default_context(cafile=config.ca_file) if config.ca_file else None
        return EmailChannel(config.host, config.port, sender=config.sender,
                            recipients=config.recipients, username=config.username,
                            password=secret(config.password), starttls=config.starttls,
                            use_ssl=config.use_ssl, timeout_s=config.timeout_s,
                            ssl_context=context, name=name)
    return MqttChannel(config.host, config.port, topic_prefix=config.topic_prefix,
                       username=config.username, password=secret(config.password),
                       tls=config.tls, ca_file=config.ca_file, client_id=config.client_id,
                       timeout_s=config.timeout_s, name=name)


# -------------------------------------------------------------------------------- router

@dataclass(frozen=True)
class Delivery:
    channel: str
    route: str
    notification: Notification


@dataclass(frozen=True)
class Held:
    release_at: datetime
    delivery: Delivery


@dataclass(frozen=True)
class DeliveryResult:
    delivery: Delivery
    ok: bool
    error: str | None = None


class Router:
    """Routes notifications to channels, holding what quiet hours hold back.

    The held queue lives in memory (:attr:`held`); a service that must not lose it over a
    restart can save it and give it back with ``held=``.
    """

    def __init__(self, config: RouterConfig, channels: Mapping[str, Channel] | None = None,
                 *, held: Iterable[Held] = ()) -> None:
        self.config = config
        self.tz = ZoneInfo(config.timezone)
        self.channels: dict[str, Channel] = dict(channels) if channels is not None else {
            name: build_channel(name, c) for name, c in config.channels.items()}
        self._held: list[Held] = list(held)

    @property
    def held(self) -> list[Held]:
        return sorted(self._held, key=lambda h: (h.release_at, h.delivery.notification.at))

    def route(self, notification: Notification, now: datetime) -> list[Delivery]:
        """The deliveries due now; the ones quiet hours hold back are kept for :meth:`flush`."""
        plan: dict[str, tuple[datetime | None, str]] = {}  # channel -> (release or None, route)
        for n, route in enumerate(self.config.routes):
            if not route.matches(notification):
                continue
            quiet = route.quiet_hours
            release = (quiet.ends_after(now, self.tz)
                       if quiet is not None and quiet.holds(notification.severity, now, self.tz)
                       else None)
            for channel in route.channels:
                current = plan.get(channel)
                if (current is None or (current[0] is not None
                                        and (release is None or release < current[0]))):
                    plan[channel] = (release, route.name or f"route-{n}")
        due = []
        for channel, (release, route_name) in plan.items():
            delivery = Delivery(channel, route_name, notification)
            if not self._collapse(delivery, release):
                continue
            if release is None:
                due.append(delivery)
            else:
                self._held.append(Held(release, delivery))
        return due

    def _collapse(self, delivery: Delivery, release: datetime | None) -> bool:
        """Tidy the held queue for this alert and channel; False if nothing is left to send."""
        n = delivery.notification

        def same(h: Held) -> bool:
            return (h.delivery.channel == delivery.channel
                    and h.delivery.notification.alert_id == n.alert_id)

        held_kinds = {h.delivery.notification.kind for h in self._held if same(h)}
        if n.kind == "closed":
            self._held = [h for h in self._held if not same(h)]
            return "opened" not in held_kinds  # opened and closed while quiet: say nothing
        if n.kind == "reminder":
            if "opened" in held_kinds:
                return False  # the opened notification is still to come
            self._held = [h for h in self._held
                          if not (same(h) and h.delivery.notification.kind == "reminder")]
        return True

    def flush(self, now: datetime) -> list[Delivery]:
        """The held deliveries whose quiet hours are over, oldest first; they leave the queue."""
        due = [h for h in self.held if h.release_at <= now]
        self._held = [h for h in self._held if h.release_at > now]
        return [h.delivery for h in due]

    def deliver(self, deliveries: Iterable[Delivery]) -> list[DeliveryResult]:
        """Send each delivery on its channel; never raises, reports per delivery."""
        results = []
        for d in deliveries:
            channel = self.channels.get(d.channel)
            try:
                if channel is None:
                    raise DeliveryError(f"no channel {d.channel!r}")
                channel.send(d.notification)
            except Exception as err:  # noqa: BLE001 - one channel down must not stop the others
                log.warning("alert %s (%s) not delivered via %s: %s", d.notification.alert_id,
                            d.notification.kind, d.channel, err)
                results.append(DeliveryResult(d, False, str(err)))
            else:
                results.append(DeliveryResult(d, True))
        return results

    def notify(self, notifications: Iterable[Notification], now: datetime) -> list[DeliveryResult]:
        """Convenience for a service loop: route these, flush what is due, deliver it all."""
        due: list[Delivery] = []
        for n in notifications:
            due += self.route(n, now)
        return self.deliver(self.flush(now) + due)
