"""The OSRM table client against a real local HTTP server speaking OSRM's table format."""
from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest

from app.osrm import OsrmError, OsrmTable
from app.planning import DistanceError, distance_provider
from planner.config import PlannerConfig

POINTS = [(50.2602, 9.2801), (50.2553, 9.2939), (50.2268, 9.3483), (50.2805, 9.3672),
          (50.3000, 9.4000)]


def _fake_distance(a: tuple[float, float], b: tuple[float, float]) -> float:
    """A made-up but asymmetric metric over (lon, lat), so a swapped order would show."""
    return abs(a[0] - b[0]) * 70_000 + abs(a[1] - b[1]) * 111_000 + (0.4 if a != b else 0)


class FakeOsrm(BaseHTTPRequestHandler):
    mode = "ok"
    requests: list[str] = []

    def log_message(self, *args) -> None:  # keep the test output clean
        pass

    def do_GET(self) -> None:
        type(self).requests.append(self.path)
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        prefix = "/osrm/table/v1/driving/"
        if not url.path.startswith(prefix):
            return self._send(404, {"code": "InvalidUrl", "message": "URL string malformed"})
        coords = [tuple(map(float, c.split(","))) for c in url.path[len(prefix):].split(";")]
        if self.mode == "500":
            return self._send(500, "<html>internal error</html>", raw=True)
        if self.mode == "noroute":
            return self._send(400, {"code": "NoRoute", "message": "Impossible route between "
                                                                  "points"})
        n = len(coords)
        sources = [int(i) for i in query.get("sources", ";".join(map(str, range(n)))).split(";")]
        targets = [int(i) for i in query.get("destinations",
                                             ";".join(map(str, range(n)))).split(";")]
        distances = [[_fake_distance(coords[i], coords[j]) for j in targets] for i in sources]
        durations = [[d / 8.333 for d in row] for row in distances]
        if self.mode == "null" and len(sources) > 1 and len(targets) > 2:
            distances[1][2] = None
            durations[1][2] = None
        body = {"code": "Ok", "sources": [{"location": list(coords[i])} for i in sources],
                "destinations": [{"location": list(coords[j])} for j in targets]}
        if "distance" in query.get("annotations", ""):
            body["distances"] = distances
        if "duration" in query.get("annotations", "duration"):
            body["durations"] = durations
        self._send(200, body)

    def _send(self, status: int, body, raw: bool = False) -> None:
        data = (body if raw else json.dumps(body)).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def osrm() -> Iterator[str]:
    FakeOsrm.mode = "ok"
    FakeOsrm.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeOsrm)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/osrm/"
    finally:
        server.shutdown()
        server.server_close()


def _expected() -> tuple[np.ndarray, np.ndarray]:
    lonlat = [(lon, lat) for lat, lon in POINTS]
    d = np.array([[_fake_distance(a, b) for b in lonlat] for a in lonlat])
    return np.rint(d).astype(np.int64), np.rint(d / 8.333).astype(np.int64)


def test_table_url_and_integer_matrices(osrm):
    with OsrmTable(osrm) as table:
        assert table.table_url(POINTS[:2]) == (
            osrm.rstrip("/") + "/table/v1/driving/9.280100,50.260200;9.293900,50.255300")
        distance, duration = table.matrices(POINTS)
    (request,) = FakeOsrm.requests
    assert request.startswith("/osrm/table/v1/driving/9.280100,50.260200;9.293900,50.255300;")
    assert "annotations=distance%2Cduration" in request or "annotations=distance,duration" in \
        request
    want_distance, want_duration = _expected()
    assert distance.dtype == np.int64 and duration.dtype == np.int64
    assert distance.shape == duration.shape == (5, 5)
    assert (distance == want_distance).all() and (duration == want_duration).all()
    assert (np.diag(distance) == 0).all()


def test_large_tables_are_asked_block_by_block(osrm):
    with OsrmTable(osrm, block=2) as table:
        distance, duration = table.matrices(POINTS)
    # 3 blocks → 9 requests, none with more than two blocks' coordinates
    assert len(FakeOsrm.requests) == 9
    assert all(r.split("?")[0].count(";") <= 3 for r in FakeOsrm.requests)
    want_distance, want_duration = _expected()
    assert (distance == want_distance).all() and (duration == want_duration).all()


@pytest.mark.parametrize("mode, message", [
    ("500", "answered HTTP 500 without a JSON table"),
    ("noroute", "code 'NoRoute': Impossible route between points"),
    ("null", "no route from point 1 (lat 50.25530, lon 9.29390) to point 2 "
             "(lat 50.22680, lon 9.34830)"),
])
def test_errors_are_clear(osrm, mode, message):
    FakeOsrm.mode = mode
    with OsrmTable(osrm) as table, pytest.raises(OsrmError) as caught:
        table.matrices(POINTS)
    assert message in str(caught.value)


def test_unreachable_server():
    with OsrmTable("http://127.0.0.1:9", timeout_s=2) as table, \
            pytest.raises(OsrmError, match="unreachable"):
        table.matrices(POINTS)


def test_planner_uses_osrm_when_configured(osrm):
    config = PlannerConfig.model_validate({
        "depot": {"name": "Testhof", "latitude": POINTS[0][0], "longitude": POINTS[0][1]},
        "vehicles": [{"id": "fzg-1", "name": "Pritsche 1", "capacity_l": 1000}],
        "osrm_url": osrm})
    with distance_provider(config) as matrices:
        distance, _ = matrices(POINTS)
        assert (distance == _expected()[0]).all()
        FakeOsrm.mode = "noroute"
        with pytest.raises(DistanceError, match="NoRoute"):
            matrices(POINTS)
    # Without a URL: the great-circle estimate, no request.
    FakeOsrm.requests = []
    with distance_provider(config.model_copy(update={"osrm_url": None})) as matrices:
        distance, _ = matrices(POINTS)
    assert FakeOsrm.requests == [] and distance[0, 1] > 0
