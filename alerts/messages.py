"""Every text a person reads in an alert, German and English, keyed in one place.

``MESSAGES[lang][key]`` is a ``str.format`` template; the fields come from the alert (device,
municipality, value) and its observation's ``detail``. :func:`render` never fails on a missing
or ``None`` field: it shows "–" instead, so a sparse reading still gives a readable message.

Keys: ``rule.<message>.title`` and ``rule.<message>.body`` per rule kind (a body may have
variants ``rule.<message>.body_<variant>``, chosen by ``detail["variant"]``), ``event.<kind>``
(opened, reminder, closed), ``severity.<severity>`` and a few labels. Both languages must have
the same keys with the same fields (tests/test_alerts_notify.py checks it).
"""
from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

LANGUAGES = ("de", "en")  # German first: the Bauhof's language; English below it

MESSAGES: dict[str, dict[str, str]] = {
    "de": {
        "event.opened": "Alarm",
        "event.reminder": "Erinnerung",
        "event.closed": "Entwarnung",
        "severity.info": "Hinweis",
        "severity.warning": "Warnung",
        "severity.critical": "Kritisch",
        "label.device": "Gerät",
        "label.municipality": "Gemeinde",
        "label.since": "Seit",
        "label.closed": "Behoben",
        "label.alert": "Alarm-Nr.",
        "label.reminders": "Erinnerungen bisher",
        "subject": "[{severity}] {event}: {title} – {device}",
        "unknown_municipality": "ohne Gemeinde",

        "rule.bin_full.title": "Mülleimer voll",
        "rule.bin_full.body": "Füllstand {fill_pct:.0f} % (voll ab {threshold_pct:.0f} %).",
        "rule.bin_overflow_before_collection.title": "Mülleimer läuft vor der Leerung über",
        "rule.bin_overflow_before_collection.body":
            "Voraussichtlich voll am {full_at_local}, nächste geplante Leerung am "
            "{collection_at_local} ({hours_early:.0f} h zu spät). Füllstand jetzt {fill_pct:.0f} %.",
        "rule.bin_fire.title": "Brandverdacht",
        "rule.bin_fire.body":
            "Temperatur im Mülleimer {temperature_c:.0f} °C, Anstieg {rise_k:.0f} K in "
            "{rise_window_min:.0f} min. Sofort prüfen, bei Feuer Notruf 112.",
        "rule.bin_tilted.title": "Mülleimer umgekippt",
        "rule.bin_tilted.body": "Der Mülleimer ist umgekippt oder schief.",
        "rule.bin_tilted.body_tilt": "Sensor um {tilt_deg:.0f}° geneigt (ab {threshold_deg:.0f}°).",
        "rule.bin_tilted.body_far":
            "Der Abstandssensor misst {distance_m:.2f} m, weiter als der Boden des leeren "
            "Behälters ({empty_m:.2f} m), nachdem er zu {previous_fill_pct:.0f} % voll war.",
        "rule.battery_low.title": "Batterie schwach",
        "rule.battery_low.body": "Batterie schwach.",
        "rule.battery_low.body_pct": "Batterie bei {battery_pct:.0f} % (Schwelle {threshold:.0f} %).",
        "rule.battery_low.body_volts": "Batteriespannung {battery_v:.2f} V (Schwelle {threshold:.2f} V).",
        "rule.device_offline.title": "Gerät meldet sich nicht",
        "rule.device_offline.body":
            "Letzte Meldung am {last_seen_at_local}, seit {silent_h:.1f} h keine Nachricht "
            "(sonst alle {interval_min:.0f} min).",
        "rule.frost.title": "Glättegefahr",
        "rule.frost.body":
            "Luft {temperature_c:.1f} °C, Taupunkt {dew_point_c:.1f} °C, Luftfeuchte "
            "{humidity_pct:.0f} %, Niederschlag {precipitation_mm:.1f} mm in den letzten "
            "{precipitation_window_h:.0f} h. Straßen und Wege auf Reif- und Eisglätte prüfen.",
        "rule.heavy_rain.title": "Starkregen",
        "rule.heavy_rain.body":
            "{mm_1h:.1f} mm in 1 h, {mm_6h:.1f} mm in 6 h. Einläufe, Unterführungen und "
            "Gräben prüfen.",
        "rule.storm.title": "Sturmböen",
        "rule.storm.body":
            "Böen bis {gust_ms:.1f} m/s ({gust_kmh:.0f} km/h, Windstärke {beaufort}). "
            "Bäume und Baustellen prüfen.",
        "rule.soil_dry.title": "Boden zu trocken – gießen",
        "rule.soil_dry.body":
            "Bodenfeuchte {moisture_pct:.1f} % (trocken unter {threshold_pct:.0f} %), "
            "trocken seit {since_at_local}.",
        "rule.irrigation_fault.title": "Störung der Bewässerung",
        "rule.irrigation_fault.body": "Die Bewässerung arbeitet nicht wie geschaltet.",
        "rule.irrigation_fault.body_dry_run":
            "Ventil {channel} seit mindestens {relay_on_min:.0f} min offen, aber der "
            "Wasserzähler steht. Wasserzufuhr, Zähler und Ventil prüfen.",
        "rule.irrigation_fault.body_leak":
            "Wasserzähler {channel} läuft bei geschlossenem Ventil ({pulses:.0f} Impulse). "
            "Leck oder klemmendes Ventil?",
    },
    "en": {
        "event.opened": "Alert",
        "event.reminder": "Reminder",
        "event.closed": "All clear",
        "severity.info": "Info",
        "severity.warning": "Warning",
        "severity.critical": "Critical",
        "label.device": "Device",
        "label.municipality": "Municipality",
        "label.since": "Since",
        "label.closed": "Cleared",
        "label.alert": "Alert no.",
        "label.reminders": "Reminders so far",
        "subject": "[{severity}] {event}: {title} – {device}",
        "unknown_municipality": "no municipality",

        "rule.bin_full.title": "Bin full",
        "rule.bin_full.body": "Fill level {fill_pct:.0f} % (full from {threshold_pct:.0f} %).",
        "rule.bin_overflow_before_collection.title": "Bin will overflow before its collection",
        "rule.bin_overflow_before_collection.body":
            "Expected full on {full_at_local}, next planned collection on "
            "{collection_at_local} ({hours_early:.0f} h too late). Fill level now {fill_pct:.0f} %.",
        "rule.bin_fire.title": "Suspected fire",
        "rule.bin_fire.body":
            "Temperature in the bin {temperature_c:.0f} °C, a rise of {rise_k:.0f} K in "
            "{rise_window_min:.0f} min. Check at once; if burning call 112.",
        "rule.bin_tilted.title": "Bin knocked over",
        "rule.bin_tilted.body": "The bin is knocked over or tilted.",
        "rule.bin_tilted.body_tilt": "Sensor tilted by {tilt_deg:.0f}° (alarm from {threshold_deg:.0f}°).",
        "rule.bin_tilted.body_far":
            "The distance sensor reads {distance_m:.2f} m, beyond the bottom of the empty bin "
            "({empty_m:.2f} m), after the bin was {previous_fill_pct:.0f} % full.",
        "rule.battery_low.title": "Battery low",
        "rule.battery_low.body": "Battery low.",
        "rule.battery_low.body_pct": "Battery at {battery_pct:.0f} % (threshold {threshold:.0f} %).",
        "rule.battery_low.body_volts": "Battery voltage {battery_v:.2f} V (threshold {threshold:.2f} V).",
        "rule.device_offline.title": "Device not reporting",
        "rule.device_offline.body":
            "Last message on {last_seen_at_local}, silent for {silent_h:.1f} h "
            "(usually every {interval_min:.0f} min).",
        "rule.frost.title": "Risk of black ice",
        "rule.frost.body":
            "Air {temperature_c:.1f} °C, dew point {dew_point_c:.1f} °C, humidity "
            "{humidity_pct:.0f} %, precipitation {precipitation_mm:.1f} mm in the last "
            "{precipitation_window_h:.0f} h. Check roads and paths for frost and ice.",
        "rule.heavy_rain.title": "Heavy rain",
        "rule.heavy_rain.body":
            "{mm_1h:.1f} mm in 1 h, {mm_6h:.1f} mm in 6 h. Check drains, underpasses and "
            "ditches.",
        "rule.storm.title": "Storm gusts",
        "rule.storm.body":
            "Gusts up to {gust_ms:.1f} m/s ({gust_kmh:.0f} km/h, Beaufort {beaufort}). "
            "Check trees and road works.",
        "rule.soil_dry.title": "Soil too dry – water",
        "rule.soil_dry.body":
            "Soil moisture {moisture_pct:.1f} % (dry below {threshold_pct:.0f} %), "
            "dry since {since_at_local}.",
        "rule.irrigation_fault.title": "Irrigation fault",
        "rule.irrigation_fault.body": "The irrigation does not do what it is switched to.",
        "rule.irrigation_fault.body_dry_run":
            "Valve {channel} open for at least {relay_on_min:.0f} min but the water meter "
            "does not move. Check supply, meter and valve.",
        "rule.irrigation_fault.body_leak":
            "Water meter {channel} runs while the valve is closed ({pulses:.0f} pulses). "
            "A leak or a stuck valve?",
    },
}

MISSING = "–"


class _SafeFormatter(string.Formatter):
    """``str.format`` that shows "–" for a missing or unformattable field instead of raising."""

    def get_value(self, key: Any, args: Any, kwargs: Mapping[str, Any]) -> Any:
        if isinstance(key, int):
            return args[key] if key < len(args) else None
        return kwargs.get(key)

    def format_field(self, value: Any, format_spec: str) -> str:
        if value is None:
            return MISSING
        try:
            return super().format_field(value, format_spec)
        except (ValueError, TypeError):
            return str(value)


_FORMATTER = _SafeFormatter()


def has(key: str, lang: str = "de") -> bool:
    return key in MESSAGES.get(lang, {})


def render(key: str, lang: str, fields: Mapping[str, Any] | None = None) -> str:
    """The text of ``key`` in ``lang`` with ``fields`` filled in; English if the language lacks
    the key; the key itself if no language has it (visible, never an exception)."""
    template = MESSAGES.get(lang, {}).get(key) or MESSAGES["en"].get(key)
    if template is None:
        return key
    return _FORMATTER.vformat(template, (), dict(fields or {}))


def fields_of(template: str) -> set[str]:
    """The field names a template uses (for the consistency test)."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}
