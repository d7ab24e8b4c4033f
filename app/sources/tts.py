"""The Things Stack v3 ``ApplicationUp`` JSON -> ``Uplink``.

The same JSON arrives over MQTT, webhooks and the Storage Integration (``shared/formats.md`` §2,
§3). TTS omits zero values (no ``f_cnt`` on the first uplink of a session, no ``f_port`` on
MAC-only frames), sends 64-bit numbers as strings and adds fields over versions, so every field
has a default and unknown keys are ignored.
"""
from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime, timezone
from typing import Annotated, Any

from typing_extensions import NotRequired, TypedDict

from pydantic import AfterValidator, BaseModel, Field, TypeAdapter, ValidationError

from app.model import Network, Radio, Uplink
from app.sources.errors import NotAnUplink, Rejected, describe_validation_error

# TTS identifier rule (lower-case, 3-36 chars, single dashes); anything else is not from TTS.
TTS_ID_PATTERN = r"^[a-z0-9](?:-?[a-z0-9]){2,35}$"
EUI_PATTERN = r"^[0-9A-Fa-f]{16}$"
MAX_FRM_PAYLOAD = 255  # LoRaWAN FRMPayload cannot be longer
# Reception times outside these bounds are not from a network server; stored, they would break
# reads (years PostgreSQL keeps but Python cannot load) or pin the latest values for decades.
EARLIEST = datetime(2000, 1, 1, tzinfo=timezone.utc)
LATEST = datetime(2100, 1, 1, tzinfo=timezone.utc)
# Radio metadata beyond physics is garbage; bounded here, it can never overflow a column.
RSSI_SNR_BOUND = 1000.0
MAX_BANDWIDTH_HZ = 100_000_000
MAX_SPREADING_FACTOR = 64
MAX_FREQUENCY_HZ = 10**10

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
    # Read only when the network's own times are missing (see reception_time), and unchecked:
    # a gateway's odd clock must never cost the uplink.
    received_at: Any = None
    time: Any = None
    rssi: float | None = Field(default=None, allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                               le=RSSI_SNR_BOUND)
    channel_rssi: float | None = Field(default=None, allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                                       le=RSSI_SNR_BOUND)
    snr: float | None = Field(default=None, allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                              le=RSSI_SNR_BOUND)


class LoraDataRate(BaseModel):
    bandwidth: int | None = Field(default=None, ge=0, le=MAX_BANDWIDTH_HZ)
    spreading_factor: int | None = Field(default=None, ge=0, le=MAX_SPREADING_FACTOR)


class DataRate(BaseModel):
    lora: LoraDataRate | None = None


class TxSettings(BaseModel):
    data_rate: DataRate | None = None
    # a string on the wire; pydantic converts
    frequency: int | None = Field(default=None, ge=0, le=MAX_FREQUENCY_HZ)


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
    # a protobuf duration: seconds with up to 9 decimals and an "s"
    consumed_airtime: str | None = Field(default=None, pattern=r"^[0-9]{1,12}(\.[0-9]{1,9})?s$")
    version_ids: VersionIds | None = None
    confirmed: bool = False


class ApplicationUp(BaseModel):
    end_device_ids: EndDeviceIds
    correlation_ids: list[str] = []
    received_at: datetime | None = None
    simulated: bool = False
    uplink_message: UplinkMessage | None = None


# The other kinds of ``ApplicationUp`` (its ``up`` oneof, shared/formats.md §2.7, §3.1): same
# envelope, another key. Recognised to be answered and counted, never stored.
OTHER_KINDS = ("uplink_normalized", "join_accept", "downlink_ack", "downlink_nack",
               "downlink_sent", "downlink_failed", "downlink_queued",
               "downlink_queue_invalidated", "location_solved", "service_data")
# The envelope's own keys; any other object beside them is a kind newer than this list.
_ENVELOPE = frozenset({"end_device_ids", "correlation_ids", "received_at", "simulated",
                       "uplink_message"})


def parse_tts(raw: bytes, source: str, topic: str | None = None) -> Uplink:
    uplink = _fast_tts(raw, source, topic)
    if uplink is not None:
        return uplink
    return parse_tts_models(raw, source, topic)


def parse_tts_models(raw: bytes, source: str, topic: str | None = None) -> Uplink:
    """The reference parser: the pydantic models, with a precise reason for every rejection."""
    try:
        up = ApplicationUp.model_validate_json(raw)
    except ValidationError as err:
        raise describe_validation_error(err) from None
    ids = up.end_device_ids
    if topic is not None:
        _check_topic(topic, ids.device_id)
    msg = up.uplink_message
    if msg is None:
        raise _other_kind(raw, ids.device_id)

    received_at = reception_time(up, msg)
    if received_at is None:
        raise Rejected("validate", "uplink has no received_at (neither the network server's, "
                       "the application server's nor a gateway's)", ids.device_id)
    check_time(received_at, "received_at", ids.device_id)
    if msg.decoded_payload is not None and not storable_json(msg.decoded_payload):
        raise Rejected("validate", NOT_STORABLE.format("decoded_payload"), ids.device_id)
    try:
        payload = base64.b64decode(msg.frm_payload, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected("validate", "frm_payload is not valid base64", ids.device_id) from None
    if len(payload) > MAX_FRM_PAYLOAD:
        raise Rejected("validate", f"frm_payload has {len(payload)} bytes, at most "
                       f"{MAX_FRM_PAYLOAD} are possible", ids.device_id)
    if payload and msg.f_port == 0:
        raise Rejected("validate", "payload on f_port 0 (MAC commands only)", ids.device_id)
    if msg.f_port == 224:
        raise Rejected("validate", "f_port 224 is the LoRaWAN test protocol, never an "
                       "application uplink", ids.device_id)

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


NOT_STORABLE = "{} holds NaN, Infinity or a NUL character, which cannot be stored as JSON"

# Go's zero time.Time, which TTS writes where a time was never set: the network server's
# reception time of a Console-simulated uplink, and of such uplinks in the Storage Integration.
GO_ZERO_TIME = datetime(1, 1, 1, tzinfo=timezone.utc)


def _unset(value: datetime | None) -> bool:
    return value is None or value == GO_ZERO_TIME


def reception_time(up: ApplicationUp, msg: UplinkMessage) -> datetime | None:
    """The uplink's time: the network server's reception; where it is missing or Go's zero
    time, the application server's (the envelope's, which every delivery path carries the
    same); then the first plausible gateway time. A time that is set but implausible is
    returned as it is, for check_time to refuse with its reason."""
    if not _unset(msg.received_at):
        return msg.received_at
    if not _unset(up.received_at):
        return up.received_at
    for gateway in msg.rx_metadata:
        for text in (gateway.received_at, gateway.time):
            if not isinstance(text, str) or len(text) > 64:
                continue
            try:
                when = datetime.fromisoformat(text)
            except ValueError:
                continue
            if when is not None and when.tzinfo is not None and EARLIEST <= when < LATEST:
                return when
    return None


def check_time(value: datetime, name: str, device_id: str | None) -> None:
    """A network server's reception time: with a zone, and within sane years."""
    if value.tzinfo is None:
        raise Rejected("validate", f"{name} has no time zone", device_id)
    if not EARLIEST <= value < LATEST:
        raise Rejected("validate", f"{name} {value.isoformat()} is not between "
                       f"{EARLIEST.year} and {LATEST.year}", device_id)


def storable_json(value: Any) -> bool:
    """False if a (network server's) decoded payload holds what jsonb refuses: NaN, ±Infinity
    (JSON has neither; our parser accepts them) or NUL characters."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, str):
        return "\x00" not in value
    if isinstance(value, dict):
        return all("\x00" not in k and storable_json(v) for k, v in value.items())
    if isinstance(value, list):
        return all(storable_json(v) for v in value)
    return True


def _other_kind(raw: bytes, device_id: str) -> Exception:
    """What a valid envelope without ``uplink_message`` is: a known kind, a kind newer than
    us (an object under a key the envelope does not have), or nothing at all."""
    doc = json.loads(raw)  # valid: the model has just read it
    for kind in OTHER_KINDS:
        if isinstance(doc.get(kind), dict):
            return NotAnUplink(kind)
    for key, value in doc.items():
        if key not in _ENVELOPE and isinstance(value, dict):
            return NotAnUplink(key[:64], known=False)
    return Rejected("validate", "TTS message has no uplink_message (nor any other kind)",
                    device_id)


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


# --- fast path ------------------------------------------------------------------------------
# The same rules as the models above, as TypedDicts: pydantic validates them just as strictly
# (same coercions, bounds and patterns) but builds plain dicts instead of ten model instances;
# with the lean assembly below a well-formed uplink costs 9 µs instead of 13. Anything the fast
# path declines (a rejection, another message kind, an odd time) goes to the models, which give
# the reason. Keep both in step: tests/test_parsing_fast.py compares them on mutated messages.


class _ApplicationIdsD(TypedDict):
    application_id: TtsId


class _EndDeviceIdsD(TypedDict):
    device_id: TtsId
    application_ids: _ApplicationIdsD
    dev_eui: NotRequired[Annotated[str | None, Field(pattern=EUI_PATTERN)]]
    dev_addr: NotRequired[Annotated[str | None, Field(pattern=r"^[0-9A-Fa-f]{8}$")]]


class _GatewayIdsD(TypedDict, total=False):
    gateway_id: str


class _RxMetadataD(TypedDict, total=False):
    gateway_ids: _GatewayIdsD
    rssi: Annotated[float | None, Field(allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                                        le=RSSI_SNR_BOUND)]
    channel_rssi: Annotated[float | None, Field(allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                                                le=RSSI_SNR_BOUND)]
    snr: Annotated[float | None, Field(allow_inf_nan=False, ge=-RSSI_SNR_BOUND,
                                       le=RSSI_SNR_BOUND)]


class _LoraDataRateD(TypedDict, total=False):
    bandwidth: Annotated[int | None, Field(ge=0, le=MAX_BANDWIDTH_HZ)]
    spreading_factor: Annotated[int | None, Field(ge=0, le=MAX_SPREADING_FACTOR)]


class _DataRateD(TypedDict, total=False):
    lora: _LoraDataRateD | None


class _TxSettingsD(TypedDict, total=False):
    data_rate: _DataRateD | None
    frequency: Annotated[int | None, Field(ge=0, le=MAX_FREQUENCY_HZ)]


class _VersionIdsD(TypedDict, total=False):
    brand_id: Annotated[str | None, Field(max_length=64)]
    model_id: Annotated[str | None, Field(max_length=64)]


class _UplinkMessageD(TypedDict, total=False):
    session_key_id: Annotated[str, Field(max_length=64)]
    f_port: Annotated[int, Field(ge=0, le=255)]
    f_cnt: Annotated[int, Field(ge=0, le=0xFFFFFFFF)]
    frm_payload: Annotated[str, Field(max_length=4 * MAX_FRM_PAYLOAD)]
    decoded_payload: dict[str, Any] | None
    rx_metadata: list[_RxMetadataD]
    settings: _TxSettingsD | None
    received_at: datetime | None
    consumed_airtime: Annotated[str | None, Field(pattern=r"^[0-9]{1,12}(\.[0-9]{1,9})?s$")]
    version_ids: _VersionIdsD | None
    confirmed: bool


class _ApplicationUpD(TypedDict):
    end_device_ids: _EndDeviceIdsD
    correlation_ids: NotRequired[list[str]]
    received_at: NotRequired[datetime | None]
    simulated: NotRequired[bool]
    uplink_message: _UplinkMessageD  # required here: other kinds take the models' path


_validate_fast = TypeAdapter(_ApplicationUpD).validate_json
_NO_GATEWAYS: list = []


def _fast_tts(raw: bytes, source: str, topic: str | None) -> Uplink | None:
    """The Uplink of a well-formed TTS uplink; None for anything the models must look at."""
    try:
        up = _validate_fast(raw)
    except ValidationError:
        return None
    ids = up["end_device_ids"]
    device_id = ids["device_id"]
    if topic is not None:
        parts = topic.split("/")
        if (len(parts) >= 4 and parts[0] == "v3" and parts[2] == "devices"
                and parts[3] != device_id):
            return None
    msg = up["uplink_message"]
    get = msg.get
    received_at = get("received_at") or up.get("received_at")
    if (received_at is None or received_at.tzinfo is None
            or not EARLIEST <= received_at < LATEST):
        return None
    decoded_payload = get("decoded_payload")
    if decoded_payload is not None and not storable_json(decoded_payload):
        return None
    f_port = get("f_port", 0)
    try:
        payload = base64.b64decode(get("frm_payload", ""), validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(payload) > MAX_FRM_PAYLOAD or (payload and f_port == 0) or f_port == 224:
        return None

    rx_metadata = get("rx_metadata", _NO_GATEWAYS)
    rssi = snr = None
    for gateway in rx_metadata:
        value = gateway.get("rssi")
        if value is None:
            value = gateway.get("channel_rssi")
        if value is not None and (rssi is None or value > rssi):
            rssi = value
        value = gateway.get("snr")
        if value is not None and (snr is None or value > snr):
            snr = value
    spreading_factor = bandwidth = frequency = None
    settings = get("settings")
    if settings is not None:
        frequency = settings.get("frequency")
        data_rate = settings.get("data_rate")
        lora = data_rate.get("lora") if data_rate is not None else None
        if lora is not None:
            spreading_factor = lora.get("spreading_factor")
            bandwidth = lora.get("bandwidth")
    airtime = get("consumed_airtime")
    if airtime is not None:
        airtime = float(airtime[:-1])
    version = get("version_ids") or _NO_VERSION
    dev_eui = ids.get("dev_eui")
    dev_addr = ids.get("dev_addr")
    correlation_ids = up.get("correlation_ids")
    return Uplink(
        network=Network.TTS,
        source=source,
        device_id=device_id,
        application_id=ids["application_ids"]["application_id"],
        received_at=received_at,
        dev_eui=dev_eui.upper() if dev_eui else None,
        dev_addr=dev_addr.upper() if dev_addr else None,
        session_key_id=get("session_key_id", ""),
        f_port=f_port,
        f_cnt=get("f_cnt", 0),
        payload=payload,
        decoded_payload=decoded_payload,
        brand_id=version.get("brand_id"),
        model_id=version.get("model_id"),
        simulated=up.get("simulated", False),
        confirmed=get("confirmed", False),
        correlation_id=correlation_ids[0][:100] if correlation_ids else None,
        radio=Radio(
            gateway_count=len(rx_metadata),
            rssi=rssi,
            snr=snr,
            spreading_factor=spreading_factor,
            bandwidth=bandwidth,
            frequency=frequency,
            airtime_s=airtime,
        ),
    )


_NO_VERSION: dict = {}
