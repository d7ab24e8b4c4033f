"""Readings as CSV, for spreadsheets: streamed, with the German variant a click away.

``delimiter=;`` plus ``decimal=comma`` is what a German Excel or LibreOffice opens by double
click; the UTF-8 byte order mark (on by default) makes Excel read umlauts as UTF-8 instead of
Windows-1252. Times are ISO 8601 with their offset, in Europe/Berlin unless ``tz=UTC``.

Rows are read from the database in chunks and written out as they come (never a whole export
in memory), one device after another, each device's rows in time order: every query is a range
scan of the primary key (device_id, metric, time), also for an export of all devices.
"""
from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

import psycopg
from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import StreamingResponse

from app.api.deps import IsoDateTime, ServiceDep, ZoneName
from app.api.devices import DeviceId, time_window
from app.api.series import metrics_of, parse_tz

router = APIRouter(prefix="/api/v1", tags=["export"])

COLUMNS = ["time", "device_id", "name", "municipality", "kind", "metric", "value"]
CHUNK = 64 * 1024
FETCH = 5000
BOM = "\ufeff"

_CSV_EXAMPLE = (
    "\ufefftime;device_id;name;municipality;kind;metric;value\r\n"
    "2025-06-03T07:33:40+02:00;bin-marktplatz-017;Marktplatz Süd;Gelnhausen;bin;"
    "fill_level_pct;61,5\r\n"
    "2025-06-03T07:48:40+02:00;bin-marktplatz-017;Marktplatz Süd;Gelnhausen;bin;"
    "fill_level_pct;63,5\r\n")
CSV_RESPONSES = {
    200: {"description": "CSV, streamed; `Content-Disposition: attachment; filename=...`",
          "content": {"text/csv": {"schema": {"type": "string"}, "example": _CSV_EXAMPLE}},
          "headers": {"Content-Disposition": {"description": "attachment; filename=...",
                                              "schema": {"type": "string"}}}},
    422: {"description": "a parameter outside its schema"},
}

Delimiter = Literal[",", ";", "tab"]
DelimiterQ = Query(default=",", examples=[";"],
                   description="`,` (default), `;` (German spreadsheets) or `tab`")
DecimalQ = Query(default="point", examples=["comma"],
                 description="`comma` writes 63,5 (with delimiter `;` or `tab`; with `,` "
                             "such values are quoted)")
TzQ = Query(default="Europe/Berlin", examples=["UTC"],
            description="Zone of the times written (ISO 8601 with offset)")
BomQ = Query(default=True, description="Start with a UTF-8 byte order mark (Excel needs it "
                                       "to read umlauts)")
SinceQ = Query(default=None, examples=["2025-06-01T00:00:00Z"],
               description="Default: until minus 24 h")
UntilQ = Query(default=None, examples=["2025-07-01T00:00:00Z"],
               description="Exclusive; default: now")


class Format:
    def __init__(self, delimiter: str, decimal: str, tz: str, bom: bool) -> None:
        if delimiter == "tab":  # the schema allows ",", ";" and "tab" only
            delimiter = "\t"
        # decimal=comma with delimiter=, is unusual but well-formed: such values are quoted.
        self.delimiter = delimiter
        self.comma = decimal == "comma"
        self.zone = parse_tz(tz) or ZoneInfo("UTC")
        self.bom = bom

    def value(self, v: float) -> str:
        text = repr(v)
        return text.replace(".", ",") if self.comma else text

    def time(self, t: datetime) -> str:
        return t.astimezone(self.zone).isoformat()


def _rows(conn: psycopg.Connection, device: tuple, metrics: list[str], since: datetime,
          until: datetime) -> Iterator[tuple]:
    if not metrics:
        return
    device_id = device[0]
    with conn.cursor() as cur:
        yield from cur.stream(
            "SELECT time, metric, value FROM readings"
            " WHERE device_id = %(d)s AND metric = ANY(%(m)s)"
            "   AND time >= %(since)s AND time < %(until)s ORDER BY time, metric",
            {"d": device_id, "m": metrics, "since": since, "until": until}, size=FETCH)


def _stream(service, devices: list[tuple], metric: str | None, since: datetime,
            until: datetime, fmt: Format) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=fmt.delimiter, lineterminator="\r\n")
    if fmt.bom:
        buffer.write(BOM)
    writer.writerow(COLUMNS)
    with service.pool.connection() as conn:
        for device in devices:
            device_id, name, municipality, kind = device
            metrics = [metric] if metric else metrics_of(conn, device_id)
            for time, m, value in _rows(conn, device, metrics, since, until):
                writer.writerow((fmt.time(time), device_id, name or "", municipality or "",
                                 kind or "", m, fmt.value(value)))
                if buffer.tell() >= CHUNK:
                    yield buffer.getvalue().encode()
                    buffer.seek(0)
                    buffer.truncate()
    yield buffer.getvalue().encode()


def _response(service, devices: list[tuple], metric: str | None, since: datetime,
              until: datetime, fmt: Format, stem: str) -> StreamingResponse:
    day = "%Y%m%dT%H%MZ"
    filename = f"{stem}_{since.strftime(day)}_{until.strftime(day)}.csv"
    return StreamingResponse(
        _stream(service, devices, metric, since, until, fmt),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"',
                 "Cache-Control": "private, no-cache"})


def _utc(t: datetime) -> datetime:
    return t.astimezone(ZoneInfo("UTC"))


@router.get("/devices/{device_id}/readings.csv", response_class=StreamingResponse,
            summary="One device's readings as CSV (streamed)", responses=CSV_RESPONSES)
def device_csv(service: ServiceDep, device_id: DeviceId,
               metric: str | None = Query(default=None, examples=["fill_level_pct"]),
               since: IsoDateTime | None = SinceQ, until: IsoDateTime | None = UntilQ,
               delimiter: Delimiter = DelimiterQ, decimal: Literal["point", "comma"] = DecimalQ,
               tz: ZoneName = TzQ, bom: bool = BomQ) -> StreamingResponse:
    since, until = time_window(since, until)
    fmt = Format(delimiter, decimal, tz, bom)
    with service.pool.connection() as conn:
        device = conn.execute("SELECT device_id, name, municipality, kind FROM devices"
                              " WHERE device_id = %s", (device_id,)).fetchone()
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    return _response(service, [device], metric, _utc(since), _utc(until), fmt, device_id)


@router.get("/readings.csv", response_class=StreamingResponse,
            summary="Readings of many devices as CSV (streamed), filtered",
            description="Devices by municipality and kind (all devices without filters); rows "
                        "ordered by device, then time.",
            responses=CSV_RESPONSES)
def readings_csv(service: ServiceDep,
                 metric: str | None = Query(default=None, examples=["fill_level_pct"]),
                 municipality: str | None = Query(default=None, examples=["Gelnhausen"]),
                 kind: str | None = Query(default=None, examples=["bin"]),
                 since: IsoDateTime | None = SinceQ, until: IsoDateTime | None = UntilQ,
                 delimiter: Delimiter = DelimiterQ, decimal: Literal["point", "comma"] = DecimalQ,
                 tz: ZoneName = TzQ, bom: bool = BomQ) -> StreamingResponse:
    since, until = time_window(since, until)
    fmt = Format(delimiter, decimal, tz, bom)
    with service.pool.connection() as conn:
        devices = conn.execute(
            "SELECT device_id, name, municipality, kind FROM devices"
            " WHERE (%(m)s::text IS NULL OR municipality = %(m)s)"
            "   AND (%(k)s::text IS NULL OR kind = %(k)s) ORDER BY device_id",
            {"m": municipality, "k": kind}).fetchall()
    stem = "readings" + "".join(f"_{re.sub(r'[^A-Za-z0-9_-]', '', part)}"
                                for part in (metric, kind) if part)
    return _response(service, devices, metric, _utc(since), _utc(until), fmt, stem)
