"""CayenneLPP, the generic self-describing format many municipal and DIY devices send.

Frame: a run of records ``[channel, type, data...]``, data big-endian; any fPort (TTS ignores
it; ``encode`` uses fPort 1). Each record becomes one key ``<name>_<channel>``, exactly as The
Things Stack's built-in CayenneLPP formatter names it (``pkg/messageprocessors/cayennelpp`` with
``go-cayenne-lib``): a later record for the same name and channel overwrites an earlier one.

Types TTS decodes, with TTS's names, scales and signedness:
- 0 ``digital_in``, 1 ``digital_out``, 102 ``presence``: uint8, as an integer
- 2 ``analog_in``, 3 ``analog_out``: int16 / 100 (no unit)
- 101 ``luminosity``: uint16 lux, as an integer (TTS says "luminosity", not "illuminance")
- 103 ``temperature``: int16 / 10 °C
- 104 ``relative_humidity``: uint8 / 2 %
- 113 ``accelerometer``: {"x", "y", "z"}, int16 / 1000 G each
- 115 ``barometric_pressure``: int16 / 10 hPa (go-cayenne-lib reads it signed although the LPP
  table says unsigned; only impossible pressures above 3276.7 hPa differ)
- 134 ``gyrometer``: {"x", "y", "z"}, int16 / 100 °/s each
- 136 ``gps``: {"latitude", "longitude", "altitude"}, 3-byte signed, / 10000 ° and / 100 m

Extensions TTS does NOT decode (its formatter fails the whole uplink with "unknown type"): we
decode them anyway, so that devices using the extended Arduino CayenneLPP library still arrive.
Names follow that library's TTN-style decoder (``ElectronicCats/CayenneLPP`` ``decodeTTN``),
scales the IPSO-derived LPP table: 100 ``generic`` uint32; 116 ``voltage`` uint16 / 100 V;
117 ``current`` uint16 / 1000 A; 118 ``frequency`` uint32 Hz; 120 ``percentage`` uint8 %;
121 ``altitude`` int16 m; 122 ``load`` 3-byte signed / 1000 kg; 125 ``concentration`` uint16
ppm; 128 ``power`` uint16 W; 130 ``distance`` uint32 / 1000 m; 131 ``energy`` uint32 / 1000
kWh; 132 ``direction`` uint16 °; 133 ``time`` uint32 Unix seconds; 135 ``colour`` and 144
``rgb`` {"r", "g", "b"} uint8 each; 142 ``switch`` uint8; 143 ``ppm`` uint16.

Errors (TTS fails the uplink in both cases): an unknown type, and a record cut short by the
end of the payload, raise DecodeError naming the channel and type. An empty payload decodes to
``{}``, as in TTS.

Normalised (one simple rule: a kind of measurement present on one channel gets the plain metric
name; on several channels in one frame, ``_1``, ``_2``, ... in ascending channel order):
``temperature`` -> ``temperature_c``; ``relative_humidity`` -> ``relative_humidity_pct`` (None
above 100 %); ``barometric_pressure`` -> ``air_pressure_hpa`` (None when negative);
``luminosity`` -> ``illuminance_lux``; ``digital_in``/``digital_out`` -> ``digital_input`` /
``digital_output`` (1.0 for any non-zero level); ``distance`` -> ``distance_m`` plus
``fill_level_pct``. Left out, because LPP does not say what they measure: ``analog_in``/``out``
(no unit, not necessarily volts), ``voltage`` (battery or input?), ``percentage`` (battery or
fill?), ``concentration``/``ppm`` (of which gas?), ``direction`` (wind or heading?), and
everything without a vocabulary metric (presence, accelerometer, gyrometer, gps, current,
frequency, altitude, load, power, energy, time, colour, switch, generic).
A device that spreads one kind over several frames (channel 1 in one, channel 2 in the next)
gets plain names in both frames; give such devices their own model.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import fill_level_pct, finite

NAME = "CayenneLPP"
ENCODE_PORT = 1

Reader = Callable[[bytes], Any]
Writer = Callable[[Any], bytes]


@dataclass(frozen=True)
class LppType:
    code: int
    name: str
    size: int
    read: Reader
    write: Writer


def _number(raw: int, scale: int) -> int | float:
    return raw if scale == 1 else raw / scale


def _int(data: bytes, signed: bool) -> int:
    return int.from_bytes(data, "big", signed=signed)


def _raw(value: float, scale: int, size: int, signed: bool) -> bytes:
    return round(value * scale).to_bytes(size, "big", signed=signed)


def scalar(code: int, name: str, size: int, scale: int = 1, signed: bool = False) -> LppType:
    return LppType(code, name, size,
                   lambda d: _number(_int(d, signed), scale),
                   lambda v: _raw(v, scale, size, signed))


def vector(code: int, name: str, axes: tuple[str, ...], sizes: tuple[int, ...],
           scales: tuple[int, ...], signed: bool) -> LppType:
    """A record of several numbers, decoded as an object keyed by ``axes``."""
    def read(data: bytes) -> dict[str, int | float]:
        out, offset = {}, 0
        for axis, size, scale in zip(axes, sizes, scales):
            out[axis] = _number(_int(data[offset:offset + size], signed), scale)
            offset += size
        return out

    def write(value: Mapping[str, float]) -> bytes:
        return b"".join(_raw(value[axis], scale, size, signed)
                        for axis, size, scale in zip(axes, sizes, scales))

    return LppType(code, name, sum(sizes), read, write)


XYZ = ("x", "y", "z")
RGB = ("r", "g", "b")
TTS_TYPES = (
    scalar(0, "digital_in", 1),
    scalar(1, "digital_out", 1),
    scalar(2, "analog_in", 2, 100, signed=True),
    scalar(3, "analog_out", 2, 100, signed=True),
    scalar(101, "luminosity", 2),
    scalar(102, "presence", 1),
    scalar(103, "temperature", 2, 10, signed=True),
    scalar(104, "relative_humidity", 1, 2),
    vector(113, "accelerometer", XYZ, (2, 2, 2), (1000, 1000, 1000), signed=True),
    scalar(115, "barometric_pressure", 2, 10, signed=True),  # signed, as go-cayenne-lib reads it
    vector(134, "gyrometer", XYZ, (2, 2, 2), (100, 100, 100), signed=True),
    vector(136, "gps", ("latitude", "longitude", "altitude"), (3, 3, 3), (10000, 10000, 100),
           signed=True),
)
EXTENDED_TYPES = (
    scalar(100, "generic", 4),
    scalar(116, "voltage", 2, 100),
    scalar(117, "current", 2, 1000),
    scalar(118, "frequency", 4),
    scalar(120, "percentage", 1),
    scalar(121, "altitude", 2, signed=True),
    scalar(122, "load", 3, 1000, signed=True),
    scalar(125, "concentration", 2),
    scalar(128, "power", 2),
    scalar(130, "distance", 4, 1000),
    scalar(131, "energy", 4, 1000),
    scalar(132, "direction", 2),
    scalar(133, "time", 4),
    vector(135, "colour", RGB, (1, 1, 1), (1, 1, 1), signed=False),
    scalar(142, "switch", 1),
    scalar(143, "ppm", 2),
    vector(144, "rgb", RGB, (1, 1, 1), (1, 1, 1), signed=False),
)
BY_CODE = {t.code: t for t in TTS_TYPES + EXTENDED_TYPES}
BY_NAME = {t.name: t for t in TTS_TYPES + EXTENDED_TYPES}


def decode(f_port: int, payload: bytes) -> Decoded:
    out: Decoded = {}
    offset = 0
    while offset < len(payload):
        channel = payload[offset]
        if offset + 1 >= len(payload):
            raise DecodeError(f"{NAME} record for channel {channel} at byte {offset} has no "
                              "type byte (payload cut short)")
        code = payload[offset + 1]
        lpp_type = BY_CODE.get(code)
        if lpp_type is None:
            raise DecodeError(f"{NAME} channel {channel} has unknown data type {code} "
                              f"(0x{code:02x}) at byte {offset + 1}")
        data = payload[offset + 2:offset + 2 + lpp_type.size]
        if len(data) < lpp_type.size:
            raise DecodeError(f"{NAME} channel {channel} {lpp_type.name} (type {code}) needs "
                              f"{lpp_type.size} data bytes, got {len(data)}")
        out[f"{lpp_type.name}_{channel}"] = lpp_type.read(data)
        offset += 2 + lpp_type.size
    return out


def _split_key(key: str) -> tuple[str, int] | None:
    name, _, channel = key.rpartition("_")
    if name not in BY_NAME or not channel.isdigit() or int(channel) > 255:
        return None
    return name, int(channel)


def _level(value: float | None) -> float | None:
    return None if value is None else (1.0 if value != 0 else 0.0)


def _at_most(limit: float) -> Callable[[float | None], float | None]:
    return lambda v: v if v is not None and v <= limit else None


def _not_negative(value: float | None) -> float | None:
    return value if value is not None and value >= 0 else None


def _as_is(value: float | None) -> float | None:
    return value


# LPP name -> (vocabulary metric, conversion of the finite value or None)
METRICS: dict[str, tuple[str, Callable[[float | None], float | None]]] = {
    "temperature": ("temperature_c", _as_is),
    "relative_humidity": ("relative_humidity_pct", _at_most(100.0)),
    "barometric_pressure": ("air_pressure_hpa", _not_negative),
    "luminosity": ("illuminance_lux", _as_is),
    "digital_in": ("digital_input", _level),
    "digital_out": ("digital_output", _level),
    "distance": ("distance_m", _as_is),
}


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    channels: dict[str, list[tuple[int, Any]]] = {}
    for key, value in decoded.items():
        parsed = _split_key(key)
        if parsed is not None and parsed[0] in METRICS:
            channels.setdefault(parsed[0], []).append((parsed[1], value))
    out: Normalized = {}
    for name, readings in channels.items():
        metric, convert = METRICS[name]
        readings.sort(key=lambda reading: reading[0])
        for index, (_, value) in enumerate(readings, start=1):
            suffix = f"_{index}" if len(readings) > 1 else ""
            out[metric + suffix] = convert(finite(value))
            if name == "distance":
                out["fill_level_pct" + suffix] = fill_level_pct(out[metric + suffix], attributes)
    return out


def encode(decoded: Decoded) -> tuple[int, bytes]:
    payload = b""
    for key, value in decoded.items():
        parsed = _split_key(key)
        if parsed is None:
            raise ValueError(f"{key!r} is not a CayenneLPP field name")
        name, channel = parsed
        lpp_type = BY_NAME[name]
        payload += bytes([channel, lpp_type.code]) + lpp_type.write(value)
    return ENCODE_PORT, payload


MODEL = DeviceModel(
    id="generic/cayenne-lpp",
    name="CayenneLPP",
    kind="any",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(),
)
