"""Liveness (the process answers) and readiness (database and broker reachable)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, Field

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


class DemoStatus(BaseModel):
    loading: bool = Field(description="the demo is still loading its history")
    progress_pct: int = Field(ge=0, le=100)
    eta_s: int | None = Field(description="seconds still to go, estimated; null: too early")
    resumed: bool = Field(description="continuing a demo that ran before (catching up the "
                                      "time it was stopped) rather than loading a new week")


@router.get("/api/v1/demo", response_model=DemoStatus, tags=["demo"],
            summary="How far `bauhof demo` has loaded its history (404 when not a demo)",
            responses={404: {"description": "not a demo"}})
def demo_status(service: ServiceDep) -> DemoStatus:
    if service.demo is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not a demo")
    return DemoStatus(**service.demo.as_json())
