"""What a parser raises instead of returning an uplink: input it cannot accept, with a reason a
person can act on, or a valid message of another kind."""
from __future__ import annotations

from pydantic import ValidationError

# A reason is logged, stored and sent back to a webhook; a hostile topic or JSON key quoted in
# it must not make it megabytes long.
MAX_REASON = 500


class Rejected(Exception):
    def __init__(self, stage: str, reason: str, device_id: str | None = None) -> None:
        if len(reason) > MAX_REASON:
            reason = reason[:MAX_REASON - 1] + "…"
        super().__init__(reason)
        self.stage = stage
        self.reason = reason
        self.device_id = device_id


class NotAnUplink(Exception):
    """A valid message of another kind (a join, a downlink event, a ChirpStack log): answered,
    counted by kind, never stored or dead-lettered. ``known`` is False for a kind the network
    added after us."""

    def __init__(self, kind: str, known: bool = True) -> None:
        super().__init__(kind)
        self.kind = kind
        self.known = known


def describe_validation_error(err: ValidationError, limit: int = 3) -> Rejected:
    """Turn pydantic's error list into one short line: ``field.path: problem; ...``."""
    errors = err.errors(include_url=False, include_input=False)
    if errors and errors[0]["type"] in ("json_invalid", "json_type"):
        return Rejected("parse", f"not valid JSON: {errors[0]['msg']}")
    parts = []
    for item in errors[:limit]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = f" (+{len(errors) - limit} more)" if len(errors) > limit else ""
    return Rejected("validate", "; ".join(parts) + more)
