"""What a supported device model is: a decoder, a normaliser and how TTS names it."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Decoded = dict[str, Any]
Normalized = dict[str, float | None]


@dataclass(frozen=True)
class DeviceModel:
    id: str  # "vendor/model", as in shared/vectors/devices.json
    name: str  # how the vendor writes it, for messages and listings
    kind: str  # bin, weather, soil, irrigation, level
    decode: Callable[[int, bytes], Decoded]
    # vendor output (ours or TTS's decoded_payload) + device attributes -> shared vocabulary
    normalize: Callable[[Decoded, Mapping[str, Any]], Normalized]
    tts_ids: tuple[tuple[str, str], ...] = ()  # (brand_id, model_id) in the device repository
