"""The simulator's physical models behave as the real world would look to a Bauhof.

Weather statistics use the real WeatherModel; bins and soil also run under a fake weather with
fixed conditions, so that "a sunny Saturday" or "a dry fortnight" is exactly that.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pytest

from simulator.physics import (BERLIN, OVERFLOW, SITE_TYPES, Battery, BinModel, Event,
                               SoilModel, WeatherModel, clear_sky_radiation,
                               hessian_public_holidays)

UTC = timezone.utc
SPRING = datetime(2026, 4, 1, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0) -> datetime:
    return datetime(year, month, day, hour, tzinfo=BERLIN)


def hourly(start: datetime, hours: int, step_h: float = 1.0) -> list[datetime]:
    return [start + timedelta(hours=i * step_h) for i in range(int(hours / step_h))]


@pytest.fixture(scope="module")
def spring() -> WeatherModel:
    """April to mid-May in a Kinzig valley town."""
    return WeatherModel(7, SPRING, SPRING + timedelta(days=45), 50.26, 150.0)


@dataclass
class FakeWeather:
    """Fixed conditions: the sun follows the clock, the rest does not change."""

    temperature_c: float = 15.0
    rain_mm_h: float = 0.0
    clearness: float = 0.6  # share of the clear-sky radiation
    humidity_pct: float = 70.0
    daily_swing_c: float = 0.0  # peak-to-mean of a daily temperature cycle peaking at 15 UTC

    def at(self, t: datetime) -> dict[str, float]:
        hour = t.astimezone(UTC).hour + t.minute / 60
        temp = self.temperature_c + self.daily_swing_c * math.cos(2 * math.pi * (hour - 15) / 24)
        return {"temperature_c": temp, "relative_humidity_pct": self.humidity_pct,
                "air_pressure_hpa": 995.0, "wind_speed_ms": 2.0, "wind_gust_ms": 4.0,
                "wind_direction_deg": 240.0,
                "solar_radiation_wm2": self.clearness * clear_sky_radiation(t),
                "rain_rate_mm_h": self.rain_mm_h, "dew_point_c": temp - 5.0,
                "road_surface_temperature_c": temp}


SUNNY_WARM = FakeWeather(temperature_c=25.0, clearness=0.95, humidity_pct=45.0)
RAINY_COOL = FakeWeather(temperature_c=9.0, rain_mm_h=2.0, clearness=0.2, humidity_pct=97.0)
MILD = FakeWeather()


# --- weather ----------------------------------------------------------------------------------

def _values(weather: WeatherModel, times: list[datetime], key: str) -> np.ndarray:
    return np.array([weather.at(t)[key] for t in times])


def test_nights_are_colder_than_afternoons(spring: WeatherModel) -> None:
    days = [local(2026, 4, 2) + timedelta(days=d) for d in range(40)]
    night = _values(spring, [d + timedelta(hours=5) for d in days], "temperature_c")
    afternoon = _values(spring, [d + timedelta(hours=15) for d in days], "temperature_c")
    assert afternoon.mean() > night.mean() + 4.0
    assert (afternoon > night).mean() > 0.85


def test_july_is_warmer_than_april_and_hills_are_cooler() -> None:
    valley = WeatherModel(3, datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC),
                          altitude_m=150.0)
    hill = WeatherModel(3, datetime(2026, 4, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC),
                        altitude_m=450.0)
    april = hourly(datetime(2026, 4, 1, tzinfo=UTC), 30 * 24, 3)
    july = hourly(datetime(2026, 7, 1, tzinfo=UTC), 31 * 24, 3)
    t_april = _values(valley, april, "temperature_c").mean()
    t_july = _values(valley, july, "temperature_c").mean()
    assert 5.0 < t_april < 14.0
    assert 14.0 < t_july < 24.0
    assert t_july > t_april + 5.0
    # About 0.65 K per 100 m: the Vogelsberg foothills are two degrees cooler than the valley.
    assert 1.5 < t_july - _values(hill, july, "temperature_c").mean() < 2.5


def test_a_year_of_rain_is_plausible_and_comes_in_spells() -> None:
    year_start, year_end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)
    totals = []
    for seed in range(3):
        weather = WeatherModel(seed, year_start, year_end, altitude_m=200.0)
        totals.append(weather.precipitation_mm(year_start, year_end))
        days = [year_start + timedelta(days=d) for d in range(365)]
        daily = np.array([weather.precipitation_mm(d, d + timedelta(days=1)) for d in days])
        wet = daily >= 1.0
        # Wet days follow wet days far more often than chance: fronts and spells.
        assert wet[1:][wet[:-1]].mean() > wet.mean() + 0.15
        assert 0.2 < wet.mean() < 0.5
        assert daily.max() < 120.0
    assert all(550.0 < total < 1150.0 for total in totals), totals
    assert 700.0 < np.mean(totals) < 950.0


def test_humidity_falls_as_it_warms_and_is_high_in_rain(spring: WeatherModel) -> None:
    days = [local(2026, 4, 2) + timedelta(days=d) for d in range(40)]
    dawn = _values(spring, [d + timedelta(hours=5) for d in days], "relative_humidity_pct")
    afternoons = [d + timedelta(hours=15) for d in days]
    afternoon = _values(spring, afternoons, "relative_humidity_pct")
    dry = _values(spring, afternoons, "rain_rate_mm_h") == 0
    assert dry.sum() >= 15
    assert (afternoon[dry] < dawn[dry]).mean() > 0.9
    assert afternoon[dry].mean() < dawn[dry].mean() - 15.0
    times = hourly(SPRING, 40 * 24)
    temp = _values(spring, times, "temperature_c")
    humidity = _values(spring, times, "relative_humidity_pct")
    rain = _values(spring, times, "rain_rate_mm_h")
    dew = _values(spring, times, "dew_point_c")
    assert humidity[rain > 0].mean() > 90.0
    assert humidity[rain == 0].mean() < humidity[rain > 0].mean() - 8.0
    assert humidity.max() <= 100.0 and humidity.min() > 15.0
    assert (dew <= temp + 1e-9).all()


def test_pressure_drifts_with_fronts_within_plausible_range(spring: WeatherModel) -> None:
    times = hourly(SPRING, 40 * 24, 3)
    sea_level = np.array([spring.sea_level_pressure_hpa(t) for t in times])
    station = _values(spring, times, "air_pressure_hpa")
    assert 965.0 <= sea_level.min() and sea_level.max() <= 1045.0
    assert sea_level.std() > 4.0
    # A barometer at 150 m reads about 18 hPa less than the weather map.
    assert 15.0 < (sea_level - station).mean() < 21.0
    rain = _values(spring, times, "rain_rate_mm_h")
    assert sea_level[rain > 0].mean() < sea_level[rain == 0].mean()


def test_the_sun_shines_by_day_and_less_through_clouds(spring: WeatherModel) -> None:
    days = [local(2026, 4, 2) + timedelta(days=d) for d in range(40)]
    midnight = _values(spring, days, "solar_radiation_wm2")
    noon = _values(spring, [d + timedelta(hours=13) for d in days], "solar_radiation_wm2")
    assert (midnight == 0.0).all()
    assert noon.max() > 650.0 and noon.min() >= 0.0
    clouds = np.array([spring.cloud_cover(d + timedelta(hours=13)) for d in days])
    assert noon[clouds < 0.4].mean() > noon[clouds > 0.8].mean() + 200.0


def test_gusts_exceed_the_wind_and_a_gale_blows_now_and_then() -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC)
    strongest = []
    for seed in range(4):
        weather = WeatherModel(seed, start, end)
        times = hourly(start, 90 * 24)
        wind = _values(weather, times, "wind_speed_ms")
        gust = _values(weather, times, "wind_gust_ms")
        direction = _values(weather, times, "wind_direction_deg")
        assert (gust >= wind).all() and (wind >= 0).all()
        assert 1.5 < wind.mean() < 4.5
        assert ((direction >= 0) & (direction < 360)).all()
        strongest.append(gust.max())
    assert max(strongest) > 20.0  # storm force gusts in some winter
    assert min(strongest) < 40.0


def test_black_ice_risk_in_spring_on_hills_and_never_in_summer() -> None:
    hill = WeatherModel(5, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 4, 30, tzinfo=UTC),
                        altitude_m=420.0)
    frost = hill.frost_hours()
    assert len(frost) > 10
    assert all(hill.at(t)["road_surface_temperature_c"] <= 0.0 for t in frost)
    assert all(hill.start <= t < hill.end for t in frost)
    summer = WeatherModel(5, datetime(2026, 6, 15, tzinfo=UTC), datetime(2026, 8, 15, tzinfo=UTC),
                          altitude_m=420.0)
    assert summer.frost_hours() == []


def test_roads_are_colder_than_the_air_on_clear_nights(spring: WeatherModel) -> None:
    nights = [local(2026, 4, 2, hour) + timedelta(days=d)
              for d in range(40) for hour in (1, 3, 5)]
    clear = [t for t in nights if spring.cloud_cover(t) < 0.35]
    overcast = [t for t in nights if spring.cloud_cover(t) > 0.85]
    assert len(clear) >= 8 and len(overcast) >= 8

    def gap(times: list[datetime]) -> float:
        return float(np.mean([spring.at(t)["road_surface_temperature_c"]
                              - spring.at(t)["temperature_c"] for t in times]))

    assert gap(clear) < -0.5
    assert gap(clear) < gap(overcast) - 0.8


def test_precipitation_adds_up(spring: WeatherModel) -> None:
    a, b, c = SPRING, SPRING + timedelta(days=3, minutes=17), SPRING + timedelta(days=9)
    assert spring.precipitation_mm(a, c) == pytest.approx(
        spring.precipitation_mm(a, b) + spring.precipitation_mm(b, c))
    assert spring.precipitation_mm(c, a) == 0.0
    for t in hourly(SPRING, 10 * 24):
        assert spring.precipitation_mm(t, t + timedelta(hours=1)) == pytest.approx(
            spring.at(t + timedelta(minutes=30))["rain_rate_mm_h"])


def test_same_seed_same_weather_other_seed_other_weather(spring: WeatherModel) -> None:
    again = WeatherModel(7, SPRING, SPRING + timedelta(days=45), 50.26, 150.0)
    other = WeatherModel(8, SPRING, SPRING + timedelta(days=45), 50.26, 150.0)
    times = hourly(SPRING + timedelta(minutes=20), 10 * 24)
    assert [spring.at(t) for t in times] == [again.at(t) for t in times]
    assert [spring.at(t) for t in times] != [other.at(t) for t in times]


def test_weather_does_not_depend_on_period_or_query_order(spring: WeatherModel) -> None:
    longer = WeatherModel(7, SPRING - timedelta(days=20), SPRING + timedelta(days=90),
                          50.26, 150.0)
    times = hourly(SPRING + timedelta(minutes=7), 40 * 24, 5)
    forward = [spring.at(t) for t in times]
    backward = [longer.at(t) for t in reversed(times)][::-1]
    assert forward == backward
    hours = hourly(SPRING, 45 * 24)
    assert ([spring.precipitation_mm(t, t + timedelta(hours=1)) for t in hours]
            == [longer.precipitation_mm(t, t + timedelta(hours=1)) for t in hours])
    assert spring.frost_hours() == [t for t in longer.frost_hours()
                                    if spring.start <= t < spring.end]


def test_neighbouring_towns_share_fronts_but_not_every_shower() -> None:
    start, end = datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    days = [start + timedelta(days=d) for d in range(150)]

    def daily_rain(seed: int, local_seed: int) -> np.ndarray:
        town = WeatherModel(seed, start, end, local_seed=local_seed)
        return np.array([town.precipitation_mm(d, d + timedelta(days=1)) for d in days])

    town_a, town_b, elsewhere = daily_rain(12, 1), daily_rain(12, 2), daily_rain(15, 1)
    wet_a = town_a >= 1.0
    assert (town_b[wet_a] >= 1.0).mean() > 0.7  # the same fronts
    assert (elsewhere[wet_a] >= 1.0).mean() < 0.6  # another region's weather
    assert not np.array_equal(town_a, town_b)


def test_weather_refuses_naive_times_and_times_outside_its_period(spring: WeatherModel) -> None:
    with pytest.raises(ValueError, match="timezone"):
        spring.at(datetime(2026, 4, 10, 12))
    with pytest.raises(ValueError, match="modelled"):
        spring.at(SPRING + timedelta(days=60))


# --- litter bins --------------------------------------------------------------------------------

def _litres_over(site: str, start: datetime, hours: float, weather, seeds=range(12)) -> float:
    total = 0.0
    for seed in seeds:
        bin_ = BinModel(seed, site, volume_l=10_000.0, start=start)
        total += bin_.advance(start + timedelta(hours=hours), weather) * bin_.volume_l
    return total


def test_a_park_fills_faster_on_a_sunny_weekend_than_on_a_rainy_tuesday() -> None:
    saturday = _litres_over("park", local(2026, 6, 13), 24, SUNNY_WARM)
    tuesday = _litres_over("park", local(2026, 6, 16), 24, RAINY_COOL)
    assert saturday > 5 * tuesday
    # A 120 l park bin on a sunny summer weekend is full within about two days.
    assert 120.0 / 2.5 < saturday / 12 < 120.0


@pytest.mark.parametrize("site", SITE_TYPES)
def test_bins_hardly_fill_at_night(site: str) -> None:
    nights = days = 0.0
    for offset in range(7):
        day = local(2026, 5, 4) + timedelta(days=offset)
        nights += _litres_over(site, day, 5, MILD, seeds=range(6))  # 00:00-05:00
        days += _litres_over(site, day + timedelta(hours=9), 12, MILD, seeds=range(6))
    assert nights < 0.04 * days


def test_a_busy_bus_stop_bin_is_full_in_three_to_five_days() -> None:
    days_to_full = []
    for seed in range(10):
        bin_ = BinModel(seed, "bus_stop", start=local(2026, 5, 4))
        full = next((t for t in hourly(local(2026, 5, 4), 14 * 24)
                     if bin_.advance(t, MILD) >= 1.0), local(2026, 5, 18))
        days_to_full.append((full - local(2026, 5, 4)) / timedelta(days=1))
    assert 3.0 <= float(np.median(days_to_full)) <= 5.5


def test_a_hiking_car_park_fills_mostly_at_weekends() -> None:
    monday = local(2026, 5, 4)
    week = [_litres_over("hiking_car_park", monday + timedelta(days=d), 24, SUNNY_WARM)
            for d in range(7)]
    assert sum(week[5:]) > 0.55 * sum(week)


def test_a_town_centre_follows_shopping_hours_and_holidays() -> None:
    saturday = _litres_over("town_centre", local(2026, 5, 9), 24, MILD)
    sunday = _litres_over("town_centre", local(2026, 5, 10), 24, MILD)
    assert sunday < 0.6 * saturday
    day = local(2026, 5, 5)
    shopping = _litres_over("town_centre", day + timedelta(hours=9), 10, MILD)
    assert shopping > 0.7 * _litres_over("town_centre", day, 24, MILD)
    # Easter Monday: shops are shut as on a Sunday.
    assert date(2026, 4, 6) in hessian_public_holidays(2026)
    easter_monday = _litres_over("town_centre", local(2026, 4, 6), 24, MILD)
    assert easter_monday < 0.7 * _litres_over("town_centre", local(2026, 4, 13), 24, MILD)


def test_a_market_brings_more_litter_to_nearby_bins() -> None:
    morning = local(2026, 5, 9, 7)
    market = [Event(morning, morning + timedelta(hours=6), 3.0)]
    plain = quiet = 0.0
    for seed in range(12):
        with_market = BinModel(seed, "town_centre", volume_l=10_000, events=market, start=morning)
        without = BinModel(seed, "town_centre", volume_l=10_000, start=morning)
        plain += with_market.advance(morning + timedelta(hours=6), MILD)
        quiet += without.advance(morning + timedelta(hours=6), MILD)
    assert plain > 2.0 * quiet


def test_emptying_resets_the_fill_and_filling_resumes() -> None:
    start = local(2026, 5, 4)
    bin_ = BinModel(1, "bus_stop", fill=0.7, start=start)
    assert bin_.advance(start + timedelta(days=2), MILD) > 0.8
    bin_.empty(start + timedelta(days=2))
    assert bin_.fill < 0.05
    assert bin_.advance(start + timedelta(days=3), MILD) > 0.1


def test_a_neglected_bin_overflows_but_no_further_than_the_heap_on_top() -> None:
    bin_ = BinModel(2, "town_centre", fill=0.9, start=local(2026, 5, 4))
    assert bin_.advance(local(2026, 5, 20), SUNNY_WARM) == OVERFLOW


def test_fill_does_not_depend_on_how_often_the_bin_is_asked() -> None:
    start = local(2026, 5, 4)
    often = BinModel(3, "park", start=start)
    rarely = BinModel(3, "park", start=start)
    for minute in range(0, 3 * 24 * 60, 7):
        often.advance(start + timedelta(minutes=minute), SUNNY_WARM)
    end = start + timedelta(days=3)
    assert often.advance(end, SUNNY_WARM) == pytest.approx(rarely.advance(end, SUNNY_WARM),
                                                          rel=1e-12)


def test_looking_ahead_sees_the_fill_the_bin_will_have_and_changes_nothing() -> None:
    start = local(2026, 5, 4)
    bin_ = BinModel(4, "town_centre", fill=0.2, start=start)
    bin_.advance(start + timedelta(hours=10), MILD)
    now = bin_.fill
    later = [start + timedelta(hours=h) for h in (8, 24, 48, 72)]
    ahead = bin_.fill_ahead(later, MILD)
    assert bin_.fill == now                       # the bin itself has not moved on
    assert ahead[0] == now                        # a time already past: the fill now
    assert ahead[1] < ahead[2] < ahead[3]
    for t, expected in zip(later[1:], ahead[1:]):
        assert bin_.advance(t, MILD) == pytest.approx(expected, rel=1e-12)


def test_days_to_full_counts_from_an_empty_bin_with_the_litter_of_the_run() -> None:
    start = local(2026, 5, 4, 9)
    bin_ = BinModel(5, "bus_stop", fill=0.5, start=local(2026, 5, 4))
    days = bin_.days_to_full(start, MILD)
    assert 2.0 < days < 8.0
    assert bin_.fill == 0.5                       # the bin itself is untouched
    empty = BinModel(5, "bus_stop", fill=0.0, start=start)
    before = empty.advance(start + timedelta(days=days - 1 / 24), MILD)
    assert before < 1.0 <= empty.advance(start + timedelta(days=days), MILD)
    assert BinModel(5, "hiking_car_park", usage=0.01).days_to_full(start, MILD, 3) == math.inf


def test_an_emptying_counts_the_same_whenever_it_is_reported() -> None:
    start, at, end = local(2026, 5, 4), local(2026, 5, 5, 10), local(2026, 5, 6, 18)
    in_order = BinModel(4, "bus_stop", fill=0.5, start=start)
    in_order.advance(at, MILD)
    in_order.empty(at)
    ahead = BinModel(4, "bus_stop", fill=0.5, start=start)
    ahead.empty(at)  # announced before the bin got there
    late = BinModel(4, "bus_stop", fill=0.5, start=start)
    late.advance(at + timedelta(hours=5), MILD)
    late.empty(at)  # reported after the bin moved on
    expected = in_order.advance(end, MILD)
    assert ahead.advance(end, MILD) == pytest.approx(expected, rel=1e-12)
    assert late.advance(end, MILD) == pytest.approx(expected, rel=1e-12)


def test_bins_are_reproducible_by_seed(spring: WeatherModel) -> None:
    def series(seed: int) -> list[float]:
        bin_ = BinModel(seed, "park", start=SPRING)
        return [bin_.advance(t, spring) for t in hourly(SPRING, 14 * 24, 6)]

    assert series(5) == series(5)
    assert series(5) != series(6)


def test_bins_refuse_unknown_sites_and_going_back() -> None:
    with pytest.raises(ValueError, match="site type"):
        BinModel(1, "motorway")
    bin_ = BinModel(1, "park", start=local(2026, 5, 4))
    bin_.advance(local(2026, 5, 5), MILD)
    with pytest.raises(ValueError, match="cannot go back"):
        bin_.advance(local(2026, 5, 4, 12), MILD)


# --- soil ---------------------------------------------------------------------------------------

def test_rain_wets_the_soil() -> None:
    start = local(2026, 5, 4)
    soil = SoilModel(1, "tree", moisture_pct=18.0, start=start)
    before = soil.advance(start, RAINY_COOL)["soil_moisture_vwc_pct"]
    soon = soil.advance(start + timedelta(minutes=40), RAINY_COOL)["soil_moisture_vwc_pct"]
    after = soil.advance(start + timedelta(hours=8), RAINY_COOL)["soil_moisture_vwc_pct"]
    assert before < soon < after  # it rises within the first hour already
    assert after > before + 3.0


@pytest.mark.parametrize("site", ["tree", "flower_bed"])
def test_a_dry_sunny_spell_dries_the_soil_below_the_threshold(site: str) -> None:
    start = local(2026, 6, 1)
    soil = SoilModel(2, site, moisture_pct=30.0, start=start)
    moisture = [soil.advance(start + timedelta(hours=h), SUNNY_WARM)["soil_moisture_vwc_pct"]
                for h in range(0, 21 * 24, 6)]
    assert moisture[0] > soil.dry_threshold_pct
    assert moisture[-1] < soil.dry_threshold_pct
    assert all(b <= a + 1e-9 for a, b in zip(moisture, moisture[1:]))
    assert moisture[-1] > 5.0  # plants wilt, the soil does not turn to dust


def test_a_flower_bed_dries_faster_than_a_tree_pit() -> None:
    start = local(2026, 6, 1)

    def days_until_dry(site: str) -> float:
        soil = SoilModel(3, site, moisture_pct=30.0, start=start)
        for t in hourly(start, 30 * 24, 3):
            if soil.advance(t, SUNNY_WARM)["soil_moisture_vwc_pct"] < soil.dry_threshold_pct:
                return (t - start) / timedelta(days=1)
        return math.inf

    assert days_until_dry("flower_bed") < days_until_dry("tree") < 21


def test_watering_raises_moisture_and_the_excess_drains() -> None:
    start = local(2026, 6, 1)
    soil = SoilModel(4, "tree", moisture_pct=15.0, start=start)
    dry = soil.advance(start + timedelta(hours=6), SUNNY_WARM)["soil_moisture_vwc_pct"]
    soil.irrigate(start + timedelta(hours=6), 80.0)
    assert soil.moisture_pct > dry + 5.0
    wet = soil.advance(start + timedelta(hours=7), SUNNY_WARM)["soil_moisture_vwc_pct"]
    assert wet > dry + 5.0
    assert wet <= soil.saturation_pct
    later = soil.advance(start + timedelta(days=2), SUNNY_WARM)["soil_moisture_vwc_pct"]
    assert later <= soil.field_capacity_pct + 0.5
    bed = SoilModel(4, "flower_bed", moisture_pct=15.0, start=start)
    before = bed.advance(start, SUNNY_WARM)["soil_moisture_vwc_pct"]
    assert bed.advance(start + timedelta(minutes=30), SUNNY_WARM,
                       irrigation_mm=15.0)["soil_moisture_vwc_pct"] > before + 5.0


def test_a_cloudburst_cannot_fill_the_soil_beyond_saturation() -> None:
    start = local(2026, 7, 1)
    soil = SoilModel(5, "flower_bed", moisture_pct=30.0, start=start)
    storm = FakeWeather(temperature_c=18.0, rain_mm_h=40.0, clearness=0.1)
    peak = soil.advance(start + timedelta(hours=3), storm)["soil_moisture_vwc_pct"]
    assert soil.field_capacity_pct < peak <= soil.saturation_pct


def test_soil_temperature_follows_the_air_damped_and_late() -> None:
    start = datetime(2026, 6, 1, tzinfo=UTC)
    swinging = FakeWeather(temperature_c=18.0, daily_swing_c=6.0, clearness=0.0)
    soil = SoilModel(6, "tree", start=start)
    soil.advance(start, swinging)
    times = hourly(start + timedelta(days=5), 48)  # after the start has been forgotten
    temps = np.array([soil.advance(t, swinging)["soil_temperature_c"] for t in times])
    air = np.array([swinging.at(t)["temperature_c"] for t in times])
    assert temps.max() - temps.min() < 0.5 * (air.max() - air.min())
    assert abs(temps.mean() - air.mean()) < 1.5
    lag_h = (int(np.argmax(temps[:24])) - int(np.argmax(air[:24]))) % 24
    assert 2 <= lag_h <= 12


def test_conductivity_rises_as_the_soil_dries_and_stays_plausible() -> None:
    start = local(2026, 6, 1)
    soil = SoilModel(7, "flower_bed", moisture_pct=32.0, start=start)
    ec = [soil.advance(start + timedelta(hours=h), SUNNY_WARM)["soil_conductivity_us_cm"]
          for h in range(0, 14 * 24, 12)]
    assert ec[-1] > 1.5 * ec[0]
    assert all(100.0 <= value <= 1500.0 for value in ec)


def test_soil_does_not_depend_on_how_often_it_is_asked(spring: WeatherModel) -> None:
    start = SPRING + timedelta(hours=3, minutes=10)
    often = SoilModel(8, "tree", start=start)
    rarely = SoilModel(8, "tree", start=start)
    for day in range(1, 11):
        for minute in range(0, 24 * 60, 10):
            often.advance(start + timedelta(days=day - 1, minutes=minute), spring)
        t = start + timedelta(days=day)
        assert often.advance(t, spring) == rarely.advance(t, spring)


def test_soil_is_reproducible_by_seed(spring: WeatherModel) -> None:
    def series(seed: int) -> list[dict[str, float]]:
        soil = SoilModel(seed, "tree", start=SPRING)
        return [soil.advance(t, spring) for t in hourly(SPRING, 10 * 24, 6)]

    assert series(9) == series(9)
    assert series(9) != series(10)


# --- batteries ------------------------------------------------------------------------------------

def test_a_lithium_battery_holds_its_voltage_for_years_then_drops() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    battery = Battery(1, "lithium", start_pct=100.0, start=start)
    readings = [battery.advance(start + timedelta(days=d), uplinks=48) for d in range(1, 366)]
    volts = [v for v, _ in readings]
    percent = [p for _, p in readings]
    assert all(b < a for a, b in zip(percent, percent[1:]))
    assert 70.0 < percent[-1] < 95.0  # a year of half-hourly uplinks
    assert all(3.5 < v < 3.75 for v in volts)
    nearly_empty = Battery(1, "lithium", start_pct=2.0, start=start)
    assert nearly_empty.advance(start + timedelta(days=1))[0] < 3.4


def test_batteries_read_lower_in_the_cold() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    warm = Battery(2, "lithium", start_pct=80.0, start=start)
    cold = Battery(2, "lithium", start_pct=80.0, start=start)
    t = start + timedelta(hours=1)
    drop = warm.advance(t, temperature_c=20.0)[0] - cold.advance(t, temperature_c=-10.0)[0]
    assert 0.03 < drop < 0.25


def test_a_solar_weather_station_charges_by_day(spring: WeatherModel) -> None:
    start = SPRING + timedelta(days=1)
    battery = Battery(3, "rechargeable", start_pct=60.0, start=start)
    readings = [battery.advance(t, weather=spring) for t in hourly(start, 14 * 24, 1 / 6)]
    assert all(3.6 < v < 4.2 for v, _ in readings)
    assert readings[-1][1] > 60.0
    night = Battery(3, "rechargeable", start_pct=60.0, start=local(2026, 4, 10, 0))
    assert night.advance(local(2026, 4, 10, 5), uplinks=30, weather=spring)[1] < 60.0


def test_battery_queries_in_between_change_nothing() -> None:
    start = datetime(2026, 4, 1, tzinfo=UTC)
    quiet = Battery(4, "rechargeable", start=start)
    busy = Battery(4, "rechargeable", start=start)
    for hour in range(1, 72):
        t = start + timedelta(hours=hour)
        busy.advance(t - timedelta(minutes=20), uplinks=0)
        busy.advance(t - timedelta(minutes=5), uplinks=0)
        assert busy.advance(t) == quiet.advance(t)
    assert Battery(4, "lithium").advance(start) != Battery(5, "lithium").advance(start)
    with pytest.raises(ValueError, match="chemistry"):
        Battery(4, "nuclear")
