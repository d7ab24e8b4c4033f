"""Short dependency aliases: a database connection, the service, and access by token role."""
from __future__ import annotations

import datetime as dt
import hmac
import re
import zoneinfo
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Literal

import psycopg
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BeforeValidator, WithJsonSchema

if TYPE_CHECKING:
    from app.config import Settings
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


# --- access: three roles from the settings (docs/web.md) ---------------------------------------
#
#   admin  BAUHOF_API_TOKENS    every write (plan, configure devices, ...) and every read
#   crew   BAUHOF_CREW_TOKENS   mark stops done/undone, acknowledge alerts, and read
#   read   BAUHOF_READ_TOKENS   read only (dashboards)
#
# Reads (GET /api/v1/...) need a token only while read tokens are configured. Tokens stand for
# a role (per vehicle or dashboard if one likes), never for a person: nothing records who.

Role = Literal["read", "crew", "admin"]
_RANK: dict[str, int] = {"read": 1, "crew": 2, "admin": 3}

_bearer = HTTPBearer(auto_error=False,
                     description="A token from BAUHOF_API_TOKENS (admin) or BAUHOF_CREW_TOKENS "
                                 "(crew); reads take BAUHOF_READ_TOKENS too")


def token_role(settings: "Settings", given: str | None) -> Role | None:
    """The highest role a token has, None for no or an unknown token.

    Compares against every configured token in constant time, so timing tells nothing about
    which list (or which characters) nearly matched.
    """
    candidate = (given or "").encode()
    found: Role | None = None
    for role, tokens in (("admin", settings.api_tokens), ("crew", settings.crew_tokens),
                         ("read", settings.read_tokens)):
        for token in tokens:
            if hmac.compare_digest(candidate, token.get_secret_value().encode()):
                if found is None or _RANK[role] > _RANK[found]:
                    found = role  # type: ignore[assignment]
    return found


def _unauthorised() -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, "missing or wrong API token",
                         headers={"WWW-Authenticate": "Bearer"})


def _require(minimum: Role):
    def check(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Role:
        settings = request.app.state.service.settings
        if minimum == "admin" and not settings.api_tokens:
            raise HTTPException(status.HTTP_403_FORBIDDEN, "writes are disabled: no API "
                                "tokens configured (BAUHOF_API_TOKENS)")
        if minimum == "crew" and not (settings.api_tokens or settings.crew_tokens):
            raise HTTPException(status.HTTP_403_FORBIDDEN, "writes are disabled: no crew or "
                                "API tokens configured (BAUHOF_CREW_TOKENS, BAUHOF_API_TOKENS)")
        role = token_role(settings, credentials.credentials if credentials else None)
        if role is None:
            raise _unauthorised()
        if _RANK[role] < _RANK[minimum]:
            raise HTTPException(status.HTTP_403_FORBIDDEN,
                                f"a {role} token may not do this; it needs a {minimum} token")
        return role

    check.__name__ = f"require_{minimum}"
    return check


require_token = _require("admin")   # the writes of the API (historic name)
require_crew = _require("crew")


def require_reader(request: Request) -> None:
    """App-wide: with read tokens configured, GET/HEAD under /api/v1/ need a read, crew or
    admin token; without them reads stay open. Pages, /health and /metrics are never
    affected."""
    settings = request.app.state.service.settings
    if (not settings.read_tokens or request.method not in ("GET", "HEAD")
            or not request.url.path.startswith("/api/v1/")):
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or token_role(settings, given.strip()) is None:
        raise _unauthorised()


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_TIME = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|z|[+-]\d{2}:?\d{2})")
ISO_TIME_PATTERN = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$"


def _iso_date(value: object) -> object:
    if not isinstance(value, dt.date) and not (isinstance(value, str)
                                               and _ISO_DATE.fullmatch(value)):
        raise ValueError("expected a date as YYYY-MM-DD, e.g. 2026-05-04")
    return value


def _iso_time(value: object) -> object:
    if not isinstance(value, dt.datetime) and not (isinstance(value, str)
                                                   and _ISO_TIME.fullmatch(value)):
        raise ValueError("expected an ISO 8601 time with a zone, e.g. 2025-06-03T00:00:00Z")
    return value


# Pydantic reads "0" or 0.5 as seconds since 1970; an API that answers ?date=0 with the plan of
# 1 January 1970 hides the caller's mistake. Only the ISO 8601 forms are accepted.
IsoDate = Annotated[dt.date, BeforeValidator(_iso_date),
                    WithJsonSchema({"type": "string", "format": "date"})]
IsoDateTime = Annotated[dt.datetime, BeforeValidator(_iso_time),
                        WithJsonSchema({"type": "string", "format": "date-time",
                                        "pattern": ISO_TIME_PATTERN})]

# Time zones by their IANA names, as the OpenAPI document lists them: a misspelt zone is a 422
# that names the parameter, and clients can offer the list.
ZoneName = Literal[tuple(sorted({"UTC", "Z", *zoneinfo.available_timezones()}))]  # type: ignore[valid-type]

# PostgreSQL's OFFSET is a bigint; a larger number must be a 422, not a database error.
MAX_OFFSET = 2**31 - 1

Conn = Annotated[psycopg.Connection, Depends(get_conn)]
ServiceDep = Annotated["Service", Depends(get_service)]
Writer = Depends(require_token)     # admin
Crew = Depends(require_crew)        # crew or admin
Reader = Depends(require_reader)    # app-wide, see create_app
