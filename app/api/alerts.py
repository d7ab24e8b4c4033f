"""Alerts: list and filter them, acknowledge one, and the rules in force (docs/alerts.md)."""
from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, ConfigDict, Field

from alerts import messages
from alerts.notify import iso_detail
from alerts.params import Severity
from app.alerting import AlertNotFound
from app.api.caching import cacheable
from app.api.deps import MAX_OFFSET, Conn, Crew, ServiceDep

ALERTS_MAX_AGE = 5  # dashboards poll; an unchanged list costs a 304

router = APIRouter(prefix="/api/v1", tags=["alerts"])

StatusParam = Literal["open", "acknowledged", "closed", "active"]
_STATUSES: dict[str, tuple[str, ...]] = {
    "open": ("open",), "acknowledged": ("acknowledged",), "closed": ("closed",),
    "active": ("open", "acknowledged"),
}


def _title(service, rule_id: str, lang: str) -> str:
    rule = service.alerting.rules.get(rule_id)
    key = f"rule.{rule.message_key if rule is not None else rule_id}.title"
    return messages.render(key, lang) if messages.has(key, lang) else rule_id


class AlertOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "0b8f2f7e-5c55-5b57-9a6f-3c1f1e0f6a41", "rule_id": "bin_fire",
        "device_id": "bin-waechtersbach-zt-004", "device_name": "Innenstadt 4, Wächtersbach",
        "municipality": "Wächtersbach", "severity": "critical", "status": "open",
        "first_seen": "2026-04-07T21:30:02+02:00", "opened_at": "2026-04-07T21:30:02+02:00",
        "acknowledged_at": None, "acknowledged_by": None, "closed_at": None, "value": 86.4,
        "detail": {"metric": "temperature_c", "temperature_c": 86.4, "rise_k": 77.1,
                   "threshold_c": 60.0, "rise_window_min": 40.0},
        "title_de": "Brandverdacht", "title_en": "Suspected fire"}]})

    id: str
    rule_id: str
    device_id: str
    device_name: str | None = Field(description="from the registry; the alert's own if the "
                                                "device was removed")
    municipality: str | None
    severity: Severity
    status: Literal["open", "acknowledged", "closed"]
    first_seen: dt.datetime = Field(description="when the condition began, from the data")
    opened_at: dt.datetime
    acknowledged_at: dt.datetime | None
    acknowledged_by: Literal["crew", "admin"] | None = Field(
        description="the role of the token that acknowledged it (never a person)")
    closed_at: dt.datetime | None
    value: float | None = Field(description="the number the alert is about: fill %, °C, "
                                            "minutes of silence ...")
    detail: dict[str, Any] = Field(description="the numbers behind it, as the rule's check "
                                               "saw them; times (`*_at`) in ISO 8601, UTC")
    title_de: str
    title_en: str


_LIST = """
SELECT a.id, a.rule_id, a.device_id, coalesce(d.name, a.device_name),
       coalesce(a.municipality, d.municipality), a.severity, a.status, a.first_seen,
       a.opened_at, a.acknowledged_at, a.acknowledged_by, a.closed_at, a.value, a.detail
  FROM alerts a LEFT JOIN devices d USING (device_id)
"""
_FIELDS = ("id", "rule_id", "device_id", "device_name", "municipality", "severity", "status",
           "first_seen", "opened_at", "acknowledged_at", "acknowledged_by", "closed_at", "value",
           "detail")


def _out(service, row: tuple) -> AlertOut:
    values = dict(zip(_FIELDS, row))
    values["detail"] = iso_detail(values["detail"] or {})
    return AlertOut(**values, title_de=_title(service, values["rule_id"], "de"),
                    title_en=_title(service, values["rule_id"], "en"))


@router.get("/alerts", response_model=list[AlertOut], dependencies=[cacheable(ALERTS_MAX_AGE)])
def list_alerts(
    conn: Conn,
    service: ServiceDep,
    status_: Annotated[StatusParam | None, Query(
        alias="status", description="active: open and acknowledged; unset: all")] = None,
    municipality: str | None = None,
    severity: Severity | None = None,
    device_id: str | None = None,
    rule_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[AlertOut]:
    """Alerts: the open and acknowledged ones first, then the closed ones (`status=active`
    leaves those out), each newest first by the time they opened. Alerts still pending (their
    condition has not held for the rule's minimum duration yet) are not alerts yet and not
    listed."""
    where, params = ["a.opened_at IS NOT NULL"], []
    if status_ is not None:
        where.append("a.status = ANY(%s)")
        params.append(list(_STATUSES[status_]))
    for column, value in (("coalesce(a.municipality, d.municipality)", municipality),
                          ("a.severity", severity), ("a.device_id", device_id),
                          ("a.rule_id", rule_id)):
        if value is not None:
            where.append(f"{column} = %s")
            params.append(value)
    rows = conn.execute(
        f"{_LIST} WHERE {' AND '.join(where)}"
        " ORDER BY a.status = 'closed', a.opened_at DESC, a.id"
        f" LIMIT %s OFFSET %s", (*params, limit, offset)).fetchall()
    return [_out(service, r) for r in rows]


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertOut,
             responses={404: {"description": "no such alert"},
                        409: {"description": "the alert is not open (pending or closed)"}})
def acknowledge_alert(
    alert_id: Annotated[str, Path(description="the alert's id")],
    conn: Conn,
    service: ServiceDep,
    role: Annotated[str, Crew],
) -> AlertOut:
    """Someone has seen it and takes care: reminders stop (unless the rule wants them for
    acknowledged alerts too); the alert closes when its condition clears. Acknowledging again
    changes nothing. Records the token's role (crew or admin), never who."""
    try:
        service.alerting.acknowledge(alert_id, role)
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no alert {alert_id}") from None
    except ValueError as err:
        raise HTTPException(status.HTTP_409_CONFLICT, str(err)) from None
    except psycopg.OperationalError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "database unavailable") from err
    row = conn.execute(f"{_LIST} WHERE a.id = %s", (alert_id,)).fetchone()
    return _out(service, row)


class RuleOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "bin_fire", "kind": "bin_fire", "enabled": True,
        "description": "Smouldering or burning bin (hot ashes, a cigarette, fireworks).",
        "applies_to": {"kinds": ["bin"], "site_types": [], "municipalities": [],
                       "devices": []},
        "params": {"metrics": ["temperature_c", "device_temperature_c"], "temperature_c": 60.0,
                   "rise_k": 20.0, "rise_window": "40min", "clear_temperature_c": 45.0,
                   "clear_rise_k": 10.0, "max_age": "2h"},
        "severity": "critical", "min_duration": "0s", "clear_after": "1h",
        "remind_every": "30min", "remind_when_acknowledged": False, "max_reminders": None,
        "message": "", "title_de": "Brandverdacht", "title_en": "Suspected fire"}]})

    id: str
    kind: str
    enabled: bool
    description: str
    applies_to: dict[str, list[str]] = Field(description="empty lists match any device")
    params: dict[str, Any] = Field(description="the check's thresholds (docs/alerts.md)")
    severity: Severity
    min_duration: str = Field(description="the condition must hold this long to open")
    clear_after: str = Field(description="it must be clear this long to close")
    remind_every: str | None
    remind_when_acknowledged: bool
    max_reminders: int | None
    message: str
    title_de: str
    title_en: str


@router.get("/alert-rules", response_model=list[RuleOut], dependencies=[cacheable(60)])
def alert_rules(service: ServiceDep) -> list[RuleOut]:
    """The rules in force: the defaults with the site's file (BAUHOF_ALERT_RULES) applied."""
    return [RuleOut(**rule.as_yaml_dict(), title_de=_title(service, rule.id, "de"),
                    title_en=_title(service, rule.id, "en"))
            for rule in service.alerting.rules]
