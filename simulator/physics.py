"""Physical models of the simulated Bauhof: weather, litter bins, soil, batteries.

Pure code (numpy, no I/O, no wall clock). The engine asks these models for the true state of the
world; the ground truth is what they return and the sensors read it plus noise.

Contracts every model keeps:

* **Times** are timezone-aware datetimes (a naive one is refused); daily and weekly patterns
  (shopping hours, weekends, Hessian public holidays) use local time in Europe/Berlin.
* **Determinism.** Every model takes an integer seed. Randomness is drawn either from streams
  seeded by (seed, stream) and consumed hour by hour at construction (weather), or from
  generators seeded by (seed, stream, hour index) (a bin's deposits of one hour), so a value
  never depends on how often or in which order the models are asked. Soil and battery commit
  their state on a fixed hourly grid and compute a point inside an hour from the last grid
  point without keeping it: asking every minute or once a day gives the same numbers at the
  same times. Stateful models only move forward in time (going back raises ValueError).
* **Units** are those of ``decoders/normalize.py`` (°C, %, hPa, m/s, W/m², mm, µS/cm, V).

Models:

* :class:`WeatherModel` - hourly regional weather for central Germany, computed at construction
  and interpolated: seasonal and daily temperature cycles (cooler with altitude, colder on clear
  nights), a Markov chain of dry (anticyclonic) and wet (frontal) spells with frontal rain,
  convective showers on warm afternoons and an occasional gale, humidity from a slowly varying
  dew point, pressure following the fronts, solar radiation from the sun's elevation and the
  clouds, and the road surface temperature for black-ice risk.
* :class:`BinModel` - litres of litter arriving in a bin as random deposits (a Poisson number
  of chunks per hour), with rates by site type, local hour, weekday, holiday, weather and events.
* :class:`SoilModel` - a one-layer water balance of a tree pit or flower bed: rain (less what the
  canopy and the surface keep), irrigation, Priestley-Taylor evapotranspiration limited as the
  soil dries, drainage above field capacity; soil temperature lags the air; EC concentrates as
  the soil dries.
* :class:`Battery` - charge used by sleep current and uplinks (and, for a rechargeable cell,
  gained from a small solar panel), mapped onto the cell's voltage curve, a little lower in the
  cold.
"""
from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

import numpy as np

BERLIN = ZoneInfo("Europe/Berlin")
HOUR_S = 3600.0
DAY_S = 86400.0
_J2000_S = 946_684_800.0  # 2000-01-01T00:00:00Z, for the day of the year
_YEAR_DAYS = 365.2422

# Independent random streams: changing how one quantity is drawn never shifts another.
_REGIME, _FRONT, _FRONT_AMOUNT, _STORM, _TEMP, _CLOUD, _PRESSURE, _WIND, _GUST, _DIRECTION, \
    _DEW, _DEW_GAP = range(1, 13)
_LOCAL_TEMP, _LOCAL_RAIN, _SHOWER, _SHOWER_AMOUNT, _LOCAL_CLOUD = range(21, 26)
_BIN_ARRIVALS, _BIN_DAY, _BIN_SITE, _BIN_EMPTY = range(31, 35)
_SOIL_SITE, _BATTERY_CELL, _BATTERY_JITTER = range(41, 44)


def _seconds(t: datetime) -> float:
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"naive datetime {t.isoformat()}: the physics needs timezone-aware times")
    return t.timestamp()


def _rng(seed: int, *keys: int) -> np.random.Generator:
    # SeedSequence wants non-negative integers; the modulus keeps negative seeds usable.
    return np.random.default_rng([int(seed) % 2**63, *(int(k) % 2**63 for k in keys)])


def _hash_unit(*keys: int) -> float:
    """A uniform number in [0, 1) from integers (splitmix64): cheap per-call randomness."""
    x = 0x9E3779B97F4A7C15
    for key in keys:
        x = (x ^ (int(key) % 2**64)) * 0xBF58476D1CE4E5B9 % 2**64
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB % 2**64
        x ^= x >> 29
    return (x >> 11) / 2**53


def _utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)


# --- calendar ---------------------------------------------------------------------------------

def _easter_sunday(year: int) -> date:
    """Gregorian Easter Sunday (the anonymous Meeus/Jones/Butcher algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    return date(year, month, (h + l_ - 7 * m + 33 * month + 19) % 32)


@lru_cache(maxsize=64)
def hessian_public_holidays(year: int) -> frozenset[date]:
    """Public holidays in Hesse: shops are shut and towns behave like on a Sunday."""
    easter = _easter_sunday(year)
    # Good Friday, Easter Monday, Ascension, Whit Monday, Corpus Christi
    movable = (-2, 1, 39, 50, 60)
    fixed = ((1, 1), (5, 1), (10, 3), (12, 25), (12, 26))
    return frozenset([easter + timedelta(days=n) for n in movable]
                     + [date(year, m, d) for m, d in fixed])


def _day_of_year(seconds: np.ndarray | float) -> np.ndarray | float:
    """Days since 1 January 00:00 UTC, fractional; drifts less than a day per century."""
    return ((seconds - _J2000_S) / DAY_S) % _YEAR_DAYS


# --- the sun ------------------------------------------------------------------------------------

class _ScalarMath:
    """``math`` under numpy's names: the same formulas for one time run ten times faster."""

    pi = math.pi
    sin, cos, tan, exp, arccos = math.sin, math.cos, math.tan, math.exp, math.acos
    radians, degrees = math.radians, math.degrees

    @staticmethod
    def clip(x: float, low: float, high: float) -> float:
        return min(high, max(low, x))

    @staticmethod
    def maximum(a: float, b: float) -> float:
        return max(a, b)

    @staticmethod
    def power(x: float, y: float) -> float:
        return x ** y

    @staticmethod
    def where(condition: bool, a: float, b: float) -> float:
        return a if condition else b


def _xp(x):
    return _ScalarMath if isinstance(x, (int, float)) else np


def _sun(seconds: np.ndarray | float, latitude: float, longitude: float):
    """(cos of the solar zenith angle, true solar hour, solar hour of sunrise) at UTC seconds.

    NOAA's low-precision series for declination and the equation of time: good to a fraction
    of a degree, which is all radiation and daily cycles need.
    """
    xp = _xp(seconds)
    gamma = 2 * xp.pi * (_day_of_year(seconds) - 0.5) / _YEAR_DAYS
    eq_time_min = 229.18 * (0.000075 + 0.001868 * xp.cos(gamma) - 0.032077 * xp.sin(gamma)
                            - 0.014615 * xp.cos(2 * gamma) - 0.040849 * xp.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * xp.cos(gamma) + 0.070257 * xp.sin(gamma)
            - 0.006758 * xp.cos(2 * gamma) + 0.000907 * xp.sin(2 * gamma)
            - 0.002697 * xp.cos(3 * gamma) + 0.00148 * xp.sin(3 * gamma))
    utc_minutes = (seconds % DAY_S) / 60.0
    solar_hour = ((utc_minutes + eq_time_min + 4.0 * longitude) / 60.0) % 24.0
    hour_angle = xp.radians(15.0 * (solar_hour - 12.0))
    lat = math.radians(latitude)
    cos_zenith = math.sin(lat) * xp.sin(decl) + math.cos(lat) * xp.cos(decl) * xp.cos(hour_angle)
    half_day = xp.arccos(xp.clip(-math.tan(lat) * xp.tan(decl), -1.0, 1.0))
    sunrise_hour = 12.0 - xp.degrees(half_day) / 15.0
    return cos_zenith, solar_hour, sunrise_hour


def clear_sky_ghi(cos_zenith: np.ndarray | float) -> np.ndarray | float:
    """Global horizontal irradiance under a clear sky, W/m² (Haurwitz, less 5 % for the
    hazier air of central Europe)."""
    xp = _xp(cos_zenith)
    mu = xp.maximum(cos_zenith, 1e-6)
    return xp.where(mu > 0.01, 0.95 * 1098.0 * mu * xp.exp(-0.057 / mu), 0.0)


def _ghi(cos_zenith, cloud, rain_mm_h):
    # Kasten-Czeplak cloud attenuation; rain clouds are darker still.
    xp = _xp(cos_zenith)
    clouds = 1.0 - 0.75 * xp.power(xp.clip(cloud, 0.0, 1.0), 3.4)
    rain = xp.where(rain_mm_h > 0.2, 0.55, 1.0)
    return clear_sky_ghi(cos_zenith) * clouds * rain


def clear_sky_radiation(t: datetime, latitude: float = 50.3, longitude: float = 9.4) -> float:
    """Global radiation a cloudless sky would give at ``t``, W/m² (0 at night)."""
    cos_zenith, _, _ = _sun(_seconds(t), latitude, longitude)
    return float(clear_sky_ghi(cos_zenith))


def sun_clearness(t: datetime, solar_radiation_wm2: float, latitude: float = 50.3,
                  longitude: float = 9.4) -> float | None:
    """Measured radiation as a share of the clear-sky value (0 overcast .. 1 clear); None
    while the sun is too low to tell."""
    clear = clear_sky_radiation(t, latitude, longitude)
    if clear < 60.0:
        return None
    return min(1.0, max(0.0, solar_radiation_wm2 / clear))


# --- weather ------------------------------------------------------------------------------------

def _saturation_hpa(temp_c):
    """Saturation vapour pressure over water (Magnus), hPa."""
    return 6.112 * np.exp(17.62 * np.asarray(temp_c) / (243.12 + np.asarray(temp_c)))


def _ar1(innovations: np.ndarray, tau_h: float, sd: float) -> np.ndarray:
    """An AR(1) process with e-folding time ``tau_h`` hours and stationary deviation ``sd``."""
    phi = math.exp(-1.0 / tau_h)
    scale = sd * math.sqrt(1.0 - phi * phi)
    out = np.empty(len(innovations))
    x = 0.0
    for i, e in enumerate(innovations.tolist()):
        x = phi * x + scale * e if i else sd * e
        out[i] = x
    return out


def _ema(values: np.ndarray, tau_h: float) -> np.ndarray:
    """Exponential smoothing with time constant ``tau_h`` hours: a lagged, damped copy."""
    k = 1.0 - math.exp(-1.0 / tau_h)
    out = np.empty(len(values))
    x = float(values[0])
    for i, v in enumerate(values.tolist()):
        x += k * (v - x)
        out[i] = x
    return out


@dataclass(frozen=True)
class _Hourly:
    """Point values at the full hours (``table``) and rain per hour [t_i, t_i+1) (``rain``)."""

    table: np.ndarray  # columns: see _COLUMNS
    rain: np.ndarray
    frost: np.ndarray  # bool per hour: black-ice risk


_COLUMNS = ("temperature_c", "relative_humidity_pct", "air_pressure_hpa", "wind_speed_ms",
            "wind_gust_ms", "wind_dir_sin", "wind_dir_cos", "dew_point_c",
            "road_surface_temperature_c", "cloud")
_COL = {name: i for i, name in enumerate(_COLUMNS)}

SPIN_UP_DAYS = 30  # series start a month before 1 January of the first year, wherever asked
PAD_HOURS = 3


@dataclass(frozen=True)
class Forcing:
    """Weather imposed on a model for a while (an injected frost night, simulator/incidents.py).

    From ``start`` the given quantities are pulled towards their values, fully after ``ramp``,
    and let go again over the ``ramp`` before ``end``; quantities left None follow the model.
    The dew point follows the forced temperature and humidity; the road surface lies 2.5 K below
    the forced air (a clear, calm night); gusts scale with the forced wind. Rain and the hourly
    :meth:`WeatherModel.frost_hours` are not changed.
    """

    start: datetime
    end: datetime
    ramp: timedelta = timedelta(hours=2)
    temperature_c: float | None = None
    relative_humidity_pct: float | None = None
    wind_speed_ms: float | None = None

    def weight(self, t: datetime) -> float:
        """0 outside the forcing, 1 while it holds fully, linear on the ramps."""
        s, a, b = _seconds(t), _seconds(self.start), _seconds(self.end)
        if s <= a or s >= b:
            return 0.0
        ramp = max(self.ramp.total_seconds(), 1.0)
        return min(1.0, (s - a) / ramp, (b - s) / ramp)

    def apply(self, values: dict[str, float], t: datetime) -> dict[str, float]:
        w = self.weight(t)
        if w <= 0.0:
            return values
        out = dict(values)
        for name in ("temperature_c", "relative_humidity_pct", "wind_speed_ms"):
            target = getattr(self, name)
            if target is not None:
                out[name] = (1.0 - w) * values[name] + w * target
        if self.wind_speed_ms is not None and values["wind_speed_ms"] > 0:
            out["wind_gust_ms"] = values["wind_gust_ms"] * out["wind_speed_ms"] / values[
                "wind_speed_ms"]
        temp, humidity = out["temperature_c"], max(out["relative_humidity_pct"], 1.0)
        gamma = math.log(humidity / 100.0) + 17.62 * temp / (243.12 + temp)
        out["dew_point_c"] = 243.12 * gamma / (17.62 - gamma)
        out["road_surface_temperature_c"] = ((1.0 - w) * values["road_surface_temperature_c"]
                                             + w * (temp - 2.5))
        return out


class WeatherModel:
    """Regional weather for the simulated period, hourly, interpolated in between.

    The series always starts a month before 1 January of ``start``'s year and is drawn hour by
    hour from per-quantity random streams, so two models with the same seed agree on every
    common hour whatever their ``start`` (within a year) and ``end``.

    ``seed`` drives the large-scale weather: spells, fronts, pressure, gales. ``local_seed``
    (default: the seed) drives what differs between neighbouring towns: showers, a small
    temperature offset and noise, the amount a front drops. Towns sharing a ``seed`` with
    different ``local_seed`` see the same fronts on the same days; towns with different seeds
    have unrelated weather.

    ``air_pressure_hpa`` is the station pressure a barometer at ``altitude_m`` reads (about
    1013 hPa less 12 hPa per 100 m); the sea-level pressure behind it moves between about 990
    and 1035 hPa (:meth:`sea_level_pressure_hpa`). Precipitation is water equivalent (it may
    be snow below about 0.5 °C). Times outside [start of the series, end + 3 h] are refused.
    """

    def __init__(self, seed: int, start: datetime, end: datetime, latitude: float = 50.3,
                 altitude_m: float = 200.0, *, longitude: float = 9.4,
                 local_seed: int | None = None) -> None:
        first, last = _seconds(start), _seconds(end)
        if last <= first:
            raise ValueError("the weather period must end after it starts")
        self.latitude, self.longitude, self.altitude_m = latitude, longitude, altitude_m
        self.start, self.end = start, end
        year = _utc(first).year
        self._t0 = datetime(year, 1, 1, tzinfo=timezone.utc).timestamp() - SPIN_UP_DAYS * DAY_S
        n = int(math.ceil((last - self._t0) / HOUR_S)) + PAD_HOURS + 1
        self._times = self._t0 + HOUR_S * np.arange(n)
        hourly = _simulate(seed, seed if local_seed is None else local_seed, self._times,
                           latitude, longitude, altitude_m)
        self._table, self._rain, self._frost = hourly.table, hourly.rain, hourly.frost
        self._rain_cum = np.concatenate(([0.0], np.cumsum(self._rain)))
        self._forcings: list[Forcing] = []

    @property
    def last(self) -> datetime:
        """The last time the weather is modelled for."""
        return _utc(float(self._times[-1]))

    def _position(self, t: datetime) -> float:
        x = (_seconds(t) - self._t0) / HOUR_S
        if x < 0 or x > len(self._times) - 1:
            raise ValueError(f"weather is modelled from {_utc(self._t0).isoformat()} to "
                             f"{_utc(self._times[-1]).isoformat()}; asked for {t.isoformat()}")
        return x

    def _row(self, x: float) -> np.ndarray:
        i = min(int(x), len(self._times) - 2)
        w = x - i
        return self._table[i] * (1.0 - w) + self._table[i + 1] * w

    def at(self, t: datetime) -> dict[str, float]:
        """The weather at ``t``: the vocabulary's weather metrics plus rain rate, dew point and
        road surface temperature (rain rate is the rate of the hour containing ``t``)."""
        x = self._position(t)
        row = self._row(x)
        rain = float(self._rain[min(int(x), len(self._rain) - 1)])
        cos_zenith, _, _ = _sun(_seconds(t), self.latitude, self.longitude)
        direction = math.degrees(math.atan2(row[_COL["wind_dir_sin"]], row[_COL["wind_dir_cos"]]))
        values = {
            "temperature_c": float(row[_COL["temperature_c"]]),
            "relative_humidity_pct": float(row[_COL["relative_humidity_pct"]]),
            "air_pressure_hpa": float(row[_COL["air_pressure_hpa"]]),
            "wind_speed_ms": float(row[_COL["wind_speed_ms"]]),
            "wind_gust_ms": float(row[_COL["wind_gust_ms"]]),
            "wind_direction_deg": direction % 360.0,
            "solar_radiation_wm2": float(_ghi(cos_zenith, row[_COL["cloud"]], rain)),
            "rain_rate_mm_h": rain,
            "dew_point_c": float(row[_COL["dew_point_c"]]),
            "road_surface_temperature_c": float(row[_COL["road_surface_temperature_c"]]),
        }
        for forcing in self._forcings:
            values = forcing.apply(values, t)
        return values

    def force(self, forcing: Forcing) -> None:
        """Impose a spell of weather (see :class:`Forcing`) on every later :meth:`at`."""
        self._forcings.append(forcing)

    def cloud_cover(self, t: datetime) -> float:
        """Cloud cover at ``t``, 0 (clear) .. 1 (overcast)."""
        return float(self._row(self._position(t))[_COL["cloud"]])

    def sea_level_pressure_hpa(self, t: datetime) -> float:
        """Pressure reduced to sea level, as weather maps show it."""
        row = self._row(self._position(t))
        return float(_to_sea_level(row[_COL["air_pressure_hpa"]], row[_COL["temperature_c"]],
                                   self.altitude_m))

    def precipitation_mm(self, t0: datetime, t1: datetime) -> float:
        """Rain that fell in [t0, t1), mm (0 if t1 <= t0)."""
        if t1 <= t0:
            return 0.0
        return max(0.0, self._cumulative(self._position(t1)) - self._cumulative(self._position(t0)))

    def _cumulative(self, x: float) -> float:
        i = min(int(x), len(self._rain) - 1)
        return float(self._rain_cum[i] + (x - i) * self._rain[i])

    def frost_hours(self) -> list[datetime]:
        """Hours within [start, end) with black-ice risk: the road surface at or below 0 °C and
        moisture to freeze on it (air within 1.5 K of its dew point, or rain in the last 3 h)."""
        first, last = _seconds(self.start), _seconds(self.end)
        return [_utc(s) for s, frost in zip(self._times[:-1].tolist(), self._frost[:-1].tolist())
                if frost and first <= s < last]


def _to_station(sea_level_hpa, temp_c, altitude_m):
    # Barometric formula with the standard lapse rate, from the station temperature.
    t_sea = np.asarray(temp_c) + 273.15 + 0.0065 * altitude_m
    return sea_level_hpa * np.power(1.0 - 0.0065 * altitude_m / t_sea, 5.257)


def _to_sea_level(station_hpa, temp_c, altitude_m):
    t_sea = np.asarray(temp_c) + 273.15 + 0.0065 * altitude_m
    return station_hpa / np.power(1.0 - 0.0065 * altitude_m / t_sea, 5.257)


def _simulate(seed: int, local_seed: int, times: np.ndarray, latitude: float, longitude: float,
              altitude_m: float) -> _Hourly:
    """Draw the hourly weather series; every array is indexed by hour from ``times[0]``."""
    n = len(times)
    doy = _day_of_year(times)
    season = np.cos(2 * np.pi * (doy - 17.0) / _YEAR_DAYS)  # +1 mid-January, -1 mid-July
    summer = 0.5 - 0.5 * season  # 0 in winter .. 1 in high summer
    cos_zenith, solar_hour, sunrise = _sun(times, latitude, longitude)

    wet, storm = _regimes(seed, summer)
    front_rain = _frontal_rain(seed, local_seed, wet, storm, summer, altitude_m)

    # Temperature: climate normal for the day at ~150 m (Main-Kinzig: 1 °C in January, 19 °C in
    # July), a synoptic anomaly lasting days, the regime's sign (wet summers cool, wet winters
    # mild), a local offset, and a daily cycle whose size depends on the clouds.
    cloud = _clouds(seed, local_seed, wet, summer, solar_hour)
    anomaly = _ar1(_rng(seed, _TEMP).standard_normal(n), 72.0, 2.8)
    regime_shift = _ema(np.where(wet, 1.0 - 2.5 * summer, -1.5 + 2.5 * summer), 24.0)
    local = _rng(local_seed, _LOCAL_TEMP)
    local_offset = 0.3 * local.standard_normal()
    local_noise = _ar1(local.standard_normal(n), 6.0, 0.3)
    normal = 10.0 - 9.0 * season - 0.0065 * (altitude_m - 150.0)
    half_range = 4.0 - 1.5 * season
    sky = _ema(cloud, 3.0)
    daily = half_range * (0.45 + 0.95 * (1.0 - sky)) * _daily_shape(solar_hour, sunrise)
    temp = normal + anomaly + regime_shift + local_offset + local_noise + daily

    showers = _showers(local_seed, wet, summer, solar_hour, anomaly)
    rain = front_rain + showers
    cloud = np.where(front_rain > 0, np.maximum(cloud, 0.92), cloud)
    cloud = np.where(showers > 0, np.maximum(cloud, 0.8), cloud)
    temp = temp - np.minimum(showers, 10.0) * 0.3  # a downpour cools the air

    # Humidity: a dew point that follows the day's mean temperature, further below it in dry
    # spells; relative humidity then falls as the afternoon warms and nears 100 % at night.
    depression = _ema(np.where(wet, 1.0 + 0.5 * summer, 2.5 + 4.0 * summer), 12.0)
    dew = _ema(temp, 24.0) - depression + _ar1(_rng(seed, _DEW).standard_normal(n), 12.0, 1.0)
    wet_bulb_gap = 0.1 + 0.4 * _rng(seed, _DEW_GAP).random(n)
    dew = np.where(rain > 0, temp - wet_bulb_gap, np.minimum(dew, temp - 0.2))
    humidity = np.clip(100.0 * _saturation_hpa(dew) / _saturation_hpa(temp), 5.0, 100.0)

    # Pressure: high in dry spells, low with fronts, deep with a gale.
    target = 1016.0 + np.where(wet, -8.0, 6.0) - 22.0 * storm
    sea_level = _ema(target, 18.0) + _ar1(_rng(seed, _PRESSURE).standard_normal(n), 48.0, 5.0)
    sea_level = np.clip(sea_level, 965.0, 1045.0)
    station = _to_station(sea_level, temp, altitude_m)

    wind, gust, dir_sin, dir_cos = _wind(seed, wet, storm, solar_hour, showers, altitude_m)

    ghi = _ghi(cos_zenith, cloud, rain)
    # Asphalt: warmer than the air in sunshine, colder under a clear night sky (less so in
    # wind), near the air in rain; it lags the air by about an hour and a half.
    night = cos_zenith < 0.05
    radiative = np.where(night, -4.0 * (1.0 - cloud) / (1.0 + 0.2 * wind) + 0.3, 0.0)
    road = np.where(rain > 0, temp - 0.3, temp + 0.014 * ghi + radiative)
    road = _ema(road, 1.5)

    recent_rain = np.convolve(rain > 0, np.ones(4), mode="full")[:n] > 0
    frost = (road <= 0.0) & (((temp - dew) <= 1.5) | recent_rain)

    table = np.column_stack([temp, humidity, station, wind, gust, dir_sin, dir_cos, dew, road,
                             cloud])
    return _Hourly(table, rain, frost)


def _daily_shape(solar_hour: np.ndarray, sunrise: np.ndarray) -> np.ndarray:
    """-1 at sunrise, +1 at 14:30 solar time: a quick morning rise and a long evening fall."""
    peak = 14.5
    rise = peak - sunrise
    fall = 24.0 - rise
    since_sunrise = (solar_hour - sunrise) % 24.0
    rising = since_sunrise < rise
    return np.where(rising, -np.cos(np.pi * since_sunrise / rise),
                    np.cos(np.pi * (since_sunrise - rise) / fall))


def _regimes(seed: int, summer: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dry (anticyclonic) and wet (frontal) spells as a two-state Markov chain, per hour.

    Dry spells last 3-5 days on average (longer in summer), wet spells about two days. A few
    fronts a year, mostly in winter and spring, arrive as a gale: ``storm`` is its strength
    profile (0..~1.3) over the front's first 18 hours.
    """
    n = len(summer)
    u = _rng(seed, _REGIME).random(n).tolist()
    storm_draw = _rng(seed, _STORM).random((n, 2)).tolist()
    to_wet = (1.0 / (75.0 + 45.0 * summer)).tolist()
    to_dry = (1.0 / (48.0 - 8.0 * summer)).tolist()
    storm_share = (0.11 - 0.08 * summer).tolist()
    wet = np.zeros(n, dtype=bool)
    storm = np.zeros(n)
    state = u[0] < 0.4
    gale_left, gale_strength = 0, 0.0
    for i in range(n):
        if state and u[i] < to_dry[i]:
            state = False
        elif not state and u[i] < to_wet[i]:
            state = True
            if storm_draw[i][0] < storm_share[i]:
                gale_left, gale_strength = 18, 0.7 + 0.6 * storm_draw[i][1]
        wet[i] = state
        if gale_left:
            storm[i] = gale_strength * math.sin(math.pi * (18 - gale_left + 0.5) / 18)
            gale_left -= 1
    return wet, storm


def _frontal_rain(seed: int, local_seed: int, wet: np.ndarray, storm: np.ndarray,
                  summer: np.ndarray, altitude_m: float) -> np.ndarray:
    """Rain of fronts: events of a few hours inside wet spells, intensities correlated in time.

    Hourly amounts average about 1 mm (more in summer), wetter with altitude (the Spessart and
    Vogelsberg slopes get some 15 % more at 400 m than the Kinzig valley).
    """
    n = len(wet)
    u = _rng(seed, _FRONT).random(n).tolist()
    wet_list = wet.tolist()
    raining = np.zeros(n, dtype=bool)
    on = False
    for i in range(n):
        if not wet_list[i]:
            on = False
        elif on:
            on = u[i] >= 0.2
        else:
            starts = 0.5 if i and not wet_list[i - 1] else 0.11  # a front usually opens with rain
            on = u[i] < starts
        raining[i] = on
    intensity = _ar1(_rng(seed, _FRONT_AMOUNT).standard_normal(n), 3.0, 1.0)
    local = _ar1(_rng(local_seed, _LOCAL_RAIN).standard_normal(n), 2.0, 1.0)
    mean = (0.52 + 0.28 * summer) * (1.0 + 0.8 * storm) * (1.0 + 0.0006 * (altitude_m - 150.0))
    amount = mean * np.exp(0.8 * intensity - 0.32) * np.exp(0.15 * local - 0.011)
    amount = np.where(raining, np.clip(amount, 0.1, 25.0), 0.0)
    return np.round(amount, 2)


def _showers(local_seed: int, wet: np.ndarray, summer: np.ndarray, solar_hour: np.ndarray,
             anomaly: np.ndarray) -> np.ndarray:
    """Convective showers: local, on warm afternoons, mostly in summer; sometimes a cloudburst."""
    n = len(wet)
    draws = _rng(local_seed, _SHOWER).random((n, 2))  # one row per hour keeps every prefix
    u, follow = draws[:, 0], draws[:, 1]
    size = _rng(local_seed, _SHOWER_AMOUNT).gamma(0.8, 1.0 / 0.8, n)
    afternoon = 0.3 + 1.7 * np.exp(-(((solar_hour - 15.5) / 3.0) ** 2))
    # Summer storms need heat; spring showers come with cold air behind fronts ("Aprilwetter").
    warmth = np.clip(1.0 + 0.12 * anomaly * summer, 0.3, 2.0)
    chance = 0.01 * (0.4 + summer) * afternoon * np.where(wet, 2.0, 0.4) * warmth
    amount = np.where(u < chance, np.minimum(size * (1.5 + 3.5 * summer), 60.0), 0.0)
    # About a third of the showers go on into a second, weaker hour.
    previous = np.concatenate(([0.0], amount[:-1]))
    carried = np.where((previous > 0) & (follow < 0.35), 0.4 * previous, 0.0)
    return np.round(amount + carried, 2)


def _clouds(seed: int, local_seed: int, wet: np.ndarray, summer: np.ndarray,
            solar_hour: np.ndarray) -> np.ndarray:
    """Cloud cover 0..1: mostly overcast in wet spells; in dry spells often grey in winter
    (inversion stratus), fair with afternoon cumulus in summer."""
    n = len(wet)
    latent = _ar1(_rng(seed, _CLOUD).standard_normal(n), 8.0, 1.3)
    latent += _ar1(_rng(local_seed, _LOCAL_CLOUD).standard_normal(n), 3.0, 0.3)
    cumulus = 0.6 * summer * np.exp(-(((solar_hour - 14.0) / 3.0) ** 2))
    offset = np.where(wet, 2.0, 1.0 - 1.3 * summer + cumulus)
    return 1.0 / (1.0 + np.exp(-(latent + _ema(offset, 4.0))))


def _wind(seed: int, wet: np.ndarray, storm: np.ndarray, solar_hour: np.ndarray,
          showers: np.ndarray, altitude_m: float):
    """Mean wind (10 m), gusts and direction (unit vector of where the wind comes from)."""
    n = len(wet)
    base = _ema(np.where(wet, 4.0, 2.3), 6.0)
    mixing = 0.75 + 0.5 * np.exp(-(((solar_hour - 14.0) / 4.0) ** 2))  # calm nights
    noise = np.exp(_ar1(_rng(seed, _WIND).standard_normal(n), 6.0, 0.35) - 0.06)
    exposure = max(0.6, 1.0 + 0.0008 * (altitude_m - 200.0))
    wind = np.maximum(0.0, base * mixing * noise * exposure + 8.0 * storm)
    gustiness = 1.45 + 0.25 * np.abs(_rng(seed, _GUST).standard_normal(n))
    squall = np.where(showers > 4.0, np.minimum(4.0 + 0.5 * showers, 18.0), 0.0)
    gust = np.maximum(wind * gustiness + 0.8 + squall, wind)
    # South-west to west with fronts, easterly and variable under high pressure.
    heading = np.radians(np.where(wet, 245.0, 70.0))
    s = _ema(np.sin(heading), 12.0)
    c = _ema(np.cos(heading), 12.0)
    wobble = np.radians(_ar1(_rng(seed, _DIRECTION).standard_normal(n), 8.0, 35.0))
    angle = np.arctan2(s, c) + wobble
    return wind, gust, np.sin(angle), np.cos(angle)


# --- litter bins ----------------------------------------------------------------------------------

SITE_TYPES = ("bus_stop", "park", "town_centre", "hiking_car_park")
OVERFLOW = 1.2  # litter beyond this is beside the bin, not in it


class WeatherSource(Protocol):
    """What the bin and soil models need of the weather (a WeatherModel, or a fake in tests)."""

    def at(self, t: datetime) -> Mapping[str, float]: ...


@dataclass(frozen=True)
class Event:
    """A market day or a town festival near a bin: ``factor`` times the litter in [start, end).

    During an event people are there whatever the hour, so the site's quiet hours count as
    half its busiest hour before the factor applies.
    """

    start: datetime
    end: datetime
    factor: float

    def __post_init__(self) -> None:
        if _seconds(self.end) <= _seconds(self.start):
            raise ValueError("an event must end after it starts")
        if self.factor < 0:
            raise ValueError("an event's factor cannot be negative")


@dataclass(frozen=True)
class _Site:
    litres_per_day: float  # on a weekday in mild, dry weather, for an average bin
    hourly: tuple[float, ...]  # relative use by local hour 0..23, mean 1
    weekly: tuple[float, ...]  # Monday..Sunday; Sunday's value also for public holidays
    chunk_l: float  # mean size of one deposit
    leisure: float  # 0: weather hardly matters .. 1: people come for the weather
    dumps_per_week: float  # household bags dumped into the bin


def _normalised(weights: Sequence[float]) -> tuple[float, ...]:
    total = sum(weights)
    return tuple(24.0 * w / total for w in weights)


_SITES: dict[str, _Site] = {
    # Commuters and pupils: morning and afternoon peaks, quieter at weekends.
    "bus_stop": _Site(30.0, _normalised(
        (.02, .02, .02, .02, .05, .3, 1.5, 2.6, 1.6, .9, .8, .9, 1.3, 1.6, 1.3, 1.4, 1.7, 1.7,
         1.2, .8, .5, .4, .25, .1)), (1, 1, 1, 1, 1, .65, .45), 0.25, 0.1, 0.35),
    # Walks, picnics, barbecues: afternoons, weekends and warm sunny days.
    "park": _Site(20.0, _normalised(
        (.02, .02, .02, .02, .02, .03, .1, .3, .4, .6, .9, 1.2, 1.6, 1.8, 1.9, 2.0, 2.0, 1.9,
         1.7, 1.4, 1.0, .6, .3, .1)), (1, 1, 1, 1, 1.1, 2.2, 2.6), 0.8, 1.0, 0.2),
    # Shops, bakeries, lunch: shopping hours, busy Saturdays, shut on Sundays.
    "town_centre": _Site(35.0, _normalised(
        (.03, .03, .03, .03, .03, .05, .15, .5, .9, 1.3, 1.6, 2.0, 2.4, 2.1, 1.7, 1.7, 1.9,
         2.0, 1.6, 1.0, .6, .4, .3, .15)), (1, 1, 1, 1, 1.05, 1.3, .45), 0.4, 0.4, 0.2),
    # Hikers arrive late morning, return in the afternoon; mostly at weekends.
    "hiking_car_park": _Site(6.0, _normalised(
        (.01, .01, .01, .01, .01, .01, .02, .2, .6, 1.2, 1.9, 2.2, 2.2, 2.1, 2.2, 2.4, 2.4,
         2.0, 1.4, .8, .4, .15, .05, .02)), (1, 1, 1, 1, 1.2, 4.0, 5.5), 1.2, 1.0, 0.5),
}


def site_weather_factor(site_type: str, weather: Mapping[str, float],
                        clearness: float | None) -> float:
    """How much the weather raises or lowers a site's use (1 in mild, dry, half-cloudy weather).

    Warm, sunny, dry hours bring people to parks and trails; rain keeps them away. ``clearness``
    is the measured radiation as a share of the clear-sky value (None at night).
    """
    site = _SITES[site_type]
    temp = weather["temperature_c"]
    warmth = min(1.8, max(0.35, 0.35 + 0.055 * (temp - 5.0))) / 0.9
    sun = 1.0 if clearness is None else (0.7 + 0.6 * clearness)
    rain = weather.get("rain_rate_mm_h", 0.0)
    dry = 1.0 if rain < 0.1 else 0.35 / (1.0 + rain)
    return max(0.05, 1.0 + site.leisure * (warmth * sun * dry - 1.0))


class BinModel:
    """True fill of one litter bin: fraction of its usable volume (1.0 full, up to 1.2 when
    litter piles up above the rim).

    Litter arrives as deposits: per hour a Poisson number of chunks (mean size by site) whose
    expected volume is the site's rate for that local hour, weekday (or holiday), weather, day
    (some days are busier: a day factor from the seed) and events, times the bin's own
    popularity (from the seed). Each hour's deposits come from a generator seeded by (seed,
    hour), so the fill at a time does not depend on how often ``advance`` is called.

    Without ``start`` the first ``advance`` only sets the clock. ``empty`` may be given for a
    time after the last advance (it happens on the way) or up to two days before it (the
    deposits since then are kept).
    """

    RESIDUE_MAX = 0.03
    HISTORY_H = 48

    def __init__(self, seed: int, site_type: str, volume_l: float = 120.0, fill: float = 0.0,
                 events: Sequence[Event] = (), start: datetime | None = None,
                 usage: float = 1.0) -> None:
        if site_type not in _SITES:
            raise ValueError(f"unknown site type {site_type!r}; one of {', '.join(SITE_TYPES)}")
        if volume_l <= 0:
            raise ValueError("a bin's volume must be positive")
        self.seed = seed
        self.site_type = site_type
        self.volume_l = float(volume_l)
        self.events = tuple(events)
        self._windows = sorted((_seconds(e.start), _seconds(e.end), e.factor) for e in events)
        self._site = _SITES[site_type]
        if usage <= 0:
            raise ValueError("a bin's usage factor must be positive")
        # The site rates are for a busy town; ``usage`` scales them for a quieter one.
        self.popularity = usage * float(math.exp(0.2 * _rng(seed, _BIN_SITE).standard_normal()))
        self._residue_l = max(0.0, float(fill)) * self.volume_l
        self._added_l = 0.0
        self._time: float | None = None if start is None else _seconds(start)
        self._last_empty = -math.inf
        self._pending: list[float] = []
        self._hours: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self._day_factors: dict[int, float] = {}

    @property
    def fill(self) -> float:
        """Current true fill fraction (at the time of the last advance)."""
        return min(OVERFLOW, (self._residue_l + self._added_l) / self.volume_l)

    def advance(self, t1: datetime, weather: WeatherSource) -> float:
        """Let litter arrive until ``t1`` (emptying on the way if due); the fill at ``t1``."""
        end = _seconds(t1)
        if self._time is None:
            self._time = end
            return self.fill
        if end < self._time:
            raise ValueError(f"the bin is at {_utc(self._time).isoformat()}; cannot go back to "
                             f"{t1.isoformat()}")
        due = [s for s in self._pending if s <= end]
        self._pending = [s for s in self._pending if s > end]
        if due:  # what arrived before the last emptying went with it
            self._time = max(self._time, max(due))
            self._reset(self._time)
        self._added_l += self._arrivals(self._time, end, weather)
        self._time = end
        horizon = int(end // HOUR_S) - self.HISTORY_H
        for hour in [h for h in self._hours if h < horizon]:
            del self._hours[hour]
        return self.fill

    def fill_ahead(self, times: Sequence[datetime], weather: WeatherSource) -> list[float]:
        """The fill at each of ``times`` (ascending; before the last advance: the fill now) if
        nobody empties it, leaving this bin as it is: what a clairvoyant would know. The same
        litter arrives as in the run itself (deposits depend on the hour, not on when they are
        asked for)."""
        ahead = self._copy()
        return [ahead.advance(t, weather) if ahead._time is None or _seconds(t) >= ahead._time
                else ahead.fill for t in times]

    def days_to_full(self, start: datetime, weather: WeatherSource,
                     horizon_days: float = 21.0) -> float:
        """Days this bin, emptied completely at ``start``, would take to be full (inf beyond
        the horizon), to the hour; the bin itself is left as it is."""
        ahead = self._copy()
        ahead._pending = []
        ahead._time = ahead._last_empty = _seconds(start)
        ahead._residue_l = ahead._added_l = 0.0
        for hour in range(1, int(horizon_days * 24) + 1):
            if ahead.advance(start + timedelta(hours=hour), weather) >= 1.0:
                return hour / 24.0
        return math.inf

    def _copy(self) -> "BinModel":
        twin = copy.copy(self)
        twin._pending = list(self._pending)
        twin._hours = dict(self._hours)
        twin._day_factors = dict(self._day_factors)
        return twin

    def empty(self, t: datetime) -> None:
        """A crew emptied the bin at ``t``: the fill drops to a small residue."""
        when = _seconds(t)
        if self._time is None or when > self._time:
            self._pending.append(when)
            return
        if when <= self._last_empty:
            return  # a later emptying already counts
        if when < self._time - self.HISTORY_H * HOUR_S:
            raise ValueError("cannot empty a bin more than two days in the past")
        since = self._arrivals(when, self._time, None)
        self._reset(when)
        self._added_l = since

    def _reset(self, when: float) -> None:
        residue = self.RESIDUE_MAX * _rng(self.seed, _BIN_EMPTY, int(when)).random()
        self._residue_l = residue * self.volume_l
        self._added_l = 0.0
        self._last_empty = when

    def _arrivals(self, a: float, b: float, weather: WeatherSource | None) -> float:
        """Litres deposited in (a, b]; hour k's deposits fall in (k h, (k+1) h]."""
        if b <= a:
            return 0.0
        total = 0.0
        for hour in range(int(a // HOUR_S), int(math.ceil(b / HOUR_S))):
            if hour not in self._hours:
                if weather is None:
                    continue  # never advanced through: nothing arrived there
                self._hours[hour] = self._deposits(hour, weather)
            times, litres = self._hours[hour]
            total += float(litres[(times > a) & (times <= b)].sum())
        return total

    def _deposits(self, hour: int, weather: WeatherSource) -> tuple[np.ndarray, np.ndarray]:
        rate = self.rate_l_h(_utc((hour + 0.5) * HOUR_S), weather)
        site = self._site
        rng = _rng(self.seed, _BIN_ARRIVALS, hour)
        count = rng.poisson(rate / site.chunk_l)
        times = (hour + 1.0 - rng.random(count)) * HOUR_S
        litres = rng.gamma(2.0, site.chunk_l / 2.0, count)
        # Now and then someone stuffs a household bag in, in the hours people are about.
        local_hour = _utc(hour * HOUR_S).astimezone(BERLIN).hour
        dump_chance = site.dumps_per_week / 168.0 * site.hourly[local_hour]
        if rng.random() < dump_chance:
            times = np.append(times, (hour + 1.0 - rng.random()) * HOUR_S)
            litres = np.append(litres, rng.uniform(8.0, 25.0))
        return times, litres

    def rate_l_h(self, t: datetime, weather: WeatherSource) -> float:
        """Expected litres per hour arriving around ``t``."""
        site = self._site
        local = t.astimezone(BERLIN)
        day = local.date()
        weekday = 6 if day in hessian_public_holidays(day.year) else day.weekday()
        hourly = site.hourly[local.hour]
        now = weather.at(t)
        clearness = sun_clearness(t, now.get("solar_radiation_wm2", 0.0))
        base = (site.litres_per_day / 24.0 * site.weekly[weekday] * self.popularity
                * self._day_factor(day) * site_weather_factor(self.site_type, now, clearness))
        return base * self._event_profile(t, hourly)

    def _event_profile(self, t: datetime, hourly: float) -> float:
        hour_start = _seconds(t) // HOUR_S * HOUR_S
        profile = hourly
        for begin, end, factor in self._windows:
            if begin >= hour_start + HOUR_S:
                break
            overlap = (min(end, hour_start + HOUR_S) - max(begin, hour_start)) / HOUR_S
            if overlap > 0:
                crowd = max(profile, 0.5 * max(self._site.hourly)) * factor
                profile = (1.0 - overlap) * profile + overlap * crowd
        return profile

    def _day_factor(self, day: date) -> float:
        key = day.toordinal()
        if key not in self._day_factors:
            self._day_factors[key] = float(math.exp(
                0.25 * _rng(self.seed, _BIN_DAY, key).standard_normal() - 0.03))
        return self._day_factors[key]


# --- soil --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _SoilSite:
    depth_mm: float  # root zone the probe sits in
    field_capacity: float  # % VWC the soil holds against gravity
    wilting_point: float  # % VWC the roots cannot draw below
    saturation: float  # % VWC with every pore full
    crop_factor: float  # plant water use relative to the reference grass
    area_m2: float  # area a watering round wets
    rain_catch: float  # share of rain reaching the root zone (canopy, sealed surroundings)
    dry_fraction: float  # of the available water used up: needs watering below this
    temp_tau_h: float  # how slowly the soil at probe depth follows the air
    sun_exposure: float  # how much sunshine warms the surface (tree pits are shaded)
    ec_ref_us_cm: float  # bulk EC at field capacity, before salt


_SOIL_SITES = {
    # A young street tree in a pit of structural substrate, half shaded.
    "tree": _SoilSite(300.0, 30.0, 12.0, 45.0, 0.75, 1.5, 0.85, 0.45, 24.0, 0.4, 350.0),
    # A fertilised, sunny flower bed: shallow roots, thirsty plants.
    "flower_bed": _SoilSite(200.0, 34.0, 13.0, 48.0, 1.05, 6.0, 0.95, 0.5, 12.0, 1.0, 550.0),
}

_DRAIN_TAU_H = 8.0  # water above field capacity drains away within a day
_INTERCEPTION_MM_H = 0.2  # leaves and mulch keep the first bit of every hour's rain
_INFILTRATION_MM_H = 30.0  # more than this runs off the surface


@dataclass(frozen=True)
class _SoilState:
    water_mm: float
    temperature_c: float
    salt_us_cm: float


class SoilModel:
    """Soil under a young street tree (``site_type="tree"``) or in a flower bed.

    A single bucket holds the root zone's water (volumetric water content × depth). Each hour:
    rain (less interception and what runs off) and irrigation fill it; evapotranspiration
    (Priestley-Taylor from air temperature and solar radiation, times a crop factor, reduced
    once half the available water is used) empties it; water above field capacity drains away
    and saturation caps it. The soil temperature at probe depth is a damped, lagged air
    temperature (warmer where the sun reaches the ground). EC is the soil's bulk conductivity
    at field capacity, plus road salt leaching out of tree pits in spring, concentrated as the
    soil dries (100-1500 µS/cm).

    Each probe's soil differs a little (field capacity, wilting point, runoff into the pit)
    by its seed. Without ``start`` the first ``advance`` only sets the clock.
    """

    def __init__(self, seed: int, site_type: str = "tree", moisture_pct: float = 28.0,
                 start: datetime | None = None) -> None:
        if site_type not in _SOIL_SITES:
            raise ValueError(f"unknown soil site {site_type!r}; one of tree, flower_bed")
        base = _SOIL_SITES[site_type]
        rng = _rng(seed, _SOIL_SITE)
        fc = base.field_capacity + 1.5 * rng.standard_normal()
        wp = base.wilting_point + 1.0 * rng.standard_normal()
        catch = base.rain_catch * (rng.uniform(0.7, 1.3) if site_type == "tree" else 1.0)
        self.site_type = site_type
        self._site = base
        self.field_capacity_pct = float(fc)
        self.wilting_point_pct = float(min(wp, fc - 8.0))
        self.saturation_pct = float(base.saturation)
        self.rain_catch = float(catch)
        self.area_m2 = float(base.area_m2 * rng.uniform(0.8, 1.25))
        self.ec_ref_us_cm = float(base.ec_ref_us_cm * math.exp(0.25 * rng.standard_normal()))
        self.dry_threshold_pct = float(self.wilting_point_pct + base.dry_fraction
                                       * (self.field_capacity_pct - self.wilting_point_pct))
        # Road salt from the winter in tree pits by the street; a little fertiliser in beds.
        self._initial_salt = float(rng.uniform(50.0, 300.0) if site_type == "tree"
                                   else rng.uniform(0.0, 60.0))
        self._depth = base.depth_mm
        self._water0 = min(max(moisture_pct, 1.0), self.saturation_pct) / 100.0 * self._depth
        self._grid: float | None = None if start is None else _seconds(start)
        self._time: float | None = self._grid
        self._state: _SoilState | None = None  # at the grid time, set by the first advance
        self._now: _SoilState | None = None  # at self._time
        self._water_events: list[tuple[float, float]] = []  # (time, mm) not yet committed
        self._weather: WeatherSource | None = None

    @property
    def moisture_pct(self) -> float:
        """Volumetric water content now (at the last advance, with any watering since)."""
        water = self._water0 if self._now is None else self._now.water_mm
        return 100.0 * water / self._depth

    def irrigate(self, t: datetime, litres: float) -> None:
        """A watering round at ``t``: ``litres`` spread over the pit or bed (as mm of water).

        A watering at or before the last grid hour is applied in the next hour."""
        self._add_water(_seconds(t), litres / self.area_m2)

    def withdraw_to(self, t: datetime, moisture_pct: float) -> None:
        """Take water out at ``t`` so that the root zone holds at most ``moisture_pct`` (an
        injected drought, simulator/incidents.py: a pit that no rain reaches, drying faster than
        the weather would dry it). Call after :meth:`advance` to ``t``; no effect if drier."""
        if self._now is None or self._time is None or _seconds(t) != self._time:
            raise ValueError("advance the soil model to the time of the withdrawal first")
        excess = self._now.water_mm - max(moisture_pct, 0.0) / 100.0 * self._depth
        if excess > 0:
            self._water_events.append((_seconds(t), -excess))
            self._refresh()

    def advance(self, t1: datetime, weather: WeatherSource, irrigation_mm: float = 0.0
                ) -> dict[str, float]:
        """Soil state at ``t1``; ``irrigation_mm`` is water a controller delivered by ``t1``."""
        end = _seconds(t1)
        self._weather = weather
        if self._state is None:
            self._begin(end if self._grid is None else self._grid, weather)
        if end < self._time:
            raise ValueError(f"the soil is at {_utc(self._time).isoformat()}; cannot go back to "
                             f"{t1.isoformat()}")
        if irrigation_mm > 0:
            self._water_events.append((end, irrigation_mm))
        while (boundary := (self._grid // HOUR_S + 1) * HOUR_S) <= end:
            self._state = self._step(self._state, self._grid, boundary, weather,
                                     self._take_water(boundary))
            self._grid = boundary
        self._time = end
        self._refresh()
        return self.reading()

    def reading(self) -> dict[str, float]:
        """The true values at the last advance, in the metric vocabulary."""
        state = self._now
        if state is None:
            raise RuntimeError("advance the soil model once before reading it")
        theta = 100.0 * state.water_mm / self._depth
        ec = (self.ec_ref_us_cm + state.salt_us_cm) * self.field_capacity_pct / max(theta, 3.0)
        if ec > 1000.0:  # approach the ceiling of plausible values smoothly, no flat line
            ec = 1000.0 + 500.0 * math.tanh((ec - 1000.0) / 500.0)
        return {"soil_moisture_vwc_pct": theta,
                "soil_temperature_c": state.temperature_c,
                "soil_conductivity_us_cm": max(100.0, ec)}

    def _begin(self, at: float, weather: WeatherSource) -> None:
        # The soil starts at the air's mean of the last two days (as far as the weather goes).
        temps = [weather.at(_utc(at))["temperature_c"]]
        for hours in range(6, 48, 6):
            try:
                temps.append(weather.at(_utc(at - hours * HOUR_S))["temperature_c"])
            except ValueError:
                break
        self._grid = self._time = at
        self._state = self._now = _SoilState(self._water0, float(np.mean(temps)),
                                             self._initial_salt)

    def _add_water(self, when: float, mm: float) -> None:
        if mm <= 0:
            return
        self._water_events.append((when, mm))
        if self._state is not None and self._weather is not None:
            self._refresh()

    def _take_water(self, until: float) -> float:
        due = sum(mm for when, mm in self._water_events if when <= until)
        self._water_events = [(w, mm) for w, mm in self._water_events if w > until]
        return due

    def _refresh(self) -> None:
        """Recompute the state at self._time from the last grid hour (not committed)."""
        assert self._state is not None and self._weather is not None
        water = sum(mm for when, mm in self._water_events if when <= self._time)
        if self._time > self._grid:
            self._now = self._step(self._state, self._grid, self._time, self._weather, water)
        else:
            self._now = self._state if water == 0 else _SoilState(
                min(self._state.water_mm + water, self.saturation_pct / 100 * self._depth),
                self._state.temperature_c, self._state.salt_us_cm)

    def _step(self, state: _SoilState, a: float, b: float, weather: WeatherSource,
              water_mm: float) -> _SoilState:
        """From ``a`` to ``b`` within one hour, with that hour's weather (taken at its middle)."""
        hours = (b - a) / HOUR_S
        now = weather.at(_utc((a // HOUR_S + 0.5) * HOUR_S))
        site = self._site
        fc = self.field_capacity_pct / 100.0 * self._depth
        wp = self.wilting_point_pct / 100.0 * self._depth
        saturated = self.saturation_pct / 100.0 * self._depth

        rain = now.get("rain_rate_mm_h", 0.0) * hours
        soaked = self.rain_catch * max(0.0, rain - _INTERCEPTION_MM_H * hours)
        water = state.water_mm + min(soaked, _INFILTRATION_MM_H * hours) + water_mm

        stress = min(1.0, max(0.0, (water - wp) / (0.5 * (fc - wp))))
        et = site.crop_factor * stress * reference_et_mm_h(now["temperature_c"],
                                                           now.get("solar_radiation_wm2", 0.0))
        water = max(min(water, wp), water - et * hours)  # roots cannot pull below wilting

        water = min(water, saturated)  # a full pit overflows
        drained = 0.0
        if water > fc:
            drained = (water - fc) * (1.0 - math.exp(-hours / _DRAIN_TAU_H))
            water -= drained
        salt = state.salt_us_cm * math.exp(-drained / 30.0)  # leached out

        surface = now["temperature_c"] + site.sun_exposure * 0.006 * now.get(
            "solar_radiation_wm2", 0.0)
        tau = site.temp_tau_h * (3.0 if state.temperature_c < 0.5 and surface < state.temperature_c
                                 else 1.0)  # freezing water holds the soil near 0 °C
        temp = state.temperature_c + (surface - state.temperature_c) * (
            1.0 - math.exp(-hours / tau))
        return _SoilState(water, temp, salt)


def reference_et_mm_h(temperature_c: float, solar_radiation_wm2: float) -> float:
    """Reference evapotranspiration, mm/h (Priestley-Taylor, net radiation ~ half the global).

    A sunny June day gives about 5 mm, an overcast April day about 1 mm; nights nearly none.
    """
    net_mj = 0.5 * max(0.0, solar_radiation_wm2) * 0.0036
    es = 0.6108 * math.exp(17.27 * temperature_c / (temperature_c + 237.3))
    slope = 4098.0 * es / (temperature_c + 237.3) ** 2
    psychrometric = 0.066
    return 0.005 + 1.26 * slope / (slope + psychrometric) * net_mj / 2.45


# --- batteries ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Cell:
    capacity_mah: float
    sleep_ma: float  # sleep current plus self-discharge
    uplink_mah: float  # one measurement and transmission
    curve: tuple[tuple[float, float], ...]  # (charge %, volts at room temperature)
    cold_v_per_k: float  # voltage lost per kelvin below 15 °C
    panel_ma: float  # charging current in full sun (0: not rechargeable)
    fresh_pct: tuple[float, float]  # charge range of the fleet at the start


_CELLS = {
    # Lithium thionyl chloride (ER14505/ER18505): a flat 3.6 V for years, then a quick drop.
    "lithium": _Cell(2600.0, 0.008, 0.02,
                     ((0, 2.9), (1, 3.15), (3, 3.35), (6, 3.45), (10, 3.52), (20, 3.57),
                      (50, 3.61), (80, 3.63), (100, 3.66)), 0.004, 0.0, (60.0, 100.0)),
    # Two alkaline AA cells: a sloping curve from 3.2 to 2.0 V.
    "alkaline": _Cell(2700.0, 0.01, 0.02,
                      ((0, 2.0), (5, 2.2), (10, 2.35), (30, 2.55), (60, 2.75), (90, 2.95),
                       (100, 3.15)), 0.006, 0.0, (40.0, 100.0)),
    # A Li-ion cell on a small solar panel (weather stations); the charger stops at 4.1 V.
    "rechargeable": _Cell(2600.0, 1.2, 0.05,
                          ((0, 3.0), (5, 3.4), (10, 3.55), (25, 3.68), (50, 3.77), (75, 3.9),
                           (90, 4.0), (100, 4.1)), 0.002, 110.0, (70.0, 100.0)),
}
_CHEMISTRY_ALIASES = {"solar": "rechargeable", "li-ion": "rechargeable", "lisocl2": "lithium",
                      "li-socl2": "lithium"}


class Battery:
    """Battery of one device: charge used by sleep and uplinks, voltage from the cell's curve.

    ``chemistry``: "lithium" (Li-SOCl2, ~3.6 V), "alkaline" (2×AA) or "rechargeable" (Li-ion
    with a solar panel, 3.7-4.1 V; alias "solar"). The panel charges from the weather's solar
    radiation when ``advance`` is given a weather model, else from the clear-sky radiation
    halved (an average sky). The device sits in a housing near air temperature: the voltage is
    lower in the cold, taken from ``temperature_c`` or the weather, else 15 °C.

    Sleep and solar are committed hour by hour; ``uplinks`` counts transmissions since the last
    call and are charged at the time of the call, so extra calls with ``uplinks=0`` change
    nothing.
    """

    def __init__(self, seed: int, chemistry: str = "lithium", start_pct: float | None = None,
                 *, start: datetime | None = None, latitude: float = 50.3,
                 longitude: float = 9.4) -> None:
        name = _CHEMISTRY_ALIASES.get(chemistry, chemistry)
        if name not in _CELLS:
            raise ValueError(f"unknown battery chemistry {chemistry!r}; one of "
                             f"{', '.join(_CELLS)}")
        self.chemistry = name
        self.seed = seed
        self._cell = _CELLS[name]
        rng = _rng(seed, _BATTERY_CELL)
        self.capacity_mah = self._cell.capacity_mah * float(rng.uniform(0.95, 1.05))
        self._offset_v = float(rng.normal(0.0, 0.01))  # cell-to-cell spread
        pct = float(rng.uniform(*self._cell.fresh_pct)) if start_pct is None else start_pct
        self._charge = min(100.0, max(0.0, pct)) / 100.0 * self.capacity_mah
        self.latitude, self.longitude = latitude, longitude
        self._grid: float | None = None if start is None else _seconds(start)
        self._time = self._grid

    def advance(self, t1: datetime, uplinks: int = 1, *, weather: WeatherSource | None = None,
                temperature_c: float | None = None) -> tuple[float, float]:
        """(battery_v, battery_pct) at ``t1``, after ``uplinks`` transmissions since the last
        call."""
        end = _seconds(t1)
        if self._grid is None:
            self._grid = self._time = end
        if end < self._time:
            raise ValueError(f"the battery is at {_utc(self._time).isoformat()}; cannot go back "
                             f"to {t1.isoformat()}")
        while (boundary := (self._grid // HOUR_S + 1) * HOUR_S) <= end:
            self._charge = self._hour(self._charge, self._grid, boundary, weather)
            self._grid = boundary
        self._charge = max(0.0, self._charge - max(0, uplinks) * self._cell.uplink_mah)
        self._time = end
        charge = self._hour(self._charge, self._grid, end, weather) if end > self._grid \
            else self._charge
        pct = 100.0 * charge / self.capacity_mah
        if temperature_c is None:
            temperature_c = 15.0 if weather is None else weather.at(t1)["temperature_c"]
        return self._voltage(pct, temperature_c, self._panel_ma(end, weather), end), pct

    def _panel_ma(self, at: float, weather: WeatherSource | None) -> float:
        if self._cell.panel_ma == 0.0:
            return 0.0
        if weather is not None:
            radiation = weather.at(_utc(at)).get("solar_radiation_wm2", 0.0)
        else:
            cos_zenith, _, _ = _sun(at, self.latitude, self.longitude)
            radiation = 0.5 * float(clear_sky_ghi(cos_zenith))
        return self._cell.panel_ma * radiation / 1000.0

    def _hour(self, charge: float, a: float, b: float, weather: WeatherSource | None) -> float:
        hours = (b - a) / HOUR_S
        solar = self._panel_ma((a // HOUR_S + 0.5) * HOUR_S, weather)
        charge += (solar - self._cell.sleep_ma) * hours
        return min(self.capacity_mah, max(0.0, charge))

    def _voltage(self, pct: float, temperature_c: float, charging_ma: float, at: float) -> float:
        points = self._cell.curve
        volts = float(np.interp(pct, [p for p, _ in points], [v for _, v in points]))
        volts -= self._cell.cold_v_per_k * max(0.0, 15.0 - temperature_c)
        if charging_ma > self._cell.sleep_ma and pct < 99.5:
            volts += 0.04 * min(1.0, charging_ma / 50.0)  # the charger lifts the terminal voltage
        jitter = 0.004 * (2.0 * _hash_unit(self.seed, _BATTERY_JITTER, int(at)) - 1.0)
        return volts + self._offset_v + jitter


__all__ = ["BERLIN", "Battery", "BinModel", "Event", "Forcing", "OVERFLOW", "SITE_TYPES",
           "SoilModel", "WeatherModel", "WeatherSource", "clear_sky_ghi", "clear_sky_radiation",
           "hessian_public_holidays", "reference_et_mm_h", "site_weather_factor", "sun_clearness"]
