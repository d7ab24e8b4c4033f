"""The Things Stack v3 ``ApplicationUp`` JSON -> ``Uplink``.

The same JSON arrives over MQTT, webhooks and the Storage Integration (``shared/formats.md`` §2,
§3). TTS omits zero values (no ``f_cnt`` on the first uplink of a session, no ``f_port`` on
MAC-only frames), sends 64-bit numbers as strings and adds fields over versions, so every field
has a default and unknown keys are ignored.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, Field, ValidationError

from app.model import Network, Radio, Uplink
from app.sources.errors import Rejected, describe_validation_error

# TTS identifier rule (lower-case, 3-36 chars, single dashes); anything else is not from TTS.
TTS_ID_PATTERN = r"^[a-z0-9](?:-?[a-z0-9]){2,35}$"
EUI_PATTERN = r"^[0-9A-Fa-f]{16}$"
MAX_FRM_PAYLOAD = 255  # LoRaWAN FRMPayload cannot be longer

TtsId = Annotated[str, Field(pattern=TTS_ID_PATTERN)]


def _upper(value: str | None) -> str | None:
    return value.upper() if value else None


class ApplicationIds(BaseModel):
    application_id: TtsId


class EndDeviceIds(BaseModel):
    device_id: TtsId
    application_ids: ApplicationIds
    dev_eui: Annotated[str | None, Field(pattern=EUI_PATTERN), AfterValidator(_upper)] = None
    dev_addr: Annotated[str | None, Field(pattern=r"^[0-9A-Fa-f]{8}$"),
                        AfterValidator(_upper)] = None


class GatewayIds(BaseModel):
    gateway_id: str = ""


class RxMetadata(BaseModel):
    gateway_ids: GatewayIds = GatewayIds()
    rssi: float | None = Field(default=None, allow_inf_nan=False)
    channel_rssi: float | None = Field(default=None, allow_inf_nan=False)
    snr: float | None = Field(default=None, allow_inf_nan=False)


class LoraDataRate(BaseModel):
    bandwidth: int | None = None
    spreading_factor: int | None = None


class DataRate(BaseModel):
    lora: LoraDataRate | None = None


class TxSettings(BaseModel):
    data_rate: DataRate | None = None
    frequency: int | None = Field(default=None, ge=0)  # a string on the wire; pydantic converts


class VersionIds(BaseModel):
    brand_id: str | None = Field(default=None, max_length=64)
    model_id: str | None = Field(default=None, max_length=64)


class UplinkMessage(BaseModel):
    session_key_id: str = Field(default="", max_length=64)
    f_port: int = Field(default=0, ge=0, le=255)
    f_cnt: int = Field(default=0, ge=0, le=0xFFFFFFFF)
    frm_payload: str = Field(default="", max_length=4 * MAX_FRM_PAYLOAD)
    decoded_payload: dict[str, Any] | None = None
    rx_metadata: list[RxMetadata] = []
    settings: TxSettings | None = None
    received_at: datetime | None = None
    consumed_airtime: str | None = Field(default=None, max_length=32)
    version_ids: VersionIds | None = None
    confirmed: bool = False


class ApplicationUp(BaseModel):
    end_device_ids: EndDeviceIds
    correlation_ids: list[str] = []
    received_at: datetime | None = None
    simulated: bool = False
    uplink_message: UplinkMessage | None = None
    # Other upstream kinds share the envelope; we only recognise them to ignore them politely.
    join_accept: dict[str, Any] | None = None
    downlink_queued: dict[str, Any] | None = None
    downlink_sent: dict[str, Any] | None = None
    downlink_ack: dict[str, Any] | None = None
    downlink_nack: dict[str, Any] | None = None
    downlink_failed: dict[str, Any] | None = None
    location_solved: dict[str, Any] | None = None
    service_data: dict[str, Any] | None = None


class NotAnUplink(Exception):
    """A valid TTS message of another kind (join, downlink event): nothing to store."""


def parse_tts(raw: bytes, source: str, topic: str | None = None) -> Uplink:
    try:
        up = ApplicationUp.model_validate_json(raw)
    except ValidationError as err:
        raise describe_validation_error(err) from None
    ids = up.end_device_ids
    if topic is not None:
        _check_topic(topic, ids.device_id)
    msg = up.uplink_message
    if msg is None:
        if any(getattr(up, kind) is not None for kind in _OTHER_KINDS):
            raise NotAnUplink(next(k for k in _OTHER_KINDS if getattr(up, k) is not None))
        raise Rejected("validate", "TTS message has no uplink_message", ids.device_id)

    received_at = msg.received_at or up.received_at
    if received_at is None:
        raise Rejected("validate", "uplink has no received_at", ids.device_id)
    if received_at.tzinfo is None:
        raise Rejected("validate", "received_at has no time zone", ids.device_id)
    try:
        payload = base64.b64decode(msg.frm_payload, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("validate", "frm_payload is not valid base64", ids.device_id) from None
    if len(payload) > MAX_FRM_PAYLOAD:
        raise Rejected("validate", f"frm_payload has {len(payload)} bytes, at most "
                       f"{MAX_FRM_PAYLOAD} are possible", ids.device_id)
    if payload and msg.f_port == 0:
        raise Rejected("validate", "payload on f_port 0 (MAC commands only)", ids.device_id)

    version = msg.version_ids or VersionIds()
    return Uplink(
        network=Network.TTS,
        source=source,
        device_id=ids.device_id,
        application_id=ids.application_ids.application_id,
        received_at=received_at,
        dev_eui=ids.dev_eui,
        dev_addr=ids.dev_addr,
        session_key_id=msg.session_key_id,
        f_port=msg.f_port,
        f_cnt=msg.f_cnt,
        payload=payload,
        decoded_payload=msg.decoded_payload,
        brand_id=version.brand_id,
        model_id=version.model_id,
        simulated=up.simulated,
        confirmed=msg.confirmed,
        correlation_id=up.correlation_ids[0][:100] if up.correlation_ids else None,
        radio=_radio(msg),
    )


_OTHER_KINDS = ("join_accept", "downlink_queued", "downlink_sent", "downlink_ack",
                "downlink_nack", "downlink_failed", "location_solved", "service_data")


def _check_topic(topic: str, device_id: str) -> None:
    # v3/{app}@{tenant}/devices/{device_id}/up
    parts = topic.split("/")
    if len(parts) >= 4 and parts[0] == "v3" and parts[2] == "devices" and parts[3] != device_id:
        raise Rejected("validate", f"topic names device {parts[3]!r} but the message is from "
                       f"{device_id!r}", device_id)


def _radio(msg: UplinkMessage) -> Radio:
    rssis = [m.rssi if m.rssi is not None else m.channel_rssi for m in msg.rx_metadata]
    rssis = [r for r in rssis if r is not None]
    snrs = [m.snr for m in msg.rx_metadata if m.snr is not None]
    lora = msg.settings.data_rate.lora if msg.settings and msg.settings.data_rate else None
    airtime = None
    if msg.consumed_airtime and msg.consumed_airtime.endswith("s"):
        try:
            airtime = float(msg.consumed_airtime[:-1])
        except ValueError:
            airtime = None
    return Radio(
        gateway_count=len(msg.rx_metadata),
        rssi=max(rssis) if rssis else None,
        snr=max(snrs) if snrs else None,
        spreading_factor=lora.spreading_factor if lora else None,
        bandwidth=lora.bandwidth if lora else None,
        frequency=msg.settings.frequency if msg.settings else None,
        airtime_s=airtime,
    )
