"""The FastAPI application around a running ``Service``."""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app import __version__, web
from app.api import (alerts, devices, errors, export, forecasts, gaps, health, ingest, routes,
                     series)
from app.api.caching import ConditionalGetMiddleware, FreezeStartupHeap
from app.api.deps import Reader
from app.sources import webhook

if TYPE_CHECKING:
    from app.service import Service

DESCRIPTION = """
LoRaWAN sensors of a municipal works yard (Bauhof): litter-bin fill levels, weather, soil
moisture. Uplinks arrive from The Things Stack (MQTT or webhook) or ChirpStack, are decoded and
stored once; this API serves devices, their latest values and their readings over time.

Access by bearer token (`Authorization: Bearer <token>`), three roles:
`BAUHOF_API_TOKENS` (admin: every write), `BAUHOF_CREW_TOKENS` (crews: mark route stops done,
acknowledge alerts), `BAUHOF_READ_TOKENS` (dashboards: read only). While read tokens are
configured, every `GET /api/v1/...` needs one of the three; without them reading is open.
The crews' web pages are at `/tagesroute` and `/uebersicht`.
"""


class RefuseLargeBodies:
    """413 for a body announced larger than the limit, before anything reads it.

    Plain ASGI rather than ``@app.middleware("http")``, whose answers arrive in pieces: the gzip
    middleware would then compress even a 20-byte answer.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            length = dict(scope["headers"]).get(b"content-length")
            if length is not None and (not length.isdigit() or int(length) > self.limit):
                answer = JSONResponse({"detail": f"body larger than {self.limit} bytes"}, 413)
                await answer(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(service: "Service", manage_lifecycle: bool = True) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if manage_lifecycle:
            service.start()
        try:
            yield
        finally:
            if manage_lifecycle:
                service.stop()

    app = FastAPI(title="bauhof-sense", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, dependencies=[Reader])
    app.state.service = service

    app.add_middleware(RefuseLargeBodies, limit=service.settings.max_message_bytes)

    # ETag / If-None-Match / Cache-Control for endpoints declaring app.api.caching.cacheable,
    # and for these paths of modules that do not (path -> max-age, seconds).
    app.add_middleware(ConditionalGetMiddleware, paths={"/api/v1/decoders": 3600})
    app.add_middleware(FreezeStartupHeap)  # no 50 ms garbage-collector pauses in requests
    errors.install(app)  # one error shape; statuses and NUL-free strings in the OpenAPI
    # Outermost, so that ETags are computed on the plain body and stay the same for clients
    # with and without gzip. A dashboard polling /latest of 1,000 devices gets ~145 KB as ~15.
    app.add_middleware(GZipMiddleware, minimum_size=1024)

    app.include_router(health.router)
    app.include_router(devices.router)
    app.include_router(series.router)
    app.include_router(export.router)
    app.include_router(gaps.router)
    app.include_router(ingest.router)
    app.include_router(routes.router)
    app.include_router(alerts.router)
    app.include_router(webhook.router)
    app.include_router(forecasts.router)
    app.include_router(web.router)  # / -> /tagesroute, the crews' pages
    web.mount_static(app)
    return app
