"""Webhook intakes: TTS webhooks (and ChirpStack's HTTP integration) post the same JSON.

TTS authenticates with a custom header we configure on the webhook; we compare it in constant
time. The answer waits until the message is committed (a few milliseconds normally), so a 2xx
means stored; TTS gives up after 5 s, so we answer 503 after 4 s if the database is away, and
the message, already queued, is still written later (a TTS retry is then a harmless duplicate).
"""
from __future__ import annotations

import asyncio
import hmac
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse

from app.api.deps import ServiceDep
from app.model import Outcome, Result
from app.pipeline import Message

router = APIRouter(prefix="/api/v1/webhooks", tags=["webhooks"])

ANSWER_WITHIN_S = 4.0
SECRET_HEADER = "X-Webhook-Secret"

_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "stored, duplicate, recorded (a device status) or ignored (another "
                         "valid kind of message, counted by kind)"},
    401: {"description": "missing or wrong secret"},
    413: {"description": "body too large"},
    422: {"description": "malformed: dead-lettered with the reason given"},
    503: {"description": "not committed in time or queue full; retry"},
}


def _authorised(request: Request, secret: str) -> bool:
    given = request.headers.get(SECRET_HEADER, "")
    auth = request.headers.get("Authorization", "")
    if not given and auth.lower().startswith("bearer "):
        given = auth[7:]
    return hmac.compare_digest(given.encode(), secret.encode())


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(status.HTTP_413_REQUEST_ENTITY_TOO_LARGE,
                                f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _ingest(request: Request, service, source: str,
                  event: str | None = None) -> JSONResponse:
    secret = service.settings.webhook_secret
    if secret is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "webhooks are disabled: set BAUHOF_WEBHOOK_SECRET")
    if not _authorised(request, secret.get_secret_value()):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"missing or wrong {SECRET_HEADER}")
    body = await _read_body(request, service.settings.max_message_bytes)

    loop = asyncio.get_running_loop()
    answer: asyncio.Future[Result] = loop.create_future()

    def done(result: Result) -> None:  # runs in the writer thread after the commit
        loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result(result))

    if not service.pipeline.submit(Message(raw=body, source=source, done=done, event=event),
                                   timeout=0.5):
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "ingest queue full; retry")
    try:
        result = await asyncio.wait_for(answer, ANSWER_WITHIN_S)
    except asyncio.TimeoutError:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "not committed in time (database unavailable); queued") from None
    code = 422 if result.outcome is Outcome.DEAD_LETTER else 200
    return JSONResponse({"result": result.outcome.value, "device_id": result.device_id,
                         "readings": result.readings, "reason": result.reason}, code)


@router.post("/tts", responses=_RESPONSES,
             summary=f"TTS webhook (uplink messages); secret in header {SECRET_HEADER}")
async def tts_webhook(request: Request, service: ServiceDep) -> JSONResponse:
    return await _ingest(request, service, "tts-webhook")


@router.post("/chirpstack", responses=_RESPONSES,
             summary="ChirpStack HTTP integration: ?event=up stores the uplink; the other "
                     "event types are answered 200 and counted by kind")
async def chirpstack_webhook(request: Request, service: ServiceDep,
                             event: str = Query(default="up", max_length=64,
                                                examples=["up", "status"])) -> JSONResponse:
    return await _ingest(request, service, "chirpstack-webhook", event)
