"""Decentlab DL-MBX: ultrasonic distance sensor, mounted in the lid of a litter bin.

Sensor group 0 carries the distance in mm and the number of valid samples; group 1 the battery.
A frame with 0 valid samples carries no usable distance (nothing in range, or the echo was lost):
the normaliser turns it into a missing reading rather than a number. Unlike the vendor's
reference decoder, we check the protocol version and the frame length.

``number_of_valid_samples`` carries ``"unit": null``. The vendor's codec file disagrees with
itself here: its JavaScript (dl-mbx.js) leaves ``unit`` out for this value, while the published
example output in dl-mbx-codec.yaml, which is our test vector, has ``unit: null``. A vector passes
only if every key of the example is present, so we follow the example. No other key of ours is
missing from the vendor's examples (tests/test_decoders.py, ``test_no_key_the_vendor_does_not_emit``).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from decoders.decentlab import Group, battery_group, decentlab_model, value, word
from decoders.model import Decoded, Normalized
from decoders.normalize import fill_level_pct, finite

GROUPS = (
    Group(2, (
        word("distance", "Distance", "mm", 0),
        word("number_of_valid_samples", "Number of valid samples", None, 1),
    )),
    battery_group(),
)


def normalize(decoded: Decoded, attributes: Mapping[str, Any]) -> Normalized:
    out: Normalized = {}
    if "distance" in decoded:
        samples = finite(value(decoded, "number_of_valid_samples"))
        mm = finite(value(decoded, "distance"))
        distance = mm / 1000 if mm is not None and samples != 0 else None
        out["distance_m"] = distance
        out["fill_level_pct"] = fill_level_pct(distance, attributes)
    if "battery_voltage" in decoded:
        out["battery_v"] = finite(value(decoded, "battery_voltage"))
    return out


def frame(distance_mm: int | None, battery_v: float, device_id: int = 303,
          valid_samples: int = 8) -> bytes:
    """A DL-MBX payload from plain values; ``distance_mm=None`` gives a battery-only frame."""
    decoded: Decoded = {"protocol_version": 2, "device_id": device_id,
                        "battery_voltage": {"value": battery_v}}
    if distance_mm is not None:
        decoded["distance"] = {"value": distance_mm}
        decoded["number_of_valid_samples"] = {"value": valid_samples}
    return MODEL.encode(decoded)[1]


MODEL = decentlab_model("DL-MBX", "bin", GROUPS, normalize)
