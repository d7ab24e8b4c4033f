"""Reporters: true state in, real device frames out; decoding them gives the state back."""
from __future__ import annotations

import math

import numpy
import pytest

from decoders import by_id
from decoders.normalize import is_vocabulary
from decoders.sensecap_sensecap210x import crc16_kermit
from simulator.reporters import (SUPPORTED, carried_metrics, report, resolution, sent_values,
                                 valid_range)

SCENARIO_MODELS = {
    "decentlab/dl-mbx", "dragino/ldds75", "milesight-iot/em310-udl",
    "teneo-iot/filling-degree-sensor", "decentlab/dl-atm41", "dragino/wsc1-l",
    "decentlab/dl-trs12", "dragino/lse01", "sensecap/sensecap210x", "decentlab/dl-smtp",
    "dragino/lt22222-l", "ellenex/pls2-l", "generic/cayenne-lpp",
}
GEOMETRY = {"distance_empty_m": 1.2, "distance_full_m": 0.15}
HOT = "hot afternoon, near-full bin, pump running"


def state(**overrides: float) -> dict[str, float]:
    """A full true state: every metric any supported model carries, overridable."""
    values = {
        "distance_m": 0.85, "battery_v": 3.05, "battery_pct": 80.0,
        "temperature_c": 14.2, "device_temperature_c": 15.1, "relative_humidity_pct": 71.3,
        "air_pressure_hpa": 981.6, "vapour_pressure_hpa": 11.5, "precipitation_mm": 0.0,
        "wind_speed_ms": 3.4, "wind_gust_ms": 6.1, "wind_direction_deg": 225.0,
        "solar_radiation_wm2": 310.0, "illuminance_lux": 34100.0, "lightning_strikes": 0.0,
        "lightning_distance_km": 0.0, "tilt_deg": 0.4, "co2_ppm": 421.0, "pm2_5_ugm3": 9.0,
        "pm10_ugm3": 16.0, "soil_temperature_c": 12.5, "soil_moisture_vwc_pct": 27.4,
        "soil_conductivity_us_cm": 310.0, "relay_1": 0.0, "relay_2": 0.0,
        "digital_output_1": 0.0, "digital_output_2": 0.0, "pulse_count_1": 1520.0,
        "pulse_count_2": 0.0,
    }
    for n in range(1, 9):
        values[f"soil_temperature_c_{n}"] = 12.5 - 0.3 * n
        values[f"soil_moisture_raw_{n}"] = 27.4 + 0.5 * n
    values.update(overrides)
    return values


STATES = {
    "mild day": state(),
    "winter storm": state(
        temperature_c=-12.3, device_temperature_c=-10.9, relative_humidity_pct=87.5,
        air_pressure_hpa=987.4, vapour_pressure_hpa=2.1, precipitation_mm=2.4,
        wind_speed_ms=8.55, wind_gust_ms=17.2, wind_direction_deg=270.5,
        solar_radiation_wm2=0.0, illuminance_lux=0.0, lightning_strikes=3.0,
        lightning_distance_km=12.0, tilt_deg=3.7, soil_temperature_c=-5.2,
        soil_moisture_vwc_pct=34.5, soil_conductivity_us_cm=1250.0, battery_v=2.987,
        **{f"soil_temperature_c_{n}": -5.2 + 1.1 * n for n in range(1, 9)}),
    HOT: state(
        distance_m=0.05, temperature_c=33.8, relative_humidity_pct=28.0,
        solar_radiation_wm2=910.0, illuminance_lux=98000.0, soil_moisture_vwc_pct=6.3,
        soil_temperature_c=27.9, relay_1=1.0, relay_2=1.0, digital_output_1=1.0,
        pulse_count_1=4_294_967_000.0, pulse_count_2=77.0, battery_pct=12.0, battery_v=3.4,
        **{f"soil_moisture_raw_{n}": 3.0 + 2.0 * n for n in range(1, 9)}),
    "zero": state(
        distance_m=0.0, temperature_c=0.0, device_temperature_c=0.0,
        relative_humidity_pct=0.0, vapour_pressure_hpa=0.0, wind_speed_ms=0.0,
        wind_gust_ms=0.0, wind_direction_deg=0.0, solar_radiation_wm2=0.0,
        illuminance_lux=0.0, tilt_deg=0.0, co2_ppm=0.0, pm2_5_ugm3=0.0, pm10_ugm3=0.0,
        soil_temperature_c=0.0, soil_moisture_vwc_pct=0.0, soil_conductivity_us_cm=0.0,
        pulse_count_1=0.0, battery_pct=0.0,
        **{f"soil_temperature_c_{n}": 0.0 for n in range(1, 9)},
        **{f"soil_moisture_raw_{n}": 0.0 for n in range(1, 9)}),
}


def read_back(model_id: str, values, **kwargs) -> dict[str, float | None]:
    model = by_id(model_id)
    return model.normalize(model.decode(*report(model_id, values, **kwargs)), GEOMETRY)


def within_resolution(back: float | None, expected: float, model_id: str, metric: str) -> bool:
    # the wire rounds to the nearest step; allow for float noise on top
    slack = resolution(model_id, metric) / 2 + 1e-9 * max(1.0, abs(expected))
    return back is not None and abs(back - expected) <= slack


def clamped(model_id: str, metric: str, value: float) -> float:
    low, high = valid_range(model_id, metric)
    return min(high, max(low, value))


def test_the_scenario_models_are_supported():
    assert SCENARIO_MODELS <= SUPPORTED


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_carried_metrics_are_vocabulary_with_a_resolution(model_id):
    metrics = carried_metrics(model_id)
    assert metrics
    assert all(is_vocabulary(m) for m in metrics), sorted(metrics)
    assert all(resolution(model_id, m) > 0 for m in metrics)
    assert "fill_level_pct" not in metrics  # derived from distance and geometry, not the frame


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
@pytest.mark.parametrize("name", sorted(STATES))
def test_normalising_the_frame_gives_the_true_state_back(model_id, name):
    values = STATES[name]
    back = read_back(model_id, values)
    for metric in carried_metrics(model_id):
        if metric == "lightning_distance_km" and values["lightning_strikes"] == 0:
            assert back[metric] is None  # the device sends 0 km: no strike, no distance
            continue
        expected = clamped(model_id, metric, values[metric])
        assert within_resolution(back.get(metric), expected, model_id, metric), (
            f"{metric}: true {values[metric]}, expected {expected}, read back {back.get(metric)}")


# What real devices cannot show either: LPP's luminosity is a uint16, full sun is ~100000 lx
SATURATES = {("generic/cayenne-lpp", "illuminance_lux", HOT)}


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_realistic_states_need_no_clamping(model_id):
    """Real weather, soil and bins fit every model's range, so nothing there is distorted."""
    for name in ("mild day", "winter storm", HOT):
        for metric in carried_metrics(model_id):
            low, high = valid_range(model_id, metric)
            inside = low <= STATES[name][metric] <= high
            assert inside != ((model_id, metric, name) in SATURATES), (name, metric)


WHOLE = ("relay_", "digital_output_", "pulse_count_", "lightning_strikes")  # states and counts


def draw(rng: numpy.random.Generator, model_id: str, metric: str) -> float:
    value = float(rng.uniform(*valid_range(model_id, metric)))
    return float(round(value)) if metric.startswith(WHOLE) else value


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_the_whole_range_round_trips_edges_included(model_id):
    rng = numpy.random.default_rng(4)
    metrics = sorted(carried_metrics(model_id))
    draws = [{m: valid_range(model_id, m)[0] for m in metrics},
             {m: valid_range(model_id, m)[1] for m in metrics}]
    draws += [{m: draw(rng, model_id, m) for m in metrics} for _ in range(60)]
    for values in draws:
        back = read_back(model_id, values)
        expected = sent_values(model_id, values)
        assert set(expected) <= carried_metrics(model_id)
        for metric, value in expected.items():
            assert within_resolution(back[metric], value, model_id, metric), (metric, value,
                                                                               back[metric])
        for metric in metrics:
            if metric.startswith("wind_direction") and values[metric] == 360.0:
                assert expected[metric] == 0.0  # an angle wraps
            elif metric in expected:
                assert expected[metric] == values[metric]  # in range: sent as it is


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_report_is_deterministic(model_id):
    values = STATES["winter storm"]
    assert report(model_id, values, device_number=7) == report(model_id, values,
                                                               device_number=7)
    seeded = [report(model_id, values, rng=numpy.random.default_rng(11)) for _ in range(2)]
    assert seeded[0] == seeded[1]


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_the_rng_never_changes_a_carried_value(model_id):
    plain = read_back(model_id, STATES["mild day"])
    for seed in range(5):
        drawn = read_back(model_id, STATES["mild day"], rng=numpy.random.default_rng(seed))
        assert {m: drawn.get(m) for m in carried_metrics(model_id)} == {
            m: plain.get(m) for m in carried_metrics(model_id)}


@pytest.mark.parametrize("model_id", sorted(SUPPORTED))
def test_missing_values_get_defaults_and_junk_is_ignored(model_id):
    for values in ({}, {"no_such_metric": 3.0, "distance_m": math.nan, "battery_v": None,
                        "temperature_c": math.inf}):
        back = read_back(model_id, values)
        sent = sent_values(model_id, values)
        assert sent, model_id
        for metric, value in sent.items():
            assert within_resolution(back[metric], value, model_id, metric), metric


def test_documented_defaults():
    assert sent_values("decentlab/dl-mbx", {}) == {"distance_m": 1.0, "battery_v": 3.0}
    assert sent_values("milesight-iot/em310-udl", {}) == {"distance_m": 1.0, "battery_pct": 95.0}
    weather = sent_values("decentlab/dl-atm41", {})
    assert weather["temperature_c"] == 10.0 and weather["air_pressure_hpa"] == 980.0
    assert weather["wind_direction_deg"] == 240.0 and "lightning_distance_km" not in weather
    assert sent_values("generic/cayenne-lpp", {}) == {"temperature_c": 10.0}


# ------------------------------------------------------------------------- the real frames

def test_ldds75_sends_battery_then_distance_in_five_bytes():
    # Dragino's published frame 0e1c0b05: 3612 mV and 2821 mm, then the interrupt flag
    assert report("dragino/ldds75", {"distance_m": 2.821, "battery_v": 3.612}) == (
        2, bytes.fromhex("0e1c0b0500"))
    decoded = by_id("dragino/ldds75").decode(2, bytes.fromhex("0e1c0b0500"))
    assert decoded == {"value": 2821, "distance": 3612}  # the reference codec's key names


def test_em310_udl_frame_matches_the_vendor_layout():
    assert report("milesight-iot/em310-udl", {"distance_m": 0.85, "battery_pct": 100}) == (
        85, bytes.fromhex("01756403825203040000"))


def test_teneo_frame_is_battery_and_centimetres():
    assert report("teneo-iot/filling-degree-sensor", {"distance_m": 0.3, "battery_v": 3.2}) == (
        1, bytes.fromhex("0c001e"))


def test_sensecap_s2105_frame_has_the_soil_records_battery_and_a_valid_crc():
    port, payload = report("sensecap/sensecap210x", {
        "soil_temperature_c": -5.2, "soil_moisture_vwc_pct": 34.5,
        "soil_conductivity_us_cm": 1250, "battery_pct": 42})
    assert port == 1
    # the vendor's S2105 telemetry: 4102 -5.2 °C, 4103 34.5 %, 4108 1.25 dS/m, channel 1
    assert payload.startswith(bytes.fromhex("010610b0ebffff010710c4860000010c10e2040000"))
    assert payload[21:28] == bytes.fromhex("0107002a003c00")  # 42 %, every 60 minutes
    assert int.from_bytes(payload[-2:], "little") == crc16_kermit(payload[:-2])


def test_decentlab_device_id_follows_the_device_number():
    model = by_id("decentlab/dl-mbx")
    ids = {model.decode(*report("decentlab/dl-mbx", {}, device_number=n))["device_id"]
           for n in range(3)}
    assert ids == {1000, 1001, 1002}


def test_lt22222_reports_relays_and_the_water_meter_in_count_mode():
    model = by_id("dragino/lt22222-l")
    decoded = model.decode(*report("dragino/lt22222-l", {
        "relay": 1, "relay_2": 0.2, "pulse_count": 3_000_000_000}))
    assert decoded["Work_mode"] == "Count mode 1"
    normalised = model.normalize(decoded, {})
    assert normalised["relay_1"] == 1.0 and normalised["relay_2"] == 0.0
    assert normalised["pulse_count_1"] == 3_000_000_000  # beyond int32: unsigned again


def test_wsc1_l_sends_beaufort_level_and_compass_point():
    decoded = by_id("dragino/wsc1-l").decode(*report("dragino/wsc1-l", {
        "wind_speed_ms": 3.4, "wind_direction_deg": 225.0, "temperature_c": -9.9}))
    assert decoded["wind_speed_level"] == 3 and decoded["wind_direction"] == "SW"
    assert decoded["TEM"] == -9.9


def test_lse01_frame_has_no_external_probe():
    model = by_id("dragino/lse01")
    normalised = model.normalize(model.decode(*report("dragino/lse01", STATES["mild day"])), {})
    assert normalised["temperature_c"] is None
    assert "temperature_c" not in carried_metrics("dragino/lse01")


def test_fill_level_follows_from_the_distance():
    back = read_back("dragino/ldds75", {"distance_m": 0.15})
    assert back["fill_level_pct"] == 100.0


# ------------------------------------------------------------------------- clamping

@pytest.mark.parametrize("model_id, metric, true, sent", [
    ("dragino/ldds75", "distance_m", 0.0, 0.02),  # below 20 mm Dragino calls it invalid
    ("dragino/ldds75", "battery_v", 20.0, 16.383),  # 14 bits of millivolts
    ("milesight-iot/em310-udl", "distance_m", 80.0, 65.535),  # uint16 mm
    ("milesight-iot/em310-udl", "distance_m", -0.01, 0.0),
    ("milesight-iot/em310-udl", "battery_pct", 104.0, 100.0),
    ("teneo-iot/filling-degree-sensor", "battery_v", 1.2, 2.0),  # 2 + byte / 10
    ("teneo-iot/filling-degree-sensor", "distance_m", 700.0, 655.35),  # uint16 cm
    ("decentlab/dl-atm41", "relative_humidity_pct", 103.0, 100.0),
    ("decentlab/dl-atm41", "wind_speed_ms", -0.3, 0.0),
    ("decentlab/dl-atm41", "wind_direction_deg", 365.0, 5.0),  # angles wrap
    ("decentlab/dl-atm41", "wind_direction_deg", -10.0, 350.0),
    ("dragino/lse01", "soil_temperature_c", -50.0, -40.0),  # beyond that the normaliser says None
    ("dragino/lse01", "soil_moisture_vwc_pct", 120.0, 100.0),
    ("decentlab/dl-smtp", "soil_temperature_c_1", -400.0, -327.67),  # -327.68 is "absent"
    ("dragino/lt22222-l", "pulse_count_1", 2.0**32 + 5, 5.0),  # the counter wraps
    ("dragino/lt22222-l", "relay_1", 0.7, 1.0),
    ("ellenex/pls2-l", "battery_v", 30.0, 25.5),
    ("generic/cayenne-lpp", "relative_humidity_pct", 104.0, 100.0),
])
def test_values_beyond_the_wire_are_clamped_not_refused(model_id, metric, true, sent):
    assert sent_values(model_id, {metric: true})[metric] == pytest.approx(sent)
    back = read_back(model_id, {metric: true})
    assert within_resolution(back[metric], sent, model_id, metric)


# ------------------------------------------------------------------------- derived inputs

def test_battery_percent_and_volts_convert_along_the_chemistry():
    assert sent_values("milesight-iot/em310-udl", {"battery_v": 3.65})["battery_pct"] == 100.0
    assert sent_values("milesight-iot/em310-udl", {"battery_v": 3.0})["battery_pct"] == 0.0
    assert sent_values("decentlab/dl-mbx", {"battery_pct": 50})["battery_v"] == pytest.approx(2.8)
    # a given value always wins over a conversion
    assert sent_values("sensecap/sensecap210x", {"battery_pct": 70, "battery_v": 3.0}
                       )["battery_pct"] == 70.0


def test_weather_derivations():
    sent = sent_values("decentlab/dl-atm41", {"temperature_c": 20.0,
                                               "relative_humidity_pct": 50.0,
                                               "wind_speed_ms": 4.0})
    assert sent["vapour_pressure_hpa"] == pytest.approx(11.66, abs=0.01)  # Magnus
    assert sent["wind_gust_ms"] == 6.0
    assert sent["device_temperature_c"] == 20.0
    wsc = sent_values("dragino/wsc1-l", {"solar_radiation_wm2": 500.0})
    assert wsc["illuminance_lux"] == 55000.0
    assert sent_values("dragino/wsc1-l", {"illuminance_lux": 11000.0}
                       )["solar_radiation_wm2"] == 100.0


def test_smtp_profile_from_one_soil_reading():
    sent = sent_values("decentlab/dl-smtp", {"soil_temperature_c": -2.0,
                                             "soil_moisture_vwc_pct": 36.0,
                                             "soil_temperature_c_5": 4.2})
    temperatures = [sent[f"soil_temperature_c_{n}"] for n in range(1, 9)]
    moistures = [sent[f"soil_moisture_raw_{n}"] for n in range(1, 9)]
    assert temperatures[0] == -2.0 and moistures[0] == 36.0  # the given reading is depth 1
    assert temperatures[4] == 4.2  # a depth given explicitly wins
    deeper = temperatures[:4] + temperatures[5:]
    assert all(-2.0 <= t < 10.0 for t in deeper)  # towards the annual mean, never past it
    assert deeper[1:4] == sorted(deeper[1:4]) and temperatures[5:] == sorted(temperatures[5:])
    assert moistures == sorted(moistures, reverse=True) and moistures[-1] > 30.0
    back = read_back("decentlab/dl-smtp", {"soil_temperature_c": -2.0,
                                           "soil_moisture_vwc_pct": 36.0})
    assert within_resolution(back["soil_temperature_c_8"],
                             sent_values("decentlab/dl-smtp",
                                         {"soil_temperature_c": -2.0})["soil_temperature_c_8"],
                             "decentlab/dl-smtp", "soil_temperature_c_8")


# ------------------------------------------------------------------------- errors

def test_unknown_models_and_metrics_are_named():
    with pytest.raises(KeyError, match="no/such"):
        report("no/such", {})
    with pytest.raises(KeyError, match="soil_permittivity"):
        resolution("decentlab/dl-trs12", "soil_permittivity")
    with pytest.raises(KeyError):
        carried_metrics("no/such")
