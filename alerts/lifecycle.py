"""The alert lifecycle: a pure state machine from observations to alerts and notifications.

::

    (no alert) --active--> pending --active, held min_duration--> open --acknowledge()--> acknowledged
                              |                                     |                       |
                              +--clearing--> (dropped, no event)    +--clear for clear_after+--> closed
                                                                    |                       |
                                                                    +-- remind_every -------+ (if configured)

:func:`step` takes the alerts that are not closed, this cycle's evaluations and ``now`` and
returns the new alerts and the events to notify (:class:`Opened`, :class:`Reminder`,
:class:`Closed`). There is at most one alert per (device, rule) that is not closed; a
condition that comes back after its alert closed is a new alert with a new id.

The condition, as the lifecycle sees it, has hysteresis: it is set by an ``active`` observation
and reset only by a ``clearing`` one; an observation inside the band (neither) or without data
(``known=False``) changes nothing, so a value flapping around the alarm threshold neither
closes nor reopens the alert. ``min_duration`` counts from ``first_seen`` (the observation's
``since`` when the data tells when it began) and the alert opens only while the condition is
active; ``clear_after`` counts from the first clearing observation and any non-clearing one
starts it again. Reminders are not sent while an alert is clearing.

No clock, no I/O: ``now`` is given, ids are derived from (device, rule, first_seen).
"""
from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, ClassVar, Literal

from alerts.checks import Evaluation, Observation
from alerts.params import Severity
from alerts.rules import Rule, RuleSet

Status = Literal["pending", "open", "acknowledged", "closed"]
_NAMESPACE = uuid.UUID("5b0c3e1a-8a52-4f0e-9d55-6b61756866ab")  # bauhof-sense alerts


def _aware(t: datetime) -> datetime:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError("times must be timezone-aware")
    return t


def alert_id(device_id: str, rule_id: str, first_seen: datetime) -> str:
    """A stable id: the same alert gets the same id however often it is computed."""
    moment = _aware(first_seen).astimezone(timezone.utc).isoformat()
    return str(uuid.uuid5(_NAMESPACE, f"{device_id}|{rule_id}|{moment}"))


@dataclass(frozen=True)
class AlertState:
    id: str
    rule_id: str
    device_id: str
    status: Status
    first_seen: datetime
    severity: Severity
    municipality: str | None = None
    device_name: str | None = None
    opened_at: datetime | None = None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None
    closed_at: datetime | None = None
    last_notified_at: datetime | None = None
    value: float | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)
    reminders_sent: int = 0
    clear_since: datetime | None = None  # first clearing observation of the current clear spell

    @property
    def key(self) -> tuple[str, str]:
        return self.device_id, self.rule_id

    @property
    def was_opened(self) -> bool:
        """False for a pending alert that was dropped before it opened (closed, never notified)."""
        return self.opened_at is not None

    def to_record(self) -> dict[str, Any]:
        """A flat dict for a database row (datetimes stay datetimes, detail a dict)."""
        record = asdict(self)
        record["detail"] = dict(self.detail)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "AlertState":
        """The inverse of :meth:`to_record`; ISO strings are accepted for the times."""
        values = {k: record[k] for k in cls.__dataclass_fields__ if k in record}
        for name in ("first_seen", "opened_at", "acknowledged_at", "closed_at",
                     "last_notified_at", "clear_since"):
            if isinstance(values.get(name), str):
                values[name] = datetime.fromisoformat(values[name])
        values["detail"] = dict(values.get("detail") or {})
        return cls(**values)


@dataclass(frozen=True)
class Opened:
    alert: AlertState
    at: datetime
    kind: ClassVar[str] = "opened"


@dataclass(frozen=True)
class Reminder:
    alert: AlertState
    at: datetime
    kind: ClassVar[str] = "reminder"


@dataclass(frozen=True)
class Closed:
    alert: AlertState
    at: datetime
    kind: ClassVar[str] = "closed"


Event = Opened | Reminder | Closed

_PRECEDENCE = {"acknowledged": 0, "open": 1, "pending": 2, "closed": 3}


def step(states: Iterable[AlertState], observations: Iterable[Evaluation], now: datetime,
         rules: RuleSet) -> tuple[list[AlertState], list[Event]]:
    """One evaluation cycle.

    ``states``: the alerts that are not closed (closed ones are ignored). ``observations``:
    this cycle's evaluations, for all devices or only some (a stored batch): an alert without an
    observation only gets its reminders. Returns every given alert that is not closed (changed
    or not), the new ones, and the ones closed in this cycle (to be written once, then
    forgotten); and the events to notify, in a stable order.

    Two alerts for the same (device, rule) in ``states`` (a bug elsewhere) are repaired: the
    older keeps going, the other is returned closed without an event.
    """
    _aware(now)
    live: dict[tuple[str, str], AlertState] = {}
    out: list[AlertState] = []
    for state in sorted(states, key=lambda s: (_PRECEDENCE[s.status], s.first_seen)):
        if state.status == "closed":
            continue
        if state.key in live:
            out.append(replace(state, status="closed", closed_at=now,
                               detail={**state.detail, "reason": f"duplicate of {live[state.key].id}"}))
            continue
        live[state.key] = state
    seen: dict[tuple[str, str], Evaluation] = {}
    for evaluation in observations:
        seen[evaluation.key] = evaluation
    events: list[Event] = []
    for key in sorted(set(live) | set(seen)):
        state, evaluation = live.get(key), seen.get(key)
        rule = rules.get(key[1])
        if rule is None or not rule.enabled:
            if state is not None:  # the rule went away: end its alerts quietly
                out.append(replace(state, status="closed", closed_at=now,
                                   detail={**state.detail, "reason": "rule removed or disabled"}))
            continue
        new, new_events = _advance(state, evaluation, rule, now)
        if new is not None:
            out.append(new)
        events.extend(new_events)
    return out, events


def _advance(state: AlertState | None, evaluation: Evaluation | None, rule: Rule,
             now: datetime) -> tuple[AlertState | None, list[Event]]:
    o: Observation | None = evaluation.observation if evaluation is not None else None
    known = o is not None and o.known
    if state is None:
        if o is None or not o.active:
            return None, []
        first = min(now, o.since) if o.since is not None else now
        state = AlertState(alert_id(evaluation.device_id, rule.id, first), rule.id,
                           evaluation.device_id, "pending", first, rule.severity,
                           evaluation.municipality, evaluation.device_name)
    if known:
        state = replace(state, value=o.value if o.value is not None else state.value,
                        detail=dict(o.detail),
                        municipality=evaluation.municipality or state.municipality,
                        device_name=evaluation.device_name or state.device_name)

    if state.status == "pending":
        if not known:
            return state, []
        if o.clearing:  # gone before it was ever an alert: dropped, nobody was told
            return replace(state, status="closed", closed_at=now), []
        if o.since is not None and o.since < state.first_seen:
            state = replace(state, first_seen=o.since)
        if o.active and now - state.first_seen >= rule.min_duration:
            opened = replace(state, status="open", opened_at=now, last_notified_at=now,
                             severity=rule.severity)
            return opened, [Opened(opened, now)]
        return state, []

    # open or acknowledged
    if known and o.clearing:
        since = state.clear_since or now
        if now - since >= rule.clear_after:
            closed = replace(state, status="closed", closed_at=now, clear_since=since)
            return closed, [Closed(closed, now)]
        return replace(state, clear_since=since), []
    if known:
        state = replace(state, clear_since=None)
    elif state.clear_since is not None:
        return state, []  # no data while clearing: wait for it, and no reminders meanwhile
    if _reminder_due(state, rule, now):
        state = replace(state, last_notified_at=now, reminders_sent=state.reminders_sent + 1)
        return state, [Reminder(state, now)]
    return state, []


def _reminder_due(state: AlertState, rule: Rule, now: datetime) -> bool:
    if rule.remind_every is None:
        return False
    if state.status == "acknowledged" and not rule.remind_when_acknowledged:
        return False
    if rule.max_reminders is not None and state.reminders_sent >= rule.max_reminders:
        return False
    last = state.last_notified_at or state.opened_at or state.first_seen
    if state.status == "acknowledged" and state.acknowledged_at is not None:
        last = max(last, state.acknowledged_at)  # the next reminder counts from the ack
    return now - last >= rule.remind_every


def acknowledge(state: AlertState, now: datetime, by: str | None = None) -> AlertState:
    """A person has seen the alert. Only an open alert can be acknowledged; acknowledging again
    changes nothing. It stays until its condition clears; reminders stop unless the rule has
    ``remind_when_acknowledged``."""
    _aware(now)
    if state.status == "acknowledged":
        return state
    if state.status != "open":
        raise ValueError(f"alert {state.id} is {state.status}; only an open alert can be "
                         f"acknowledged")
    return replace(state, status="acknowledged", acknowledged_at=now, acknowledged_by=by)
