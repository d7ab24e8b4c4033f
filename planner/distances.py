"""Distance providers: integer distance and duration matrices for the router.

Pure functions over coordinates. ``GreatCircle`` is the default provider (no road network
needed): great-circle distance times a detour factor, driven at a constant speed.
``euclidean_matrix`` implements the two CVRPLIB conventions used by the benchmark.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), the usual choice for haversine


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees; broadcasts like numpy."""
    phi1, phi2 = np.radians(lat1), np.radians(lat2)
    dphi = phi2 - phi1
    dlam = np.radians(lon2) - np.radians(lon1)
    a = np.sin(dphi / 2) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin(dlam / 2) ** 2
    # clip: rounding can push a a hair above 1 for antipodal points, and arcsin would give nan
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


@dataclass(frozen=True)
class GreatCircle:
    """Road distance ≈ great-circle distance × ``detour_factor``, driven at ``speed_kmh``."""

    detour_factor: float = 1.35
    speed_kmh: float = 30.0

    def __post_init__(self) -> None:
        if self.detour_factor < 1.0:
            raise ValueError(f"detour_factor must be >= 1, got {self.detour_factor}")
        if self.speed_kmh <= 0:
            raise ValueError(f"speed_kmh must be positive, got {self.speed_kmh}")

    def matrices(self, points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
        """(distance in m, duration in s) as int64 (n, n) matrices for (lat, lon) points."""
        pts = np.asarray(points, dtype=float).reshape(-1, 2)
        lat, lon = pts[:, 0], pts[:, 1]
        metres = haversine_m(lat[:, None], lon[:, None], lat[None, :], lon[None, :])
        metres *= self.detour_factor
        seconds = metres / (self.speed_kmh / 3.6)
        # Round the floats, not the rounded distance: durations keep their own precision.
        distance = np.rint(metres).astype(np.int64)
        duration = np.rint(seconds).astype(np.int64)
        np.fill_diagonal(distance, 0)
        np.fill_diagonal(duration, 0)
        return distance, duration


def euclidean_matrix(coords, convention: Literal["nint", "exact"]) -> np.ndarray:
    """CVRPLIB arc lengths as int64: ``nint`` = TSPLIB EUC_2D, ``exact`` = round(1000·d).

    ``exact`` keeps float distances to a thousandth so an integer solver sees them; divide a
    cost by 1000 (or better, recompute it in floats) to compare with published values.
    """
    xy = np.asarray(coords, dtype=float).reshape(-1, 2)
    d = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    if convention == "nint":
        return np.floor(d + 0.5).astype(np.int64)
    if convention == "exact":
        return np.rint(1000.0 * d).astype(np.int64)
    raise ValueError(f"unknown distance convention {convention!r} (nint or exact)")
