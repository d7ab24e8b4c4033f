"""Scenario files: the municipalities, depot, vehicles and devices of a simulated Bauhof.

A scenario names, per municipality, how many bins of which site type, weather stations, soil
probes and irrigation controllers it has; ``expand`` places them at reproducible positions around
the town centre (same seed, same places) and gives each a device id, DevEUI, model and geometry.
Devices can also be listed one by one under ``devices``.
"""
from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
import datetime as dt
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field

from simulator.incidents import Incident

DEFAULT_SCENARIO = Path(__file__).parent / "scenarios" / "main-kinzig.yaml"
Kind = Literal["bin", "weather", "soil", "irrigation"]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Site names in device ids must stay short: TTS device ids have at most 36 characters.
_SITE_CODES = {"bus_stop": "bs", "park": "pk", "town_centre": "zt", "hiking_car_park": "wp",
               "tree": "baum", "flower_bed": "beet"}
_SITE_NAMES = {"bus_stop": "Bushaltestelle", "park": "Park", "town_centre": "Innenstadt",
               "hiking_car_park": "Wanderparkplatz", "tree": "Jungbaum", "flower_bed": "Beet"}


class Place(BaseModel):
    name: str
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Vehicle(BaseModel):
    id: str
    name: str
    capacity_l: float = Field(gt=0)
    shift_h: float = 8.0
    break_min: float = 30.0
    water_tank_l: float = 0.0  # > 0: can water trees


class KindDefaults(BaseModel):
    model_mix: dict[str, float]  # decoder id -> share
    interval_min: float = Field(default=30, gt=0)
    volume_l: float = 120.0
    distance_empty_m: float = 1.0
    distance_full_m: float = 0.15
    usage: float = Field(default=1.0, gt=0, description="bins: litter rates relative to the "
                         "busy-town rates of simulator/physics.py")


class Event(BaseModel):
    name: str
    weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    start: dt.time
    end: dt.time
    factor: float = Field(default=3.0, gt=0)
    sites: list[str] = ["town_centre"]


class Schedule(BaseModel):
    """A fixed weekly round: the baseline a sensor-driven plan is compared with."""

    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]]
    time: dt.time = dt.time(7, 0)


class Village(BaseModel):
    """An outlying village (Ortsteil) of a municipality: a few bins, little use, far out.

    Positions are approximate (distance and bearing from the town centre); what matters for
    the planner is that they lie kilometres apart.
    """

    name: str
    distance_km: float = Field(gt=0)
    bearing_deg: float = 0.0
    radius_m: float = 300.0
    bins: dict[str, int] = {"bus_stop": 2}
    usage: float = Field(default=0.4, gt=0, description="litter rates relative to the town's")


class Municipality(BaseModel):
    name: str
    latitude: float
    longitude: float
    radius_m: float = 1200.0
    altitude_m: float = 200.0
    bins: dict[str, int] = {}  # site type -> count
    weather_stations: int = 1
    soil: dict[str, int] = {}  # tree | flower_bed -> count
    irrigation: int = 0
    villages: list[Village] = []
    events: list[Event] = []
    collection: Schedule = Schedule(weekdays=["mon", "thu"])
    watering: Schedule = Schedule(weekdays=["tue", "fri"], time=dt.time(6, 0))


class DeviceEntry(BaseModel):
    """A device listed by hand (overrides nothing; added to the generated ones)."""

    device_id: str = Field(pattern=r"^[a-z0-9](?:-?[a-z0-9]){2,35}$")
    model: str
    kind: Kind
    municipality: str
    latitude: float
    longitude: float
    site_type: str = ""
    interval_min: float = 30.0
    attributes: dict[str, Any] = {}


class Scenario(BaseModel):
    name: str
    start: datetime
    application_id: str = "bauhof-sensors"
    tenant_id: str = "ttn"
    depot: Place
    vehicles: list[Vehicle]
    defaults: dict[Kind, KindDefaults]
    municipalities: list[Municipality]
    devices: list[DeviceEntry] = []
    incidents: list[Incident] = []  # injected events (simulator/incidents.py)


@dataclass(frozen=True)
class DeviceSpec:
    """One simulated device, fully placed and configured."""

    number: int  # position in the fleet, stable for a scenario
    device_id: str
    dev_eui: str
    model: str  # decoder id
    kind: Kind
    site_type: str
    municipality: str
    name: str
    latitude: float
    longitude: float
    interval_s: float
    attributes: dict[str, Any] = field(default_factory=dict)
    usage: float = 1.0  # bins: litter rates relative to the scenario's (villages: less)


def load(path: Path | str = DEFAULT_SCENARIO) -> Scenario:
    return Scenario.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))


def slug(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", " ": "-", ".": ""})
    cleaned = "".join(c for c in text.lower().translate(table) if c.isalnum() or c == "-")
    return "-".join(part for part in cleaned.split("-") if part)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _offset(rng: random.Random, lat: float, lon: float, radius_m: float) -> tuple[float, float]:
    # Uniform over the disc around the centre; 1° latitude is 111.32 km.
    r = radius_m * math.sqrt(rng.random())
    a = rng.uniform(0, 2 * math.pi)
    dlat = r * math.cos(a) / 111_320
    dlon = r * math.sin(a) / (111_320 * math.cos(math.radians(lat)))
    return round(lat + dlat, 6), round(lon + dlon, 6)


def _pick(rng: random.Random, mix: dict[str, float]) -> str:
    models, weights = zip(*sorted(mix.items()))
    return rng.choices(models, weights)[0]


def expand(scenario: Scenario, seed: int = 0) -> list[DeviceSpec]:
    """Every device of the scenario, in a stable order."""
    specs: list[DeviceSpec] = []

    def add(device_id: str, model: str, kind: Kind, site: str, town: Municipality | DeviceEntry,
            name: str, lat: float, lon: float, interval_min: float,
            attributes: dict[str, Any], usage: float = 1.0) -> None:
        number = len(specs)
        eui = hashlib.sha256(f"{scenario.name}|{device_id}".encode()).hexdigest()[:10].upper()
        municipality = town.name if isinstance(town, Municipality) else town.municipality
        specs.append(DeviceSpec(number, device_id, f"70B3D5{eui}", model, kind, site,
                                municipality, name, lat, lon, interval_min * 60, attributes,
                                usage))

    for town in scenario.municipalities:
        town_slug = slug(town.name)
        rng = _rng(seed, scenario.name, town.name)
        defaults = scenario.defaults
        for site, count in sorted(town.bins.items()):
            d = defaults["bin"]
            for i in range(1, count + 1):
                lat, lon = _offset(rng, town.latitude, town.longitude,
                                   town.radius_m * (1.6 if site == "hiking_car_park" else 1.0))
                add(f"bin-{town_slug}-{_SITE_CODES[site]}-{i:03d}", _pick(rng, d.model_mix), "bin",
                    site, town, f"{_SITE_NAMES[site]} {i}, {town.name}", lat, lon, d.interval_min,
                    {"volume_l": d.volume_l, "distance_empty_m": d.distance_empty_m,
                     "distance_full_m": d.distance_full_m})
        for i in range(1, town.weather_stations + 1):
            d = defaults["weather"]
            lat, lon = _offset(rng, town.latitude, town.longitude, town.radius_m * 0.3)
            add(f"wetter-{town_slug}-{i}", _pick(rng, d.model_mix), "weather", "weather", town,
                f"Wetterstation {town.name}", lat, lon, d.interval_min,
                {"altitude_m": town.altitude_m})
        for site, count in sorted(town.soil.items()):
            d = defaults["soil"]
            for i in range(1, count + 1):
                lat, lon = _offset(rng, town.latitude, town.longitude, town.radius_m)
                add(f"boden-{town_slug}-{_SITE_CODES[site]}-{i:02d}", _pick(rng, d.model_mix),
                    "soil", site, town, f"{_SITE_NAMES[site]} {i}, {town.name}", lat, lon,
                    d.interval_min, {})
        for i in range(1, town.irrigation + 1):
            d = defaults["irrigation"]
            lat, lon = _offset(rng, town.latitude, town.longitude, town.radius_m * 0.5)
            add(f"bewaess-{town_slug}-{i}", _pick(rng, d.model_mix), "irrigation",
                "flower_bed", town, f"Bewässerung {i}, {town.name}", lat, lon, d.interval_min,
                {})
    # Villages after all towns, each with its own random stream, so that adding one moves
    # nothing else.
    for town in scenario.municipalities:
        d = scenario.defaults["bin"] if town.villages else None
        for village in town.villages:
            rng = _rng(seed, scenario.name, town.name, village.name)
            km = village.distance_km * 1000
            a = math.radians(village.bearing_deg)
            lat = town.latitude + km * math.cos(a) / 111_320
            lon = town.longitude + km * math.sin(a) / (111_320 * math.cos(math.radians(lat)))
            for site, count in sorted(village.bins.items()):
                for i in range(1, count + 1):
                    blat, blon = _offset(rng, lat, lon, village.radius_m)
                    add(f"bin-{slug(village.name)}-{_SITE_CODES[site]}-{i:02d}",
                        _pick(rng, d.model_mix), "bin", site, town,
                        f"{_SITE_NAMES[site]} {i}, {village.name} ({town.name})", blat, blon,
                        d.interval_min,
                        {"volume_l": d.volume_l, "distance_empty_m": d.distance_empty_m,
                         "distance_full_m": d.distance_full_m}, village.usage)
    for entry in scenario.devices:
        add(entry.device_id, entry.model, entry.kind, entry.site_type, entry, entry.device_id,
            entry.latitude, entry.longitude, entry.interval_min, dict(entry.attributes))
    ids = [s.device_id for s in specs]
    too_long = [i for i in ids if len(i) > 36]
    if too_long or len(set(ids)) != len(ids):
        raise ValueError(f"device ids must be unique and at most 36 characters: {too_long}")
    return specs
