"""What the planner needs to know about a Bauhof: depot, vehicles, working time, thresholds.

Read from a YAML file (``BAUHOF_PLANNER_CONFIG``); without one the built-in ``default.yaml``
describes the demo scenario's depot and fleet. Thresholds are per bin site type (a bus stop
bin overflows onto the pavement, a hiking car park bin may wait), with a default for the rest.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, Field, model_validator

DEFAULT_CONFIG = Path(__file__).with_name("default.yaml")
Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class Depot(BaseModel):
    name: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class VehicleConfig(BaseModel):
    id: str
    name: str
    capacity_l: float = Field(gt=0, description="loose litter it can carry before unloading")
    shift_h: float = Field(default=8.0, gt=0)
    break_min: float = Field(default=30.0, ge=0)
    water_tank_l: float = Field(default=0.0, ge=0, description="> 0: a watering vehicle")
    collects: bool = Field(default=True, description="takes part in bin collection rounds")
    unload_at_depot: bool = Field(default=True, description="may unload at the depot and go on")


class BinThresholds(BaseModel):
    full_pct: float = Field(default=90.0, gt=0, le=120,
                            description="counts as full (overflow risk) from here")
    may_min_pct: float = Field(default=55.0, ge=0, le=120,
                               description="below this a bin is never worth a stop")
    service_s: float = Field(default=150.0, ge=0, description="time at the stop")

    @model_validator(mode="after")
    def _ordered(self) -> "BinThresholds":
        if self.may_min_pct >= self.full_pct:
            raise ValueError("may_min_pct must be below full_pct")
        return self


class Restriction(BaseModel):
    """A municipality's rule: no service there before/after a time (noise, markets)."""

    municipality: str
    not_before: dt.time | None = None
    not_after: dt.time | None = None
    weekdays: list[Weekday] = list(WEEKDAYS)


class WateringConfig(BaseModel):
    litres_tree: float = Field(default=80.0, gt=0)
    litres_bed: float = Field(default=150.0, gt=0)
    service_s: float = Field(default=420.0, ge=0)
    rain_mm_skip: float = Field(default=5.0, ge=0,
                                description="rain measured in the last 24 h that makes watering "
                                            "unnecessary")
    dry_margin_h: float = Field(default=24.0, ge=0,
                                description="water what will be dry within this many hours")


class AreasConfig(BaseModel):
    """Plan by area: visit a town or village when waiting would cost more than going
    (planner/areas.py). Replaces the round days."""

    enabled: bool = False
    link_m: float = Field(default=1000.0, gt=0, description="bins closer than this to another "
                          "bin of the same municipality belong to its area")
    overflow_cost_m_per_h: float = Field(default=100.0, ge=0, description="metres of driving "
                                         "an hour of a full bin is worth")
    may_value_m: float = Field(default=1000.0, ge=0, description="prize of a bin in an area "
                               "visited today that would be full soon after the next visit")


class PlannerConfig(BaseModel):
    depot: Depot
    vehicles: list[VehicleConfig]
    timezone: str = "Europe/Berlin"
    shift_start: dt.time = dt.time(6, 30)
    working_days: list[Weekday] = ["mon", "tue", "wed", "thu", "fri"]
    bins: dict[str, BinThresholds] = Field(
        default={"default": BinThresholds()},
        description="site type -> thresholds; 'default' for the rest")
    may_value_m: float = Field(default=500.0, ge=0,
                               description="metres of driving a may-go bin is worth when it "
                                           "would be a must-go right after the next shift")
    may_trip_share: float = Field(default=0.5, ge=0,
                                  description="share of a bin's round trip from the depot that "
                                              "emptying it early is worth")
    bundle_days: float = Field(default=3.0, ge=0,
                               description="in a town visited today anyway, bins that would be "
                                           "full within this many days after the next shift "
                                           "are taken along")
    bundle_value_m: float = Field(default=5000.0, ge=0,
                                  description="prize of such a bin, metres")
    use_rounds: bool = Field(default=True, description="keep the towns' round days "
                             "(fixed_schedule) and choose the bins on them by forecast")
    areas: AreasConfig = AreasConfig()
    emergency_h: float | None = Field(
        default=None, ge=0, description="between rounds, a bin that would stand full longer "
        "than this before the next round is fetched on an extra trip; None: only bins already "
        "full are")
    must_safety: float = Field(default=1.3, ge=1.0,
                               description="the forecast growth until the next shift is taken "
                                           "this many times when deciding must-go")
    may_horizon_days: float = Field(default=3.0, gt=0,
                                    description="a bin that would be a must-go this many days "
                                                "after the next shift is worth nothing today")
    watering: WateringConfig = WateringConfig()
    restrictions: list[Restriction] = []
    detour_factor: float = Field(default=1.35, ge=1.0)
    speed_kmh: float = Field(default=30.0, gt=0)
    osrm_url: str | None = Field(default=None, description="OSRM table service; unset: "
                                 "great-circle distance × detour factor")
    time_limit_s: float = Field(default=5.0, gt=0)
    fixed_schedule: dict[str, list[Weekday]] = Field(
        default={}, description="municipality -> weekdays of the fixed round it replaces "
                                "(for the comparison in each plan)")

    def thresholds(self, site_type: str | None) -> BinThresholds:
        return self.bins.get(site_type or "", self.bins.get("default", BinThresholds()))

    @model_validator(mode="after")
    def _has_vehicles(self) -> "PlannerConfig":
        if not self.vehicles:
            raise ValueError("at least one vehicle is needed")
        return self


def load(path: Path | str | None = None) -> PlannerConfig:
    return PlannerConfig.model_validate(
        yaml.safe_load(Path(path or DEFAULT_CONFIG).read_text(encoding="utf-8")))
