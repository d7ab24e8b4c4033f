"""Liveness (the process answers) and readiness (database and broker reachable)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response, status
from pydantic import BaseModel

from app.api.deps import ServiceDep

router = APIRouter(tags=["health"])


class Readiness(BaseModel):
    status: Literal["ready", "degraded"]
    database: Literal["ok", "unavailable"]
    mqtt: Literal["connected", "disconnected", "disabled"]
    queue_depth: int
    queue_max: int


@router.get("/health/live", summary="The process is up")
def live() -> dict[str, str]:
    return {"status": "alive"}


@router.get("/health/ready", response_model=Readiness, summary="Database and broker reachable",
            responses={503: {"model": Readiness, "description": "degraded"}})
def ready(service: ServiceDep, response: Response) -> Readiness:
    mqtt = "disabled" if not service.mqtts else (
        "connected" if service.mqtt_connected else "disconnected")
    database = "ok" if service.pipeline.database_ok else "unavailable"
    degraded = database != "ok" or mqtt == "disconnected"
    if degraded:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(status="degraded" if degraded else "ready", database=database, mqtt=mqtt,
                     queue_depth=service.pipeline.depth,
                     queue_max=service.settings.queue_max)
