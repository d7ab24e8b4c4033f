"""The crew's pages: Tagesroute (with its print layout) and Übersicht.

Each page is a small HTML shell assembled here from ``templates/``; the browser fills it from
the JSON API (``/api/v1/routes``, ``/bins/forecast``, ...) with the modules in ``app/static``.
The shell is German without JavaScript already: every element marked ``data-i18n="key"`` gets
its text from ``app/static/i18n.json`` (the one place of all UI strings, German and English),
which the scripts use again when the crew switches to English.

Pages need no token (they hold no data); the data requests carry the crew's token from
``localStorage`` (docs/web.md).
"""
from __future__ import annotations

import html
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from app.web.assets import STATIC_DIR, static_url

router = APIRouter(include_in_schema=False)

TEMPLATES = Path(__file__).with_name("templates")

_TEXT = re.compile(r'(<[a-z][a-z0-9]*\b[^>]*?\bdata-i18n="([a-z0-9_]+)"[^>]*>)(?=</)')
_ATTRS = re.compile(r'(<[a-z][a-z0-9]*\b[^>]*?\bdata-i18n-attr="([^"]+)")')
_SLOT = re.compile(r"\[\[(!?) *([a-z_]+) *\]\]")


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    return json.loads((STATIC_DIR / "i18n.json").read_text(encoding="utf-8"))


def german(key: str) -> str:
    try:
        return strings()["de"][key]
    except KeyError:
        raise KeyError(f"no German text for {key!r} in app/static/i18n.json") from None


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def translate(markup: str) -> str:
    """Fill ``data-i18n`` elements (empty in the template) and ``data-i18n-attr`` attributes
    (``"aria-label:key,title:key"``) with the German texts."""
    def text(match: re.Match) -> str:
        return match.group(1) + html.escape(german(match.group(2)), quote=False)

    def attrs(match: re.Match) -> str:
        extra = []
        for pair in match.group(2).split(","):
            name, _, key = pair.partition(":")
            extra.append(f' {name.strip()}="{html.escape(german(key.strip()))}"')
        return match.group(1) + "".join(extra)

    return _ATTRS.sub(attrs, _TEXT.sub(text, markup))


def render(name: str, **slots: Any) -> str:
    """``[[ slot ]]`` is replaced escaped, ``[[! slot ]]`` as it is (markup, JSON)."""
    def fill(match: re.Match) -> str:
        value = slots[match.group(2)]
        return str(value) if match.group(1) else html.escape(str(value))

    return _SLOT.sub(fill, _template(name))


def _json_for_script(value: Any) -> str:
    # Inside <script type="application/json">: nothing may close the element.
    return (json.dumps(value, ensure_ascii=False)
            .replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026"))


def _tile_origin(url: str) -> str | None:
    if not url:
        return None
    parts = urlsplit(url.replace("{s}", "a"))
    host = parts.netloc
    if "{s}" in url:  # subdomains a, b, c of one tile server
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return f"{parts.scheme}://{host}"


def security_headers(tile_url: str) -> dict[str, str]:
    """No request leaves the page except to the tile server (and none at all without one)."""
    origin = _tile_origin(tile_url)
    images = "'self' data:" + (f" {origin}" if origin else "")
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; img-src {images}; style-src 'self'; "
            "script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "form-action 'self'; frame-ancestors 'none'"),
        # The origin only: tile servers (OSM's usage policy) want to know which site asks,
        # and the pages' paths and queries are nobody else's business.
        "Referrer-Policy": "strict-origin",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-cache",
    }


def page_config(request: Request, page: str) -> dict[str, Any]:
    service = request.app.state.service
    config = service.planning.config
    settings = service.settings
    fleet = {kind: [{"id": v.id, "name": v.name} for v in service.planning.fleet(kind)]
             for kind in ("collection", "watering")}
    return {
        "page": page,
        "today": service.planning.today().isoformat(),
        "timezone": config.timezone,
        "depot": {"name": config.depot.name, "latitude": config.depot.latitude,
                  "longitude": config.depot.longitude},
        "fleet": fleet,
        "tiles": ({"url": settings.map_tile_url, "attribution": settings.map_attribution}
                  if settings.map_tile_url else None),
        "static": static_url(),
    }


def page(request: Request, *, title_key: str, body: str, script: str, page_name: str,
         body_class: str = "", print_media: str = "print", head: str = "") -> HTMLResponse:
    main = _template(body)
    document = render(
        "layout.html", title=german(title_key), title_key=title_key, main=main,
        static=static_url(), script=script, body_class=body_class, print_media=print_media,
        head=head, config=_json_for_script(page_config(request, page_name)))
    settings = request.app.state.service.settings
    return HTMLResponse(translate(document), headers=security_headers(settings.map_tile_url))


@router.get("/tagesroute")
def tagesroute(request: Request) -> HTMLResponse:
    tiles = request.app.state.service.settings.map_tile_url
    head = (f'<link rel="stylesheet" href="{static_url("vendor/leaflet/leaflet.css")}">\n'
            f'<script src="{static_url("vendor/leaflet/leaflet.js")}" defer></script>'
            if tiles else "")
    return page(request, title_key="route_title", body="tagesroute.html", script="route.js",
                page_name="route", head=head)


@router.get("/tagesroute/druck")
def tagesroute_druck(request: Request) -> HTMLResponse:
    # The print stylesheet on screen too: what you see is the sheet of paper.
    return page(request, title_key="print_title", body="tagesroute.html", script="route.js",
                page_name="print", body_class="druck", print_media="all")


@router.get("/uebersicht")
def uebersicht(request: Request) -> HTMLResponse:
    return page(request, title_key="overview_title", body="uebersicht.html",
                script="overview.js", page_name="overview")


@router.get("/")
def index() -> RedirectResponse:
    return RedirectResponse("/tagesroute")
