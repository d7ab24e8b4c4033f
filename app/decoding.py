"""Pick the decoder for an uplink and turn its payload into readings. Pure: no I/O.

Order: the decoder configured on the device (an operator's explicit choice), then the model TTS
reports in ``version_ids`` (or a ChirpStack ``decoder`` tag), then the network server's own
``decoded_payload`` under its field names. With none of these, or when decoding fails, the
uplink is still stored and the reason goes to the dead-letter table.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from app.model import Reading, Uplink
from decoders import DecodeError, by_id, by_tts
from decoders.normalize import finite, generic

UPSTREAM = "upstream"  # decoder id recorded when the network server's output was used


@dataclass(frozen=True, slots=True)
class DeviceConfig:
    """What the registry says about a device that decoding needs."""

    decoder: str | None = None
    kind: str | None = None
    attributes: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decoding:
    decoder: str | None
    readings: list[Reading]
    error: str | None = None
    kind: str | None = None  # what the decoder's model says the device is


def decode_uplink(uplink: Uplink, device: DeviceConfig | None,
                  keep_readings: bool = True) -> Decoding:
    config = device or DeviceConfig()
    if uplink.f_port == 0 and not uplink.payload:
        return Decoding(None, [])  # MAC-only frame: a sign of life, no sensor data

    model = None
    if config.decoder:
        model = by_id(config.decoder)
        if model is None:
            return Decoding(None, [], f"device {uplink.device_id} is configured with decoder "
                            f"{config.decoder!r}, which does not exist")
    else:
        # TTS names models by device-repository ids; a ChirpStack tag may name our decoder id.
        model = by_tts(uplink.brand_id, uplink.model_id) or (
            by_id(f"{uplink.brand_id}/{uplink.model_id}") if uplink.brand_id else None)

    if model is not None:
        try:
            if uplink.payload:
                decoded = model.decode(uplink.f_port, uplink.payload)
            elif uplink.decoded_payload is not None:
                decoded = uplink.decoded_payload
            else:
                return Decoding(model.id, [], f"{model.name} uplink has an empty payload", model.kind)
            values = model.normalize(decoded, config.attributes)
        except DecodeError as err:
            return Decoding(model.id, [], str(err), model.kind)
        decoder_id, kind = model.id, model.kind
    elif uplink.decoded_payload is not None:
        values = generic(uplink.decoded_payload)
        decoder_id, kind = UPSTREAM, None
    else:
        reported = f"{uplink.brand_id}/{uplink.model_id}" if uplink.brand_id else "none reported"
        return Decoding(None, [], f"no decoder for device {uplink.device_id} (model: "
                        f"{reported}) and no decoded_payload from the network server")

    if not keep_readings:
        return Decoding(decoder_id, [], None, kind)
    readings = [
        Reading(uplink.received_at, uplink.device_id, metric, number)
        for metric, value in values.items()
        if (number := finite(value)) is not None
    ]
    return Decoding(decoder_id, readings, None, kind)
