"""All configuration in one typed place, read from ``BAUHOF_*`` environment variables.

Secrets are ``SecretStr`` so that ``repr`` and logs never show them; ``app.logs`` additionally
scrubs their values from every log line in case a library prints them.
"""
from __future__ import annotations

import os
from datetime import time
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

TTS_UPLINK_TOPIC = "v3/+/devices/+/up"
CHIRPSTACK_UPLINK_TOPIC = "application/+/device/+/event/up"


def _default_data_dir() -> Path:
    # As root the embedded PostgreSQL runs as a separate system user that must reach its data
    # directory; /var/lib keeps that away from /root, whose permissions we do not loosen.
    if os.geteuid() == 0:
        return Path("/var/lib/bauhof-sense")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "bauhof-sense"


def _split_list(value: object) -> object:
    """Accept JSON lists (pydantic's default) and the friendlier comma-separated form."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BAUHOF_", extra="ignore", frozen=True)

    # --- database ---------------------------------------------------------------------------
    database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL/TimescaleDB URL. Unset: start an embedded PostgreSQL.",
    )
    data_dir: Path = Field(default_factory=_default_data_dir, description="Embedded server data.")

    # --- MQTT (The Things Stack or a ChirpStack broker) -------------------------------------
    mqtt_host: str | None = Field(default=None, description="Unset: `run` has no MQTT source, "
                                  "`demo` starts an embedded broker.")
    mqtt_port: int = 1883
    mqtt_tls: bool = False
    mqtt_ca_file: Path | None = None
    mqtt_username: str | None = Field(default=None, description="TTS: `{app}@{tenant}`.")
    mqtt_password: SecretStr | None = Field(default=None, description="TTS: an API key.")
    mqtt_applications: dict[str, SecretStr] = Field(
        default={}, description='Several TTS applications, one connection each: username '
        '(`{app}@{tenant}`) -> API key, JSON: {"bauhof-gelnhausen@ttn": "NNSXS...", ...}; '
        "the backfill uses the same keys unless BAUHOF_BACKFILL_API_KEYS is set")
    mqtt_topics: Annotated[list[str], NoDecode] = [TTS_UPLINK_TOPIC]
    mqtt_client_id: str = ""
    mqtt_qos: Literal[0, 1] = 0
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=600)

    # --- backfill from the TTS Storage Integration ---------------------------------------------
    backfill_url: str | None = Field(default=None, description="TTS address, e.g. "
                                     "https://eu1.cloud.thethings.network; unset: no backfill")
    backfill_api_keys: dict[str, SecretStr] = Field(
        default={}, description='application id -> API key, JSON: {"my-app": "NNSXS..."}; '
        "unset: those of BAUHOF_MQTT_APPLICATIONS")
    backfill_overlap_s: float = Field(default=600, ge=0)
    backfill_max_age_h: float = Field(default=24, gt=0)
    backfill_interval_s: float = Field(default=900, ge=0, description="0: only after reconnects")
    backfill_page: int = Field(default=1000, ge=1, le=10000)

    # --- HTTP -----------------------------------------------------------------------------
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    webhook_secret: SecretStr | None = None
    api_tokens: Annotated[list[SecretStr], NoDecode] = []
    # Roles (docs/web.md): api_tokens admin (every write), crew_tokens mark stops done and
    # acknowledge alerts, read_tokens only read. Without read tokens, reads need no token.
    crew_tokens: Annotated[list[SecretStr], NoDecode] = []
    read_tokens: Annotated[list[SecretStr], NoDecode] = []

    # --- web view (app/web) -------------------------------------------------------------------
    map_tile_url: str = Field(
        default="https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        description="Map tiles of the route page ({z}/{x}/{y}); empty: no tiles, the "
                    "schematic sketch only (no request leaves for a tile server)")
    map_attribution: str = Field(default="© OpenStreetMap-Mitwirkende",
                                 description="Shown on the map; the tile server's licence")

    # --- ingest pipeline --------------------------------------------------------------------
    queue_max: int = Field(default=50_000, ge=100, description="Uplinks buffered in memory.")
    batch_max: int = Field(default=2_000, ge=1)
    max_message_bytes: int = Field(default=256 * 1024, ge=1024)
    auto_register_devices: bool = True
    store_simulated_readings: bool = False
    device_cache_refresh_s: float = 30.0
    spool_dir: Path | None = Field(
        default=None, description="Where a stop while the database is away keeps the "
                                  "unwritten uplinks until the next start; unset: "
                                  "BAUHOF_DATA_DIR/spool")

    @property
    def spool_path(self) -> Path:
        return self.spool_dir or self.data_dir / "spool"

    # --- route planner ---------------------------------------------------------------------
    planner_config: Path | None = Field(
        default=None, description="Planner YAML (depot, vehicles, thresholds); unset: the "
                                  "built-in planner/default.yaml")
    plan_at: str = Field(default="05:30", description="Local time (HH:MM, planner time zone) to "
                         "plan each working day's rounds; empty: no automatic planning")
    record_done_times: Literal["day", "time"] = Field(
        default="day", description="What is kept when a stop is done, by the crew or the "
        "bin's sensor: `day` only the date, `time` the time too (it shows when each vehicle "
        "got where: a staff council's consent first)")
    plan_confirm_interval_s: float = Field(
        default=60.0, ge=0, description="How often bin stops are confirmed by the sensor's drop; "
                                        "0: never")

    # --- alerts (alerts/, app/alerting.py, docs/alerts.md) ------------------------------------
    alert_rules: Path | None = Field(
        default=None, description="Site alert rules YAML, overriding and extending "
                                  "alerts/default_rules.yaml by rule id; unset: the defaults")
    alert_routes: Path | None = Field(
        default=None, description="Notification channels and routes YAML (webhook, e-mail, "
                                  "MQTT, quiet hours); unset: alerts are recorded, nobody is "
                                  "notified")
    alert_interval_s: float = Field(
        default=300.0, ge=0, description="Evaluate all devices this often (offline devices, "
                                         "reminders, notifications held by quiet hours); 0: "
                                         "never")
    alert_on_batch: bool = Field(
        default=True, description="Evaluate the devices of each stored batch")
    alert_batch_delay_s: float = Field(
        default=5.0, ge=0, description="Batch evaluations at most this often; the devices of "
                                       "the batches in between are evaluated together")

    # --- logging -----------------------------------------------------------------------------
    log_level: str = "INFO"
    log_format: Literal["text", "json"] = "text"

    @field_validator("mqtt_topics", mode="before")
    @classmethod
    def _topics(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("api_tokens", "crew_tokens", "read_tokens", mode="before")
    @classmethod
    def _tokens(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("api_tokens", "crew_tokens", "read_tokens")
    @classmethod
    def _tokens_long_enough(cls, value: list[SecretStr]) -> list[SecretStr]:
        for token in value:
            if len(token.get_secret_value()) < 16:
                raise ValueError("API tokens must be at least 16 characters long")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        # An empty secret would match a request that sends none.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("the webhook secret must be at least 16 characters long")
        return value

    @field_validator("map_tile_url")
    @classmethod
    def _map_tile_url(cls, value: str) -> str:
        value = value.strip()
        if value and (not value.startswith(("https://", "http://"))
                      or not all(part in value for part in ("{z}", "{x}", "{y}"))):
            raise ValueError("map_tile_url must be an http(s) URL with {z}, {x} and {y}, "
                             "or empty")
        return value

    @field_validator("plan_at")
    @classmethod
    def _plan_at(cls, value: str) -> str:
        value = value.strip()
        if value:
            try:
                time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"plan_at must be HH:MM or empty, got {value!r}") from None
        return value

    def mqtt_logins(self) -> list[tuple[str | None, SecretStr | None]]:
        """One (username, password) per MQTT connection: TTS gives an API key the uplinks of
        one application, so each application is a connection of its own."""
        logins = list(self.mqtt_applications.items())
        if self.mqtt_username and self.mqtt_username not in self.mqtt_applications:
            logins.insert(0, (self.mqtt_username, self.mqtt_password))
        return logins or [(self.mqtt_username, self.mqtt_password)]

    def backfill_keys(self) -> dict[str, SecretStr]:
        """Application id -> API key of every application the backfill covers."""
        if self.backfill_api_keys:
            return self.backfill_api_keys
        return {user.partition("@")[0]: key for user, key in self.mqtt_applications.items()}

    def secret_values(self) -> list[str]:
        """Every secret string in the settings, for log scrubbing."""
        values = [
            s.get_secret_value()
            for s in (self.mqtt_password, self.webhook_secret, *self.api_tokens,
                      *self.crew_tokens, *self.read_tokens,
                      *self.backfill_api_keys.values(), *self.mqtt_applications.values())
            if s is not None
        ]
        if self.database_url is not None:
            password = urlsplit(self.database_url.get_secret_value()).password
            if password:
                values.append(password)
        return [v for v in values if v]


def redact_url(url: str) -> str:
    """A connection URL with its password replaced, safe to print."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
