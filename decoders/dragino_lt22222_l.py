"""Dragino LT-22222-L: LoRaWAN I/O controller switching irrigation pumps and valves.

Reference: TTN device repository, ``vendor/dragino/lt22222-l-codec.yaml`` @0874a8f5 and its
decoder ``lt22222-l.js`` @0a254aaa (the stored copy @cec84e85 differs only in whitespace: same
output for every frame).

Frame (fPort 2, exactly 11 bytes, big-endian):

- byte 10: bits 7-6 hardware (0 "LT33222", 1 "LT22222", 2 and 3 unnamed: no ``Hardware_mode``),
  bits 5-0 work mode.
- byte 8: status bits. 0x80 relay RO1, 0x40 relay RO2 ("ON"/"OFF"); 0x01, 0x02, 0x04 digital
  outputs DO1..DO3, *inverted*: a set bit is reported as level "L". In mode 1, 0x08 DI1 and
  0x10 DI2 ("H"/"L"); 0x20 is DI3 when byte 10 is exactly 1 (LT33222 hardware in mode 1) and
  ``First_status`` ("Yes"/"No") in modes other than 1 and 6. DO3 is reported only on LT33222
  hardware, in every mode.
- bytes 0-7 by work mode (``Work_mode`` is the vendor's label, kept verbatim):

  ===  ======================  ===========================================================
  1    "2ACI+2AVI"             AVI1, AVI2 (int16 mV -> V), ACI1, ACI2 (int16 µA -> mA)
  2    "Count mode 1"          Count1, Count2 (32-bit counters)
  3    "2ACI+1Count"           Count1; ACI1, ACI2 from bytes 4-7
  4    "Count mode 2"          Count1; ``Acount_times`` from bytes 4-7
  5    " 1ACI+2AVI+1Count"     AVI1, AVI2, ACI1; Count1 as uint16 from bytes 6-7
  6    "Exit mode"             alarm flag/status bits in bytes 0-2 ("True"/"False") and
                               ``Mode_status`` from byte 9; relays, DO1 and DO2 not decoded
  ===  ======================  ===========================================================

  Any other mode number: no ``Work_mode``, but relays, DO1/DO2, Count1 and ``First_status``.
- byte 9 is used only in mode 6.

Quirks of the reference decoder that we reproduce on purpose:

- The 32-bit counters (``Count1_times``, ``Count2_times``, ``Acount_times``) come out *signed*
  (JavaScript ``<<`` and ``|`` work on int32): a counter at 2**31 or above is negative. The
  decoded value keeps that; the normaliser turns it back into the unsigned count.
- Analog values are int16 / 1000 through ``toFixed(3)``/``parseFloat``, which for an integer
  divided by 1000 is exactly the double ``n / 1000``; negative readings stay negative.
- The mode-5 label has a leading space (" 1ACI+2AVI+1Count").
- For fPort 2 frames of any length other than 11 the reference returns nothing at all; we raise
  ``DecodeError`` ("LT22222-L expects 11 bytes on fPort 2, got N").
- fPort 5 (device status) is parsed by the reference but then falls through to its
  "unknown FPort" error, so it is a ``DecodeError`` here too; so is every other port.

Normalised (1.0/0.0 for states): RO1/RO2 -> ``relay_1``/``relay_2`` ("ON" = 1);
DO1..DO3 -> ``digital_output_1..3`` (the vendor already reports the level, "H" = 1);
DI1..DI3 -> ``digital_input_1..3`` ("H" = 1; in mode 6 the manual's DIx_STATUS bit, "True" = high,
is the input level at the trigger); AVI1/AVI2 -> ``analog_voltage_v_1/_2``; ACI1/ACI2 ->
``analog_current_ma_1/_2``; Count1/Count2 -> ``pulse_count_1/_2`` (unsigned). Not in the
vocabulary and left out: ``Acount_times`` (mode 4 counts on the analog input AVI1, not a pulse
input), ``First_status``, the mode-6 alarm flags and ``Mode_status``, the hardware and mode labels.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NAME = "LT22222-L"
DATA_PORT = 2
STATUS_PORT = 5
FRAME_LENGTH = 11

HARDWARE = {0: "LT33222", 1: "LT22222"}
HARDWARE_CODE = {label: code for code, label in HARDWARE.items()}
UNNAMED_HARDWARE = 2  # hardware codes 2 and 3 decode alike: no Hardware_mode key

WORK_MODES = {
    1: "2ACI+2AVI",
    2: "Count mode 1",
    3: "2ACI+1Count",
    4: "Count mode 2",
    5: " 1ACI+2AVI+1Count",
    6: "Exit mode",
}
WORK_MODE_CODE = {label: code for code, label in WORK_MODES.items()}
UNNAMED_MODE = 0  # modes 0 and 7..63 decode alike: no Work_mode key
EXIT_MODE = 6

RO1, RO2, FIRST_OR_DI3, DI2, DI1, DO3, DO2, DO1 = 0x80, 0x40, 0x20, 0x10, 0x08, 0x04, 0x02, 0x01

# Mode 6: (key, byte, bit) of the alarm flag and status bits, in the vendor's output order.
EXIT_BITS: tuple[tuple[str, int, int], ...] = tuple(
    (f"{name}_{kind}", index, 0x80 >> bit)
    for index, kind in ((0, "flag"), (1, "status"))
    for bit, name in enumerate(("AV1L", "AV1H", "AV2L", "AV2H", "AC1L", "AC1H", "AC2L", "AC2H"))
) + (("DI2_status", 2, 0x08), ("DI2_flag", 2, 0x04), ("DI1_status", 2, 0x02),
     ("DI1_flag", 2, 0x01))


# ---------------------------------------------------------------------------------- decoding

def _check_frame(f_port: int, payload: bytes) -> None:
    if f_port == STATUS_PORT:
        raise DecodeError(f"{NAME} device status on fPort {STATUS_PORT} is not decoded (the vendor "
                          f"decoder answers 'unknown FPort'); measurements come on fPort "
                          f"{DATA_PORT}")
    if f_port != DATA_PORT:
        raise DecodeError(f"{NAME} has no data on fPort {f_port} (expects {DATA_PORT})")
    if len(payload) != FRAME_LENGTH:
        raise DecodeError(f"{NAME} expects {FRAME_LENGTH} bytes on fPort {DATA_PORT}, "
                          f"got {len(payload)}")


def _milli(payload: bytes, offset: int) -> float:
    """int16 thousandths (mV, µA) as V or mA."""
    return struct.unpack_from(">h", payload, offset)[0] / 1000


def _counter(payload: bytes, offset: int) -> int:
    # Signed on purpose: the vendor's bit arithmetic is int32 (see the module docstring).
    return struct.unpack_from(">i", payload, offset)[0]


def _flag(bits: int, mask: int, on: str, off: str) -> str:
    return on if bits & mask else off


def decode(f_port: int, payload: bytes) -> Decoded:
    _check_frame(f_port, payload)
    status = payload[8]
    hardware, mode = payload[10] >> 6, payload[10] & 0x3F

    out: Decoded = {}
    if hardware in HARDWARE:
        out["Hardware_mode"] = HARDWARE[hardware]
    if hardware == 0:
        out["DO3_status"] = _flag(status, DO3, "L", "H")
        if mode == 1:
            out["DI3_status"] = _flag(status, FIRST_OR_DI3, "H", "L")
    if mode != EXIT_MODE:
        out["DO1_status"] = _flag(status, DO1, "L", "H")
        out["DO2_status"] = _flag(status, DO2, "L", "H")
        out["RO1_status"] = _flag(status, RO1, "ON", "OFF")
        out["RO2_status"] = _flag(status, RO2, "ON", "OFF")
        if mode != 1:
            if mode != 5:
                out["Count1_times"] = _counter(payload, 0)
            out["First_status"] = _flag(status, FIRST_OR_DI3, "Yes", "No")
    if mode in WORK_MODES:
        out["Work_mode"] = WORK_MODES[mode]
    out.update(_mode_values(mode, payload))
    return out


def _mode_values(mode: int, payload: bytes) -> Decoded:
    status = payload[8]
    if mode == 1:
        return {"AVI1_V": _milli(payload, 0), "AVI2_V": _milli(payload, 2),
                "ACI1_mA": _milli(payload, 4), "ACI2_mA": _milli(payload, 6),
                "DI1_status": _flag(status, DI1, "H", "L"),
                "DI2_status": _flag(status, DI2, "H", "L")}
    if mode == 2:
        return {"Count2_times": _counter(payload, 4)}
    if mode == 3:
        return {"ACI1_mA": _milli(payload, 4), "ACI2_mA": _milli(payload, 6)}
    if mode == 4:
        return {"Acount_times": _counter(payload, 4)}
    if mode == 5:
        return {"AVI1_V": _milli(payload, 0), "AVI2_V": _milli(payload, 2),
                "ACI1_mA": _milli(payload, 4),
                "Count1_times": struct.unpack_from(">H", payload, 6)[0]}
    if mode == EXIT_MODE:
        out: Decoded = {"Mode_status": "True" if payload[9] else "False"}
        for key, index, mask in EXIT_BITS:
            out[key] = _flag(payload[index], mask, "True", "False")
        return out
    return {}


# ---------------------------------------------------------------------------------- normalising

def _state(value: Any, on: str, off: str) -> float | None:
    if value == on:
        return 1.0
    if value == off:
        return 0.0
    return None


def _unsigned_count(value: Any) -> float | None:
    count = finite(value)
    if count is None:
        return None
    # The vendor's int32 arithmetic turns counts of 2**31 and more negative; undo that.
    return count + 2.0 ** 32 if count < 0 else count


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    exit_mode = decoded.get("Work_mode") == WORK_MODES[EXIT_MODE]
    for n in (1, 2):
        if f"RO{n}_status" in decoded:
            out[f"relay_{n}"] = _state(decoded[f"RO{n}_status"], "ON", "OFF")
    for n in (1, 2, 3):
        if f"DO{n}_status" in decoded:
            out[f"digital_output_{n}"] = _state(decoded[f"DO{n}_status"], "H", "L")
    for n in (1, 2, 3):
        if f"DI{n}_status" in decoded:
            on, off = ("True", "False") if exit_mode else ("H", "L")
            out[f"digital_input_{n}"] = _state(decoded[f"DI{n}_status"], on, off)
    for n in (1, 2):
        if f"AVI{n}_V" in decoded:
            out[f"analog_voltage_v_{n}"] = finite(decoded[f"AVI{n}_V"])
        if f"ACI{n}_mA" in decoded:
            out[f"analog_current_ma_{n}"] = finite(decoded[f"ACI{n}_mA"])
        if f"Count{n}_times" in decoded:
            out[f"pulse_count_{n}"] = _unsigned_count(decoded[f"Count{n}_times"])
    return out


# ---------------------------------------------------------------------------------- encoding

def _code(table: Mapping[str, int], decoded: Decoded, key: str, default: int) -> int:
    if key not in decoded:
        return default
    label = decoded[key]
    if label not in table:
        raise ValueError(f"{NAME}: unknown {key} {label!r}")
    return table[label]


def _pack_milli(value: Any, key: str) -> bytes:
    raw = round(float(value) * 1000)
    if not -0x8000 <= raw <= 0x7FFF:
        raise ValueError(f"{NAME}: {key} {value} does not fit the int16 thousandths field")
    return struct.pack(">h", raw)


def _pack_counter(value: Any, key: str) -> bytes:
    raw = int(value)
    if not -0x8000_0000 <= raw <= 0xFFFF_FFFF:
        raise ValueError(f"{NAME}: {key} {value} does not fit 32 bits")
    return struct.pack(">I", raw & 0xFFFF_FFFF)


def _bit(decoded: Decoded, key: str, on: str, mask: int) -> int:
    return mask if decoded.get(key) == on else 0


def _status_byte(decoded: Decoded, hardware: int, mode: int) -> int:
    bits = _bit(decoded, "DO3_status", "L", DO3) if hardware == 0 else 0
    if mode == EXIT_MODE:
        return bits
    bits |= (_bit(decoded, "RO1_status", "ON", RO1) | _bit(decoded, "RO2_status", "ON", RO2)
             | _bit(decoded, "DO1_status", "L", DO1) | _bit(decoded, "DO2_status", "L", DO2))
    if mode == 1:
        bits |= _bit(decoded, "DI1_status", "H", DI1) | _bit(decoded, "DI2_status", "H", DI2)
        if hardware == 0:
            bits |= _bit(decoded, "DI3_status", "H", FIRST_OR_DI3)
    else:
        bits |= _bit(decoded, "First_status", "Yes", FIRST_OR_DI3)
    return bits


def _values_bytes(decoded: Decoded, mode: int) -> bytes:
    """Bytes 0-7 for the work mode (missing values are 0)."""
    def milli(key: str) -> bytes:
        return _pack_milli(decoded.get(key, 0), key)

    def counter(key: str) -> bytes:
        return _pack_counter(decoded.get(key, 0), key)

    if mode == 1:
        return milli("AVI1_V") + milli("AVI2_V") + milli("ACI1_mA") + milli("ACI2_mA")
    if mode == 2:
        return counter("Count1_times") + counter("Count2_times")
    if mode == 3:
        return counter("Count1_times") + milli("ACI1_mA") + milli("ACI2_mA")
    if mode == 4:
        return counter("Count1_times") + counter("Acount_times")
    if mode == 5:
        count = int(decoded.get("Count1_times", 0))
        if not 0 <= count <= 0xFFFF:
            raise ValueError(f"{NAME}: Count1_times {count} does not fit 16 bits in mode 5")
        return milli("AVI1_V") + milli("AVI2_V") + milli("ACI1_mA") + struct.pack(">H", count)
    if mode == EXIT_MODE:
        alarm = bytearray(8)
        for key, index, mask in EXIT_BITS:
            alarm[index] |= _bit(decoded, key, "True", mask)
        return bytes(alarm)
    return counter("Count1_times") + bytes(4)


def encode(decoded: Decoded) -> tuple[int, bytes]:
    """An fPort-2 frame from the vendor's output (labels select hardware and work mode)."""
    hardware = _code(HARDWARE_CODE, decoded, "Hardware_mode", UNNAMED_HARDWARE)
    mode = _code(WORK_MODE_CODE, decoded, "Work_mode", UNNAMED_MODE)
    mode_status = 1 if mode == EXIT_MODE and decoded.get("Mode_status") == "True" else 0
    payload = (_values_bytes(decoded, mode)
               + bytes((_status_byte(decoded, hardware, mode), mode_status,
                        hardware << 6 | mode)))
    return DATA_PORT, payload


MODEL = DeviceModel(
    id="dragino/lt22222-l",
    name="Dragino LT22222-L",
    kind="irrigation",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("dragino", "lt22222-l"),),
)
