"""Road distances and driving times from an OSRM ``table`` service, as the router's matrices.

Used instead of the great-circle estimate when ``osrm_url`` is set in the planner config. OSRM
answers with floats in metres and seconds and ``null`` where it found no route; the router needs
integers and a value for every pair, so a null is an error that names the two points rather than
a number we would have to invent.

OSRM refuses tables with more than ``--max-table-size`` sources × destinations (100 × 100 by
default), so larger problems are asked block by block, each request carrying only the
coordinates of its two blocks (which also keeps the URL short).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence

import httpx
import numpy as np

log = logging.getLogger(__name__)


class OsrmError(RuntimeError):
    """The OSRM service could not give us a complete table; the message says why."""


class OsrmTable:
    """``matrices(points)`` for (lat, lon) points, index 0 the depot, like ``GreatCircle``."""

    def __init__(self, url: str, *, profile: str = "driving", block: int = 100,
                 timeout_s: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        if block < 1:
            raise ValueError("block must be at least 1")
        self.url = url.rstrip("/")
        self.profile = profile
        self.block = block
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "OsrmTable":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def table_url(self, points: Sequence[tuple[float, float]]) -> str:
        # OSRM wants longitude first: "lon,lat;lon,lat".
        coords = ";".join(f"{lon:.6f},{lat:.6f}" for lat, lon in points)
        return f"{self.url}/table/v1/{self.profile}/{coords}"

    def matrices(self, points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """(distance in m, duration in s), int64 (n, n)."""
        pts = [(float(lat), float(lon)) for lat, lon in points]
        n = len(pts)
        distance = np.zeros((n, n), dtype=np.int64)
        duration = np.zeros((n, n), dtype=np.int64)
        if n < 2:
            return distance, duration
        blocks = [list(range(i, min(i + self.block, n))) for i in range(0, n, self.block)]
        for rows in blocks:
            for cols in blocks:
                dist, dur = self._table(pts, rows, cols)
                distance[np.ix_(rows, cols)] = dist
                duration[np.ix_(rows, cols)] = dur
        np.fill_diagonal(distance, 0)
        np.fill_diagonal(duration, 0)
        return distance, duration

    def _table(self, pts: list[tuple[float, float]], rows: list[int],
               cols: list[int]) -> tuple[np.ndarray, np.ndarray]:
        if rows == cols:
            subset, sources, destinations = rows, None, None
        else:
            subset = rows + cols
            sources = range(len(rows))
            destinations = range(len(rows), len(subset))
        params = {"annotations": "distance,duration"}
        if sources is not None:
            params["sources"] = ";".join(map(str, sources))
            params["destinations"] = ";".join(map(str, destinations))
        url = self.table_url([pts[i] for i in subset])
        try:
            response = self._client.get(url, params=params)
        except httpx.HTTPError as err:
            raise OsrmError(f"OSRM at {self.url} unreachable: {err}") from err
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise OsrmError(f"OSRM at {self.url} answered HTTP {response.status_code} without a "
                            f"JSON table: {response.text[:200]!r}")
        code = body.get("code")
        if response.status_code != 200 or code != "Ok":
            raise OsrmError(f"OSRM at {self.url} answered HTTP {response.status_code}, code "
                            f"{code!r}: {body.get('message') or 'no message'}")
        out = []
        for key, unit in (("distances", "m"), ("durations", "s")):
            values = body.get(key)
            if not isinstance(values, list) or len(values) != len(rows) or any(
                    not isinstance(r, list) or len(r) != len(cols) for r in values):
                raise OsrmError(f"OSRM at {self.url}: {key!r} missing or not a "
                                f"{len(rows)}×{len(cols)} table (is annotations=distance,"
                                f"duration supported?)")
            for a, row in enumerate(values):
                for b, v in enumerate(row):
                    if v is None:
                        i, j = rows[a], cols[b]
                        raise OsrmError(
                            f"OSRM found no route from point {i} {_where(pts[i])} to point {j} "
                            f"{_where(pts[j])} ({key} is null); is the point off the road "
                            f"network or the map extract?")
            matrix = np.asarray(values, dtype=float)
            if (matrix < 0).any() or not np.isfinite(matrix).all():
                raise OsrmError(f"OSRM at {self.url}: {key} has negative or non-finite values")
            out.append(np.rint(matrix).astype(np.int64))
        log.debug("OSRM table %d×%d from %s", len(rows), len(cols), self.url)
        return out[0], out[1]


def _where(point: tuple[float, float]) -> str:
    return f"(lat {point[0]:.5f}, lon {point[1]:.5f})"
