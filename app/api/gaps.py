"""Frame-counter gaps: how many uplinks the radio lost, how many we missed and did not recover."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from app import gaps
from app.api.deps import Conn, IsoDateTime
from app.api.devices import DeviceId

router = APIRouter(prefix="/api/v1", tags=["gaps"])


class GapOut(BaseModel):
    session_key_id: str
    after_f_cnt: int
    before_f_cnt: int
    missing: int
    start: datetime
    end: datetime
    kind: Literal["lost_over_air", "missed"]


class DeviceGaps(BaseModel):
    device_id: str
    lost_over_air: int
    missed: int


class DeviceGapDetail(DeviceGaps):
    gaps: list[GapOut]


def _window(since: datetime | None, until: datetime | None) -> tuple[datetime, datetime]:
    until = until or datetime.now(timezone.utc)
    since = since or until - timedelta(days=7)
    if since.tzinfo is None or until.tzinfo is None:
        raise HTTPException(422, "since and until need a time zone, e.g. 2025-06-03T00:00:00Z")
    return since, until


@router.get("/gaps", response_model=list[DeviceGaps],
            summary="Missing uplinks per device (default: the last 7 days)")
def all_gaps(conn: Conn, since: IsoDateTime | None = None,
             until: IsoDateTime | None = Query(default=None)) -> list[DeviceGaps]:
    found = gaps.gaps(conn, *_window(since, until))
    return [DeviceGaps(device_id=d, **kinds) for d, kinds in sorted(gaps.totals(found).items())]


@router.get("/devices/{device_id}/gaps", response_model=DeviceGapDetail,
            summary="Frame-counter gaps of one device (default: the last 7 days)")
def device_gaps(conn: Conn, device_id: DeviceId, since: IsoDateTime | None = None,
                until: IsoDateTime | None = None) -> DeviceGapDetail:
    found = gaps.gaps(conn, *_window(since, until), device_id=device_id)
    kinds = gaps.totals(found).get(device_id, {gaps.LOST_OVER_AIR: 0, gaps.MISSED: 0})
    return DeviceGapDetail(device_id=device_id, **kinds,
                           gaps=[GapOut(**{k: v for k, v in g.__dict__.items()
                                           if k != "device_id"}) for g in found])
