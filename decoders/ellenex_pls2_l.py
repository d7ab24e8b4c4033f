"""Ellenex PLS2-L: submersible hydrostatic level transmitter for tanks and cisterns.

Frame: exactly 8 bytes. Bytes 3-4 are ``level``, int16 big-endian two's complement, passed on
raw; byte 7 is ``batteryVoltage`` = byte * 0.1 V, rounded to 1 decimal (the reference decoder's
``+(b * 0.1).toFixed(1)``; for every byte value this is the 1-decimal number b/10). Bytes 0-2 and
5-6 are not decoded by the reference decoder, nor by us.

Quirks, decided against the reference decoder (``vendor/ellenex/pls2-l.js``):
- The data port differs between stored versions of the codec: @2f8a00fb (whose YAML examples
  are the public vectors) accepts fPort 1 only; @0a254aaa and later accept fPort 15 only. A
  device's firmware decides which it uses, and ``decode`` must stay a pure (fPort, bytes)
  function, so we accept both: ``DATA_PORTS = (1, 15)``. Every other port is rejected, so the
  vendor's wrong-port example (fPort 42) still fails; ``encode`` uses fPort 1, the port of the
  public vectors.
- The reference gives no unit for ``level``; the example descriptions say "m", which cannot be
  right for -1192 and 214 from a level probe (shared/devices.md also reports an older variant of
  the codec that scaled the raw count by a range factor; not verified here), so the unit
  probably depends on the probe's range and calibration. We keep the raw value in
  the decoded output and leave level out of the normalised output (no ``level_m``) until the
  unit is established from Ellenex's documentation for the installed probe.

Normalised: ``battery_v`` only.
"""
from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Any

from decoders.errors import DecodeError
from decoders.model import Decoded, DeviceModel, Normalized
from decoders.normalize import finite

NAME = "PLS2-L"
DATA_PORTS = (1, 15)  # 1: codec @2f8a00fb and the public vectors; 15: codec @0a254aaa and later
FRAME_LENGTH = 8


def decode(f_port: int, payload: bytes) -> Decoded:
    if f_port not in DATA_PORTS:
        raise DecodeError(f"{NAME} has no data on fPort {f_port} (expects 1 or 15)")
    if len(payload) != FRAME_LENGTH:
        raise DecodeError(f"{NAME} expects {FRAME_LENGTH} bytes on fPort {f_port}, "
                          f"got {len(payload)}")
    (level,) = struct.unpack_from(">h", payload, 3)
    # the reference's toFixed(1) of b * 0.1; formatting the product rounds it the same way
    battery = float(f"{payload[7] * 0.1:.1f}")
    return {"level": level, "batteryVoltage": battery}


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    # level is left out on purpose: its unit is unknown (see the module docstring)
    out: Normalized = {}
    if "batteryVoltage" in decoded:
        out["battery_v"] = finite(decoded.get("batteryVoltage"))
    return out


def encode(decoded: Decoded) -> tuple[int, bytes]:
    payload = bytearray(FRAME_LENGTH)
    struct.pack_into(">h", payload, 3, decoded["level"])
    payload[7] = round(decoded["batteryVoltage"] * 10)
    return DATA_PORTS[0], bytes(payload)


MODEL = DeviceModel(
    id="ellenex/pls2-l",
    name="Ellenex PLS2-L",
    kind="level",
    decode=decode,
    normalize=normalize,
    encode=encode,
    tts_ids=(("ellenex", "pls2-l"),),
)
