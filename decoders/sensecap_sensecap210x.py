"""SenseCAP S210x sensors (S2104 soil moisture/temperature, S2105 with EC, and their air
temperature/humidity, light and CO2 siblings S2101-S2103), which share one codec.

Reference: TTN device repository, ``vendor/sensecap/sensecap210x-codec.yaml`` @62c8acdd and its
decoder ``sensecap210x-common-decoder.js`` @0a254aaa (the stored copy @922c4402 differs only in
whitespace: same output for every frame).

Frame (fPort 1 on the devices; the reference ignores the port): N records of 7 bytes, then a
CRC-16/KERMIT of everything before it, low byte first. A record is byte 0 channel, bytes 1-2 data
id (uint16 little-endian), bytes 3-6 value (little-endian). What each data id becomes:

- id > 4096: a measurement, ``{"type": "report_telemetry", "measurementId": id,
  "measurementValue": int32 / 1000}``. Units from SenseCAP's list of measurement ids: 4097 air
  temperature °C, 4098 air humidity %RH, 4099 light lux, 4100 CO2 ppm, 4102 soil temperature °C,
  4103 soil moisture (volumetric) %, 4108 electrical conductivity dS/m, 4110 soil volumetric water
  content %, 4111 soil EC dS/m (deprecated for 4108), 4112 soil temperature °C.
  The record's channel is not part of the output.
- 0: ``upload_version``; value bytes b0..b3 give hardwareVersion "b3.b2" and softwareVersion
  "b1.b0" (strings).
- 2 and 3: the low and high halves of the probe's EUI. When a frame has both, an
  ``upload_sensor_id`` message (channel 1, sensorId = high then low, uppercase hex, each half
  read little-endian) is put *first*, ahead of the messages of earlier records.
- 7: two messages, ``upload_battery`` (battery %, low 16 bits) and ``upload_interval`` (high 16
  bits, minutes, output in seconds).
- 0x120: ``report_remove_sensor`` with channel 1, whatever the record's channel.
- 1, 4, 5, 6: nothing.
- anything else up to 4096: ``unknown_message`` with ``dataID`` and ``dataValue`` (the 4 value
  bytes as uppercase hex, in wire order).

Top level, in this order: ``valid``, ``err``, ``payload`` (uppercase hex echo of the frame),
``messages``.

Quirk decisions:

- Length: when (length - 2) is not a multiple of 7 the reference returns *data*, not errors:
  ``{"valid": false, "err": -2, "payload": ..., "messages": []}``. We return exactly that (not a
  ``DecodeError``), so that the output equals the reference's; the normaliser yields nothing for
  it. A 2-byte frame (CRC only) is valid with no messages, as in the reference.
- Port: the reference ignores it, and so do we within the application range 1-223. fPort 0 (MAC
  commands only) and 224-255 (LoRaWAN's test port and reserved ports) never carry a sensor frame:
  ``DecodeError`` ("SenseCAP S210x has no data on fPort 0 (application ports are 1-223)"). TTS
  never runs an uplink decoder on fPort 0 and the devices do not use 224-255, so no reference
  output of a real uplink is affected.
- CRC: the reference never checks it (its check always passes, so ``err`` -1 never occurs). We do
  not check it either: LoRaWAN's MIC already guards the frame, and rejecting what the reference
  accepts would break equality with it. The encoder writes a correct CRC.

Normalised: 4097 ``temperature_c``, 4098 ``relative_humidity_pct``, 4099 ``illuminance_lux``,
4100 ``co2_ppm``, 4102 and 4112 ``soil_temperature_c``, 4103 and 4110 ``soil_moisture_vwc_pct``,
4108 and 4111 ``soil_conductivity_us_cm`` (dS/m x 1000), ``upload_battery`` -> ``battery_pct``.
One value per metric: a frame repeating an id keeps the later record. Left out: the measurement
interval, versions, probe id, removal notices and unknown messages (no vocabulary metric), and
measurement ids that no S2101-S2105 sends (e.g. 4101 air pressure).
"""
from __future__ import annotations

import struct
from collections.abc import Iterator, Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NAME = "SenseCAP S210x"
PORT = 1  # what the devices send on
APPLICATION_PORTS = range(1, 224)  # 0 is MAC commands, 224 the test port, 225-255 reserved
RECORD = 7
CRC_BYTES = 2
ERR_LENGTH = -2

TELEMETRY_ABOVE = 4096
VERSION, SENSOR_VERSION, EUI_LOW, EUI_HIGH, SENSOR_TYPE = 0, 1, 2, 3, 4
BATTERY_INTERVAL = 7
SENSOR_REMOVED = 0x120
SILENT_IDS = frozenset({SENSOR_VERSION, SENSOR_TYPE, 5, 6})

# measurement id -> (metric, factor from the vendor's unit to ours)
METRICS: dict[int, tuple[str, float]] = {
    4097: ("temperature_c", 1.0),
    4098: ("relative_humidity_pct", 1.0),
    4099: ("illuminance_lux", 1.0),
    4100: ("co2_ppm", 1.0),
    4102: ("soil_temperature_c", 1.0),
    4103: ("soil_moisture_vwc_pct", 1.0),
    4108: ("soil_conductivity_us_cm", 1000.0),  # dS/m -> µS/cm
    4110: ("soil_moisture_vwc_pct", 1.0),
    4111: ("soil_conductivity_us_cm", 1000.0),
    4112: ("soil_temperature_c", 1.0),
}


def crc16_kermit(data: bytes) -> int:
    """CRC-16/KERMIT (reflected polynomial 0x1021, initial value 0, no final xor)."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc


# ---------------------------------------------------------------------------------- decoding

def _records(payload: bytes) -> Iterator[tuple[int, int, bytes]]:
    """(channel, data id, the 4 value bytes as sent) for each record before the CRC."""
    body = payload[:-CRC_BYTES]
    for offset in range(0, len(body), RECORD):
        channel, data_id = struct.unpack_from("<BH", body, offset)
        yield channel, data_id, body[offset + 3:offset + RECORD]


def _telemetry(data_id: int, value: bytes) -> dict[str, Any]:
    return {"type": "report_telemetry", "measurementId": data_id,
            "measurementValue": struct.unpack("<i", value)[0] / 1000}


def _version(value: bytes) -> dict[str, Any]:
    return {"type": "upload_version", "hardwareVersion": f"{value[3]}.{value[2]}",
            "softwareVersion": f"{value[1]}.{value[0]}"}


def _battery_and_interval(value: bytes) -> list[dict[str, Any]]:
    battery, minutes = struct.unpack("<HH", value)
    return [{"type": "upload_battery", "battery": battery},
            {"type": "upload_interval", "interval": minutes * 60}]


def decode(f_port: int, payload: bytes) -> Decoded:
    if f_port not in APPLICATION_PORTS:
        raise DecodeError(f"{NAME} has no data on fPort {f_port} (application ports are 1-223)")
    out: Decoded = {"valid": True, "err": 0, "payload": payload.hex().upper(), "messages": []}
    if (len(payload) - CRC_BYTES) % RECORD != 0:
        # The reference reports a bad length as data, not as an error (see the docstring).
        out["valid"], out["err"] = False, ERR_LENGTH
        return out

    messages: list[dict[str, Any]] = out["messages"]
    eui: dict[int, str] = {}
    for _channel, data_id, value in _records(payload):
        if data_id > TELEMETRY_ABOVE:
            messages.append(_telemetry(data_id, value))
        elif data_id == VERSION:
            messages.append(_version(value))
        elif data_id in (EUI_LOW, EUI_HIGH):
            eui[data_id] = value[::-1].hex().upper()
        elif data_id == BATTERY_INTERVAL:
            messages.extend(_battery_and_interval(value))
        elif data_id == SENSOR_REMOVED:
            messages.append({"type": "report_remove_sensor", "channel": 1})
        elif data_id not in SILENT_IDS:
            messages.append({"type": "unknown_message", "dataID": data_id,
                             "dataValue": value.hex().upper()})
    if EUI_LOW in eui and EUI_HIGH in eui:
        messages.insert(0, {"type": "upload_sensor_id", "channel": 1,
                            "sensorId": eui[EUI_HIGH] + eui[EUI_LOW]})
    return out


# ---------------------------------------------------------------------------------- normalising

def _messages(decoded: Decoded) -> list[Mapping[str, Any]]:
    messages = decoded.get("messages")
    if decoded.get("valid") is False or not isinstance(messages, list):
        return []
    return [m for m in messages if isinstance(m, Mapping)]


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    for message in _messages(decoded):
        kind = message.get("type")
        if kind == "report_telemetry":
            measurement_id = finite(message.get("measurementId"))
            metric = METRICS.get(int(measurement_id)) if measurement_id is not None else None
            if metric is not None:
                name, factor = metric
                value = finite(message.get("measurementValue"))
                # round: the device's resolution is 0.001 of the vendor's unit
                out[name] = None if value is None else round(value * factor, 6)
        elif kind == "upload_battery":
            out["battery_pct"] = finite(message.get("battery"))
    return out


# ---------------------------------------------------------------------------------- encoding

def _record(channel: int, data_id: int, value: bytes) -> bytes:
    return struct.pack("<BH", channel, data_id) + value


def _version_bytes(text: Any, what: str) -> bytes:
    major, _, minor = str(text).partition(".")
    try:
        pair = bytes((int(minor), int(major)))
    except ValueError as err:  # also bytes() refusing numbers above 255
        raise ValueError(f"{NAME}: {what} {text!r} is not 'major.minor' with bytes") from err
    return pair


def _telemetry_record(message: Mapping[str, Any]) -> bytes:
    data_id = int(message["measurementId"])
    raw = round(float(message["measurementValue"]) * 1000)
    if not TELEMETRY_ABOVE < data_id <= 0xFFFF or not -2**31 <= raw < 2**31:
        raise ValueError(f"{NAME}: measurement {data_id} = {message['measurementValue']} "
                         "does not fit a record")
    return _record(1, data_id, struct.pack("<i", raw))


def _battery_record(battery: Any, interval: Any) -> bytes:
    minutes, rest = divmod(int(interval), 60)
    if rest:
        raise ValueError(f"{NAME}: interval {interval} s is not whole minutes")
    return _record(1, BATTERY_INTERVAL, struct.pack("<HH", int(battery), minutes))


def _build(messages: list[Mapping[str, Any]]) -> bytes:
    records: list[bytes] = []
    index = 0
    while index < len(messages):
        message = messages[index]
        kind = message.get("type")
        if kind == "report_telemetry":
            records.append(_telemetry_record(message))
        elif kind == "upload_version":
            records.append(_record(0, VERSION,
                                   _version_bytes(message["softwareVersion"], "softwareVersion")
                                   + _version_bytes(message["hardwareVersion"], "hardwareVersion")))
        elif kind == "upload_sensor_id":
            eui = bytes.fromhex(str(message["sensorId"]))
            if len(eui) != 8:
                raise ValueError(f"{NAME}: sensorId must be 16 hex digits")
            records.append(_record(1, EUI_HIGH, eui[:4][::-1]))
            records.append(_record(1, EUI_LOW, eui[4:][::-1]))
        elif kind == "upload_battery":
            following = messages[index + 1] if index + 1 < len(messages) else {}
            if following.get("type") != "upload_interval":
                raise ValueError(f"{NAME}: upload_battery must be followed by upload_interval "
                                 "(the device sends both in one record)")
            records.append(_battery_record(message["battery"], following["interval"]))
            index += 1
        elif kind == "report_remove_sensor":
            records.append(_record(1, SENSOR_REMOVED, bytes(4)))
        elif kind == "unknown_message":
            data_id = int(message["dataID"])
            value = bytes.fromhex(str(message["dataValue"]))
            handled = {VERSION, EUI_LOW, EUI_HIGH, BATTERY_INTERVAL, SENSOR_REMOVED} | SILENT_IDS
            if data_id in handled or not 0 <= data_id <= TELEMETRY_ABOVE or len(value) != 4:
                raise ValueError(f"{NAME}: unknown_message {data_id} cannot be encoded as such")
            records.append(_record(1, data_id, value))
        else:
            raise ValueError(f"{NAME}: cannot encode a message of type {kind!r}")
        index += 1
    body = b"".join(records)
    return body + struct.pack("<H", crc16_kermit(body))


def encode(decoded: Decoded) -> tuple[int, bytes]:
    """A frame for the vendor output: its own ``payload`` echo when that still decodes to the
    same output (it keeps channels and silent records that messages do not show), otherwise
    records built from ``messages`` (channel 1, version on channel 0) with a correct CRC."""
    echo = decoded.get("payload")
    if isinstance(echo, str):
        try:
            frame = bytes.fromhex(echo)
        except ValueError:
            frame = None
        if frame is not None and decode(PORT, frame) == decoded:
            return PORT, frame
    if decoded.get("valid") is False:
        raise ValueError(f"{NAME}: an invalid frame can only be encoded from its payload echo")
    return PORT, _build(list(decoded.get("messages", [])))


MODEL = DeviceModel(
    id="sensecap/sensecap210x",
    name="SenseCAP S210x",
    kind="soil",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(
        ("sensecap", "sensecaps2101-temp-humid"),
        ("sensecap", "sensecaps2102-light"),
        ("sensecap", "sensecaps2103-co2-temp-humid"),
        ("sensecap", "sensecaps2104-soil-moisture-temp"),
        ("sensecap", "sensecaps2105-soll-moisture-temp-ec"),
    ),
)
