"""Incidents injected into a simulation: the events the alerts must catch (issue 8).

An incident is something that happens to a device or a town from ``start`` to ``end`` (None:
until the run ends). The engine asks :class:`Incidents` what it changes; the ground truth's
event log gets ``incident_start`` and ``incident_end`` rows (detail: the kind) so that an
evaluation knows when each one began and ended.

- ``fire`` (bins whose model reports a temperature, e.g. ``generic/cayenne-lpp``): the
  temperature inside the bin rises to ``temperature_c`` (default 90 °C) within ``ramp`` (10
  min); at ``end`` it is put out and falls back to the air's (e-folding time 10 min). Bins of
  such a model report the air's temperature otherwise.
- ``tipped`` (bins with a distance sensor): knocked over, the lid sensor looks across the
  ground, ``distance_factor`` (1.6) times the empty bin's distance; righted at ``end`` with the
  litter back in.
- ``silent`` (any device): sends nothing (a dead radio, a van parked on the antenna) while the
  device and its physics go on; back at ``end`` with the next frame counter.
- ``frost`` (towns, ``municipalities``; none: every town): a frost night forced on the weather
  (:class:`simulator.physics.Forcing`): air towards ``temperature_c`` (-3 °C), humidity towards
  ``humidity_pct`` (96 %), calm, with ``ramp`` (2 h) in and out.
- ``dry_spell`` (soil probes): no rain reaches the root zone and no crew or controller waters
  it; the moisture falls linearly to ``moisture_pct`` (13 %) over ``ramp`` (24 h) and stays
  there; at ``end`` the crew waters it (``water_l``, 80 l).

A scenario file may list them under ``incidents:``; ``Simulation(incidents=...)`` adds more.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator import physics, reporters

if TYPE_CHECKING:  # pragma: no cover
    from simulator.scenario import DeviceSpec

IncidentKind = Literal["fire", "tipped", "silent", "frost", "dry_spell"]

_DEFAULT_RAMP = {"fire": timedelta(minutes=10), "tipped": timedelta(0),
                 "silent": timedelta(0), "frost": timedelta(hours=2),
                 "dry_spell": timedelta(hours=24)}
FIRE_COOLING_S = 600.0  # e-folding time of a bin put out with water
FIRE_PEAK_C = 90.0
FROST_AIR_C = -3.0
FROST_HUMIDITY_PCT = 96.0
FROST_WIND_MS = 0.8
DRY_MOISTURE_PCT = 13.0
TIPPED_DISTANCE_FACTOR = 1.6
WATERING_L = 80.0


class Incident(BaseModel):
    """One injected event (see the module docstring for the kinds)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: IncidentKind
    start: datetime
    end: datetime | None = None
    devices: list[str] = []
    municipalities: list[str] = []  # frost only
    ramp: timedelta | None = None  # None: the kind's default
    temperature_c: float | None = None  # fire: peak in the bin; frost: the night's air
    humidity_pct: float | None = Field(default=None, ge=0, le=100)  # frost
    moisture_pct: float | None = Field(default=None, ge=0, le=100)  # dry spell
    distance_factor: float = Field(default=TIPPED_DISTANCE_FACTOR, gt=1.0)  # tipped
    water_l: float = Field(default=WATERING_L, ge=0)  # dry spell: the watering that ends it

    @model_validator(mode="after")
    def _consistent(self) -> "Incident":
        if self.start.tzinfo is None or (self.end is not None and self.end.tzinfo is None):
            raise ValueError("incident times must be timezone-aware")
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"{self.kind} incident: end must be after start")
        if self.kind == "frost":
            if self.devices:
                raise ValueError("a frost incident applies to towns (municipalities), "
                                 "not devices")
        elif not self.devices:
            raise ValueError(f"a {self.kind} incident needs devices")
        elif self.municipalities:
            raise ValueError(f"a {self.kind} incident applies to devices, not municipalities")
        return self

    @property
    def ramp_s(self) -> float:
        return (self.ramp if self.ramp is not None else _DEFAULT_RAMP[self.kind]).total_seconds()

    def active(self, t: datetime) -> bool:
        return self.start <= t and (self.end is None or t < self.end)

    # --- what it does ----------------------------------------------------------------------

    def fire_temperature(self, t: datetime, ambient_c: float) -> float:
        """The temperature in a burning (or put out) bin at ``t``."""
        peak = FIRE_PEAK_C if self.temperature_c is None else self.temperature_c
        if t < self.start:
            return ambient_c
        if self.end is None or t < self.end:
            rise = min(1.0, (t - self.start).total_seconds() / max(self.ramp_s, 1.0))
            return ambient_c + rise * (peak - ambient_c)
        at_end = self.fire_temperature(self.end - timedelta(microseconds=1), ambient_c)
        cooled = math.exp(-(t - self.end).total_seconds() / FIRE_COOLING_S)
        return ambient_c + (at_end - ambient_c) * cooled

    def forcing(self) -> physics.Forcing:
        """The frost night as a weather forcing."""
        end = self.end if self.end is not None else self.start + timedelta(days=3650)
        return physics.Forcing(
            self.start, end, timedelta(seconds=self.ramp_s),
            temperature_c=FROST_AIR_C if self.temperature_c is None else self.temperature_c,
            relative_humidity_pct=(FROST_HUMIDITY_PCT if self.humidity_pct is None
                                   else self.humidity_pct),
            wind_speed_ms=FROST_WIND_MS)

    def dry_target(self, t: datetime, moisture_at_start: float) -> float:
        """The most moisture a probe in the dry spell may hold at ``t``."""
        floor = DRY_MOISTURE_PCT if self.moisture_pct is None else self.moisture_pct
        if moisture_at_start <= floor:
            return floor
        done = min(1.0, (t - self.start).total_seconds() / max(self.ramp_s, 1.0))
        return moisture_at_start - done * (moisture_at_start - floor)


class Incidents:
    """The incidents of one run, checked against the fleet and looked up by device."""

    def __init__(self, incidents: Iterable[Incident], devices: Sequence["DeviceSpec"],
                 towns: Iterable[str]) -> None:
        self.all = sorted(incidents, key=lambda i: (i.start, i.kind))
        specs = {d.device_id: d for d in devices}
        towns = set(towns)
        self._by_device: dict[str, list[Incident]] = {}
        for incident in self.all:
            for device_id in incident.devices:
                spec = specs.get(device_id)
                if spec is None:
                    raise ValueError(f"{incident.kind} incident: no device {device_id!r} in "
                                     f"the simulation")
                _check(incident, spec)
                self._by_device.setdefault(device_id, []).append(incident)
            unknown = set(incident.municipalities) - towns
            if unknown:
                raise ValueError(f"frost incident: unknown municipalities {sorted(unknown)}")

    def of(self, device_id: str, kind: IncidentKind) -> list[Incident]:
        return [i for i in self._by_device.get(device_id, []) if i.kind == kind]

    def active(self, device_id: str, kind: IncidentKind, t: datetime) -> Incident | None:
        return next((i for i in self.of(device_id, kind) if i.active(t)), None)

    def frosts(self) -> list[Incident]:
        return [i for i in self.all if i.kind == "frost"]


def _check(incident: Incident, spec: "DeviceSpec") -> None:
    kind = incident.kind
    if kind in ("fire", "tipped") and spec.kind != "bin":
        raise ValueError(f"{kind} incident: {spec.device_id} is not a bin")
    if kind == "fire" and "temperature_c" not in reporters.carried_metrics(spec.model):
        raise ValueError(f"fire incident: {spec.device_id} ({spec.model}) reports no "
                         f"temperature, nobody would notice the fire; use a bin model with "
                         f"one (generic/cayenne-lpp)")
    if kind == "tipped" and "distance_m" not in reporters.carried_metrics(spec.model):
        raise ValueError(f"tipped incident: {spec.device_id} ({spec.model}) measures no "
                         f"distance")
    if kind == "dry_spell" and spec.kind != "soil":
        raise ValueError(f"dry_spell incident: {spec.device_id} is not a soil probe")
