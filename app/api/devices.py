"""Devices, their latest values and their readings over time.

The GET endpoints here are what dashboards poll: they carry ``ETag`` and ``Cache-Control``
(see ``app.api.caching``) and answer ``304 Not Modified`` to a matching ``If-None-Match``.
Lists are paged with ``limit`` and an opaque ``cursor`` (or ``offset`` for devices); the next
page is announced in a ``Link: <...>; rel="next"`` header (RFC 8288).
"""
from __future__ import annotations

import base64
import binascii
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

import pydantic_core
import psycopg
from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from psycopg.rows import dict_row
from pydantic import BaseModel, ConfigDict

from app import registry
from app.api.caching import CachePolicy, cacheable
from app.api.deps import MAX_OFFSET, Conn, IsoDateTime, ServiceDep, Writer
from app.registry import Device, DeviceSettings
from app.device_keys import SEPARATOR
from app.registry import DEVICE_KEY_PATTERN

router = APIRouter(prefix="/api/v1", tags=["devices"])



def device_key(request: Request, device_id: Annotated[str, Path(
        pattern=DEVICE_KEY_PATTERN, examples=["bin-marktplatz-017"],
        description="The device's key from `/api/v1/devices`: its id, or `{id}@{application}` "
                    "where another application has a device of the same id; "
                    "`{id}@{application}` names every device")]) -> str:
    """The stored key a path names; only a qualified id costs a query."""
    if SEPARATOR not in device_id:
        return device_id
    try:
        with request.app.state.service.pool.connection(timeout=5) as conn:
            return registry.resolve_key(conn, device_id)
    except psycopg.OperationalError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "database unavailable") from err


DeviceId = Annotated[str, Depends(device_key)]

# Cache lifetimes, seconds. Live answers change with every uplink; a range that ended before
# the backfill window (24 h by default) no longer changes in normal operation.
LIVE_MAX_AGE = 5
DEVICES_MAX_AGE = 10
HISTORIC_MAX_AGE = 3600
HISTORIC_AFTER = timedelta(hours=48)

EXAMPLE_DEVICE: dict[str, Any] = {
    "device_id": "bin-marktplatz-017", "dev_eui": "70B3D57BA0000A1F",
    "application_id": "bauhof-gelnhausen", "network": "tts", "brand_id": "decentlab",
    "model_id": "dl-mbx", "decoder": None, "kind": "bin", "name": "Marktplatz Süd",
    "municipality": "Gelnhausen", "latitude": 50.2012, "longitude": 9.1873,
    "attributes": {"volume_l": 120, "distance_empty_m": 1.05, "distance_full_m": 0.15},
    "registered": True, "created_at": "2025-05-12T08:30:00Z",
    "last_seen": "2025-06-03T05:48:40Z",
}


class Value(BaseModel):
    metric: str
    time: datetime
    value: float

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"metric": "fill_level_pct", "time": "2025-06-03T05:48:40Z", "value": 63.5}]})


class DeviceLatest(BaseModel):
    device_id: str
    values: list[Value]

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"device_id": "bin-marktplatz-017",
         "values": [{"metric": "battery_v", "time": "2025-06-03T05:48:40Z", "value": 3.61},
                    {"metric": "fill_level_pct", "time": "2025-06-03T05:48:40Z",
                     "value": 63.5}]}]})


# --- shared helpers (series and export use them too) -----------------------------------------

def json_response(content: Any, headers_from: Response | None = None) -> Response:
    """JSON serialised once by pydantic-core (datetimes as ISO 8601, UTC as Z).

    Returning a Response skips FastAPI's validation of the return value against
    ``response_model``, which then only documents the answer: the caller guarantees the shape.
    ``headers_from``: the endpoint's injected Response, whose headers (Link, ...) are kept.
    """
    body = (content.model_dump_json() if isinstance(content, BaseModel)
            else pydantic_core.to_json(content))
    answer = Response(body, media_type="application/json")
    if headers_from is not None:
        for name, value in headers_from.headers.items():
            if name not in ("content-length", "content-type"):
                answer.headers[name] = value
    return answer


def json_example(example: Any, description: str = "OK", **extra: Any) -> dict[int | str, Any]:
    """An OpenAPI ``responses`` entry with an example body."""
    return {200: {"description": description,
                  "content": {"application/json": {"example": example}}, **extra}}


CACHE_HEADERS = {
    "ETag": {"description": "Strong entity tag; send it back as If-None-Match",
             "schema": {"type": "string"}},
    "Cache-Control": {"description": "private, max-age=N", "schema": {"type": "string"}},
}
PAGE_HEADERS = {
    **CACHE_HEADERS,
    "Link": {"description": 'The next page: <...>; rel="next" (absent on the last page)',
             "schema": {"type": "string"}},
}
NOT_MODIFIED = {304: {"description": "Not modified: the If-None-Match tag is current"}}


def time_window(since: datetime | None, until: datetime | None,
                default: timedelta = timedelta(hours=24)) -> tuple[datetime, datetime]:
    until = until or datetime.now(timezone.utc)
    since = since or until - default
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(422,
                            "since and until need a time zone, e.g. 2025-06-03T00:00:00Z")
    if since > until:
        raise HTTPException(422, "since must not be after until")
    return since, until


def max_age_for(until: datetime) -> int:
    """Long for a range that ended well before the backfill window, short otherwise."""
    if until <= datetime.now(timezone.utc) - HISTORIC_AFTER:
        return HISTORIC_MAX_AGE
    return LIVE_MAX_AGE


def encode_cursor(*parts: str) -> str:
    return base64.urlsafe_b64encode("\x1f".join(parts).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, count: int) -> list[str]:
    """The cursor's fields; callers treat an empty cursor as none."""
    try:
        text = base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise HTTPException(422, "invalid cursor; use the Link header of the previous page")
    parts = text.split("\x1f")
    if len(parts) != count or not all(parts):
        raise HTTPException(422, "invalid cursor; use the Link header of the previous page")
    return parts


def link_next(request: Request, response: Response, **params: Any) -> None:
    """``Link: </path?...>; rel="next"``: this request's query with ``params`` replaced."""
    query = dict(request.query_params)
    for key, value in params.items():
        if value is None:
            query.pop(key, None)
        else:
            query[key] = str(value)
    url = request.url.replace(query="").include_query_params(**query)
    target = url.path + (f"?{url.query}" if url.query else "")
    response.headers["Link"] = f'<{target}>; rel="next"'


# --- devices -----------------------------------------------------------------------------------

_DEVICE_FILTER = (" WHERE (%(m)s::text IS NULL OR municipality = %(m)s)"
                  "   AND (%(k)s::text IS NULL OR kind = %(k)s)")


@router.get(
    "/devices", response_model=list[Device], summary="List devices (paged, filterable)",
    description="Ordered by device id. Page with `limit` and the `cursor` from the "
                "`Link: <...>; rel=\"next\"` header (or with `offset`). `X-Total-Count` is the "
                "number of devices matching the filters.",
    responses={**json_example([EXAMPLE_DEVICE], headers={
        **PAGE_HEADERS, "X-Total-Count": {"description": "devices matching the filters",
                                          "schema": {"type": "integer"}}}), **NOT_MODIFIED})
def list_devices(conn: Conn, request: Request, response: Response,
                 cache: Annotated[CachePolicy, cacheable(DEVICES_MAX_AGE)],
                 municipality: str | None = Query(default=None, examples=["Gelnhausen"]),
                 kind: str | None = Query(default=None, examples=["bin"]),
                 limit: int = Query(default=1000, ge=1, le=10000, examples=[100]),
                 offset: int | None = Query(default=None, ge=0, le=MAX_OFFSET, examples=[0],
                                            description="Skip this many; ignored with a cursor"),
                 cursor: str | None = Query(default=None, examples=["YmluLTAwMg"],
                                            description="From the previous page's Link header"),
                 ) -> Response:
    if cursor:
        offset = None  # the cursor says where the page starts
    after = decode_cursor(cursor, 1)[0] if cursor else None
    params = {"m": municipality, "k": kind, "after": after, "limit": limit + 1,
              "offset": offset or 0}
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {registry._COLUMNS} FROM devices{_DEVICE_FILTER}"
            "   AND (%(after)s::text IS NULL OR device_id > %(after)s)"
            " ORDER BY device_id LIMIT %(limit)s OFFSET %(offset)s", params)
        rows = cur.fetchall()
    total = conn.execute(f"SELECT count(*) FROM devices{_DEVICE_FILTER}", params).fetchone()[0]
    response.headers["X-Total-Count"] = str(total)
    devices = [Device(**row) for row in rows[:limit]]
    if len(rows) > limit:
        if offset is not None:
            link_next(request, response, offset=offset + limit)
        else:
            link_next(request, response, cursor=encode_cursor(devices[-1].device_id))
    return json_response(devices, response)


@router.get("/devices/{device_id}", response_model=Device, summary="One device",
            dependencies=[cacheable(DEVICES_MAX_AGE)],
            responses={**json_example(EXAMPLE_DEVICE, headers=CACHE_HEADERS), **NOT_MODIFIED,
                       404: {"description": "unknown device"}})
def get_device(conn: Conn, device_id: DeviceId) -> Device:
    device = registry.get_device(conn, device_id)
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    return device


@router.put("/devices/{device_id}", response_model=Device, dependencies=[Writer],
            summary="Register or configure a device (needs an API token)")
def configure_device(conn: Conn, service: ServiceDep, device_id: DeviceId,
                     settings: DeviceSettings) -> Device:
    device = registry.configure_device(conn, device_id, settings)
    service.pipeline.invalidate_devices()
    return device


# --- latest values -----------------------------------------------------------------------------

@router.get("/devices/{device_id}/latest", response_model=list[Value],
            summary="The newest value of each metric of one device",
            dependencies=[cacheable(LIVE_MAX_AGE)],
            responses={**json_example(
                [{"metric": "battery_v", "time": "2025-06-03T05:48:40Z", "value": 3.61},
                 {"metric": "fill_level_pct", "time": "2025-06-03T05:48:40Z", "value": 63.5}],
                headers=CACHE_HEADERS), **NOT_MODIFIED, 404: {"description": "unknown device"}})
def latest_of_device(conn: Conn, device_id: DeviceId) -> list[Value]:
    rows = conn.execute(
        "SELECT metric, time, value FROM latest_readings WHERE device_id = %s ORDER BY metric",
        (device_id,)).fetchall()
    if not rows and registry.get_device(conn, device_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no device {device_id}")
    return [Value(metric=m, time=t, value=v) for m, t, v in rows]


# One row's hash: device and metric, seeded with the time's, seeded with the value's.
ROW_HASH = ("hashtextextended({d} || '|' || {m}, hashint8extended("
            "(date_part('epoch', {t}) * 1000000)::int8, hashfloat8extended({v}, 0)))")


@router.get(
    "/latest", response_model=list[DeviceLatest],
    summary="The newest values of all devices in one call",
    description="One entry per device with a value, ordered by device id, its metrics by name. "
                "Poll it with `If-None-Match`: the ETag is a digest of exactly the rows the "
                "answer is made of, computed before the answer is built, so an unchanged "
                "answer costs one small query and a 304.",
    responses={**json_example(DeviceLatest.model_config["json_schema_extra"]["examples"],
                              headers=CACHE_HEADERS), **NOT_MODIFIED})
def latest_of_all(conn: Conn, request: Request,
                  cache: Annotated[CachePolicy, cacheable(LIVE_MAX_AGE)],
                  municipality: str | None = Query(default=None, examples=["Gelnhausen"]),
                  kind: str | None = Query(default=None, examples=["bin"]),
                  ) -> Response:
    params = {"m": municipality, "k": kind}
    source = " FROM latest_readings l JOIN devices d USING (device_id) WHERE true"
    if municipality is not None:
        source += " AND d.municipality = %(m)s"
    if kind is not None:
        source += " AND d.kind = %(k)s"
    # The version stamp: a digest of every (device, metric, time, value) of the answer, so it
    # changes whenever the answer does. (max(time) and count(*) would not: one device's new
    # value is not the newest of all, and a device moving to another municipality changes a
    # filtered answer without any new reading.) Order-independent, so no sort is needed.
    row_hash = ROW_HASH.format(d="l.device_id", m="l.metric", t="l.time", v="l.value")
    digest = conn.execute(f"SELECT count(*), sum({row_hash}){source}", params).fetchone()
    cache.stamp(request, *digest)
    rows = conn.execute(
        f"SELECT l.device_id, l.metric, l.time, l.value{source}"
        " ORDER BY l.device_id, l.metric", params).fetchall()
    # Plain dicts serialised once by pydantic-core: building and re-validating 1,000 models
    # would take longer than the query.
    out: dict[str, dict[str, Any]] = {}
    for device_id, metric, time, value in rows:
        entry = out.get(device_id)
        if entry is None:
            entry = out[device_id] = {"device_id": device_id, "values": []}
        entry["values"].append({"metric": metric, "time": time, "value": value})
    return json_response(list(out.values()))


# --- readings ----------------------------------------------------------------------------------

@router.get(
    "/devices/{device_id}/readings", response_model=list[Value],
    summary="Readings of one device over a time range (default: the last 24 h), paged",
    description="Ordered by time, then metric. When more than `limit` readings are in the "
                "range, the answer has a `Link: <...>; rel=\"next\"` header with a `cursor` "
                "for the rest. A range that ended more than 48 h ago may be cached for an "
                "hour, a recent one for 5 s.",
    responses={**json_example(
        [{"metric": "fill_level_pct", "time": "2025-06-03T05:33:40Z", "value": 61.0},
         {"metric": "fill_level_pct", "time": "2025-06-03T05:48:40Z", "value": 63.5}],
        headers=PAGE_HEADERS), **NOT_MODIFIED})
def readings(conn: Conn, request: Request, response: Response, device_id: DeviceId,
             cache: Annotated[CachePolicy, cacheable(LIVE_MAX_AGE)],
             since: IsoDateTime | None = Query(default=None, examples=["2025-06-03T00:00:00Z"]),
             until: IsoDateTime | None = Query(default=None, examples=["2025-06-04T00:00:00Z"]),
             metric: str | None = Query(default=None, examples=["fill_level_pct"]),
             limit: int = Query(default=10_000, ge=1, le=100_000, examples=[1000]),
             cursor: str | None = Query(default=None,
                                        description="From the previous page's Link header"),
             ) -> Response:
    since, until = time_window(since, until)
    after_time: datetime | None = None
    after_metric = ""
    if cursor:
        time_text, after_metric = decode_cursor(cursor, 2)
        try:
            after_time = datetime.fromisoformat(time_text)
        except ValueError:
            raise HTTPException(422, "invalid cursor; use the Link header of the previous page")
    # Conditions are left out rather than written as "(%s IS NULL OR ...)", so that a prepared
    # statement's generic plan still has the full index range (device_id, metric, time).
    where = "device_id = %(d)s AND time >= %(since)s AND time < %(until)s"
    if metric is not None:
        where += " AND metric = %(metric)s"
    if after_time is not None:
        where += " AND (time, metric) > (%(after)s, %(am)s)"
    rows = conn.execute(
        f"SELECT metric, time, value FROM readings WHERE {where}"
        " ORDER BY time, metric LIMIT %(limit)s",
        {"d": device_id, "since": since, "until": until, "metric": metric,
         "after": after_time, "am": after_metric, "limit": limit + 1},
    ).fetchall()
    cache.max_age = max_age_for(until)
    if len(rows) > limit:
        rows = rows[:limit]
        last_metric, last_time = rows[-1][0], rows[-1][1]
        link_next(request, response, cursor=encode_cursor(last_time.isoformat(), last_metric))
    return json_response([{"metric": m, "time": t, "value": v} for m, t, v in rows], response)
