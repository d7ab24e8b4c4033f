"""The faults of the real world, on demand: what can go wrong between a sensor and our service.

Each rate is a probability per uplink, drawn from the device's own seeded generator, so the
same seed injects the same faults into the same uplinks.
"""
from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Faults:
    loss: float = 0.0        # lost over the air: never reaches TTS; the f_cnt still advances
    duplicate: float = 0.0   # delivered twice (a second subscriber, a replayed webhook)
    late: float = 0.0        # delivered 1-30 minutes late, so out of order (received_at unchanged)
    bad_frame: float = 0.0   # the device sends a broken frame: TTS delivers it, decoding fails
    bad_json: float = 0.0    # the message on the wire is not valid JSON (hostile or corrupted)
    rejoin: float = 0.0      # the device joins again first: new session key, f_cnt from 0
    simulated: float = 0.0   # an extra console-simulated uplink (`simulated: true`)
    glitch: float = 0.0      # a bag stuck in front of a bin sensor for a few hours
    disconnect_s: float = 0.0  # every so many simulated seconds, cut the subscriber's connection

    @classmethod
    def parse(cls, text: str | None) -> "Faults":
        """``"loss=0.02,duplicate=0.01,disconnect_s=3600"``; empty or None: no faults."""
        if not text:
            return cls()
        names = {f.name for f in fields(cls)}
        values: dict[str, float] = {}
        for part in text.split(","):
            name, sep, value = part.strip().partition("=")
            if not sep or name not in names:
                raise ValueError(f"unknown fault {part.strip()!r}; known: {', '.join(sorted(names))}")
            number = float(value)
            if number < 0 or (name != "disconnect_s" and number > 1):
                raise ValueError(f"fault {name} must be a probability between 0 and 1")
            values[name] = number
        return cls(**values)
