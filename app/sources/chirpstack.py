"""ChirpStack v4 ``up`` event JSON (``shared/formats.md`` §5.2) -> ``Uplink``.

ChirpStack emits every scalar even when zero, names fields in lowerCamelCase, writes DevEUIs in
lower case and has no device-repository ids; a device tag ``decoder`` (``vendor/model``) can name
the decoder instead.

The event type is not in the body: MQTT names it as the topic's last level
(``application/{id}/device/{dev_eui}/event/{type}``), the HTTP integration as ``?event=``. A
subscription to ``event/+`` brings every type; only ``up`` is an uplink.
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from app.model import DeviceStatus, Network, Radio, Uplink
from app.sources.errors import NotAnUplink, Rejected, describe_validation_error
from app.sources.tts import (MAX_BANDWIDTH_HZ, MAX_FREQUENCY_HZ, MAX_FRM_PAYLOAD,
                             MAX_SPREADING_FACTOR, NOT_STORABLE, RSSI_SNR_BOUND, check_time,
                             storable_json)

UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class DeviceInfo(BaseModel):
    applicationId: str = Field(pattern=UUID_PATTERN)
    devEui: str = Field(pattern=r"^[0-9a-fA-F]{16}$")
    deviceName: str = Field(default="", max_length=100)
    tags: dict[str, str] = {}


class RxInfo(BaseModel):
    gatewayId: str = ""
    rssi: float | None = Field(default=None, allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                               le=RSSI_SNR_BOUND)
    snr: float | None = Field(default=None, allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                              le=RSSI_SNR_BOUND)


class LoraModulation(BaseModel):
    bandwidth: int | None = Field(default=None, ge=0, le=MAX_BANDWIDTH_HZ)
    spreadingFactor: int | None = Field(default=None, ge=0, le=MAX_SPREADING_FACTOR)


class Modulation(BaseModel):
    lora: LoraModulation | None = None


class TxInfo(BaseModel):
    frequency: int | None = Field(default=None, ge=0, le=MAX_FREQUENCY_HZ)
    modulation: Modulation | None = None


class UplinkEvent(BaseModel):
    deduplicationId: str = Field(pattern=UUID_PATTERN)
    time: datetime
    deviceInfo: DeviceInfo
    devAddr: str = Field(default="", pattern=r"^([0-9a-fA-F]{8})?$")
    fCnt: int = Field(default=0, ge=0, le=0xFFFFFFFF)
    fPort: int = Field(default=0, ge=0, le=255)
    confirmed: bool = False
    data: str = Field(default="", max_length=4 * MAX_FRM_PAYLOAD)
    object: dict[str, Any] | None = None
    rxInfo: list[RxInfo] = []
    txInfo: TxInfo | None = None


# The integration event types of ChirpStack v4 (shared/formats.md §5.1): the integration trait
# emits the first seven; the docs also name `integration`.
EVENTS = ("up", "join", "ack", "txack", "log", "status", "location", "integration")


def event_type(topic: str | None, event: str | None = None) -> str:
    """The event type: the HTTP integration's ``event``, else the topic's ``event/<type>``,
    else ``up`` (a topic of another layout, subscribed to uplinks only)."""
    if event:
        return event
    if topic is not None:
        parts = topic.split("/")
        if len(parts) >= 2 and parts[-2] == "event":
            return parts[-1]
    return "up"


class StatusEvent(BaseModel):
    """``integration.StatusEvent``: the device's answer to the network server's DevStatusReq."""

    time: datetime
    deviceInfo: DeviceInfo
    margin: int = Field(default=0, ge=-128, le=127)  # dB; LoRaWAN: 6-bit signed
    externalPowerSource: bool = False
    batteryLevelUnavailable: bool = False
    batteryLevel: float = Field(default=0, ge=0, le=100, allow_inf_nan=False)  # percent


_Event = TypeVar("_Event", UplinkEvent, StatusEvent)


def parse_chirpstack(raw: bytes, source: str, topic: str | None = None,
                     event: str | None = None) -> Uplink | DeviceStatus:
    kind = event_type(topic, event)
    if kind == "status":
        return parse_status(raw, source, topic)
    if kind != "up":
        raise NotAnUplink(kind[:64], known=kind in EVENTS)
    event, device_id = _read(UplinkEvent, raw, topic)
    info = event.deviceInfo
    if event.object is not None and not storable_json(event.object):
        raise Rejected("validate", NOT_STORABLE.format("object"), device_id)
    try:
        payload = base64.b64decode(event.data, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("validate", "data is not valid base64", device_id) from None
    if len(payload) > MAX_FRM_PAYLOAD:
        raise Rejected("validate", f"data has {len(payload)} bytes, at most "
                       f"{MAX_FRM_PAYLOAD} are possible", device_id)
    brand, _, model = info.tags.get("decoder", "").partition("/")
    rssis = [r.rssi for r in event.rxInfo if r.rssi is not None]
    snrs = [r.snr for r in event.rxInfo if r.snr is not None]
    lora = event.txInfo.modulation.lora if event.txInfo and event.txInfo.modulation else None
    return Uplink(
        network=Network.CHIRPSTACK,
        source=source,
        device_id=device_id,
        application_id=info.applicationId.lower(),
        received_at=event.time,
        dev_eui=info.devEui.upper(),
        dev_addr=event.devAddr.upper() or None,
        f_port=event.fPort,
        f_cnt=event.fCnt,
        payload=payload,
        decoded_payload=event.object,
        brand_id=brand or None,
        model_id=model or None,
        confirmed=event.confirmed,
        correlation_id=event.deduplicationId,
        upstream_id=event.deduplicationId.lower(),
        device_name=info.deviceName or None,
        radio=Radio(
            gateway_count=len(event.rxInfo),
            rssi=max(rssis) if rssis else None,
            snr=max(snrs) if snrs else None,
            spreading_factor=lora.spreadingFactor if lora else None,
            bandwidth=lora.bandwidth if lora else None,
            frequency=event.txInfo.frequency if event.txInfo else None,
        ),
    )


def parse_status(raw: bytes, source: str, topic: str | None = None) -> DeviceStatus:
    event, device_id = _read(StatusEvent, raw, topic)
    info = event.deviceInfo
    unknown = event.batteryLevelUnavailable or event.externalPowerSource
    return DeviceStatus(
        network=Network.CHIRPSTACK, source=source, device_id=device_id,
        application_id=info.applicationId.lower(), time=event.time, margin_db=event.margin,
        battery_pct=None if unknown else event.batteryLevel,
        external_power=event.externalPowerSource, dev_eui=info.devEui.upper(),
        device_name=info.deviceName or None)


def _read(model: type[_Event], raw: bytes, topic: str | None) -> tuple[_Event, str]:
    """An event of ``model``, its device id (checked against the topic) and a sane time."""
    try:
        event = model.model_validate_json(raw)
    except ValidationError as err:
        raise describe_validation_error(err) from None
    device_id = _device_id(event.deviceInfo, topic)
    check_time(event.time, "time", device_id)
    return event, device_id


def _device_id(info: DeviceInfo, topic: str | None) -> str:
    device_id = f"eui-{info.devEui.lower()}"
    if topic is not None:
        # application/{application_id}/device/{dev_eui}/event/{type}
        parts = topic.split("/")
        if len(parts) >= 4 and parts[2] == "device" and parts[3].lower() != info.devEui.lower():
            raise Rejected("validate", f"topic names device {parts[3]!r} but the message is "
                           f"from {info.devEui!r}", device_id)
    return device_id
