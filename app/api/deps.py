"""Short dependency aliases: a database connection, the service, an authorised writer."""
from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

if TYPE_CHECKING:
    from app.service import Service


def get_service(request: Request) -> "Service":
    return request.app.state.service


def get_conn(request: Request) -> Iterator[psycopg.Connection]:
    service: Service = request.app.state.service
    try:
        with service.pool.connection(timeout=5) as conn:
            yield conn
    except psycopg.OperationalError as err:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "database unavailable") from err


_bearer = HTTPBearer(auto_error=False, description="An API token from BAUHOF_API_TOKENS")


def require_token(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    tokens = request.app.state.service.settings.api_tokens
    if not tokens:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            "writes are disabled: no API tokens configured (BAUHOF_API_TOKENS)")
    given = credentials.credentials.encode() if credentials else b""
    # Compare against every token, in constant time, so timing tells nothing.
    matches = [hmac.compare_digest(given, t.get_secret_value().encode()) for t in tokens]
    if not any(matches):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong API token",
                            headers={"WWW-Authenticate": "Bearer"})


Conn = Annotated[psycopg.Connection, Depends(get_conn)]
ServiceDep = Annotated["Service", Depends(get_service)]
Writer = Depends(require_token)
