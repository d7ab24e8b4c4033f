"""The alert lifecycle: durations, hysteresis, reminders, acknowledgement, closing, dedup."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from alerts.checks import DeviceWindow, Evaluation, Observation, evaluate
from alerts.lifecycle import (AlertState, Closed, Opened, Reminder, acknowledge, alert_id, step)
from alerts.rules import load_rules

T0 = datetime(2026, 4, 7, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def rules(**timings: str):
    """One storm rule ("r") with the given timings, nothing else."""
    lines = [f"    {k}: {v}" for k, v in timings.items()]
    return load_rules(defaults=False, text="\n".join([
        "rules:", "  - id: r", "    kind: storm", "    severity: warning",
        "    params: {gust_ms: 20.8, clear_gust_ms: 17.2}", *lines]))


ACTIVE = Observation(True, 25.0, {"gust_ms": 25.0})
BAND = Observation(False, 19.0, {"gust_ms": 19.0})
CLEAR = Observation(False, 5.0, {"gust_ms": 5.0}, clearing=True)
UNKNOWN = Observation.unknown("no data")


def ev(o: Observation, device: str = "d1", rule: str = "r") -> list[Evaluation]:
    return [Evaluation(device, rule, o, "Wächtersbach", "Station 1")]


class Run:
    """Steps the lifecycle and records the events, like a service loop would."""

    def __init__(self, ruleset) -> None:
        self.rules = ruleset
        self.states: list[AlertState] = []
        self.events: list = []

    def __call__(self, minutes: float, *observations: Observation | list[Evaluation]):
        evaluations: list[Evaluation] = []
        for o in observations:
            evaluations += o if isinstance(o, list) else ev(o)
        states, events = step(self.states, evaluations, at(minutes), self.rules)
        self.states = [s for s in states if s.status != "closed"]
        self.events += events
        return events

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    @property
    def alert(self) -> AlertState:
        assert len(self.states) == 1, self.states
        return self.states[0]


def test_opens_at_once_without_min_duration():
    run = Run(rules())
    events = run(0, ACTIVE)
    assert [type(e) for e in events] == [Opened]
    alert = events[0].alert
    assert alert.status == "open" and alert.opened_at == at(0) and alert.first_seen == at(0)
    assert alert.severity == "warning" and alert.municipality == "Wächtersbach"
    assert alert.device_name == "Station 1" and alert.value == 25.0
    assert alert.id == alert_id("d1", "r", at(0))
    run(10, ACTIVE)
    run(20, ACTIVE)
    assert run.kinds() == ["opened"] and run.alert.id == alert.id


def test_pending_until_min_duration():
    run = Run(rules(min_duration="30min"))
    assert run(0, ACTIVE) == [] and run.alert.status == "pending"
    assert run(20, ACTIVE) == [] and run.alert.status == "pending"
    events = run(30, ACTIVE)
    assert [e.kind for e in events] == ["opened"]
    assert events[0].alert.first_seen == at(0) and events[0].alert.opened_at == at(30)


def test_pending_dropped_when_it_clears_first_and_starts_again():
    run = Run(rules(min_duration="30min"))
    run(0, ACTIVE)
    states, events = step(run.states, ev(CLEAR), at(20), run.rules)
    assert events == [] and states[0].status == "closed" and not states[0].was_opened
    run.states = []
    run(40, ACTIVE)
    assert run(60, ACTIVE) == []            # counts from 40 now, not from 0
    assert [e.kind for e in run(70, ACTIVE)] == ["opened"]


def test_pending_opens_only_while_active_and_band_does_not_reset_it():
    run = Run(rules(min_duration="30min"))
    run(0, ACTIVE)
    assert run(35, BAND) == []              # held long enough, but not active right now
    assert run.alert.status == "pending"
    assert [e.kind for e in run(40, ACTIVE)] == ["opened"]


def test_min_duration_counts_from_the_data():
    run = Run(rules(min_duration="12h"))
    since = at(-13 * 60)
    events = run(0, Observation(True, 15.0, {}, since=since))
    assert [e.kind for e in events] == ["opened"] and events[0].alert.first_seen == since


def test_flapping_inside_the_hysteresis_gives_one_alert():
    run = Run(rules(clear_after="0"))
    for n, o in enumerate([ACTIVE, BAND, ACTIVE, BAND, BAND, ACTIVE, BAND, ACTIVE]):
        run(10 * n, o)
    assert run.kinds() == ["opened"]
    run(100, CLEAR)
    assert run.kinds() == ["opened", "closed"]


def test_closes_after_clear_after_and_a_relapse_restarts_the_count():
    run = Run(rules(clear_after="1h"))
    run(0, ACTIVE)
    run(10, CLEAR)
    run(60, CLEAR)
    assert run.alert.clear_since == at(10)
    run(65, BAND)                           # back inside the band: not clear any more
    assert run.alert.clear_since is None
    run(70, CLEAR)
    assert run(129, CLEAR) == []
    events = run(130, CLEAR)
    assert [type(e) for e in events] == [Closed]
    assert events[0].alert.closed_at == at(130) and events[0].alert.status == "closed"
    assert run.states == [] and run.kinds() == ["opened", "closed"]


def test_reopening_later_is_a_new_alert():
    run = Run(rules())
    first = run(0, ACTIVE)[0].alert
    run(10, CLEAR)
    second = run(20, ACTIVE)[0].alert
    assert run.kinds() == ["opened", "closed", "opened"]
    assert second.id != first.id and second.first_seen == at(20)


def test_reminders_at_the_interval():
    run = Run(rules(remind_every="1h"))
    run(0, ACTIVE)
    for minutes in range(10, 5 * 60 + 1, 10):
        run(minutes, ACTIVE)
    reminders = [e for e in run.events if isinstance(e, Reminder)]
    assert [e.at for e in reminders] == [at(60), at(120), at(180), at(240), at(300)]
    assert [e.alert.reminders_sent for e in reminders] == [1, 2, 3, 4, 5]
    assert run.alert.last_notified_at == at(300)


def test_reminders_need_no_observation_and_stop_at_max():
    run = Run(rules(remind_every="1h", max_reminders=2))
    run(0, ACTIVE)
    for minutes in range(30, 6 * 60, 30):
        run(minutes)                        # no evaluation of this device in these cycles
    assert run.kinds() == ["opened", "reminder", "reminder"]


def test_no_reminder_while_clearing_or_without_data_while_clearing():
    run = Run(rules(remind_every="1h", clear_after="2h"))
    run(0, ACTIVE)
    run(30, CLEAR)
    run(70, CLEAR)
    run(100, UNKNOWN)
    assert run.kinds() == ["opened"]
    assert [e.kind for e in run(150, CLEAR)] == ["closed"]


def test_acknowledge_stops_reminders_by_default():
    run = Run(rules(remind_every="1h"))
    run(0, ACTIVE)
    run(60, ACTIVE)
    run.states = [acknowledge(run.alert, at(70), by="mueller")]
    assert run.alert.status == "acknowledged" and run.alert.acknowledged_by == "mueller"
    for minutes in range(80, 6 * 60, 20):
        run(minutes, ACTIVE)
    assert run.kinds() == ["opened", "reminder"]
    assert run.alert.status == "acknowledged"   # stays until the condition clears
    run(400, CLEAR)
    assert run.kinds() == ["opened", "reminder", "closed"]


def test_acknowledge_keeps_reminders_when_configured():
    run = Run(rules(remind_every="1h", remind_when_acknowledged="true"))
    run(0, ACTIVE)
    run.states = [acknowledge(run.alert, at(50))]
    for minutes in range(60, 200, 10):
        run(minutes, ACTIVE)
    reminders = [e.at for e in run.events if isinstance(e, Reminder)]
    assert reminders == [at(110), at(170)]      # counted from the acknowledgement


def test_acknowledge_only_open_alerts():
    run = Run(rules(min_duration="1h"))
    run(0, ACTIVE)
    with pytest.raises(ValueError):
        acknowledge(run.alert, at(1))           # pending
    run(60, ACTIVE)
    acked = acknowledge(run.alert, at(61))
    assert acknowledge(acked, at(62)) is acked  # again: unchanged
    with pytest.raises(ValueError):
        acknowledge(acked, datetime(2026, 4, 7, 9))  # naive time


def test_unknown_and_missing_observations_change_nothing():
    run = Run(rules(min_duration="30min"))
    run(0, ACTIVE)
    run(40, UNKNOWN)
    assert run.alert.status == "pending"
    run(50)
    assert run.alert.status == "pending"
    run(60, ACTIVE)
    assert run.alert.status == "open"
    run(70, UNKNOWN)
    assert run.alert.status == "open" and run.alert.value == 25.0


def test_one_alert_per_device_and_rule_never_two():
    ruleset = rules()
    a = AlertState("a", "r", "d1", "open", at(0), "warning", opened_at=at(0))
    b = AlertState("b", "r", "d1", "open", at(5), "warning", opened_at=at(5))
    other = AlertState("c", "r", "d2", "open", at(5), "warning", opened_at=at(5))
    states, events = step([b, a, other], ev(ACTIVE) + ev(ACTIVE, device="d2"), at(10), ruleset)
    assert events == []
    live = [s for s in states if s.status != "closed"]
    assert sorted(s.id for s in live) == ["a", "c"]
    closed = [s for s in states if s.status == "closed"]
    assert [s.id for s in closed] == ["b"] and "duplicate" in closed[0].detail["reason"]
    # the same observation given twice in one cycle still makes one alert
    states, events = step([], ev(ACTIVE) + ev(ACTIVE), at(0), ruleset)
    assert len(states) == 1 and len(events) == 1


def test_separate_alerts_per_device_and_per_rule():
    ruleset = load_rules(defaults=False, text="""
rules:
  - {id: r, kind: storm, severity: warning, params: {gust_ms: 20.8, clear_gust_ms: 17.2}}
  - {id: r2, kind: storm, severity: critical, params: {gust_ms: 28.5, clear_gust_ms: 24.5}}
""")
    evaluations = ev(ACTIVE) + ev(ACTIVE, device="d2") + ev(ACTIVE, rule="r2")
    states, events = step([], evaluations, at(0), ruleset)
    assert sorted(s.key for s in states) == [("d1", "r"), ("d1", "r2"), ("d2", "r")]
    assert {e.alert.severity for e in events} == {"warning", "critical"}


def test_a_removed_or_disabled_rule_ends_its_alerts_quietly():
    run = Run(rules())
    run(0, ACTIVE)
    states, events = step(run.states, [], at(10), load_rules(defaults=False, text="[]"))
    assert events == [] and states[0].status == "closed"
    assert states[0].detail["reason"] == "rule removed or disabled"


def test_closed_states_given_back_are_ignored_and_times_must_be_aware():
    run = Run(rules())
    run(0, ACTIVE)
    done = AlertState("x", "r", "d1", "closed", at(-100), "warning", closed_at=at(-50))
    states, _ = step([done, *run.states], ev(ACTIVE), at(10), run.rules)
    assert [s.status for s in states] == ["open"]
    with pytest.raises(ValueError):
        step([], ev(ACTIVE), datetime(2026, 4, 7), run.rules)


def test_records_round_trip():
    run = Run(rules(remind_every="1h"))
    run(0, ACTIVE)
    alert = acknowledge(run.alert, at(5), by="x")
    record = alert.to_record()
    assert record["status"] == "acknowledged" and record["detail"] == {"gust_ms": 25.0}
    assert AlertState.from_record(record) == alert
    as_text = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in record.items()}
    assert AlertState.from_record(as_text) == alert


# ------------------------------------------------------- with the real checks and default rules

DEFAULTS = load_rules()
BIN = {"distance_empty_m": 1.0, "distance_full_m": 0.15}


def test_bin_full_flapping_around_the_threshold_is_one_alert():
    run = Run(DEFAULTS)
    levels = [60, 75, 85, 89, 91, 93, 88, 92, 86, 95, 89, 91, 78, 93, 96, 10, 8, 7]
    history: list[tuple[float, float]] = []
    for n, level in enumerate(levels):
        now = at(30 * n)
        history.append((now.timestamp(), level))
        w = DeviceWindow("bin-1", kind="bin", municipality="Bad Orb", attributes=BIN,
                         readings={"fill_level_pct": np.array(history)})
        run(30 * n, [e for e in evaluate(DEFAULTS, [w], now) if e.rule_id == "bin_full"])
    assert run.kinds() == ["opened", "closed"]
    opened, closed = run.events
    assert opened.at == at(30 * 5)            # the second reading over 90 % (median of three)
    assert closed.at == at(30 * 16)           # the second low reading after the emptying


def test_device_offline_through_the_lifecycle():
    run = Run(DEFAULTS)
    uplinks = [at(m).timestamp() for m in range(-300, 1, 10)]  # every 10 min until 0
    def cycle(minutes: float, times: list[float]) -> None:
        w = DeviceWindow("wetter-1", kind="weather", municipality="Sinntal",
                         uplinks=np.array(times))
        run(minutes, [e for e in evaluate(DEFAULTS, [w], at(minutes))
                      if e.rule_id == "device_offline"])

    for minutes in range(5, 30, 5):
        cycle(minutes, uplinks)
    assert run.events == []
    cycle(30, uplinks)                         # 3 x 10 min silent
    cycle(35, uplinks)
    assert run.kinds() == ["opened"]
    cycle(40, uplinks + [at(38).timestamp()])  # back
    assert run.kinds() == ["opened", "closed"]


def test_a_fire_opens_at_once_and_reminds_until_cooled():
    run = Run(DEFAULTS)
    temps = [(0, 21.0), (30, 22.0), (60, 48.0), (90, 75.0), (120, 70.0), (150, 50.0),
             (180, 30.0), (210, 25.0), (240, 24.0), (270, 24.0)]
    history = []
    for minutes, value in temps:
        history.append((at(minutes).timestamp(), value))
        w = DeviceWindow("bin-2", kind="bin", attributes=BIN,
                         readings={"device_temperature_c": np.array(history)})
        run(minutes, [e for e in evaluate(DEFAULTS, [w], at(minutes)) if e.rule_id == "bin_fire"])
    # opened on the 26 K jump at 60 min, reminded every 30 min while hot, closed 1 h after it
    # cooled below 45 °C (first clear at 180 min)
    assert [(e.kind, e.at) for e in run.events] == [
        ("opened", at(60)), ("reminder", at(90)), ("reminder", at(120)), ("reminder", at(150)),
        ("closed", at(240))]
    assert run.events[0].alert.severity == "critical"
