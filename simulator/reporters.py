"""Reporters: a device's true state -> the exact frame its real device model sends.

The engine knows what a device measures, in the metric vocabulary of ``decoders/normalize.py``
(``distance_m``, ``battery_v``, ``soil_temperature_c_3`` ...), sensor noise included. A reporter
turns that into the ``(f_port, payload)`` of a regular data frame of one device model, built with
the decoders' own encoders (``MODEL.encode``), so that what the simulator sends is by construction
what our decoders, and TTS running the vendors' codecs, read from a real device.

API: ``report``, ``carried_metrics``, ``resolution`` and ``SUPPORTED`` for the engine;
``sent_values`` (what a frame carries for given values, before the wire's rounding: the reading
a perfect decoder reports) and ``valid_range`` for ground truth and tests.

Contract, for every model in ``SUPPORTED``:

- ``report(model_id, values)`` never raises on numbers. Metrics the model cannot carry are ignored;
  a metric it carries but ``values`` lacks (or gives as NaN, infinity, None) takes a plausible
  default (table below); a value outside what the device can report is clamped into
  ``valid_range``: the wire's range (uint16 ...), narrowed where the normaliser would turn the
  value into a missing reading (LSE01 soil temperature outside -40..85 °C, LDDS75 distances
  below 20 mm, DL-SMTP's "absent probe" words) and where the quantity cannot physically go
  (negative wind speed or counts, humidity and soil moisture outside 0..100 %). Angles wrap into
  [0, 360) instead. Counters (``pulse_count_n``) are whole numbers and wrap at 2**32 like the
  device's; states (``relay_n``, ``digital_output_n``) are 1 above 0.5, 0 otherwise.
- ``carried_metrics(model_id)``: what ``MODEL.normalize(MODEL.decode(*report(...)))`` gives back,
  each within ``resolution(model_id, metric) / 2`` of the clamped value (``sent_values``). Two
  are conditional: DL-ATM41's ``lightning_distance_km`` only when at least one strike was counted
  (the device sends 0 km otherwise, which the normaliser rightly calls no distance), and
  CayenneLPP's metrics only when ``values`` gives them (an LPP device sends what it has; with none
  of them given it sends a temperature). ``fill_level_pct`` is not listed: the normaliser derives
  it from ``distance_m`` and the bin geometry, not from the frame.
- Deterministic: the same arguments give the same bytes. ``rng`` only draws what no vocabulary
  metric carries (DL-MBX's number of valid samples, 5-8); without it that field is 8.
  ``device_number`` only feeds ids (the Decentlab ``device_id`` 1000 + n, the DL-ATM41's
  compass heading of its installation).

Inputs the engine may give in another form (each used only when the direct metric is missing):

- ``metric`` without suffix stands for ``metric_1`` (``relay`` -> ``relay_1``, ``pulse_count``).
- ``battery_v`` <-> ``battery_pct``: linear between the empty and full voltage of the model's
  battery (Li-SOCl2 3.0-3.65 V, two alkaline cells 2.4-3.2 V, LiFePO4 2.9-3.4 V). A crude
  curve (Li-SOCl2 is flat until it dies), but monotone, which is what an alert threshold needs.
- DL-SMTP profile: ``soil_temperature_c_n`` / ``soil_moisture_raw_n`` per depth; missing depths
  follow from depth 1 (given, or the unsuffixed metric). Assumed: probes every 10 cm, the
  temperature relaxing towards the annual mean soil temperature of the region (10 °C, e-folding
  depth 0.5 m), the moisture towards 30 (0.3 m). The probe's raw moisture scale is undocumented
  (see decoders/decentlab_dl_smtp.py); from ``soil_moisture_vwc_pct`` we send the same number,
  which matches the magnitudes of the vendor's examples.
- DL-ATM41: ``vapour_pressure_hpa`` from temperature and humidity (Magnus formula),
  ``wind_gust_ms`` 1.5 x the wind speed, ``device_temperature_c`` the air temperature.
  WSC1-L: ``illuminance_lux`` from ``solar_radiation_wm2`` (110 lx per W/m², daylight) and back.

Defaults when nothing is given: distance 1.0 m (an empty bin of the scenario), air temperature
10 °C, humidity 75 %, station pressure 980 hPa (about 300 m above sea level), wind 2 m/s from 240°
(the prevailing south-west), no precipitation, sun or lightning, tilt 0°, CO2 420 ppm, PM2.5 8 and
PM10 14 µg/m³; soil 10 °C, 25 % VWC, 200 µS/cm; relays, outputs and counters 0; batteries nearly
full (3.6 V Li-SOCl2, 3.0 V alkaline, 3.3 V LiFePO4, 95 %).

Per model (see each decoder module for the frame):

- decentlab/dl-mbx: distance mm and battery mV, fPort 1. decentlab/dl-atm41: the 17-word weather
  group (tilt as the X orientation angle, Y 0; north/east wind components from speed and
  direction) and battery. decentlab/dl-trs12: VWC as the raw count of METER's mineral-soil fit
  (0.0039 % steps), temperature, EC; the permittivity follows from the same count, so it is not
  listed as carried. decentlab/dl-smtp: all 8 depths.
- dragino/ldds75: the 5-byte frame of firmware before 1.1.4 on fPort 2: battery mV, distance mm,
  interrupt flag 0 (the reference codec calls the battery "distance", see the decoder).
- dragino/lse01: 11 bytes on fPort 2, no DS18B20 attached (its word is 0, as Dragino's firmware
  sends without the probe), so ``temperature_c`` is not carried.
- dragino/wsc1-l: fPort 2 with the records of a full Dragino weather kit (battery word, wind speed
  with its Beaufort level, direction with its compass point, illumination, rain/snow, CO2, TEM,
  HUM, pressure, rain gauge, PM2.5, PM10, PAR, TSR). ``battery_v`` is not carried: only the
  fPort-5 status frame has volts. The rain gauge gets ``precipitation_mm`` but is not normalised.
- dragino/lt22222-l: work mode 2 ("Count mode 1") on LT22222 hardware: relays, DO1/DO2 and the two
  pulse counters (the water meter on DI1). No work mode reports digital inputs and counters at
  once, because in count mode the inputs are the counters: ``digital_input_n`` is not carried.
- milesight-iot/em310-udl: battery %, distance mm, position normal, fPort 85.
- teneo-iot/filling-degree-sensor: the 3-byte measurement (battery 2 + b/10 V, distance cm) on
  fPort 1. Its temperature variant reads frost as ~655 °C (unsigned), so it is not used.
- sensecap/sensecap210x: an S2105 frame on fPort 1: records 4102 soil temperature, 4103 soil
  moisture, 4108 EC (dS/m), then record 7 (battery % and the 60-minute interval), CRC-16/KERMIT.
  The battery record is in every frame so that the battery is always carried; whether the
  device sends it with every measurement or only now and then is not verified. The probe EUI
  (ids 2/3) belongs to the device-information upload, not to a regular frame.
- ellenex/pls2-l: only the battery is normalised; ``level`` gets ``level_m`` in mm (a guess: its
  unit is not established, see the decoder), 1000 by default.
- generic/cayenne-lpp: channel 1 temperature (0.1 °C), humidity (0.5 %), barometric pressure,
  luminosity, and the extension type distance (mm), each only when given. TTS's own LPP
  formatter rejects a frame with the distance type (see the decoder): only our decoder reads it.

Negative temperatures of WSC1-L and LSE01: both reference decoders read them as
(word - 0xFFFF) / scale, one step above two's complement. We send the word the decoders' encoders
produce, which decodes to the true value; if the firmware sends plain two's complement, real
devices read one step (0.1 resp. 0.01 °C) warm below zero. The decoder modules leave this open.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from numbers import Real

import numpy

from decoders.dragino_lse01 import fixed
from decoders.dragino_wsc1_l import COMPASS
from decoders.model import Decoded, DeviceModel
from decoders.normalize import METRICS
from decoders.registry import by_id

Values = Mapping[str, float]
Resolved = dict[str, float]  # the carried metrics decided so far, in table order
Rng = numpy.random.Generator | None
FrameBuilder = Callable[[Resolved, Values, int, Rng], Decoded]
Derivation = Callable[[Resolved, Values], float | None]

UINT16 = 0xFFFF
INT16_MIN, INT16_MAX = -0x8000, 0x7FFF
UINT32 = 0xFFFF_FFFF
INT32_MIN, INT32_MAX = -2**31, 2**31 - 1
SIGNED_ZERO = 0x8000  # Decentlab's offset encoding: word 32768 is 0


@dataclass(frozen=True)
class Wire:
    """How one vocabulary metric travels in a model's frame."""
    step: float  # quantisation step, in the metric's unit
    low: float  # lowest and highest value that comes back as this number (see module docstring)
    high: float
    default: float
    period: float | None = None  # angles (360) and counters (2**32) wrap instead of clamping
    whole: bool = False  # states and counts: the device decides on a whole number

    def fit(self, value: float) -> float:
        if self.whole:
            value = float(round(value))
        if self.period is not None:
            value %= self.period
        return min(self.high, max(self.low, value))


@dataclass(frozen=True)
class Battery:
    """A battery chemistry's voltage range, to turn battery_v into battery_pct and back."""
    empty_v: float
    full_v: float

    def percent(self, volts: float) -> float:
        return (volts - self.empty_v) / (self.full_v - self.empty_v) * 100.0

    def volts(self, percent: float) -> float:
        return self.empty_v + percent / 100.0 * (self.full_v - self.empty_v)


LI_SOCL2 = Battery(3.0, 3.65)
ALKALINE_2 = Battery(2.4, 3.2)
LIFEPO4 = Battery(2.9, 3.4)


@dataclass(frozen=True)
class Reporter:
    model: DeviceModel
    wires: Mapping[str, Wire]  # the carried metrics; order matters for derivations
    frame: FrameBuilder  # resolved values -> vendor output that MODEL.encode turns into bytes
    battery: Battery | None = None
    derive: Mapping[str, Derivation] = field(default_factory=dict)
    # drops carried metrics this frame does not carry after all (DL-ATM41 lightning distance)
    keep: Callable[[Resolved, Values], Resolved] | None = None


# ---------------------------------------------------------------------------------- ranges

def word_range(offset: int = 0, scale: float = 1) -> tuple[float, float]:
    """The values ``(w - offset) / scale`` of a 16-bit word can take."""
    return (0 - offset) / scale, (UINT16 - offset) / scale


def signed_word_range(scale: float = 1) -> tuple[float, float]:
    return word_range(SIGNED_ZERO, scale)


def at_least(low: float, span: tuple[float, float]) -> tuple[float, float]:
    return max(low, span[0]), span[1]


def within(low: float, high: float, span: tuple[float, float]) -> tuple[float, float]:
    return max(low, span[0]), min(high, span[1])


def wire(step: float, span: tuple[float, float], default: float) -> Wire:
    return Wire(step, span[0], span[1], default)


def angle(step: float, default: float) -> Wire:
    return Wire(step, 0.0, 360.0, default, period=360.0)


def state(default: float = 0.0) -> Wire:
    """A 0/1 state: 1 above 0.5."""
    return Wire(1.0, 0.0, 1.0, default, whole=True)


def counter() -> Wire:
    return Wire(1.0, 0.0, float(UINT32), 0.0, period=float(UINT32 + 1), whole=True)


PERCENT = (0.0, 100.0)
DEFAULT_DISTANCE_M = 1.0
DEFAULT_BATTERY_PCT = 95.0


# ---------------------------------------------------------------------------------- inputs

def given(values: Values, metric: str) -> float | None:
    """The engine's value of ``metric``, ``metric_1`` also under its plain name; None if absent,
    not a number or not finite."""
    value = _number(values.get(metric))
    if value is None and metric.endswith("_1") and metric[:-2] in METRICS:
        value = _number(values.get(metric[:-2]))
    return value


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, Real):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _battery_from_other(reporter: Reporter, metric: str, values: Values) -> float | None:
    if reporter.battery is None:
        return None
    if metric == "battery_pct":
        volts = given(values, "battery_v")
        return None if volts is None else reporter.battery.percent(volts)
    if metric == "battery_v":
        percent = given(values, "battery_pct")
        return None if percent is None else reporter.battery.volts(percent)
    return None


def _resolve(reporter: Reporter, values: Values) -> Resolved:
    resolved: Resolved = {}
    for metric, spec in reporter.wires.items():
        value = given(values, metric)
        if value is None and metric in reporter.derive:
            value = reporter.derive[metric](resolved, values)
        if value is None:
            value = _battery_from_other(reporter, metric, values)
        resolved[metric] = spec.fit(spec.default if value is None else value)
    return resolved


def _other(values: Values, metric: str, default: float) -> float:
    """A value the frame needs that no carried metric holds (rain gauge, PLS2-L level ...)."""
    value = given(values, metric)
    return default if value is None else value


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _whole(value: float, low: int, high: int) -> int:
    return int(_clamp(round(value), low, high))


# ---------------------------------------------------------------------------------- Decentlab

DECENTLAB_ID_BASE = 1000  # device ids of the fleet: 1000 + device_number (16 bits)
DECENTLAB_BATTERY = wire(0.001, at_least(0.0, word_range(scale=1000)), 3.0)
MBX_VALID_SAMPLES = 8  # of 8 measured; rng draws 5..8 (a little clutter in the bin)


def decentlab_id(device_number: int) -> int:
    return (DECENTLAB_ID_BASE + device_number) % (UINT16 + 1)


def _measurements(device_number: int, entries: Mapping[str, float]) -> Decoded:
    decoded: Decoded = {"protocol_version": 2, "device_id": decentlab_id(device_number)}
    decoded.update({key: {"value": value} for key, value in entries.items()})
    return decoded


def _dl_mbx(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    samples = MBX_VALID_SAMPLES if rng is None else int(rng.integers(5, MBX_VALID_SAMPLES + 1))
    return _measurements(device_number, {
        "distance": sent["distance_m"] * 1000,
        "number_of_valid_samples": samples,
        "battery_voltage": sent["battery_v"],
    })


def _magnus_vapour_pressure_hpa(temperature_c: float, humidity_pct: float) -> float:
    saturation = 6.112 * math.exp(17.62 * temperature_c / (243.12 + temperature_c))
    return saturation * humidity_pct / 100.0


def _compass_heading(device_number: int) -> int:
    # how the station happens to be installed: fixed per device, spread over the compass
    return (device_number * 137) % 360


def _dl_atm41(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    speed, direction = sent["wind_speed_ms"], math.radians(sent["wind_direction_deg"])
    # wind *from* the direction: a west wind (270°) blows towards the east
    return _measurements(device_number, {
        "solar_radiation": sent["solar_radiation_wm2"],
        "precipitation": sent["precipitation_mm"],
        "lightning_strike_count": sent["lightning_strikes"],
        "lightning_average_distance": sent.get("lightning_distance_km", 0.0),
        "wind_speed": speed,
        "wind_direction": sent["wind_direction_deg"],
        "maximum_wind_speed": sent["wind_gust_ms"],
        "air_temperature": sent["temperature_c"],
        "vapor_pressure": sent["vapour_pressure_hpa"] / 10,
        "atmospheric_pressure": sent["air_pressure_hpa"] / 10,
        "relative_humidity": sent["relative_humidity_pct"],
        "sensor_temperature_internal": sent["device_temperature_c"],
        "x_orientation_angle": sent["tilt_deg"],
        "y_orientation_angle": 0.0,
        "compass_heading": _compass_heading(device_number),
        "north_wind_speed": -speed * math.cos(direction),
        "east_wind_speed": -speed * math.sin(direction),
        "battery_voltage": sent["battery_v"],
    })


def _atm41_lightning(sent: Resolved, values: Values) -> Resolved:
    if sent["lightning_strikes"] == 0:
        return {k: v for k, v in sent.items() if k != "lightning_distance_km"}
    return sent


# METER's mineral-soil fit of the TEROS 12: VWC m³/m³ = count / 10 * slope - intercept
TRS12_SLOPE, TRS12_INTERCEPT = 0.0003879, 0.6956


def _trs12_vwc_pct_range() -> tuple[float, float]:
    low = (0 / 10 * TRS12_SLOPE - TRS12_INTERCEPT) * 100
    high = (UINT16 / 10 * TRS12_SLOPE - TRS12_INTERCEPT) * 100
    return within(*PERCENT, (low, high))


def _dl_trs12(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    return _measurements(device_number, {
        "volumetric_water_content": sent["soil_moisture_vwc_pct"] / 100,
        "soil_temperature": sent["soil_temperature_c"],
        "electrical_conductivity": sent["soil_conductivity_us_cm"],
        "battery_voltage": sent["battery_v"],
    })


SMTP_DEPTHS = 8
SMTP_SPACING_M = 0.1
SMTP_DEEP_TEMPERATURE_C, SMTP_TEMPERATURE_DEPTH_M = 10.0, 0.5
SMTP_DEEP_MOISTURE, SMTP_MOISTURE_DEPTH_M = 30.0, 0.3
# word 0 is the vendor's "absent probe" (-5, -327.68): the lowest readings start one word above
SMTP_MOISTURE = wire(0.002, (1 / 500 - 5.0, word_range(2500, 500)[1]), 25.0)
SMTP_TEMPERATURE = wire(0.01, (1 / 100 - 327.68, signed_word_range(100)[1]), 10.0)


def _relax(top: float, deep: float, depth_index: int, e_folding_m: float) -> float:
    """The value at depth ``depth_index`` (0 = top probe) relaxing from ``top`` towards ``deep``."""
    return deep + (top - deep) * math.exp(-depth_index * SMTP_SPACING_M / e_folding_m)


def _smtp_derivations() -> dict[str, Derivation]:
    def top_moisture(resolved: Resolved, values: Values) -> float | None:
        return given(values, "soil_moisture_vwc_pct_1")

    derive: dict[str, Derivation] = {"soil_moisture_raw_1": top_moisture}
    for d in range(1, SMTP_DEPTHS):
        n = d + 1

        def moisture(resolved: Resolved, values: Values, d: int = d, n: int = n) -> float:
            vwc = given(values, f"soil_moisture_vwc_pct_{n}")
            return vwc if vwc is not None else _relax(
                resolved["soil_moisture_raw_1"], SMTP_DEEP_MOISTURE, d, SMTP_MOISTURE_DEPTH_M)

        def temperature(resolved: Resolved, values: Values, d: int = d) -> float:
            return _relax(resolved["soil_temperature_c_1"], SMTP_DEEP_TEMPERATURE_C, d,
                          SMTP_TEMPERATURE_DEPTH_M)

        derive[f"soil_moisture_raw_{n}"] = moisture
        derive[f"soil_temperature_c_{n}"] = temperature
    return derive


def _smtp_wires() -> dict[str, Wire]:
    wires: dict[str, Wire] = {}
    for n in range(1, SMTP_DEPTHS + 1):
        wires[f"soil_moisture_raw_{n}"] = SMTP_MOISTURE
        wires[f"soil_temperature_c_{n}"] = SMTP_TEMPERATURE
    wires["battery_v"] = DECENTLAB_BATTERY
    return wires


def _dl_smtp(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    entries: dict[str, float] = {}
    for d in range(SMTP_DEPTHS):
        entries[f"soil_moisture_at_depth_{d}"] = sent[f"soil_moisture_raw_{d + 1}"]
        entries[f"soil_temperature_at_depth_{d}"] = sent[f"soil_temperature_c_{d + 1}"]
    entries["battery_voltage"] = sent["battery_v"]
    return _measurements(device_number, entries)


# ---------------------------------------------------------------------------------- Dragino

LDDS75_MIN_MM = 20  # below this the normaliser (and Dragino) call the distance invalid
LDDS75_BATTERY_MASK = 0x3FFF  # the top two bits of the battery word are flags
DRAGINO_BATTERY_RANGE = (0.0, LDDS75_BATTERY_MASK / 1000)


def _ldds75(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    # the reference codec's names: "distance" holds the battery word, "value" the distance
    return {"value": round(sent["distance_m"] * 1000), "distance": round(sent["battery_v"] * 1000)}


def _lse01(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    return {
        "Bat": round(sent["battery_v"] * 1000) / 1000,
        "TempC_DS18B20": fixed(0, 1),  # no external probe attached
        "water_SOIL": fixed(round(sent["soil_moisture_vwc_pct"] * 100), 2),
        "temp_SOIL": fixed(round(sent["soil_temperature_c"] * 100), 2),
        "conduct_SOIL": round(sent["soil_conductivity_us_cm"]),
    }


BEAUFORT_MS = (0.3, 1.6, 3.4, 5.5, 8.0, 10.8, 13.9, 17.2, 20.8, 24.5, 28.5, 32.7)
LUX_PER_WM2 = 110.0  # daylight: about 110 lx per W/m² of global radiation
PAR_PER_WM2 = 2.06  # µmol/(m²·s) of photosynthetic photons per W/m² of global radiation
WSC1_BATTERY_V = 4.0  # solar-charged Li-ion of the station


def _beaufort(speed_ms: float) -> int:
    return sum(speed_ms >= limit for limit in BEAUFORT_MS)


def _compass_point(degrees: float) -> str:
    return COMPASS[round(degrees / 22.5) % len(COMPASS)]


def _wsc1_l(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    precipitation = _clamp(_other(values, "precipitation_mm", 0.0), 0.0, UINT16 / 10)
    battery_mv = _whole(_other(values, "battery_v", WSC1_BATTERY_V) * 1000, 0, UINT16)
    solar = sent["solar_radiation_wm2"]
    # in record-type order, as the station sends them
    return {
        "bat": battery_mv / 30,
        "wind_speed": sent["wind_speed_ms"],
        "wind_speed_level": _beaufort(sent["wind_speed_ms"]),
        "wind_direction_angle": sent["wind_direction_deg"],
        "wind_direction": _compass_point(sent["wind_direction_deg"]),
        "illumination": sent["illuminance_lux"],
        "rain_snow": 1 if precipitation > 0 else 0,
        "CO2": round(sent["co2_ppm"]),
        "TEM": sent["temperature_c"],
        "HUM": sent["relative_humidity_pct"],
        "pressure": sent["air_pressure_hpa"],
        "rain_gauge": precipitation,
        "PM2_5": round(sent["pm2_5_ugm3"]),
        "PM10": round(sent["pm10_ugm3"]),
        "PAR": _whole(solar * PAR_PER_WM2, 0, UINT16),
        "TSR": solar,
    }


def _lt22222_l(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    def on(metric: str) -> bool:
        return sent[metric] >= 0.5

    return {
        "Hardware_mode": "LT22222",
        "DO1_status": "H" if on("digital_output_1") else "L",
        "DO2_status": "H" if on("digital_output_2") else "L",
        "RO1_status": "ON" if on("relay_1") else "OFF",
        "RO2_status": "ON" if on("relay_2") else "OFF",
        "Count1_times": round(sent["pulse_count_1"]),
        "First_status": "No",
        "Work_mode": "Count mode 1",
        "Count2_times": round(sent["pulse_count_2"]),
    }


# ---------------------------------------------------------------------------------- others

def _em310_udl(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    return {"battery": round(sent["battery_pct"]), "distance": round(sent["distance_m"] * 1000),
            "position": "normal"}


TENEO_BATTERY_BASE_V = 2.0  # V = 2 + byte / 10


def _teneo(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    battery_byte = round((sent["battery_v"] - TENEO_BATTERY_BASE_V) * 10)
    return {"battery": TENEO_BATTERY_BASE_V + battery_byte / 10, "valid": True,
            "distance": round(sent["distance_m"] * 100)}


SENSECAP_INTERVAL_S = 3600
SENSECAP_SOIL_TEMPERATURE, SENSECAP_SOIL_MOISTURE, SENSECAP_EC = 4102, 4103, 4108
SENSECAP_VALUE_RANGE = (INT32_MIN / 1000, INT32_MAX / 1000)


def _sensecap(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    def telemetry(measurement_id: int, value: float) -> dict[str, object]:
        return {"type": "report_telemetry", "measurementId": measurement_id,
                "measurementValue": value}

    return {"valid": True, "err": 0, "messages": [
        telemetry(SENSECAP_SOIL_TEMPERATURE, sent["soil_temperature_c"]),
        telemetry(SENSECAP_SOIL_MOISTURE, sent["soil_moisture_vwc_pct"]),
        telemetry(SENSECAP_EC, sent["soil_conductivity_us_cm"] / 1000),  # µS/cm -> dS/m
        {"type": "upload_battery", "battery": round(sent["battery_pct"])},
        {"type": "upload_interval", "interval": SENSECAP_INTERVAL_S},
    ]}


PLS2_LEVEL_M = 1.0


def _pls2_l(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    level_mm = _whole(_other(values, "level_m", PLS2_LEVEL_M) * 1000, INT16_MIN, INT16_MAX)
    return {"level": level_mm, "batteryVoltage": round(sent["battery_v"] * 10) / 10}


LPP_CHANNEL = 1
LPP_FIELDS = {  # metric -> CayenneLPP name (decoders/generic_cayenne_lpp.py), in frame order
    "temperature_c": "temperature",
    "relative_humidity_pct": "relative_humidity",
    "air_pressure_hpa": "barometric_pressure",
    "illuminance_lux": "luminosity",
    "distance_m": "distance",
}
LPP_FALLBACK = "temperature_c"  # sent when none of the above is given


def _lpp_given(sent: Resolved, values: Values) -> Resolved:
    chosen = {m: v for m, v in sent.items() if given(values, m) is not None}
    return chosen or {LPP_FALLBACK: sent[LPP_FALLBACK]}


def _cayenne_lpp(sent: Resolved, values: Values, device_number: int, rng: Rng) -> Decoded:
    return {f"{LPP_FIELDS[m]}_{LPP_CHANNEL}": v for m, v in sent.items()}


# ---------------------------------------------------------------------------------- the table

def _model(model_id: str) -> DeviceModel:
    model = by_id(model_id)
    if model is None:
        raise RuntimeError(f"no decoder module for {model_id}")
    return model


def _gust(resolved: Resolved, values: Values) -> float:
    return 1.5 * resolved["wind_speed_ms"]


def _vapour(resolved: Resolved, values: Values) -> float:
    return _magnus_vapour_pressure_hpa(resolved["temperature_c"],
                                       resolved["relative_humidity_pct"])


def _same_as(metric: str) -> Derivation:
    return lambda resolved, values: resolved[metric]


def _solar_from_lux(resolved: Resolved, values: Values) -> float | None:
    lux = given(values, "illuminance_lux")
    return None if lux is None else lux / LUX_PER_WM2


def _lux_from_solar(resolved: Resolved, values: Values) -> float:
    return resolved["solar_radiation_wm2"] * LUX_PER_WM2


def _build() -> dict[str, Reporter]:
    distance_mm = wire(0.001, at_least(0.0, word_range(scale=1000)), DEFAULT_DISTANCE_M)
    signed_tenths = signed_word_range(10)
    signed_hundredths = signed_word_range(100)
    kpa_as_hpa = at_least(0.0, (signed_hundredths[0] * 10, signed_hundredths[1] * 10))
    reporters = [
        Reporter(_model("decentlab/dl-mbx"), {
            "distance_m": distance_mm,
            "battery_v": DECENTLAB_BATTERY,
        }, _dl_mbx, ALKALINE_2),
        Reporter(_model("decentlab/dl-atm41"), {
            "temperature_c": wire(0.1, signed_tenths, 10.0),
            "relative_humidity_pct": wire(0.1, within(*PERCENT, signed_tenths), 75.0),
            "air_pressure_hpa": wire(0.1, kpa_as_hpa, 980.0),
            "vapour_pressure_hpa": wire(0.1, kpa_as_hpa, 0.0),
            "precipitation_mm": wire(0.001, at_least(0.0, signed_word_range(1000)), 0.0),
            "wind_speed_ms": wire(0.01, at_least(0.0, signed_hundredths), 2.0),
            "wind_gust_ms": wire(0.01, at_least(0.0, signed_hundredths), 0.0),
            "wind_direction_deg": angle(0.1, 240.0),
            "solar_radiation_wm2": wire(1, at_least(0.0, signed_word_range()), 0.0),
            "lightning_strikes": Wire(1, 0.0, signed_word_range()[1], 0.0, whole=True),
            "lightning_distance_km": wire(1, at_least(0.0, signed_word_range()), 10.0),
            "device_temperature_c": wire(0.1, signed_tenths, 10.0),
            "tilt_deg": wire(0.1, within(0.0, 180.0, signed_tenths), 0.0),
            "battery_v": DECENTLAB_BATTERY,
        }, _dl_atm41, ALKALINE_2,
            derive={"vapour_pressure_hpa": _vapour, "wind_gust_ms": _gust,
                    "device_temperature_c": _same_as("temperature_c")},
            keep=_atm41_lightning),
        Reporter(_model("decentlab/dl-trs12"), {
            "soil_moisture_vwc_pct": wire(TRS12_SLOPE / 10 * 100, _trs12_vwc_pct_range(), 25.0),
            "soil_temperature_c": wire(0.1, signed_tenths, 10.0),
            "soil_conductivity_us_cm": wire(1, word_range(), 200.0),
            "battery_v": DECENTLAB_BATTERY,
        }, _dl_trs12, ALKALINE_2),
        Reporter(_model("decentlab/dl-smtp"), _smtp_wires(), _dl_smtp, ALKALINE_2,
                 derive=_smtp_derivations()),
        Reporter(_model("dragino/ldds75"), {
            "distance_m": wire(0.001, (LDDS75_MIN_MM / 1000, UINT16 / 1000), DEFAULT_DISTANCE_M),
            # a battery word below 20 is the reference's "Invalid Reading"
            "battery_v": wire(0.001, (0.02, DRAGINO_BATTERY_RANGE[1]), 3.6),
        }, _ldds75, LI_SOCL2),
        Reporter(_model("dragino/lse01"), {
            "soil_moisture_vwc_pct": wire(0.01, PERCENT, 25.0),
            "soil_temperature_c": wire(0.01, (-40.0, 85.0), 10.0),
            "soil_conductivity_us_cm": wire(1, word_range(), 200.0),
            "battery_v": wire(0.001, DRAGINO_BATTERY_RANGE, 3.6),
        }, _lse01, LI_SOCL2),
        Reporter(_model("dragino/wsc1-l"), {
            "temperature_c": wire(0.1, (-INT16_MAX / 10, INT16_MAX / 10), 10.0),
            "relative_humidity_pct": wire(0.1, PERCENT, 75.0),
            "air_pressure_hpa": wire(0.1, word_range(scale=10), 980.0),
            "wind_speed_ms": wire(0.1, word_range(scale=10), 2.0),
            "wind_direction_deg": angle(0.1, 240.0),
            "solar_radiation_wm2": wire(0.1, word_range(scale=10), 0.0),
            "illuminance_lux": wire(10, (0.0, UINT16 * 10.0), 0.0),
            "co2_ppm": wire(1, word_range(), 420.0),
            "pm2_5_ugm3": wire(1, word_range(), 8.0),
            "pm10_ugm3": wire(1, word_range(), 14.0),
        }, _wsc1_l, derive={"solar_radiation_wm2": _solar_from_lux,
                            "illuminance_lux": _lux_from_solar}),
        Reporter(_model("dragino/lt22222-l"), {
            "relay_1": state(), "relay_2": state(),
            "digital_output_1": state(), "digital_output_2": state(),
            "pulse_count_1": counter(), "pulse_count_2": counter(),
        }, _lt22222_l),
        Reporter(_model("milesight-iot/em310-udl"), {
            "distance_m": distance_mm,
            "battery_pct": wire(1, PERCENT, DEFAULT_BATTERY_PCT),
        }, _em310_udl, LI_SOCL2),
        Reporter(_model("teneo-iot/filling-degree-sensor"), {
            "distance_m": wire(0.01, word_range(scale=100), DEFAULT_DISTANCE_M),
            "battery_v": wire(0.1, (TENEO_BATTERY_BASE_V, TENEO_BATTERY_BASE_V + 25.5), 3.3),
        }, _teneo, LIFEPO4),
        Reporter(_model("sensecap/sensecap210x"), {
            "soil_temperature_c": wire(0.001, SENSECAP_VALUE_RANGE, 10.0),
            "soil_moisture_vwc_pct": wire(0.001, PERCENT, 25.0),
            "soil_conductivity_us_cm": wire(1, (0.0, SENSECAP_VALUE_RANGE[1] * 1000), 200.0),
            "battery_pct": wire(1, PERCENT, DEFAULT_BATTERY_PCT),
        }, _sensecap, LI_SOCL2),
        Reporter(_model("ellenex/pls2-l"), {
            "battery_v": wire(0.1, (0.0, 25.5), 3.6),
        }, _pls2_l, LI_SOCL2),
        Reporter(_model("generic/cayenne-lpp"), {
            "temperature_c": wire(0.1, (INT16_MIN / 10, INT16_MAX / 10), 10.0),
            "relative_humidity_pct": wire(0.5, PERCENT, 75.0),
            "air_pressure_hpa": wire(0.1, (0.0, INT16_MAX / 10), 980.0),
            "illuminance_lux": wire(1, word_range(), 0.0),
            "distance_m": wire(0.001, (0.0, UINT32 / 1000), DEFAULT_DISTANCE_M),
        }, _cayenne_lpp, keep=_lpp_given),
    ]
    return {r.model.id: r for r in reporters}


_REPORTERS = _build()
SUPPORTED: frozenset[str] = frozenset(_REPORTERS)


def _reporter(model_id: str) -> Reporter:
    try:
        return _REPORTERS[model_id]
    except KeyError:
        raise KeyError(f"no reporter for model {model_id!r}; supported: "
                       f"{', '.join(sorted(SUPPORTED))}") from None


def _wire(model_id: str, metric: str) -> Wire:
    reporter = _reporter(model_id)
    try:
        return reporter.wires[metric]
    except KeyError:
        raise KeyError(f"{model_id} does not carry {metric!r}; it carries "
                       f"{', '.join(sorted(reporter.wires))}") from None


# ---------------------------------------------------------------------------------- public API

def sent_values(model_id: str, values: Values) -> dict[str, float]:
    """The carried metrics as the device sends them, before the wire's rounding: defaults filled
    in, derived values computed, out-of-range values clamped. The normaliser gives each back
    within half its resolution: the reading a perfect decoder would report."""
    reporter = _reporter(model_id)
    resolved = _resolve(reporter, values)
    return reporter.keep(resolved, values) if reporter.keep else resolved


def report(model_id: str, values: Values, *, device_number: int = 0,
           rng: numpy.random.Generator | None = None) -> tuple[int, bytes]:
    """(f_port, payload) of a regular data frame of ``model_id`` measuring ``values``."""
    reporter = _reporter(model_id)
    sent = sent_values(model_id, values)
    return reporter.model.encode(reporter.frame(sent, values, device_number, rng))


def carried_metrics(model_id: str) -> frozenset[str]:
    """Vocabulary metrics that survive report -> decode -> normalize (see the module docstring for
    DL-ATM41's lightning distance and CayenneLPP, which carry theirs only in some frames)."""
    return frozenset(_reporter(model_id).wires)


def resolution(model_id: str, metric: str) -> float:
    """The quantisation step of ``metric`` on the wire, in the metric's unit; KeyError when the
    model does not carry it."""
    return _wire(model_id, metric).step


def valid_range(model_id: str, metric: str) -> tuple[float, float]:
    """The lowest and highest value of ``metric`` the model reports as a number; ``report``
    clamps into it (angles and counters wrap instead)."""
    spec = _wire(model_id, metric)
    return spec.low, spec.high
