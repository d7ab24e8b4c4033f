"""What the Übersicht page (and a dashboard) shows at a glance: bins with their forecast "full
at", soil probes with "dry at", the weather now, and the municipalities to filter by.

The forecasts are the planner's own (``app.planning.load_bins`` / ``load_plants``): the same
numbers the day's plan was made from. Computing them reads four weeks of readings, so the
result is kept for ``FORECAST_TTL_S`` per app and answers carry ``Cache-Control`` and an ETag;
a page polling every minute costs one computation per minute, whatever the number of crews.
"""
from __future__ import annotations

import datetime as dt
import math
import threading
import time
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from app import planning
from app.api.caching import cacheable
from app.api.deps import Conn, ServiceDep

router = APIRouter(prefix="/api/v1", tags=["overview"])

FORECAST_TTL_S = 60.0
FORECAST_MAX_AGE = 60
WEATHER_MAX_AGE = 30
WEATHER_METRICS = ("temperature_c", "relative_humidity_pct", "wind_speed_ms", "wind_gust_ms",
                   "wind_direction_deg")

Municipality = Annotated[str | None, Query(examples=["Wächtersbach"],
                                           description="only this municipality")]
T = TypeVar("T")


class BinForecast(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "device_id": "bin-marktplatz-017", "name": "Marktplatz Süd",
        "municipality": "Wächtersbach", "latitude": 50.2553, "longitude": 9.2939,
        "site_type": "town_centre", "volume_l": 120, "level_pct": 71.5, "full_pct": 85,
        "rate_pct_h": 1.2, "full_at": "2026-05-04T16:40:00+02:00",
        "full_early": "2026-05-04T14:10:00+02:00", "full_late": "2026-05-05T09:00:00+02:00",
        "last_emptied": "2026-05-02T07:12:00+02:00", "n_readings": 1210}]})

    device_id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    site_type: str | None
    volume_l: float
    level_pct: float | None = Field(description="fill level now, % (null: no readings)")
    full_pct: float | None = Field(description="where this site type counts as full, %")
    rate_pct_h: float | None = Field(description="mean fill rate, points per hour")
    full_at: dt.datetime | None = Field(description="forecast: full at (\"voll am\"); null "
                                        "beyond the forecast horizon or without a rate")
    full_early: dt.datetime | None = Field(description="full at, if it fills fast (10 %)")
    full_late: dt.datetime | None = Field(description="full at, if it fills slowly (90 %)")
    last_emptied: dt.datetime | None
    n_readings: int


class PlantForecast(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "device_id": "soil-linde-04", "name": "Linde Bahnhofstraße",
        "municipality": "Bad Orb", "latitude": 50.2271, "longitude": 9.3490,
        "site_type": "tree", "moisture_pct": 15.2, "dry_pct": 18, "needs_water": True,
        "dry_at": None, "rain_24h_mm": 0.0, "rain_skips": False, "n_readings": 160}]})

    device_id: str
    name: str
    municipality: str
    latitude: float
    longitude: float
    site_type: str | None
    moisture_pct: float | None = Field(description="soil moisture now, % VWC")
    dry_pct: float = Field(description="below this the plant needs water, % VWC")
    needs_water: bool = Field(description="moisture below the threshold now")
    dry_at: dt.datetime | None = Field(description="forecast: dry at (null: dry already, not "
                                       "drying, or beyond the horizon)")
    rain_24h_mm: float = Field(description="rain in the municipality over the last 24 h")
    rain_skips: bool = Field(description="enough rain fell (the planner's watering.rain_mm_skip) "
                                         "that the watering round leaves it out today")
    n_readings: int


class WeatherNow(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "device_id": "wetter-bad-orb", "name": "Wetter Kurpark", "municipality": "Bad Orb",
        "time": "2026-05-04T06:45:00+02:00", "temperature_c": 11.4,
        "relative_humidity_pct": 78.0, "wind_speed_ms": 3.2, "wind_gust_ms": 7.9,
        "wind_direction_deg": 240.0, "rain_24h_mm": 4.6}]})

    device_id: str
    name: str
    municipality: str | None
    time: dt.datetime | None = Field(description="newest of the values shown")
    temperature_c: float | None
    relative_humidity_pct: float | None
    wind_speed_ms: float | None
    wind_gust_ms: float | None
    wind_direction_deg: float | None
    rain_24h_mm: float | None = Field(description="rain over the last 24 h in the "
                                      "municipality (its wettest station, as the planner "
                                      "counts it)")


class MunicipalityOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "name": "Bad Orb", "devices": 61, "bins": 50, "soil": 10, "weather": 1}]})

    name: str
    devices: int
    bins: int
    soil: int
    weather: int


class _Memo:
    """Results kept for ``ttl`` seconds, computed by one caller at a time."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._lock = threading.Lock()
        self._values: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            found = self._values.get(key)
            if found is not None and time.monotonic() - found[0] < self.ttl:
                return found[1]
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value


def _memo(request: Request) -> _Memo:
    state = request.app.state
    memo = getattr(state, "forecast_memo", None)
    if memo is None:
        memo = state.forecast_memo = _Memo(FORECAST_TTL_S)
    return memo


def _time(epoch: float | None, tz) -> dt.datetime | None:
    if epoch is None or not math.isfinite(epoch):
        return None
    return dt.datetime.fromtimestamp(epoch, tz).replace(microsecond=0)


def _num(value: float | None, digits: int = 1) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _bins(conn, service) -> list[BinForecast]:
    p = service.planning
    tz = p.tz
    out = []
    for b in planning.load_bins(conn, p.clock(), p.config):
        f = b.forecast
        out.append(BinForecast(
            device_id=b.device_id, name=b.name, municipality=b.municipality,
            latitude=b.latitude, longitude=b.longitude, site_type=b.site_type,
            volume_l=b.volume_l, level_pct=_num(f.level_pct) if f else None,
            full_pct=f.full_pct if f else p.config.thresholds(b.site_type).full_pct,
            rate_pct_h=_num(f.rate_pct_h, 2) if f else None,
            full_at=_time(f.full_at, tz) if f else None,
            full_early=_time(f.full_early, tz) if f else None,
            full_late=_time(f.full_late, tz) if f else None,
            last_emptied=_time(f.last_emptied, tz) if f else None,
            n_readings=f.n_readings if f else 0))
    # Soonest full first; without a forecast last, fullest first.
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)
    out.sort(key=lambda b: (b.full_at or far, -(b.level_pct or -1), b.device_id))
    return out


def _plants(conn, service) -> list[PlantForecast]:
    p = service.planning
    out = []
    for plant in planning.load_plants(conn, p.clock(), p.config):
        f = plant.forecast
        moisture = _num(f.level_pct) if f else None
        out.append(PlantForecast(
            device_id=plant.device_id, name=plant.name, municipality=plant.municipality,
            latitude=plant.latitude, longitude=plant.longitude, site_type=plant.site_type,
            moisture_pct=moisture, dry_pct=plant.dry_pct,
            needs_water=moisture is not None and moisture < plant.dry_pct,
            dry_at=_time(f.dry_at, p.tz) if f else None,
            rain_24h_mm=round(plant.rain_mm_24h, 1),
            rain_skips=plant.rain_mm_24h >= p.config.watering.rain_mm_skip,
            n_readings=f.n_readings if f else 0))
    out.sort(key=lambda x: (not x.needs_water,
                            x.moisture_pct if x.moisture_pct is not None else math.inf,
                            x.device_id))
    return out


def _in(items: list[T], municipality: str | None) -> list[T]:
    if municipality is None:
        return items
    return [i for i in items if i.municipality == municipality]


@router.get("/bins/forecast", response_model=list[BinForecast],
            summary="Bins with their fill level and forecast \"full at\"",
            description="Soonest full first. The planner's forecast (weekday profile, the site "
                        "type's full threshold), recomputed at most once a minute.",
            dependencies=[cacheable(FORECAST_MAX_AGE)])
def bins_forecast(conn: Conn, service: ServiceDep, request: Request,
                  municipality: Municipality = None) -> list[BinForecast]:
    return _in(_memo(request).get("bins", lambda: _bins(conn, service)), municipality)


@router.get("/plants/forecast", response_model=list[PlantForecast],
            summary="Trees and beds with their soil moisture and forecast \"dry at\"",
            description="Those needing water now first, driest first. Recomputed at most once "
                        "a minute.",
            dependencies=[cacheable(FORECAST_MAX_AGE)])
def plants_forecast(conn: Conn, service: ServiceDep, request: Request,
                    municipality: Municipality = None) -> list[PlantForecast]:
    return _in(_memo(request).get("plants", lambda: _plants(conn, service)), municipality)


@router.get("/weather/now", response_model=list[WeatherNow],
            summary="The newest values of every weather station, with the rain of 24 hours",
            dependencies=[cacheable(WEATHER_MAX_AGE)])
def weather_now(conn: Conn, service: ServiceDep,
                municipality: Municipality = None) -> list[WeatherNow]:
    tz = service.planning.tz
    rows = conn.execute(
        "SELECT d.device_id, coalesce(d.name, d.device_id), d.municipality, l.metric, l.time,"
        "       l.value"
        "  FROM devices d LEFT JOIN latest_readings l"
        "    ON l.device_id = d.device_id AND l.metric = ANY(%s)"
        " WHERE d.kind = 'weather' AND (%s::text IS NULL OR d.municipality = %s)"
        " ORDER BY d.municipality, d.device_id",
        (list(WEATHER_METRICS), municipality, municipality)).fetchall()
    rain = planning.rain_24h(conn, dt.datetime.now(dt.timezone.utc))
    stations: dict[str, dict[str, Any]] = {}
    for device_id, name, town, metric, at, value in rows:
        entry = stations.setdefault(device_id, {
            "device_id": device_id, "name": name, "municipality": town, "time": None,
            **{m: None for m in WEATHER_METRICS},
            "rain_24h_mm": round(rain[town], 1) if town in rain else None})
        if metric is not None:
            entry[metric] = _num(value)
            at = at.astimezone(tz)
            if entry["time"] is None or at > entry["time"]:
                entry["time"] = at
    return [WeatherNow(**entry) for entry in stations.values()]


@router.get("/municipalities", response_model=list[MunicipalityOut],
            summary="The municipalities with devices, and how many of each kind",
            dependencies=[cacheable(FORECAST_MAX_AGE)])
def municipalities(conn: Conn) -> list[MunicipalityOut]:
    rows = conn.execute(
        "SELECT municipality, count(*), count(*) FILTER (WHERE kind = 'bin'),"
        "       count(*) FILTER (WHERE kind = 'soil'), count(*) FILTER (WHERE kind = 'weather')"
        "  FROM devices WHERE municipality IS NOT NULL AND municipality <> ''"
        " GROUP BY municipality ORDER BY municipality").fetchall()
    return [MunicipalityOut(name=n, devices=d, bins=b, soil=s, weather=w)
            for n, d, b, s, w in rows]
