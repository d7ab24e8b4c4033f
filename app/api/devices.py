"""Devices, their latest values and their readings over time."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel

from app import registry
from app.api.deps import Conn, ServiceDep, Writer
from app.registry import Device, DeviceSettings
from app.sources.tts import TTS_ID_PATTERN
from decoders import by_id

router = APIRouter(prefix="/api/v1", tags=["devices"])

DeviceId = Annotated[str, Path(pattern=TTS_ID_PATTERN, examples=["bin-marktplatz-017"])]


class Value(BaseModel):
    metric: str
    time: datetime
    value: float


class DeviceLatest(BaseModel):
    device_id: str
    values: list[Value]


@router.get("/devices", response_model=list[Device], summary="List devices")
def list_devices(conn: Conn, municipality: str | None = None,
                 kind: str | None = Query(default=None, examples=["bin"]),
                 limit: int = Query(default=1000, ge=1, le=10000),
                 offset: int = Query(default=0, ge=0)) -> list[Device]:
    return registry.list_devices(conn, municipality, kind, limit, offset)


@router.get("/devices/{device_id}", response_model=Device, summary="One device",
            responses={404: {"description": "unknown device"}})
def get_device(conn: Conn, device_id: DeviceId) -> Device:
    device = registry.get_device(conn, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    return device


@router.put("/devices/{device_id}", response_model=Device, dependencies=[Writer],
            summary="Register or configure a device (needs an API token)")
def configure_device(conn: Conn, service: ServiceDep, device_id: DeviceId,
                     settings: DeviceSettings) -> Device:
    if settings.decoder and by_id(settings.decoder) is None:
        raise HTTPException(422,
                            f"unknown decoder {settings.decoder!r}; see GET /api/v1/decoders")
    device = registry.configure_device(conn, device_id, settings)
    service.pipeline.invalidate_devices()
    return device


@router.get("/devices/{device_id}/latest", response_model=list[Value],
            summary="The newest value of each metric of one device")
def latest_of_device(conn: Conn, device_id: DeviceId) -> list[Value]:
    rows = conn.execute(
        "SELECT metric, time, value FROM latest_readings WHERE device_id = %s ORDER BY metric",
        (device_id,)).fetchall()
    if not rows and registry.get_device(conn, device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    return [Value(metric=m, time=t, value=v) for m, t, v in rows]


@router.get("/latest", response_model=list[DeviceLatest],
            summary="The newest values of all devices in one call")
def latest_of_all(conn: Conn, municipality: str | None = None,
                  kind: str | None = None) -> list[DeviceLatest]:
    rows = conn.execute(
        "SELECT l.device_id, l.metric, l.time, l.value FROM latest_readings l"
        " JOIN devices d USING (device_id)"
        " WHERE (%(m)s::text IS NULL OR d.municipality = %(m)s)"
        "   AND (%(k)s::text IS NULL OR d.kind = %(k)s)"
        " ORDER BY l.device_id, l.metric",
        {"m": municipality, "k": kind}).fetchall()
    out: dict[str, DeviceLatest] = {}
    for device_id, metric, time, value in rows:
        out.setdefault(device_id, DeviceLatest(device_id=device_id, values=[]))
        out[device_id].values.append(Value(metric=metric, time=time, value=value))
    return list(out.values())


@router.get("/devices/{device_id}/readings", response_model=list[Value],
            summary="Readings of one device over a time range (default: the last 24 h)")
def readings(conn: Conn, device_id: DeviceId,
             since: datetime | None = Query(default=None, examples=["2025-06-03T00:00:00Z"]),
             until: datetime | None = None,
             metric: str | None = Query(default=None, examples=["fill_level_pct"]),
             limit: int = Query(default=10_000, ge=1, le=100_000)) -> list[Value]:
    until = until or datetime.now(timezone.utc)
    since = since or until - timedelta(hours=24)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(422,
                            "since and until need a time zone, e.g. 2025-06-03T00:00:00Z")
    rows = conn.execute(
        "SELECT metric, time, value FROM readings"
        " WHERE device_id = %(d)s AND time >= %(since)s AND time < %(until)s"
        "   AND (%(metric)s::text IS NULL OR metric = %(metric)s)"
        " ORDER BY time, metric LIMIT %(limit)s",
        {"d": device_id, "since": since, "until": until, "metric": metric, "limit": limit},
    ).fetchall()
    return [Value(metric=m, time=t, value=v) for m, t, v in rows]
