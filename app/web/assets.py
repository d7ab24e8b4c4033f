"""The web view's static files (app/static): served under a versioned path, cached for good.

``/static/<version>/...``: the version is a digest of every file's content, so a changed file
gets a new URL and browsers may keep an answer for a year without asking again (relative
imports between the JS modules stay inside the same version). ``/static/...`` serves the same
files for links from elsewhere, cached for ten minutes. Both carry an ETag and Last-Modified,
so an expired copy costs a 304.
"""
from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path

from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
VERSIONED_MAX_AGE = 365 * 24 * 3600
PLAIN_MAX_AGE = 600


@lru_cache(maxsize=1)
def asset_version() -> str:
    """A short digest of the names and contents of all static files."""
    digest = hashlib.blake2b(digest_size=6)
    for path in sorted(p for p in STATIC_DIR.rglob("*") if p.is_file()):
        digest.update(path.relative_to(STATIC_DIR).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    return digest.hexdigest()


def static_url(name: str = "") -> str:
    """The versioned URL of a static file (or of the folder, for ``name=""``)."""
    base = f"/static/{asset_version()}"
    return f"{base}/{name}" if name else base


class CachedStaticFiles(StaticFiles):
    """StaticFiles whose answers say how long they may be kept."""

    def __init__(self, *, max_age: int, immutable: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.cache_control = f"public, max-age={max_age}" + (", immutable" if immutable else "")

    def file_response(self, full_path: str | os.PathLike[str], stat_result: os.stat_result,
                      scope: Scope, status_code: int = 200) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = self.cache_control
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response


def mount_static(app) -> None:
    """Mount both paths; the versioned one first, as ``/static`` would match it too."""
    app.mount(static_url(), CachedStaticFiles(directory=STATIC_DIR, max_age=VERSIONED_MAX_AGE,
                                              immutable=True), name="static-versioned")
    app.mount("/static", CachedStaticFiles(directory=STATIC_DIR, max_age=PLAIN_MAX_AGE),
              name="static")
