"""Test data kept in the repository (``tests/data``, see its README): copies of the example
uplinks and of the vendors' decoder test vectors, so that the suite needs nothing beside the
checkout."""
from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
