"""One shape for every error the API answers, and an OpenAPI document that says which.

Every 4xx/5xx body is ``{"detail": "<what went wrong, for a person>"}``; a request that fails
validation adds ``"errors"``, FastAPI's list of locations and messages, for a program. The
OpenAPI document lists the statuses an operation can really answer: 401 and 403 where a token
is needed, 400 for a body that is not JSON, 422 for parameters outside their schema.
"""
from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Receive, Scope, Send

# No value we store or look up contains a NUL, and PostgreSQL cannot even compare one.
NO_NUL = "^[^\\u0000]*$"


class ValidationItem(BaseModel):
    loc: list[str | int] = Field(description="where: e.g. [\"query\", \"since\"]")
    msg: str
    type: str


class ErrorBody(BaseModel):
    detail: str = Field(description="what went wrong, in words for a person")
    errors: list[ValidationItem] | None = Field(
        default=None, description="validation errors, one per parameter (422 only)")


def _where(loc: tuple) -> str:
    return ".".join(str(p) for p in loc[1:]) or str(loc[0]) if loc else "request"


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    detail = "; ".join(f"{_where(tuple(e['loc']))}: {e['msg']}" for e in errors) or "invalid"
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


class RefuseNul:
    """A NUL in the address (``%00``) is answered 422 before anything reads it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (b"%00" in scope.get("query_string", b"").lower()
                                        or "\x00" in scope.get("path", "")):
            answer = JSONResponse({"detail": "the address contains a NUL character",
                                   "errors": [{"loc": ["query"], "msg": "NUL character",
                                               "type": "value_error"}]}, status_code=422)
            await answer(scope, receive, send)
            return
        await self.app(scope, receive, send)


class AllowAllMethods:
    """A 405's ``Allow`` lists every method of the path, not only the first route's.

    Starlette answers 405 from the first route whose path matches (``GET /devices/{id}``), so a
    path with GET and PUT said ``Allow: GET`` only.
    """

    def __init__(self, app: ASGIApp, routes_of) -> None:
        self.app = app
        self.routes_of = routes_of

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_allow(message) -> None:
            if message["type"] == "http.response.start" and message["status"] == 405:
                methods: set[str] = set()
                for route in self.routes_of():
                    match, _ = route.matches({**scope, "method": "GET"}) \
                        if hasattr(route, "matches") else (None, None)
                    if match is not None and match.name != "NONE" and getattr(route, "methods", None):
                        methods |= set(route.methods)
                if methods:
                    headers = [(k, v) for k, v in message.get("headers", [])
                               if k.lower() != b"allow"]
                    headers.append((b"allow", ", ".join(sorted(methods - {"HEAD"})).encode()))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_allow)


def _flat(routes):
    """Every route, also those of included routers (FastAPI keeps those behind a wrapper)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _flat(inner.routes)
        else:
            yield route


_ERROR = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}}
_STATUS_TEXT = {
    400: "the body is not valid JSON (or not UTF-8)",
    404: "what the path names does not exist (an unknown device, plan or alert)",
    401: "no token, or an unknown one (`Authorization: Bearer <token>`); reads need one only "
         "while read tokens are configured",
    403: "the token's role may not do this, or this kind of token is not configured",
    422: "a parameter or the body outside its schema",
}


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_middleware(RefuseNul)
    app.add_middleware(AllowAllMethods, routes_of=lambda: list(_flat(app.routes)))

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas["ErrorBody"] = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, schema in schemas["ErrorBody"].pop("$defs", {}).items():
            schemas[name] = schema
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        for path, operations in doc.get("paths", {}).items():
            for method, op in operations.items():
                _complete(path, method, op)
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]


def _complete(path: str, method: str, op: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    wanted: set[int] = set()
    if path.startswith("/api/v1/"):
        wanted.add(401)  # reads need a token while read tokens are configured
        if method != "get":
            wanted |= {400, 403}
        if "{" in path:
            wanted.add(404)  # what the path names may not exist
    for status, entry in responses.items():
        if str(status).startswith(("4", "5")):
            entry["content"] = _ERROR["content"]
    for status in wanted:
        responses.setdefault(str(status), {"description": _STATUS_TEXT[status], **_ERROR})
    if "422" in responses:
        responses["422"]["description"] = responses["422"].get("description") or _STATUS_TEXT[422]
    for parameter in op.get("parameters", []):
        schema = parameter.get("schema", {})
        for variant in schema.get("anyOf", [schema]):
            if variant.get("type") == "string" and "pattern" not in variant \
                    and "enum" not in variant and "format" not in variant:
                variant["pattern"] = NO_NUL
