"""Dead letters (what we could not store, and why), the decoder list, Prometheus metrics."""
from __future__ import annotations

import base64
from datetime import datetime

import psycopg
from fastapi import APIRouter, Query, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from app.api.deps import Conn, ServiceDep
from decoders import MODELS

router = APIRouter(tags=["ingest"])


class IngestError(BaseModel):
    id: str
    time: datetime
    source: str
    stage: str
    reason: str
    topic: str | None
    device_id: str | None
    raw_base64: str
    raw_size: int
    truncated: bool
    count: int  # how often this message came (retries, redeliveries, backfill runs)
    last_seen: datetime


class Decoder(BaseModel):
    id: str
    name: str
    kind: str
    tts_version_ids: list[dict[str, str]]


@router.get("/api/v1/ingest-errors", response_model=list[IngestError],
            summary="Dead letters, the most recently seen first, readable like every other "
                    "reading (a read, crew or admin token while read tokens are configured). "
                    "One per distinct message: `count` says how often it came, `time` when "
                    "first, `last_seen` when last.")
def ingest_errors(conn: Conn, stage: str | None = None,
                  limit: int = Query(default=100, ge=1, le=1000)) -> list[IngestError]:
    rows = conn.execute(
        "SELECT id::text, time, source, stage, reason, topic, device_id, raw, raw_size, truncated,"
        " count, last_seen FROM ingest_errors WHERE (%(s)s::text IS NULL OR stage = %(s)s)"
        " ORDER BY last_seen DESC, id LIMIT %(limit)s", {"s": stage, "limit": limit}).fetchall()
    return [IngestError(id=r[0], time=r[1], source=r[2], stage=r[3], reason=r[4], topic=r[5],
                        device_id=r[6], raw_base64=base64.b64encode(r[7]).decode(),
                        raw_size=r[8], truncated=r[9], count=r[10], last_seen=r[11])
            for r in rows]


@router.get("/api/v1/decoders", response_model=list[Decoder], summary="Supported device models")
def decoders() -> list[Decoder]:
    return [Decoder(id=m.id, name=m.name, kind=m.kind,
                    tts_version_ids=[{"brand_id": b, "model_id": md} for b, md in m.tts_ids])
            for m in MODELS]


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(service: ServiceDep) -> Response:
    service.metrics.queue_depth.set(service.pipeline.depth)
    try:
        with service.pool.connection(timeout=2) as conn:
            service.gap_metrics.refresh(conn)
    except psycopg.Error:
        pass  # the database is away: the gauges keep their last values, readiness says why
    return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)
