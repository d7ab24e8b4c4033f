"""What a supported device model is: decoder, encoder, normaliser and how TTS names it."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Decoded = dict[str, Any]  # the vendor's output, field names and values as TTS would deliver
Normalized = dict[str, float | None]  # shared vocabulary (decoders/normalize.py); None: missing


@dataclass(frozen=True)
class DeviceModel:
    id: str  # "vendor/model", as in shared/vectors/devices.json
    name: str  # how the vendor writes it, for messages and listings
    kind: str  # bin, weather, soil, irrigation, level, any
    # (f_port, payload) -> vendor output; raises DecodeError for an invalid frame
    decode: Callable[[int, bytes], Decoded]
    # vendor output (ours or TTS's decoded_payload) + device attributes -> shared vocabulary
    normalize: Callable[[Decoded, Mapping[str, Any]], Normalized]
    # vendor output of a data frame -> (f_port, payload): decode(*encode(x)) == x
    encode: Callable[[Decoded], tuple[int, bytes]]
    tts_ids: tuple[tuple[str, str], ...] = ()  # (brand_id, model_id) in the device repository
