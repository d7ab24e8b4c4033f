"""Conditional GET for dashboards that poll: ``ETag``, ``If-None-Match``, ``Cache-Control``.

One line makes a GET endpoint cacheable::

    @router.get("/things", dependencies=[cacheable(max_age=5)])

The :class:`ConditionalGetMiddleware` (registered once in ``app.api.app``) then hashes the body
of every 200 answer of that endpoint into a strong ``ETag``, adds
``Cache-Control: private, max-age=N`` and answers ``304 Not Modified`` without a body when the
request's ``If-None-Match`` names that tag. That saves the transfer and the client's parsing,
not our query.

Where a cheap *version stamp* determines the answer exactly, an endpoint can also skip the work
itself: take the policy as a parameter and call :meth:`CachePolicy.stamp` before querying::

    def latest(cache: Annotated[CachePolicy, cacheable(max_age=5)], ...):
        cache.stamp(request, digest_of_the_rows)   # raises the 304 when it matches
        ...                                         # only runs when the client needs the body

An endpoint may change ``cache.max_age`` once it knows the answer (e.g. longer for a closed
historic range). Paths of other modules can be made cacheable without touching them through
the middleware's ``paths`` argument.

The tag of a stamp must change whenever the body would; a stamp that covers less than the body
(say ``max(time)`` and ``count(*)``) would serve stale data as 304 for ever, so stamps here are
digests of everything the body is made of.
"""
from __future__ import annotations

import gc
import hashlib
import re
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATE_KEY = "bauhof_cache"
# Bump when the JSON shape of a stamped answer changes, so that old tags stop matching.
FORMAT_VERSION = "1"

_TAG = re.compile(r'\s*(?:W/)?("[^"]*"|[^,\s]+)\s*(?:,|$)')


@dataclass
class CachePolicy:
    """How long a client may reuse the answer, and its ETag when the endpoint knows it."""

    max_age: int
    etag: str | None = None

    def header_value(self) -> str:
        return f"private, max-age={self.max_age}"

    def headers(self) -> dict[str, str]:
        out = {"Cache-Control": self.header_value()}
        if self.etag:
            out["ETag"] = self.etag
        return out

    def stamp(self, request: Request, *parts: object) -> str:
        """Set the ETag from a version stamp; raise 304 if the client already has it.

        ``parts`` must determine the body exactly (a digest of the rows it is built from, the
        query parameters are added here).
        """
        self.etag = make_etag(FORMAT_VERSION, request.url.path, str(request.query_params),
                              *parts)
        if if_none_match(request.headers.get("if-none-match"), self.etag):
            raise HTTPException(status.HTTP_304_NOT_MODIFIED, headers=self.headers())
        return self.etag


def make_etag(*parts: object) -> str:
    """A strong entity tag from a body (bytes) or from version-stamp parts."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        digest.update(part if isinstance(part, bytes) else repr(part).encode())
        digest.update(b"\x1f")
    return f'"{digest.hexdigest()}"'


def parse_if_none_match(header: str | None) -> list[str]:
    """The entity tags of an ``If-None-Match`` value, ``W/`` stripped; ``["*"]`` for any."""
    if not header:
        return []
    tags = []
    position = 0
    while position < len(header):
        match = _TAG.match(header, position)
        if match is None or match.end() == position:
            break
        tag = match.group(1)
        tags.append(tag if tag.startswith('"') or tag == "*" else f'"{tag}"')
        position = match.end()
    return tags


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether a request with this ``If-None-Match`` gets a 304 for a resource tagged ``etag``.

    RFC 9110 13.1.2: weak comparison (``W/"x"`` matches ``"x"``), a list matches if any member
    does, ``*`` matches any current representation.
    """
    tags = parse_if_none_match(header)
    if not tags:
        return False
    bare = etag[2:] if etag.startswith("W/") else etag
    return "*" in tags or bare in tags


def cacheable(max_age: int = 5):
    """Dependency: the endpoint's 200 answers get an ETag, ``Cache-Control`` and 304s.

    Use ``dependencies=[cacheable(5)]``, or ``cache: Annotated[CachePolicy, cacheable(5)]`` to
    change ``max_age`` or to call :meth:`CachePolicy.stamp`.
    """

    def policy(request: Request) -> CachePolicy:
        found = CachePolicy(max_age)
        setattr(request.state, STATE_KEY, found)
        return found

    return Depends(policy)


class ConditionalGetMiddleware:
    """Adds ETag/Cache-Control to cacheable 200 answers and turns matching ones into 304.

    An answer is cacheable when its endpoint declared :func:`cacheable` or its path is in
    ``paths`` (path -> max-age). Answers that already carry an ``ETag`` (a stamp) are passed
    through as they stream; others are held until their last byte to hash them, so endpoints
    that stream large bodies (CSV) must not be declared cacheable without a stamp.
    """

    def __init__(self, app: ASGIApp, paths: dict[str, int] | None = None) -> None:
        self.app = app
        self.paths = dict(paths or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        inm = None
        for name, value in scope["headers"]:
            if name == b"if-none-match":
                inm = value.decode("latin-1")
                break
        held: Message | None = None
        body: list[bytes] = []
        passing = False

        def policy() -> CachePolicy | None:
            found = state.get(STATE_KEY)
            if found is None and scope["path"] in self.paths:
                found = CachePolicy(self.paths[scope["path"]])
            return found

        async def wrapped_send(message: Message) -> None:
            nonlocal held, passing
            if message["type"] == "http.response.start":
                found = policy()
                if found is None or message["status"] != 200:
                    passing = True
                    await send(message)
                    return
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"cache-control"]
                headers.append((b"cache-control", found.header_value().encode()))
                if found.etag is not None:
                    # Stamped by the endpoint, and already checked against If-None-Match.
                    headers = [(k, v) for k, v in headers if k.lower() != b"etag"]
                    headers.append((b"etag", found.etag.encode()))
                if any(k.lower() == b"etag" for k, _ in headers):
                    passing = True
                    await send({**message, "headers": headers})
                    return
                held = {**message, "headers": headers}
                return
            if message["type"] != "http.response.body" or passing or held is None:
                await send(message)
                return
            body.append(message.get("body", b""))
            if message.get("more_body", False):
                return
            content = b"".join(body)
            etag = make_etag(content)
            headers = list(held["headers"])
            if if_none_match(inm, etag):
                keep = {b"cache-control", b"vary", b"content-location", b"link",
                        b"x-total-count"}
                headers = [(k, v) for k, v in headers if k.lower() in keep]
                headers.append((b"etag", etag.encode()))
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
            headers.append((b"etag", etag.encode()))
            await send({**held, "headers": headers})
            await send({"type": "http.response.body", "body": content})

        await self.app(scope, receive, wrapped_send)


class FreezeStartupHeap:
    """ASGI middleware: once the app has started, ``gc.freeze()`` what exists by then.

    Not about caching, but about what a polling dashboard sees: the process holds about
    100,000 long-lived container objects after start-up (FastAPI, pydantic, the decoders, the
    route solver), and every full collection of the cyclic garbage collector walked all of
    them, 40-60 ms each time, which the request that happened to trigger it waited for (1-2 %
    of requests: the p99 of ``benchmarks/api.py`` was 52-60 ms for ``/latest``, 10 ms with
    this). Frozen objects are left out of collections;
    they are still freed by reference counting, only cycles among them would stay until
    shutdown, when they are unfrozen again.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def wrapped_send(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            elif message["type"] == "lifespan.shutdown.complete":
                gc.unfreeze()
            await send(message)

        await self.app(scope, receive, wrapped_send)
