"""The web view over plain HTTP: pages, their German texts, static files with cache headers,
the vendored Leaflet with its licence, and the overview's JSON endpoints.

What the pages do in a browser is tests/test_browser.py.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from app.web.assets import STATIC_DIR, asset_version
from helpers import running_service
from test_plans import CONFIG, bauhof, planner_config  # noqa: F401  (fixtures)

TEMPLATES = Path(__file__).resolve().parents[1] / "app" / "web" / "templates"
STRINGS = json.loads((STATIC_DIR / "i18n.json").read_text(encoding="utf-8"))


def _assets(html: str) -> list[str]:
    return re.findall(r'(?:href|src)="(/static/[^"]+)"', html)


def test_pages_are_german_and_load_their_assets(db, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        home = client.get("/", follow_redirects=False)
        assert home.status_code in (302, 307) and home.headers["location"] == "/tagesroute"
        assert client.get("/docs").status_code == 200  # the API's documentation stays

        expected = {
            "/tagesroute": ["Tagesroute", "Datum", "Leerung", "Gießen", "Druckansicht",
                            "Stopps", "Füllstand", "Grund", "Ankunft", "Navigation",
                            "Zugangscode der Kolonne", "Karte"],
            "/tagesroute/druck?datum=2026-05-04&art=collection&fahrzeug=fzg-1": [
                "Tagesroute – Druckansicht", "Drucken", "Abhaken"],
            "/uebersicht": ["Übersicht", "Gemeinde", "Alle Gemeinden", "Offene Meldungen",
                            "Wetter jetzt", "Bäume gießen", "Abfallbehälter"],
        }
        seen: set[str] = set()
        for path, words in expected.items():
            page = client.get(path)
            assert page.status_code == 200, path
            assert page.headers["content-type"].startswith("text/html")
            html = page.text
            assert html.startswith("<!DOCTYPE html>\n<html lang=\"de\">"), path
            assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
            for word in words:
                assert word in html, (path, word)
            assert "<table" in html or path == "/uebersicht"  # its tables come with the data
            # Every element marked for translation got its German text on the server.
            assert not re.search(r'data-i18n="[a-z0-9_]+"></', html), path
            # No request may leave for anything but the tile server.
            policy = page.headers["content-security-policy"]
            assert "default-src 'self'" in policy and "script-src 'self'" in policy
            assert "connect-src 'self'" in policy
            outside = set(re.findall(r'(?:src|href)="(https?://[^"]+)"', html))
            assert outside == set(), outside
            assert page.headers["cache-control"] == "no-cache"
            seen.update(_assets(html))

        assert {a.rsplit("/", 1)[-1] for a in seen} >= {"app.css", "print.css", "route.js",
                                                        "overview.js", "leaflet.js",
                                                        "leaflet.css", "icon.svg"}
        druck = client.get("/tagesroute/druck").text
        assert 'print.css" media="all"' in druck and 'class="druck"' in druck
        assert "leaflet.js" not in druck  # paper gets the sketch, never tiles
        assert 'print.css" media="print"' in client.get("/tagesroute").text

        for url in sorted(seen):
            asset = client.get(url)
            assert asset.status_code == 200, url
            assert f"/static/{asset_version()}/" in url
            assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert asset.headers["etag"] and asset.headers["last-modified"]
            again = client.get(url, headers={"If-None-Match": asset.headers["etag"]})
            assert again.status_code == 304, url
            if url.endswith(".js"):
                assert "javascript" in asset.headers["content-type"]
        # The same files without a version, for links from elsewhere: kept ten minutes.
        plain = client.get("/static/app.css")
        assert plain.status_code == 200 and plain.headers["cache-control"] == "public, max-age=600"
        assert client.get("/static/../config.py").status_code == 404
        # The modules' relative imports stay within one version.
        assert client.get(f"/static/{asset_version()}/i18n.json").json()["de"]["nav_route"] == \
            "Tagesroute"


def test_leaflet_is_vendored_with_its_licence(db, planner_config):  # noqa: F811
    leaflet = STATIC_DIR / "vendor" / "leaflet"
    readme = (leaflet / "README.md").read_text(encoding="utf-8")
    version = re.search(r"# Leaflet (\d+\.\d+\.\d+)", readme).group(1)
    assert f"Leaflet {version}," in (leaflet / "leaflet.js").read_text(encoding="utf-8")[:200]
    for image in ("marker-icon.png", "marker-icon-2x.png", "marker-shadow.png", "layers.png"):
        assert (leaflet / "images" / image).is_file(), image
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        licence = client.get("/static/vendor/leaflet/LICENSE")
        assert licence.status_code == 200
        assert "BSD 2-Clause" in licence.text and "Volodymyr Agafonkin" in licence.text
        assert client.get("/static/vendor/leaflet/images/marker-icon.png").status_code == 200


def test_without_a_tile_server_no_request_leaves(db, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="",
                         map_tile_url="") as (service, client):
        page = client.get("/tagesroute")
        assert "leaflet" not in page.text
        assert "img-src 'self' data:;" in page.headers["content-security-policy"]
        config = re.search(r'id="page-config">(.*?)</script>', page.text).group(1)
        assert json.loads(config)["tiles"] is None


def test_page_configuration_cannot_break_out_of_its_script(db, tmp_path):
    hostile = CONFIG.replace("name: Testhof", 'name: "</script><script>alert(1)</script>"')
    path = tmp_path / "planner.yaml"
    path.write_text(hostile, encoding="utf-8")
    with running_service(db, planner_config=path, plan_at="") as (service, client):
        html = client.get("/tagesroute").text
        assert "<script>alert(1)" not in html
        config = re.search(r'id="page-config">(.*?)</script>', html).group(1)
        assert json.loads(config)["depot"]["name"] == "</script><script>alert(1)</script>"
        assert json.loads(config)["fleet"]["watering"] == [{"id": "fzg-3", "name": "Gießwagen"}]


def test_every_text_is_there_in_german_and_english():
    assert set(STRINGS["de"]) == set(STRINGS["en"])
    assert all(v.strip() for lang in ("de", "en") for v in STRINGS[lang].values())
    used = set()
    for template in TEMPLATES.glob("*.html"):
        text = template.read_text(encoding="utf-8")
        used |= set(re.findall(r'data-i18n="([a-z0-9_]+)"', text))
        for pairs in re.findall(r'data-i18n-attr="([^"]+)"', text):
            used |= {pair.split(":")[1] for pair in pairs.split(",")}
    for script in STATIC_DIR.glob("*.js"):
        used |= set(re.findall(r'\bt\("([a-z0-9_]+)"', script.read_text(encoding="utf-8")))
    missing = used - set(STRINGS["de"])
    assert not missing, f"texts used but not in app/static/i18n.json: {sorted(missing)}"
    # Placeholders agree between the languages.
    for key, german in STRINGS["de"].items():
        assert set(re.findall(r"\{(\w+)\}", german)) == set(
            re.findall(r"\{(\w+)\}", STRINGS["en"][key])), key


def test_overview_endpoints(db, bauhof, planner_config):  # noqa: F811
    with running_service(db, planner_config=planner_config, plan_at="") as (service, client):
        towns = client.get("/api/v1/municipalities").json()
        assert [(t["name"], t["bins"], t["soil"], t["weather"]) for t in towns] == [
            ("Adorf", 14, 1, 1), ("Bestadt", 13, 1, 0), ("Cedorf", 13, 1, 1)]

        bins = client.get("/api/v1/bins/forecast")
        assert bins.status_code == 200 and bins.headers["cache-control"] == "private, max-age=60"
        assert client.get("/api/v1/bins/forecast", headers={
            "If-None-Match": bins.headers["etag"]}).status_code == 304
        bins = bins.json()
        assert len(bins) == 40
        by_id = {b["device_id"]: b for b in bins}
        assert all(b["level_pct"] >= 88 for i, b in by_id.items() if "-full-" in i)
        assert all(b["level_pct"] < 15 for i, b in by_id.items() if "-empty-" in i)
        # Soonest full first: the full ones, then by "full at".
        fulls = [b["full_at"] for b in bins if b["full_at"]]
        assert fulls == sorted(fulls)
        assert bins[0]["device_id"].startswith(("bin-full-", "bin-soon-"))
        soon = [b for b in bins if "-soon-" in b["device_id"]]
        assert all(b["full_at"] is not None and b["full_at"].endswith(("+01:00", "+02:00"))
                   for b in soon)
        adorf = client.get("/api/v1/bins/forecast", params={"municipality": "Adorf"}).json()
        assert len(adorf) == 14 and {b["municipality"] for b in adorf} == {"Adorf"}

        plants = {p["device_id"]: p for p in client.get("/api/v1/plants/forecast").json()}
        assert plants["soil-dry-adorf"]["needs_water"] is True
        assert plants["soil-dry-adorf"]["rain_skips"] is False
        assert plants["soil-dry-cedorf"]["needs_water"] is True
        assert plants["soil-dry-cedorf"]["rain_skips"] is True  # 6 mm in Cedorf
        assert plants["soil-wet-bestadt"]["needs_water"] is False
        assert list(plants)[:2] == ["soil-dry-adorf", "soil-dry-cedorf"]

        weather = client.get("/api/v1/weather/now").json()
        assert [(w["device_id"], w["rain_24h_mm"]) for w in weather] == [
            ("wetter-adorf", 0.0), ("wetter-cedorf", 6.0)]
        assert weather[0]["temperature_c"] is None  # no such readings in this Bauhof
        only = client.get("/api/v1/weather/now", params={"municipality": "Cedorf"}).json()
        assert [w["device_id"] for w in only] == ["wetter-cedorf"]


@pytest.mark.parametrize("path", ["/api/v1/bins/forecast", "/api/v1/plants/forecast",
                                  "/api/v1/weather/now", "/api/v1/municipalities"])
def test_overview_endpoints_on_an_empty_bauhof(db, path):
    with running_service(db) as (service, client):
        answer = client.get(path)
        assert answer.status_code == 200 and answer.json() == []
