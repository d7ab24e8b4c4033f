"""The web view in a real browser: Debian's headless Chromium driven by Playwright for Python.

The real service runs on a free port (uvicorn in a thread) against the test database, with the
synthetic Bauhof of test_plans.py and a plan made through the API. The browser may reach that
service and nothing else: every other request is refused here (the test machine has no
internet anyway) and recorded, and only map tiles may be among them. Tiles that cannot load
must leave the schematic sketch, never a blank map.

Screenshots and the printed PDF go to test-artifacts/browser/ (git-ignored), for a person to
look at. Skipped, saying why, only where Chromium or Playwright is missing; .ci/run installs
both.
"""
from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from app.service import Service
from conftest import ROOT
from helpers import TOKEN, make_settings, served, wait_until
from test_plans import TZ, bauhof, planner_config  # noqa: F401  (fixtures)

try:
    from playwright.sync_api import Browser, Page, Route, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CREW = "crew-token-for-the-browser-0123"
PHONE = {"width": 360, "height": 740}
TABLET = {"width": 768, "height": 1024}
DESKTOP = {"width": 1280, "height": 800}
TILE_HOST = "tile.openstreetmap.org"
# A 1x1 grey PNG: a map tile from a "tile server" that answers.
TILE_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGPY2QAAAmABMBhuBZUAAAAASUVORK5CYII=")

# CI sets BAUHOF_TEST_REQUIRE_BROWSER=1: there a missing browser is a failure, not a skip.
_REQUIRED = os.environ.get("BAUHOF_TEST_REQUIRE_BROWSER") == "1"
if _REQUIRED and (sync_playwright is None or not Path(CHROMIUM).exists()):
    raise RuntimeError("BAUHOF_TEST_REQUIRE_BROWSER=1 but Playwright or Debian's chromium is "
                       "missing")

pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="Playwright for Python is not installed (pip install playwright; "
                              ".ci/run installs it)"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian's chromium is not installed (apt-get install chromium; "
                              ".ci/run installs it)"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator["Browser"]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def site(db, bauhof, planner_config) -> Iterator[dict]:  # noqa: F811
    """The service on a free port, with today's collection and watering plans."""
    # No alert evaluations of their own: the overview test opens the one alert it shows.
    service = Service(make_settings(planner_config=planner_config, plan_at="",
                                    crew_tokens=[CREW], alert_interval_s=0,
                                    alert_on_batch=False), db)
    with served(service) as base:
        api = httpx.Client(base_url=base, timeout=60)
        with psycopg.connect(db) as conn:  # what the pipeline keeps of a weather station
            conn.execute(
                "INSERT INTO latest_readings (device_id, metric, time, value)"
                " SELECT 'wetter-adorf', m, now() - interval '10 minutes', v FROM (VALUES"
                " ('temperature_c', 17.4), ('relative_humidity_pct', 64.0),"
                " ('wind_speed_ms', 3.5), ('wind_gust_ms', 9.0)) AS x(m, v)")
        for kind in ("collection", "watering"):
            made = api.post("/api/v1/routes/plan", headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"kind": kind, "time_limit_s": 1})
            assert made.status_code == 200, made.text
        yield {"base": base, "api": api, "db": db, "external": [], "errors": [],
               "service": service}
        api.close()


def _context(browser: "Browser", site: dict, viewport: dict, *, tiles: bool = False,
             phone: bool = False):
    context = browser.new_context(viewport=viewport, locale="de-DE", timezone_id="Europe/Berlin",
                                  device_scale_factor=2 if phone else 1, is_mobile=phone,
                                  has_touch=phone, service_workers="block")

    def outside(route: "Route") -> None:
        url = route.request.url
        site["external"].append(url)
        if tiles and TILE_HOST in url:
            route.fulfill(status=200, content_type="image/png", body=TILE_PNG)
        else:
            route.abort("internetdisconnected")

    context.route(lambda url: not url.startswith(site["base"]), outside)
    return context


def _page(context, site: dict) -> "Page":
    page = context.new_page()
    page.set_default_timeout(20000)
    page.on("pageerror", lambda err: site["errors"].append(str(err)))
    # What the Content-Security-Policy refused would be broken for the crews too.
    page.on("console", lambda msg: "Content Security Policy" in msg.text
            and site["errors"].append(msg.text))
    return page


def _wait_js(page: "Page", expression: str) -> None:
    # Not page.wait_for_function: its polling evaluates strings, which the pages' Content
    # Security Policy (script-src 'self', no eval) rightly refuses.
    wait_until(lambda: page.evaluate(expression), timeout=20, what=expression)


def _plan(site: dict, vehicle: str) -> dict:
    routes = site["api"].get("/api/v1/routes", params={"kind": "collection"}).json()
    return next(p for p in routes["plans"] if p["vehicle_id"] == vehicle)


def _first_vehicle_with_stops(site: dict) -> dict:
    routes = site["api"].get("/api/v1/routes", params={"kind": "collection"}).json()
    return next(p for p in routes["plans"] if p["stops"])


def _only_tiles_went_out(site: dict) -> None:
    others = [u for u in site["external"] if TILE_HOST not in u]
    assert others == [], f"requests to other hosts than the service and map tiles: {others}"
    assert site["errors"] == [], f"JavaScript errors: {site['errors']}"


def test_route_on_a_phone_mark_done_persist_and_switch_language(browser, site):
    plan = _first_vehicle_with_stops(site)
    stops = plan["stops"]
    context = _context(browser, site, PHONE, phone=True)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute#token={CREW}")
    # Kept on the device, and taken out of the address bar (fragments never reach the server).
    _wait_js(page, f"localStorage.getItem('bauhof.token') === '{CREW}'")
    _wait_js(page, "!location.href.includes('token')")
    assert page.locator("html").get_attribute("lang") == "de"

    # The stops, numbered in driving order, with place, reason, ETA and navigation.
    rows = page.locator("#stops-body tr.stop")
    rows.first.wait_for()
    assert rows.count() == len(stops)
    assert page.locator("#stops-body .nr").all_inner_texts() == [
        str(s["seq"]) for s in stops]
    assert page.locator("#stops-body .place-name").all_inner_texts() == [
        s["name"] for s in stops]
    reasons = page.locator("#stops-body .col-reason .badge").all_inner_texts()
    assert reasons == ["Muss" if s["reason"] == "must" else "Kann" for s in stops]
    # ... and why: a must-go bin says when it would be full, a may-go one that it is on the way.
    musts_with_time = [s for s in stops if s["reason"] == "must" and s["due_at"]]
    assert musts_with_time  # the test Bauhof's full bins have forecasts
    for stop in stops:
        why = page.locator(f"#stop-{stop['seq']} .col-reason .why")
        if stop["reason"] == "may":
            assert why.inner_text().startswith("auf dem Weg"), why.inner_text()
        elif stop["due_at"]:
            due = dt.datetime.fromisoformat(stop["due_at"]).astimezone(TZ).strftime("%H:%M")
            assert why.inner_text().startswith("voll") and due in why.inner_text()
    eta = dt.datetime.fromisoformat(stops[0]["eta"]).astimezone(TZ).strftime("%H:%M")
    assert eta in page.locator("#stop-1 .col-eta").inner_text()
    href = page.locator("#stop-1 a.nav-link").get_attribute("href")
    lat, lon = f"{stops[0]['latitude']:.6f}", f"{stops[0]['longitude']:.6f}"
    assert href.startswith(f"geo:{lat},{lon}?q={lat},{lon}("), href
    assert page.locator("#vehicle-tabs a[aria-current=page]").inner_text().startswith(
        plan["vehicle_name"])

    # No tiles here: the sketch stays, says why, and shows every stop and the depot.
    frame = page.locator("#map-frame[data-tiles=failed][data-view=sketch]")
    frame.wait_for()
    assert page.locator("#map-sketch svg").is_visible()
    assert page.locator("#map-sketch .sketch-stop").count() == len(stops)
    assert page.locator("#map-sketch .sketch-depot").count() == 1
    assert "Kartenkacheln nicht erreichbar" in page.locator("#map-note").inner_text()

    # Made for a phone: nothing wider than the screen, a big button across the card.
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    button = page.locator("#stop-1 button.btn-done")
    box = button.bounding_box()
    assert box["height"] >= 48, box
    assert box["width"] >= PHONE["width"] * 0.75, box
    assert button.inner_text() == "geleert"
    page.screenshot(path=ARTIFACTS / "tagesroute-phone.png")
    page.screenshot(path=ARTIFACTS / "tagesroute-phone-full.png", full_page=True)

    # geleert: the row turns done, stays done after a reload, and the API says by the crew.
    button.click()
    page.locator("#stop-1[data-status=done]").wait_for()
    assert "geleert" in page.locator("#stop-1 .done-note").inner_text()
    assert page.locator("#stop-1 button.btn-undo").inner_text() == "rückgängig"
    page.reload()
    page.locator("#stop-1[data-status=done]").wait_for()
    first = _plan(site, plan["vehicle_id"])["stops"][0]
    assert (first["status"], first["done_by"]) == ("done", "crew")
    assert f"1/{len(stops)} erledigt" in page.locator("#summary").inner_text()

    # rückgängig, and done again (the screenshot shows a done row).
    page.locator("#stop-1 button.btn-undo").click()
    page.locator("#stop-1[data-status=planned]").wait_for()
    assert _plan(site, plan["vehicle_id"])["stops"][0]["status"] == "planned"
    page.locator("#stop-1 button.btn-done").click()
    page.locator("#stop-1[data-status=done]").wait_for()
    page.locator("#stop-1").scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "tagesroute-phone-done.png")

    # English, kept over a reload, and back to German.
    page.locator("#lang-toggle").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("#route-heading").inner_text() == "Daily route"
    page.reload()
    page.locator("#stop-1[data-status=done]").wait_for()
    assert page.locator("#route-heading").inner_text() == "Daily route"
    assert page.locator("#stop-1 button.btn-undo").inner_text() == "undo"
    assert page.locator("#stop-2 button.btn-done").inner_text() == "emptied"
    assert page.locator("#stops-body .col-reason .badge").first.inner_text() in ("Must", "May")
    page.locator("#lang-toggle").click()
    assert page.locator("html").get_attribute("lang") == "de"
    assert page.locator("#route-heading").inner_text() == "Tagesroute"
    assert page.locator("#stop-2 button.btn-done").inner_text() == "geleert"
    context.close()
    _only_tiles_went_out(site)


def test_route_without_a_token_asks_for_it(browser, site):
    context = _context(browser, site, PHONE, phone=True)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute")
    page.locator("#stop-1 button.btn-done").click()
    assert "Zugangscode" in page.locator("#stop-1 .row-error").inner_text()
    assert page.locator("#token-panel").is_visible()
    # The code makes the page load the route again. The crew taps "geleert" before that answer
    # is back (held here, as a slow network would): the answer predates the tap and must not
    # take the tick back.
    held = []

    def hold_the_first(route) -> None:
        if held:
            route.continue_()
        else:  # answered by the server now, delivered to the page later
            held.append((route, route.fetch()))

    page.route(lambda url: "/api/v1/routes?" in url, hold_the_first)
    page.locator("#token-input").fill(CREW)
    page.locator("#token-form button[type=submit]").click()
    while not held:
        page.wait_for_timeout(20)
    page.locator("#stop-1 button.btn-done").click()
    page.locator("#stop-1[data-status=done]").wait_for()
    for route, answer in held:
        route.fulfill(response=answer)
    page.wait_for_load_state("networkidle")
    assert page.locator("#stop-1").get_attribute("data-status") == "done"
    assert "1/" in page.locator("#summary").inner_text()
    context.close()
    _only_tiles_went_out(site)


def test_route_on_a_desktop_with_tiles_and_on_paper(browser, site):
    plan = _first_vehicle_with_stops(site)
    stops = plan["stops"]
    query = f"datum={dt.datetime.now(TZ).date()}&art=collection&fahrzeug={plan['vehicle_id']}"

    # A tile server that answers: the Leaflet map with numbered markers replaces the sketch.
    context = _context(browser, site, DESKTOP, tiles=True)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute?{query}#token={CREW}")
    page.locator("#map-frame[data-tiles=ok][data-view=tiles]").wait_for()
    assert page.locator("#map-tiles .pin").count() == len(stops) + 1  # and the depot
    assert page.locator("#stops thead").is_visible()
    assert page.locator("#stops-body tr.stop").count() == len(stops)
    assert page.locator("#stop-1 button.btn-done").bounding_box()["height"] >= 48
    page.screenshot(path=ARTIFACTS / "tagesroute-desktop-tiles.png")
    page.locator("#map-toggle").click()  # the crew may prefer the sketch
    assert page.locator("#map-frame").get_attribute("data-view") == "sketch"
    context.close()

    # Without tiles, as on this machine.
    context = _context(browser, site, DESKTOP)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute?{query}")
    page.locator("#map-frame[data-tiles=failed]").wait_for()
    # The day against the fixed round in one sentence, with the numbers of the API.
    routes = site["api"].get("/api/v1/routes", params={"kind": "collection"}).json()["plans"]
    km = sum(p["distance_km"] for p in routes)
    base = routes[0]["baseline_distance_km"]
    sentence = page.locator("#day-sentence").inner_text()
    assert f"{km:.1f}".replace(".", ",").rstrip("0").rstrip(",") in sentence.replace(".", "")
    assert ("km weniger" if km <= base else "km mehr als die feste Tour") in sentence, sentence
    page.screenshot(path=ARTIFACTS / "tagesroute-desktop.png")

    # Printed: no buttons, no tiles, no header; the sheet's head, the sketch, the table with
    # a box to tick per stop.
    page.emulate_media(media="print")
    for hidden in ("#stop-1 button.btn-done", "#stop-1 a.nav-link", "#map-tiles",
                   ".site-header", "#vehicle-tabs", "#route-controls", "#map-toggle"):
        assert page.locator(hidden).is_hidden(), hidden
    assert page.locator("#stops").is_visible()
    assert page.locator("#stop-1 .tickbox").is_visible()
    assert page.locator("#print-sketch svg").is_visible()
    assert page.locator("#print-sketch .sketch-stop").count() == len(stops)
    head = page.locator("#print-head").inner_text()
    assert plan["vehicle_name"] in head and "km" in head
    assert str(dt.datetime.now(TZ).year) in head
    page.screenshot(path=ARTIFACTS / "tagesroute-print.png", full_page=True)
    pdf = page.pdf(path=ARTIFACTS / "tagesroute-print.pdf", format="A4")
    assert pdf.startswith(b"%PDF") and len(pdf) > 10_000
    context.close()

    # /tagesroute/druck: the print layout straight away, with a print button on screen only.
    context = _context(browser, site, DESKTOP)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute/druck?{query}")
    page.locator("#stops-body tr.stop").first.wait_for()
    assert page.locator("#print-now").is_visible()
    assert page.locator("#stop-1 button.btn-done").is_hidden()
    assert page.locator("#stop-1 .tickbox").is_visible()
    assert page.locator("#print-sketch .sketch-stop").count() == len(stops)
    assert page.locator("#map-frame").is_hidden()
    page.screenshot(path=ARTIFACTS / "tagesroute-druck.png", full_page=True)
    page.emulate_media(media="print")
    assert page.locator("#print-now").is_hidden()
    context.close()
    _only_tiles_went_out(site)


def test_overview_on_a_phone_a_tablet_and_a_desktop(browser, site):
    # A bin whose sensor sees litter above the rim: "übervoll", its level capped at 100 %.
    with psycopg.connect(site["db"]) as conn:
        for table in ("readings", "latest_readings"):
            conn.execute(f"DELETE FROM {table} WHERE device_id = 'bin-full-00'"
                         " AND metric = 'fill_level_pct'")
        # filling steadily for a day, from 62 % to 108 %
        conn.execute("INSERT INTO readings (time, device_id, metric, value)"
                     " SELECT now() - make_interval(mins => 15 * i), 'bin-full-00',"
                     "        'fill_level_pct', 108 - 0.5 * i FROM generate_series(0, 92) i")
        conn.execute("INSERT INTO latest_readings (device_id, metric, time, value)"
                     " VALUES ('bin-full-00', 'fill_level_pct', now(), 108)")
    for name, viewport, phone in (("phone", PHONE, True), ("tablet", TABLET, True),
                                  ("desktop", DESKTOP, False)):
        context = _context(browser, site, viewport, phone=phone)
        page = _page(context, site)
        page.goto(f"{site['base']}/uebersicht")
        page.locator("#bins-body details").first.wait_for()
        assert page.locator("h1").inner_text() == "Übersicht"
        # No alert is open in the test Bauhof (or the service has no alerts yet).
        assert "keine offenen Meldungen" in page.locator("#alerts-body").inner_text()
        weather = page.locator("#weather-body").inner_text()
        assert "weather wetter-adorf" in weather and "weather wetter-cedorf" in weather
        assert "17,4 °C" in weather and "64 %" in weather and "13 km/h" in weather
        trees = page.locator("#trees-body").inner_text()
        assert "soil-dry-adorf" in trees and "soil-dry-cedorf" in trees
        assert "hat geregnet" in trees  # Cedorf had 6 mm: its round leaves the tree out
        assert "soil-wet-bestadt" not in trees
        # The bins by town, each a closed section saying how many are full.
        towns = page.locator("#bins-body details.group > summary .group-name").all_inner_texts()
        assert sorted(towns) == ["Adorf", "Bestadt", "Cedorf"]
        assert page.locator("#bins-body details[open]").count() == 0
        adorf = page.locator("#bins-body details[data-group=bins-Adorf]")
        assert "voll" in adorf.locator("summary").inner_text()
        adorf.locator("summary").click()
        overfull = adorf.locator("tr.overfull")
        assert overfull.count() == 1 and overfull.is_visible()
        assert "übervoll" in overfull.inner_text() and "100 %" in overfull.inner_text()
        assert "104" not in overfull.inner_text()
        assert adorf.locator("tbody tr").count() > 10
        options = page.locator("#f-town option").all_inner_texts()
        assert options[1:] == ["Adorf", "Bestadt", "Cedorf"]
        # Nothing is cut off: no part of the page reaches past the screen's width.
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter((e) => e.getBoundingClientRect().right > innerWidth + 1)
            .map((e) => e.tagName + '.' + e.className).slice(0, 5)""")
        assert wide == [] and page.evaluate("document.documentElement.scrollWidth") \
            <= viewport["width"], (name, wide)
        page.screenshot(path=ARTIFACTS / f"uebersicht-{name}.png", full_page=True)
        # Paper gets every town open.
        page.emulate_media(media="print")
        page.evaluate("window.dispatchEvent(new Event('beforeprint'))")
        assert page.locator("#bins-body details:not([open])").count() == 0
        page.evaluate("window.dispatchEvent(new Event('afterprint'))")
        page.emulate_media(media="screen")

        page.locator("#f-town").select_option("Adorf")
        page.wait_for_url("**/uebersicht?gemeinde=Adorf")
        _wait_js(page, "document.querySelectorAll('#bins-body details.group').length === 1")
        assert page.locator("#bins-body details.group[open]").count() == 1  # the town chosen
        assert "soil-dry-cedorf" not in page.locator("#trees-body").inner_text()
        context.close()

    # An open alert: shown with its severity in words, and the crew acknowledges it.
    with psycopg.connect(site["db"]) as conn:
        conn.execute(
            "INSERT INTO alerts (id, rule_id, device_id, device_name, municipality, severity,"
            " status, first_seen, opened_at, value) VALUES ('test-alert-1', 'bin_full',"
            " 'bin-full-00', 'bin bin-full-00', 'Adorf', 'info', 'open', now(), now(), 95)")
    alert = site["api"].get("/api/v1/alerts", params={"status": "active"}).json()[0]
    context = _context(browser, site, DESKTOP)
    page = _page(context, site)
    page.goto(f"{site['base']}/uebersicht?gemeinde=Adorf#token={CREW}")
    item = page.locator("li[data-alert=test-alert-1]")
    item.wait_for()
    assert alert["title_de"] in item.inner_text() and "Hinweis" in item.inner_text()
    opened = dt.datetime.fromisoformat(alert["opened_at"]).astimezone(TZ).strftime("%H:%M")
    assert f"seit heute {opened}" in item.inner_text()  # in the Bauhof's time, not UTC
    page.screenshot(path=ARTIFACTS / "uebersicht-alert.png")
    item.locator("button.alert-ack").click()
    page.locator("li[data-alert=test-alert-1][data-status=acknowledged]").wait_for()
    assert "quittiert (Kolonne)" in item.inner_text()
    acked = site["api"].get("/api/v1/alerts", params={"status": "active"}).json()[0]
    assert (acked["status"], acked["acknowledged_by"]) == ("acknowledged", "crew")
    context.close()
    _only_tiles_went_out(site)


def test_the_demo_says_how_far_its_history_has_loaded(browser, site):
    from app.demo import Progress

    context = _context(browser, site, {"width": 360, "height": 740}, phone=True)
    page = _page(context, site)
    page.goto(f"{site['base']}/uebersicht")
    _wait_js(page, "document.querySelector('#alerts-body').children.length > 0")
    assert page.locator("#demo-banner").is_hidden()  # not a demo: nothing to say

    progress = Progress()
    progress.begin(resumed=False)
    progress.update(0.63)
    site["service"].demo = progress
    page.goto(f"{site['base']}/tagesroute")
    banner = page.locator("#demo-banner")
    banner.wait_for(state="visible")
    assert banner.inner_text().startswith("Demo: Daten der letzten Woche werden geladen … 63 %")
    progress.finish()
    wait_until(lambda: "Daten geladen" in banner.inner_text(), timeout=10,
               what="the banner to say the data is loaded")
    page.locator("#lang-toggle").click()
    assert "data loaded" in banner.inner_text()
    _only_tiles_went_out(site)
    context.close()



def test_a_day_without_a_plan_leads_to_the_next_one_on_screen_and_on_paper(browser, site):
    """Sunday: nothing planned today, Monday is. The page opens on Monday's plan; asked for
    Sunday, it says so and links to Monday; printed, Sunday's sheet says it, not a blank."""
    today = dt.datetime.now(TZ).date()
    tomorrow = today + dt.timedelta(days=1)
    with psycopg.connect(site["db"]) as conn:
        conn.execute("DELETE FROM route_plans WHERE day = %s AND kind = 'collection'", (today,))
    made = site["api"].post("/api/v1/routes/plan", headers={"Authorization": f"Bearer {TOKEN}"},
                            json={"kind": "collection", "time_limit_s": 1,
                                  "date": tomorrow.isoformat()})
    assert made.status_code == 200, made.text
    busy = [p for p in made.json()["plans"] if p["stops"]]
    assert busy

    context = _context(browser, site, PHONE, phone=True)
    page = _page(context, site)
    page.goto(f"{site['base']}/tagesroute")
    page.locator("#stops-body tr.stop").first.wait_for()
    assert f"datum={tomorrow.isoformat()}" in page.url
    # Only vehicles with stops get a tab.
    assert page.locator("#vehicle-tabs a").count() == len(busy)

    page.goto(f"{site['base']}/tagesroute?datum={today.isoformat()}&art=collection")
    link = page.locator("#next-plan-link")
    link.wait_for()
    assert "keinen Plan" in page.locator("#route-message").inner_text()
    page.screenshot(path=ARTIFACTS / "tagesroute-no-plan.png")
    page.emulate_media(media="print")
    assert page.locator("#route-message").is_visible()  # the printed sheet is not blank
    page.emulate_media(media="screen")
    link.click()
    page.locator("#stops-body tr.stop").first.wait_for()
    assert f"datum={tomorrow.isoformat()}" in page.url
    _only_tiles_went_out(site)
    context.close()
