"""The Things Stack's Storage Integration, emulated: everything the simulator sent, over HTTP.

``UplinkArchive`` keeps every ``ApplicationUp`` the simulator handed to "TTS" (optionally in a
JSONL file); ``create_storage_app`` / ``StorageServer`` answer the Storage Integration's HTTP API
over it, so that the service's backfill can be built and tested without a TTS Cloud account.

What TTS does (and so this emulation), with sources
---------------------------------------------------
Sources: tts-src = github.com/TheThingsNetwork/lorawan-stack:
``api/ttn/lorawan/v3/applicationserver_integrations_storage.proto`` (request fields, validation
rules, HTTP bindings), ``pkg/rpcserver/rpcserver.go`` (grpc-gateway marshalers and header
matchers), ``pkg/jsonpb`` (``TTNEventStream``), ``pkg/auth/rights/require.go``,
``pkg/rpcmetadata``, ``pkg/identityserver/entity_access.go``, ``pkg/auth/auth.go``,
``pkg/errors/validation.go``, ``cmd/ttn-lw-cli/commands/storage.go`` (``--last`` flags, the
``x-continuation-token`` header); the Storage Integration's own code (package
``pkg/applicationserver/io/packages/storage``, a 2020 copy with its PostgreSQL provider and tests);
tts-docs ``integrations/storage/retrieve`` and the API error page; grpc-gateway v2's generated
handler template and ``runtime`` (query parameters, stream forwarding).

* Endpoints (``ApplicationUpStorage`` service, grpc-gateway bindings):
  ``GET /api/v3/as/applications/{application_id}/packages/storage/{type}`` and
  ``GET /api/v3/as/applications/{application_id}/devices/{device_id}/packages/storage/{type}``
  (``GetStoredApplicationUp``, a server stream), plus the same paths with ``/count``
  (``GetStoredApplicationUpCount``, unary: ``{"count": {"<device_id>": n, ...}}``; devices with
  no messages are absent and an empty map is left out, giving ``{}``).
* ``type`` (path) must be one of uplink_message, uplink_normalized, join_accept, downlink_ack,
  downlink_nack, downlink_sent, downlink_failed, downlink_queued, downlink_queue_invalidated,
  location_solved, service_data (count: without uplink_normalized); anything else is a 400
  validation error. Types the simulator never stores simply give an empty result.
* Query parameters (grpc-gateway accepts the proto name and the JSON name, e.g. ``f_port`` and
  ``fPort``; unknown parameters are ignored):
  ``limit`` (uint32); ``after`` / ``before`` (RFC 3339 as Go's ``time.RFC3339Nano`` parses it:
  ``T`` and ``Z`` or an offset required, up to 9 fractional digits); ``f_port`` (uint32; only
  messages on that port, so only uplinks); ``order`` (``received_at``, ``-received_at`` or empty;
  anything else is a 400 validation error); ``last`` (a Go duration such as ``3h`` or ``90m``,
  meaning ``after = now - last``); ``field_mask`` (comma-separated paths such as
  ``end_device_ids.device_id,up.uplink_message.f_port``; paths into the message carry the
  ``up.`` prefix of the proto's oneof); ``continuation_token``. A value that does not parse
  is a 400 from grpc-gateway itself: ``{"code": 3, "message": "parsing field ...", "details": []}``.
* The time filtered and sorted on is the **top-level** ``received_at`` of the ``ApplicationUp``
  (the Application Server's reception time), not ``uplink_message.received_at``. The provider's
  SQL has a quirk kept here: ``after`` alone is exclusive (``>``), ``before`` alone is exclusive
  (``<``), but both together become ``BETWEEN after AND before``, inclusive at both ends.
* Without ``order`` the SQL has no ORDER BY, so rows come in storage order, roughly the order in
  which TTS stored them, which for late messages is not time order. The emulation returns them in
  the order they were added to the archive. A client that needs time order must ask for it.
* The body is grpc-gateway's stream encoding: one ``{"result": <ApplicationUp>}`` object per
  message. With ``Accept: text/event-stream`` (the exact header value) the Content-Type is
  ``text/event-stream`` and every object is followed by ``\\n\\n`` (TTS's ``TTNEventStream``
  marshaler; no ``data:`` prefixes, it is not real SSE); with any other Accept it is
  ``application/json`` and every object is followed by ``\\n``. Read it as lines and skip empty
  ones. An empty result is ``200`` with an empty body and no Content-Type.
* Errors before the first message are TTS errors, ``{"code": <gRPC code>, "message":
  "error:<namespace>:<name> (<text>)", "details": [{"@type":
  "type.googleapis.com/ttn.lorawan.v3.ErrorDetails", "namespace", "name", "message_format",
  "attributes", "correlation_id", "code"}]}``, with the HTTP status of the gRPC code. In the
  order TTS checks:
  - grpc-gateway parsing (above) and request validation: 400, e.g.
    ``error:pkg/errors:validation (invalid `type`: value must be in list [...])``, also for
    malformed application or device IDs and forbidden field-mask paths;
  - no ``Authorization`` header (or no value after the scheme): 401, code 16,
    ``error:pkg/rpcmetadata:unauthenticated``; a scheme other than Bearer: 401
    ``unsupported_authorization``; a token that is not ``<type>.<id>.<secret>``: 400
    ``error:pkg/auth:token (invalid token)``; an unknown API key: 401 ``api_key_not_found``
    (known ID, wrong secret: 401 ``invalid_authorization``);
  - a valid key of another application (a TTS API key belongs to one application) or for an
    application that does not exist: 403, code 7,
    ``error:pkg/auth/rights:no_application_rights (no rights for application `app@tenant`)``.
    TTS never answers 404 for an unknown application. Unknown routes are grpc-gateway's 404
    ``{"code": 5, "message": "Not Found", "details": []}``.
  The emulation assumes every configured key holds ``RIGHT_APPLICATION_TRAFFIC_READ``.
* Pagination: TTS puts a continuation token into the gRPC response header
  ``x-continuation-token`` (the CLI reads it there). The HTTP gateway's outgoing header matcher
  in lorawan-stack forwards only a fixed list of headers, and this one is not on it, so an HTTP
  client cannot see it: page with ``order=received_at`` and ``after=<last received_at>``.
  Because ``after`` is exclusive and timestamps have nanoseconds, equal timestamps at a page
  boundary are possible in principle; overlap a little and deduplicate.

Where the emulation simplifies or could not verify
--------------------------------------------------
* The Storage Integration is closed source; the filter and order semantics above come from a
  2020 copy of its PostgreSQL provider and may have changed since. Whether the server (not only
  the CLI) rejects ``last`` together with ``after``/``before`` is not documented; the emulation
  rejects it with a 400 validation error, the stricter choice for a client.
* Continuation tokens are not emulated: a ``continuation_token`` parameter is answered with a
  400 (nobody can hold one over HTTP, see above).
* With grpc-go before 1.58 (2023), errors of a server stream reached HTTP clients wrapped as
  ``{"error": {...}}`` + delimiter; current stacks send the bare error object emulated here. A
  robust client accepts both. Empty results are emulated as 200 with an empty body; an old or
  unusual gateway might differ.
* Messages are never deleted (TTS Cloud keeps 30 days, TTN Sandbox 24 h), writes are visible at
  once (TTS batches its writes, so real results lag a few seconds), there are no rate limits, no
  tenants beyond the one named in error messages, and no ``Grpc-Metadata-*`` headers.
* ``field_mask`` keeps only the named paths (with ``up.`` stripped); TTS checks paths against a
  fixed allow-list, the emulation only checks the first segment.

Efficiency: each message is kept once as compact JSON bytes (about 1.3 kB; a 12-week season of
~400 devices, ~1 M messages, needs ~1.5 GB), indexed per application and per device by a list
sorted on received_at (bisect), so a time window is found without scanning; order, f_port and
type filters then look only at that window.
"""
from __future__ import annotations

import bisect
import calendar
import contextlib
import json
import logging
import os
import re
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NamedTuple

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

API_PREFIX = "/api/v3"
STORED_TYPES = ("uplink_message", "uplink_normalized", "join_accept", "downlink_ack",
                "downlink_nack", "downlink_sent", "downlink_failed", "downlink_queued",
                "downlink_queue_invalidated", "location_solved", "service_data")
COUNT_TYPES = tuple(t for t in STORED_TYPES if t != "uplink_normalized")
ORDERS = ("", "-received_at", "received_at")
EVENT_STREAM = "text/event-stream"
JSON_TYPE = "application/json"

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NS = 1_000_000_000
_ID = re.compile(r"^[a-z0-9](?:[-]?[a-z0-9]){2,}$")  # TTS identifier rule, at most 36 chars
_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
                      r"(Z|[+-]\d{2}:\d{2})$")
_GO_DURATION_PART = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
_GO_UNIT_NS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": _NS,
               "m": 60 * _NS, "h": 3600 * _NS}
# Base32 of "key", "acc", "ref", "aut": the first part of TTS tokens (pkg/auth).
_API_KEY_PREFIX = "NNSXS"
_OTHER_TOKEN_PREFIXES = ("MFRWG", "OJSWM", "MF2XI")
_HTTP_STATUS = {3: 400, 5: 404, 7: 403, 12: 405, 13: 500, 16: 401}


# --- time --------------------------------------------------------------------------------------

def to_ns(when: datetime) -> int:
    """Nanoseconds since the epoch of an aware datetime (exact, no float)."""
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()}: give a timezone")
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * _NS + delta.microseconds * 1000


def parse_rfc3339_ns(text: str) -> int:
    """RFC 3339 with up to nine fractional digits, as Go's ``time.RFC3339Nano`` parses it."""
    match = _RFC3339.match(text)
    if not match:
        raise ValueError(f"not an RFC 3339 timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    datetime(year, month, day, hour, minute, second)  # rejects month 13, Feb 30 ...
    fraction, zone = match[7] or "", match[8]
    offset = 0
    if zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        offset = sign * (int(zone[1:3]) * 3600 + int(zone[4:6]) * 60)
    seconds = calendar.timegm((year, month, day, hour, minute, second)) - offset
    return seconds * _NS + int(fraction.ljust(9, "0"))


def parse_go_duration_ns(text: str) -> int:
    """A Go ``time.ParseDuration`` string ("3h", "1h30m", "90s", "-2m") in nanoseconds."""
    body, sign = text, 1
    if body and body[0] in "+-":
        sign, body = (-1 if body[0] == "-" else 1), body[1:]
    if body == "0":
        return 0
    total, position = Decimal(0), 0
    while position < len(body):
        part = _GO_DURATION_PART.match(body, position)
        if not part:
            raise ValueError(f"time: invalid duration {text!r}")
        try:
            total += Decimal(part[1]) * _GO_UNIT_NS[part[2]]
        except InvalidOperation as err:
            raise ValueError(f"time: invalid duration {text!r}") from err
        position = part.end()
    if not body:
        raise ValueError(f"time: invalid duration {text!r}")
    return sign * int(total)


# --- the archive -------------------------------------------------------------------------------

class _Entry(NamedTuple):
    seq: int  # order of arrival: TTS returns rows in storage order without ``order``
    up_type: str
    device_id: str
    f_port: int  # 0 when absent, as TTS stores it
    raw: bytes  # the ApplicationUp as compact JSON


@dataclass
class _Series:
    """Messages sorted by received_at (ties in arrival order)."""
    times: list[int] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)

    def insert(self, time_ns: int, entry: _Entry) -> None:
        # Nearly always an append: messages arrive roughly in time order.
        index = bisect.bisect_right(self.times, time_ns)
        self.times.insert(index, time_ns)
        self.entries.insert(index, entry)

    def window(self, after_ns: int | None, before_ns: int | None) -> tuple[int, int]:
        # The provider's SQL: BETWEEN (inclusive) with both bounds, strict with one.
        both = after_ns is not None and before_ns is not None
        lo, hi = 0, len(self.times)
        if after_ns is not None:
            lo = (bisect.bisect_left if both else bisect.bisect_right)(self.times, after_ns)
        if before_ns is not None:
            hi = (bisect.bisect_right if both else bisect.bisect_left)(self.times, before_ns)
        return lo, max(lo, hi)


@dataclass(frozen=True)
class StoredQuery:
    """One Storage Integration query, times in nanoseconds; ``last`` already resolved."""
    application_id: str
    device_id: str | None = None
    up_type: str | None = None  # None: every type (gRPC's empty type)
    after_ns: int | None = None
    before_ns: int | None = None
    f_port: int | None = None
    order: str = ""
    limit: int | None = None


def _message_type(doc: Mapping[str, Any]) -> str:
    for name in STORED_TYPES:
        if name in doc:
            return name
    raise ValueError("not an ApplicationUp: none of " + ", ".join(STORED_TYPES))


def _index_fields(doc: Mapping[str, Any]) -> tuple[str, str, int, str, int]:
    """(application_id, device_id, received_at ns, type, f_port) of an ApplicationUp."""
    try:
        ids = doc["end_device_ids"]
        application_id = ids["application_ids"]["application_id"]
        device_id = ids["device_id"]
    except (KeyError, TypeError) as err:
        raise ValueError("ApplicationUp without end_device_ids.device_id and "
                         "end_device_ids.application_ids.application_id") from err
    up_type = _message_type(doc)
    body = doc[up_type] if isinstance(doc[up_type], Mapping) else {}
    received_at = doc.get("received_at") or body.get("received_at")
    if not isinstance(received_at, str):
        raise ValueError(f"ApplicationUp of {device_id} without received_at")
    f_port = body.get("f_port", 0) if up_type == "uplink_message" else 0
    return application_id, device_id, parse_rfc3339_ns(received_at), up_type, int(f_port)


def _encode(doc: Mapping[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class UplinkArchive:
    """Thread-safe store of ApplicationUp JSON documents (dicts) as the simulator sent them.

    With a ``path`` every document is appended to that JSONL file as it is added, and the file's
    documents are loaded on creation; a line cut off by a crash at the end is dropped.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._lock = threading.Lock()
        self._by_app: dict[str, _Series] = {}
        self._by_device: dict[tuple[str, str], _Series] = {}
        self._count = 0
        self._path = Path(path) if path is not None else None
        self._file = None
        if self._path is not None:
            if self._path.exists():
                self._load(self._path)
            else:
                self._path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self._path, "ab")  # noqa: SIM115 - kept open for appends

    def _load(self, path: Path) -> None:
        data = path.read_bytes()
        complete = data.rfind(b"\n") + 1
        if complete < len(data):
            tail = data[complete:]
            try:
                json.loads(tail)
            except ValueError:
                # A write cut off by a crash; appending after it would glue two documents.
                log.warning("%s: dropping an incomplete last line (%d bytes)", path, len(tail))
                os.truncate(path, complete)
                data = data[:complete]
            else:
                with open(path, "ab") as fix:
                    fix.write(b"\n")
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                doc = json.loads(line)
                self._insert(_index_fields(doc), _encode(doc))
            except ValueError as err:
                raise ValueError(f"{path}:{number}: {err}") from err

    def _insert(self, fields: tuple[str, str, int, str, int], raw: bytes) -> None:
        application_id, device_id, time_ns, up_type, f_port = fields
        entry = _Entry(self._count, up_type, device_id, f_port, raw)
        self._by_app.setdefault(application_id, _Series()).insert(time_ns, entry)
        self._by_device.setdefault((application_id, device_id), _Series()).insert(time_ns, entry)
        self._count += 1

    def add(self, doc: dict) -> None:
        """Store one ApplicationUp (end_device_ids, received_at, uplink_message, ...)."""
        fields = _index_fields(doc)
        raw = _encode(doc)
        with self._lock:
            if self._file is not None:
                self._file.write(raw + b"\n")
                self._file.flush()
            self._insert(fields, raw)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def __len__(self) -> int:
        return self._count

    # -- queries --

    def select(self, query: StoredQuery) -> list[_Entry]:
        """The entries TTS would return, in the order it would return them."""
        if query.limit is not None and query.limit < 0:
            raise ValueError("limit must not be negative")
        if query.order not in ORDERS:
            raise ValueError(f"order must be one of {ORDERS}, not {query.order!r}")
        with self._lock:
            series = (self._by_device.get((query.application_id, query.device_id))
                      if query.device_id is not None else self._by_app.get(query.application_id))
            if series is None:
                return []
            lo, hi = series.window(query.after_ns, query.before_ns)
            if query.order == "received_at":
                candidates: Iterable[_Entry] = (series.entries[i] for i in range(lo, hi))
            elif query.order == "-received_at":
                candidates = (series.entries[i] for i in range(hi - 1, lo - 1, -1))
            else:
                candidates = sorted(series.entries[lo:hi], key=lambda e: e.seq)
            return _take(candidates, query)

    def _query(self, application_id: str, device_id: str | None, after: datetime | None,
               before: datetime | None, limit: int | None, f_port: int | None,
               order: str | None, last: timedelta | None, now: datetime | None,
               up_type: str | None) -> StoredQuery:
        if last is not None:
            if after is not None or before is not None:
                raise ValueError("last cannot be used together with after or before")
            after = (now or datetime.now(timezone.utc)) - last
        return StoredQuery(application_id, device_id, up_type,
                           to_ns(after) if after is not None else None,
                           to_ns(before) if before is not None else None,
                           f_port, order or "", limit)

    def query(self, application_id: str, *, device_id: str | None = None,
              after: datetime | None = None, before: datetime | None = None,
              limit: int | None = None, f_port: int | None = None, order: str | None = None,
              last: timedelta | None = None, now: datetime | None = None,
              up_type: str | None = None) -> list[dict]:
        """Stored messages as TTS filters them (module docstring): ``after``/``before`` on the
        top-level received_at, exclusive alone and inclusive together; ``order`` None keeps
        arrival order; ``last`` counts back from ``now`` (default: the wall clock)."""
        q = self._query(application_id, device_id, after, before, limit, f_port, order, last,
                        now, up_type)
        return [json.loads(entry.raw) for entry in self.select(q)]

    def count(self, application_id: str, *, device_id: str | None = None,
              after: datetime | None = None, before: datetime | None = None,
              limit: int | None = None, f_port: int | None = None, order: str | None = None,
              last: timedelta | None = None, now: datetime | None = None,
              up_type: str | None = None) -> int:
        """How many messages ``query`` finds with the same filters; like TTS's count RPC it
        knows no limit or order, so those two are accepted and ignored."""
        q = self._query(application_id, device_id, after, before, None, f_port, None, last,
                        now, up_type)
        return len(self.select(q))


def _take(candidates: Iterable[_Entry], query: StoredQuery) -> list[_Entry]:
    found: list[_Entry] = []
    if query.limit == 0:
        return found  # gorm's LIMIT 0
    for entry in candidates:
        if query.up_type is not None and entry.up_type != query.up_type:
            continue
        if query.f_port is not None and entry.f_port != query.f_port:
            continue
        found.append(entry)
        if query.limit is not None and len(found) >= query.limit:
            break
    return found


# --- errors as TTS renders them ----------------------------------------------------------------

class StorageError(Exception):
    """An error answered the way TTS's HTTP gateway answers it."""

    def __init__(self, code: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message", ""))
        self.code = code
        self.body = body

    @property
    def status(self) -> int:
        return _HTTP_STATUS.get(self.code, 500)


def tts_error(code: int, namespace: str, name: str, message_format: str,
              attributes: Mapping[str, Any] | None = None) -> StorageError:
    """A lorawan-stack ``errors.Definition`` instance rendered as JSON."""
    attributes = dict(attributes or {})
    text = message_format
    for key, value in attributes.items():
        text = text.replace("{" + key + "}", str(value))
    details: dict[str, Any] = {"@type": "type.googleapis.com/ttn.lorawan.v3.ErrorDetails",
                               "namespace": namespace, "name": name,
                               "message_format": message_format}
    if attributes:
        details["attributes"] = attributes
    details["correlation_id"] = secrets.token_hex(16)
    details["code"] = code
    return StorageError(code, {"code": code, "message": f"error:{namespace}:{name} ({text})",
                               "details": [details]})


def gateway_error(code: int, message: str) -> StorageError:
    """An error grpc-gateway makes itself (no TTS details)."""
    return StorageError(code, {"code": code, "message": message, "details": []})


def _validation(field_name: str, reason: str) -> StorageError:
    return tts_error(3, "pkg/errors", "validation", "invalid `{field}`: {reason}",
                     {"field": field_name, "reason": reason,
                      "name": "GetStoredApplicationUpRequest"})


def _in_list(values: Iterable[str]) -> str:
    return "value must be in list [" + " ".join(values) + "]"


# --- the HTTP request --------------------------------------------------------------------------

@dataclass(frozen=True)
class _Params:
    limit: int | None = None
    after_ns: int | None = None
    before_ns: int | None = None
    f_port: int | None = None
    order: str = ""
    last_ns: int | None = None
    field_mask: tuple[str, ...] = ()
    continuation_token: str = ""


def _first(request: Request, *names: str) -> str | None:
    for name in names:
        value = request.query_params.get(name)
        if value is not None:
            return value
    return None


def _uint32(request: Request, name: str, alias: str) -> int | None:
    text = _first(request, name, alias)
    if text is None:
        return None
    if not text.isdigit() or int(text) > 0xFFFFFFFF:
        raise gateway_error(3, f'parsing field "{name}": strconv.ParseUint: parsing '
                               f'{json.dumps(text)}: invalid syntax')
    return int(text)


def _timestamp(request: Request, name: str) -> int | None:
    text = _first(request, name)
    if text is None:
        return None
    try:
        return parse_rfc3339_ns(text)
    except ValueError:
        raise gateway_error(3, f'parsing field "{name}": parsing time {json.dumps(text)} as '
                               '"2006-01-02T15:04:05.999999999Z07:00": cannot parse') from None


def _parse_params(request: Request) -> _Params:
    """Query parameters as grpc-gateway populates the request message."""
    last_ns = None
    last = _first(request, "last")
    if last is not None:
        try:
            last_ns = parse_go_duration_ns(last)
        except ValueError as err:
            raise gateway_error(3, f'parsing field "last": {err}') from None
    mask = _first(request, "field_mask", "fieldMask")
    paths = [p for p in (mask or "").split(",") if p]
    paths += request.query_params.getlist("field_mask.paths")
    return _Params(limit=_uint32(request, "limit", "limit"),
                   after_ns=_timestamp(request, "after"), before_ns=_timestamp(request, "before"),
                   f_port=_uint32(request, "f_port", "fPort"),
                   order=_first(request, "order") or "", last_ns=last_ns,
                   field_mask=tuple(paths),
                   continuation_token=_first(request, "continuation_token",
                                             "continuationToken") or "")


def _validate_ids(application_id: str, device_id: str | None) -> None:
    prefix = "application_ids" if device_id is None else "end_device_ids.application_ids"
    checks = [(f"{prefix}.application_id", application_id)]
    if device_id is not None:
        checks.append(("end_device_ids.device_id", device_id))
    for name, value in checks:
        if len(value) > 36:
            raise _validation(name, "value length must be at most 36 runes")
        if not _ID.match(value):
            raise _validation(name, f"value does not match regex pattern {json.dumps(_ID.pattern)}")


def _validate_field_mask(paths: Iterable[str]) -> None:
    forbidden = []
    for path in paths:
        head, _, rest = path.partition(".")
        if head == "up":
            if rest.partition(".")[0] not in STORED_TYPES:
                forbidden.append(path)
        elif head not in ("end_device_ids", "correlation_ids", "received_at"):
            forbidden.append(path)
    if forbidden:
        raise tts_error(3, "pkg/rpcmiddleware/validator", "field_mask_paths",
                        "forbidden path(s) in field mask", {"forbidden_paths": forbidden})


def _authorize(header: str | None, application_id: str, api_keys: Mapping[str, str],
               tenant_id: str) -> None:
    """TTS's checks: rpcmetadata, then the Identity Server's token lookup, then the rights."""
    auth_type, _, value = (header or "").partition(" ")
    if not auth_type or not value:
        raise tts_error(16, "pkg/rpcmetadata", "unauthenticated",
                        "the context is not authenticated")
    if auth_type.lower() != "bearer":
        raise tts_error(16, "pkg/identityserver", "unsupported_authorization",
                        "unsupported authorization method")
    owner = api_keys.get(value)
    if owner is None:
        parts = value.split(".")
        if len(parts) != 3 or parts[0] not in (_API_KEY_PREFIX, *_OTHER_TOKEN_PREFIXES):
            raise tts_error(3, "pkg/auth", "token", "invalid token")
        if parts[0] != _API_KEY_PREFIX:
            raise tts_error(16, "pkg/identityserver", "token_not_found", "token not found")
        if any(key.split(".")[1:2] == parts[1:2] for key in api_keys):
            raise tts_error(16, "pkg/identityserver", "invalid_authorization",
                            "invalid authorization")
        raise tts_error(16, "pkg/identityserver", "api_key_not_found", "API key not found")
    if owner != application_id:
        uid = f"{application_id}@{tenant_id}" if tenant_id else application_id
        raise tts_error(7, "pkg/auth/rights", "no_application_rights",
                        "no rights for application `{uid}`", {"uid": uid})


def _mask(raw: bytes, paths: tuple[str, ...]) -> bytes:
    doc = json.loads(raw)
    kept: dict[str, Any] = {}
    for path in paths:
        keys = path.split(".")
        if keys[0] == "up":
            keys = keys[1:]
        source, target = doc, kept
        for depth, key in enumerate(keys):
            if not isinstance(source, dict) or key not in source:
                break
            if depth == len(keys) - 1:
                target[key] = source[key]
            else:
                target = target.setdefault(key, {})
                source = source[key]
    return _encode(kept)


def _results(entries: list[_Entry], delimiter: bytes, paths: tuple[str, ...],
             batch: int = 256) -> Iterator[bytes]:
    for start in range(0, len(entries), batch):
        yield b"".join(b'{"result":' + (_mask(e.raw, paths) if paths else e.raw) + b"}"
                       + delimiter for e in entries[start:start + batch])


def _outbound(request: Request) -> tuple[str, bytes]:
    # grpc-gateway picks the marshaler by the exact Accept value; "*/*" gets TTS's JSON one.
    if any(value.strip() == EVENT_STREAM for value in request.headers.getlist("accept")):
        return EVENT_STREAM, b"\n\n"
    return JSON_TYPE, b"\n"


def _error_response(err: StorageError, content_type: str) -> Response:
    return Response(json.dumps(err.body, separators=(",", ":")), status_code=err.status,
                    headers={"content-type": content_type})


def create_storage_app(archive: UplinkArchive, api_keys: Mapping[str, str], *,
                       tenant_id: str = "ttn",
                       clock: Callable[[], datetime] | None = None) -> FastAPI:
    """The Storage Integration's HTTP API over ``archive``.

    ``api_keys`` maps an API key to the one application it may read. ``tenant_id`` only shows in
    error messages (``app@ttn`` on TTS Cloud). ``clock`` is "now" for ``last`` (default: the
    wall clock; pass the simulation's clock when simulated time runs ahead)."""
    now = clock or (lambda: datetime.now(timezone.utc))
    app = FastAPI(title="The Things Stack Storage Integration (emulated)", docs_url=None,
                  redoc_url=None, openapi_url=None)

    def prepare(request: Request, application_id: str, device_id: str | None, up_type: str,
                types: tuple[str, ...], counting: bool) -> tuple[StoredQuery, _Params]:
        params = _parse_params(request)
        _validate_ids(application_id, device_id)
        if up_type not in types:
            raise _validation("type", _in_list(types))
        if not counting:
            if params.order not in ORDERS:
                raise _validation("order", _in_list(ORDERS))
            if len(params.continuation_token) > 16000:
                raise _validation("continuation_token", "value length must be at most 16000 runes")
            _validate_field_mask(params.field_mask)
        _authorize(request.headers.get("authorization"), application_id, api_keys, tenant_id)
        after_ns = params.after_ns
        if params.last_ns is not None:
            if params.after_ns is not None or params.before_ns is not None:
                raise _validation("last", "cannot be used together with `after` or `before`")
            after_ns = to_ns(now()) - params.last_ns
        if params.continuation_token and not counting:
            raise gateway_error(3, "continuation tokens are not emulated: TTS does not expose "
                                   "them over HTTP; page with order=received_at and after=")
        query = StoredQuery(application_id, device_id, up_type, after_ns, params.before_ns,
                            params.f_port, "" if counting else params.order,
                            None if counting else params.limit)
        return query, params

    def stream(request: Request, application_id: str, device_id: str | None,
               up_type: str) -> Response:
        content_type, delimiter = _outbound(request)
        try:
            query, params = prepare(request, application_id, device_id, up_type, STORED_TYPES,
                                    counting=False)
        except StorageError as err:
            return _error_response(err, content_type)
        entries = archive.select(query)
        if not entries:
            return Response(status_code=200)  # grpc-gateway writes nothing, not even a type
        return StreamingResponse(_results(entries, delimiter, params.field_mask),
                                 headers={"content-type": content_type})

    def count(request: Request, application_id: str, device_id: str | None,
              up_type: str) -> Response:
        content_type, _ = _outbound(request)
        try:
            query, _ = prepare(request, application_id, device_id, up_type, COUNT_TYPES,
                               counting=True)
        except StorageError as err:
            return _error_response(err, content_type)
        per_device = Counter(entry.device_id for entry in archive.select(query))
        body = {"count": dict(sorted(per_device.items()))} if per_device else {}
        return Response(json.dumps(body, separators=(",", ":")),
                        headers={"content-type": content_type})

    base = f"{API_PREFIX}/as/applications/{{application_id}}"

    @app.get(base + "/packages/storage/{up_type}")
    def application_ups(request: Request, application_id: str, up_type: str) -> Response:
        return stream(request, application_id, None, up_type)

    @app.get(base + "/devices/{device_id}/packages/storage/{up_type}")
    def device_ups(request: Request, application_id: str, device_id: str,
                   up_type: str) -> Response:
        return stream(request, application_id, device_id, up_type)

    @app.get(base + "/packages/storage/{up_type}/count")
    def application_count(request: Request, application_id: str, up_type: str) -> Response:
        return count(request, application_id, None, up_type)

    @app.get(base + "/devices/{device_id}/packages/storage/{up_type}/count")
    def device_count(request: Request, application_id: str, device_id: str,
                     up_type: str) -> Response:
        return count(request, application_id, device_id, up_type)

    @app.exception_handler(StarletteHTTPException)
    async def gateway_status(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: 5, 405: 12}.get(exc.status_code, 13)
        err = gateway_error(code, {5: "Not Found", 12: "Method Not Allowed"}.get(code, "Internal"))
        return _error_response(err, _outbound(request)[0])

    return app


# --- a server in a thread ----------------------------------------------------------------------

class StorageServer:
    """``create_storage_app`` served by uvicorn in a background thread (port 0: any free port).
    Usable as a context manager."""

    def __init__(self, archive: UplinkArchive, api_keys: Mapping[str, str],
                 host: str = "127.0.0.1", port: int = 0, *, tenant_id: str = "ttn",
                 clock: Callable[[], datetime] | None = None) -> None:
        self.app = create_storage_app(archive, api_keys, tenant_id=tenant_id, clock=clock)
        self.host, self.port = host, port
        self.url: str | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    def start(self) -> str:
        """Start serving; returns the base URL, e.g. ``http://127.0.0.1:45123``."""
        if self.url is not None:
            return self.url
        family, kind, proto, _, address = socket.getaddrinfo(
            self.host, self.port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        self._socket = sock
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="tts-storage-emulation", daemon=True)
        self._thread.start()
        for _ in range(1000):  # up to 10 s
            if self._server.started or not self._thread.is_alive():
                break
            self._thread.join(0.01)
        if not self._server.started:
            self.stop()
            raise RuntimeError("the Storage Integration emulation did not start")
        port = sock.getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.port, self.url = port, f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._socket is not None:
            with contextlib.suppress(OSError):
                self._socket.close()
        self._server = self._thread = self._socket = None
        self.url = None

    def __enter__(self) -> StorageServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
