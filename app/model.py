"""The one typed uplink every source is normalised into, and what the pipeline makes of it."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class Network(str, enum.Enum):
    TTS = "tts"
    CHIRPSTACK = "chirpstack"


@dataclass(frozen=True, slots=True)
class Radio:
    """What the radio side tells about one uplink; best values over all receiving gateways."""

    gateway_count: int = 0
    rssi: float | None = None
    snr: float | None = None
    spreading_factor: int | None = None
    bandwidth: int | None = None
    frequency: int | None = None
    airtime_s: float | None = None


@dataclass(frozen=True, slots=True)
class Uplink:
    network: Network
    source: str  # which intake delivered it: tts-mqtt, tts-webhook, chirpstack-mqtt, ...
    device_id: str
    application_id: str
    received_at: datetime  # measurement time: network server reception
    dev_eui: str | None = None  # upper-case hex
    dev_addr: str | None = None
    session_key_id: str = ""
    f_port: int = 0  # 0: MAC-only frame, no application data
    f_cnt: int = 0
    payload: bytes = b""
    decoded_payload: dict[str, Any] | None = None  # what the network server's formatter made
    brand_id: str | None = None
    model_id: str | None = None
    simulated: bool = False
    confirmed: bool = False
    correlation_id: str | None = None
    radio: Radio = field(default_factory=Radio)
    upstream_id: str | None = None  # ChirpStack deduplicationId
    device_name: str | None = None  # ChirpStack deviceName; TTS uplinks carry no name
    # The network's own device id where ``device_id`` is our key for it (app/device_keys.py):
    # another application holds that id. None: the same as ``device_id``.
    network_device_id: str | None = None

    @property
    def dedup_key(self) -> str:
        """The idempotency key; together with ``received_at`` it identifies an uplink.

        TTS: DevEUI (or device id) + session key id + f_cnt + f_port, as ``shared/formats.md``
        recommends; f_cnt restarts per session, so the session key scopes it. The stored
        uniqueness also includes the network server's ``received_at``, which every delivery
        path (MQTT, webhook, Storage Integration, a second replica) carries unchanged, and
        which keeps an ABP device that resets its counter from colliding with its past.
        ChirpStack: its ``deduplicationId``.
        """
        if self.network is Network.CHIRPSTACK and self.upstream_id:
            return f"cs:{self.upstream_id}"
        who = self.dev_eui or f"{self.application_id}/{self.network_device_id or self.device_id}"
        return f"tts:{who}:{self.session_key_id}:{self.f_cnt}:{self.f_port}"

    @property
    def log_id(self) -> str:
        return self.correlation_id or self.dedup_key


class Outcome(str, enum.Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    DEAD_LETTER = "dead_letter"  # not stored as an uplink; see ingest_errors
    IGNORED = "ignored"  # valid, but not an uplink (join, downlink events)
    RECORDED = "recorded"  # a device's status (battery, link margin): kept, not an uplink


@dataclass(frozen=True, slots=True)
class Reading:
    time: datetime
    device_id: str
    metric: str
    value: float


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """A device's health as the network server last asked it: ChirpStack's ``status`` event,
    the LoRaWAN DevStatusAns (battery level and demodulation margin of the last request)."""

    network: Network
    source: str
    device_id: str
    application_id: str
    time: datetime
    margin_db: int
    battery_pct: float | None  # None: the device cannot measure it, or runs on external power
    external_power: bool = False
    dev_eui: str | None = None
    device_name: str | None = None
    network_device_id: str | None = None  # as on Uplink

    def readings(self) -> list[Reading]:
        values = [("link_margin_db", float(self.margin_db))]
        if self.battery_pct is not None:
            values.append(("battery_pct", self.battery_pct))
        return [Reading(self.time, self.device_id, metric, value) for metric, value in values]


@dataclass(slots=True)
class DeadLetter:
    stage: str  # parse, validate, decode, device, store
    reason: str
    source: str
    raw: bytes
    topic: str | None = None
    device_id: str | None = None
    raw_size: int = 0  # size as received; ``raw`` may be cut short
    truncated: bool = False
    id: str = ""
    # Identifies the message, not this delivery of it: sha256(source, NUL, the whole message).
    fingerprint: bytes = b""


@dataclass(frozen=True, slots=True)
class Result:
    """What happened to one submitted message; the webhook answers with it."""

    outcome: Outcome
    reason: str | None = None
    device_id: str | None = None
    readings: int = 0
