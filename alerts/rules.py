"""Alert rules as data: pydantic models, loaded from ``default_rules.yaml`` plus a site's file.

A rule names the check it runs (``kind``), which devices it applies to, the check's thresholds
(``params``, validated against :data:`alerts.params.PARAMS`), its severity and timings:

- ``min_duration``: the condition must hold this long before the alert opens (0: at once);
- ``clear_after``: the condition must be clear this long before the alert closes;
- ``remind_every``: repeat the notification while the alert is open and not acknowledged
  (also while acknowledged with ``remind_when_acknowledged``), at most ``max_reminders`` times;
- hysteresis lives in the params as separate ``clear_*`` thresholds.

A site's YAML file overrides and extends the defaults by rule id::

    rules:
      - id: bin_full              # an existing id: only the keys given change
        params: {fill_pct: 85}
      - id: storm
        enabled: false
      - id: bin_full_town_centre  # a new id: a complete rule, or based_on an existing one
        based_on: bin_full
        applies_to: {kinds: [bin], site_types: [town_centre]}
        params: {fill_pct: 75, clear_pct: 55}
"""
from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, model_validator

from alerts import messages
from alerts.params import PARAMS, CheckKind, Duration, Params, Severity

if TYPE_CHECKING:  # pragma: no cover
    from alerts.checks import DeviceWindow

DEFAULT_RULES = Path(__file__).with_name("default_rules.yaml")


class AppliesTo(BaseModel):
    """Which devices a rule looks at; an empty list means any."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = []  # device kinds: bin | weather | soil | irrigation | level
    site_types: list[str] = []  # bus_stop, park, town_centre, hiking_car_park, tree, flower_bed
    municipalities: list[str] = []
    devices: list[str] = []  # device ids

    def matches(self, window: "DeviceWindow") -> bool:
        return ((not self.kinds or window.kind in self.kinds)
                and (not self.site_types or window.site_type in self.site_types)
                and (not self.municipalities or window.municipality in self.municipalities)
                and (not self.devices or window.device_id in self.devices))


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")
    kind: CheckKind
    enabled: bool = True
    description: str = ""
    applies_to: AppliesTo = AppliesTo()
    params: SerializeAsAny[Params]
    severity: Severity
    min_duration: Duration = timedelta(0)
    clear_after: Duration = timedelta(0)
    remind_every: Duration | None = None
    remind_when_acknowledged: bool = False
    max_reminders: int | None = Field(default=None, ge=0)
    message: str = ""  # key prefix in alerts/messages.py; empty: the kind

    @model_validator(mode="before")
    @classmethod
    def _typed_params(cls, data: Any) -> Any:
        if isinstance(data, Mapping) and data.get("kind") in PARAMS:
            params = data.get("params", {})
            if not isinstance(params, Params):
                data = dict(data)
                data["params"] = PARAMS[data["kind"]].model_validate(params or {})
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if not isinstance(self.params, PARAMS[self.kind]):
            raise ValueError(f"params of a {self.kind} rule must be {PARAMS[self.kind].__name__}")
        if self.remind_every is not None and self.remind_every <= timedelta(0):
            raise ValueError("remind_every must be positive (or left out)")
        for lang in messages.LANGUAGES:
            if not messages.has(f"rule.{self.message_key}.title", lang):
                raise ValueError(f"no message rule.{self.message_key}.title in {lang!r}")
        return self

    @property
    def message_key(self) -> str:
        return self.message or self.kind

    def as_yaml_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_defaults=False)


class RuleSet:
    """The loaded rules by id, in file order."""

    def __init__(self, rules: list[Rule]) -> None:
        ids = [r.id for r in rules]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids: {', '.join(duplicates)}")
        self._rules = {r.id: r for r in rules}

    def __iter__(self) -> Iterator[Rule]:
        return iter(self._rules.values())

    def __len__(self) -> int:
        return len(self._rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._rules

    def __getitem__(self, rule_id: str) -> Rule:
        return self._rules[rule_id]

    def get(self, rule_id: str) -> Rule | None:
        return self._rules.get(rule_id)

    def enabled(self) -> list[Rule]:
        return [r for r in self._rules.values() if r.enabled]

    def for_window(self, window: "DeviceWindow") -> list[Rule]:
        """The enabled rules that apply to this device."""
        return [r for r in self._rules.values() if r.enabled and r.applies_to.matches(window)]


def _entries(document: Any, source: str) -> list[dict[str, Any]]:
    if document is None:
        return []
    if isinstance(document, Mapping):
        document = document.get("rules", [])
    if not isinstance(document, list) or not all(isinstance(e, Mapping) for e in document):
        raise ValueError(f"{source}: expected a list of rules (or a mapping with 'rules:')")
    for entry in document:
        if "id" not in entry:
            raise ValueError(f"{source}: a rule without an id: {dict(entry)!r}")
    return [dict(e) for e in document]


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge for mappings (applies_to, params); anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def load_rules(path: str | Path | None = None, *, text: str | None = None,
               defaults: bool = True) -> RuleSet:
    """The default rules, overridden and extended by the rules in ``path`` (or ``text``).

    An entry whose id is a default rule changes only the keys it gives (``params`` and
    ``applies_to`` are merged key by key); a new id is a new rule, complete or ``based_on``
    another rule's id. Raises ``ValueError`` (pydantic's ``ValidationError`` is one) with the
    rule id on any mistake.
    """
    raw: dict[str, dict[str, Any]] = {}
    if defaults:
        for entry in _entries(yaml.safe_load(DEFAULT_RULES.read_text(encoding="utf-8")),
                              str(DEFAULT_RULES)):
            raw[entry["id"]] = entry
    site: list[dict[str, Any]] = []
    if path is not None:
        site = _entries(yaml.safe_load(Path(path).read_text(encoding="utf-8")), str(path))
    if text is not None:
        site += _entries(yaml.safe_load(text), "rules text")
    for entry in site:
        rule_id = entry["id"]
        based_on = entry.pop("based_on", None)
        if rule_id in raw:
            if based_on is not None:
                raise ValueError(f"rule {rule_id}: based_on is only for new rule ids")
            raw[rule_id] = _merge(raw[rule_id], entry)
        elif based_on is not None:
            if based_on not in raw:
                raise ValueError(f"rule {rule_id}: based_on unknown rule {based_on!r}")
            raw[rule_id] = _merge(raw[based_on], entry)
        else:
            raw[rule_id] = entry
    rules = []
    for rule_id, entry in raw.items():
        try:
            rules.append(Rule.model_validate(entry))
        except ValueError as err:
            raise ValueError(f"rule {rule_id}: {err}") from err
    return RuleSet(rules)


def default_rules() -> RuleSet:
    return load_rules()
