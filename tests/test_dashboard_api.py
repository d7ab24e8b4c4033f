"""Dashboard API (issue 7): ETag/304 and Cache-Control, series in buckets, pagination, CSV."""
from __future__ import annotations

import csv
import gc
import io
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from helpers import running_service
from pydantic import TypeAdapter

from app.aggregates import HourlyAggregate
from app.api.caching import if_none_match, parse_if_none_match
from app.api.devices import DeviceLatest
from app.api.series import (MAX_POINTS, DeviceSeries, ManySeries, Window, parse_bucket,
                            query_series)

UTC = timezone.utc


def t(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# bin-a, fill level: four readings 10:00-10:45, two 11:00-12:00, one at 22:30 UTC, which is
# 00:30 of the next day in Berlin (summer time, +02:00).
FILL_A = [("2025-06-03T10:00:00Z", 10.0), ("2025-06-03T10:15:00Z", 20.0),
          ("2025-06-03T10:30:00Z", 30.0), ("2025-06-03T10:45:00Z", 40.0),
          ("2025-06-03T11:05:00Z", 50.0), ("2025-06-03T11:50:00Z", 45.5),
          ("2025-06-03T22:30:00Z", 70.0)]
DEVICES = [("bin-a", "bin", "Mülleimer Schloßstraße", "Wächtersbach"),
           ("bin-b", "bin", "Mülleimer Brückengasse", "Wächtersbach"),
           ("soil-a", "soil", "Straßenbaum Kirchplatz", "Bad Orb")]


def insert(conn: psycopg.Connection, device_id: str, metric: str,
           points: list[tuple[str | datetime, float]]) -> None:
    """Write readings as the store does: latest values kept, and on TimescaleDB the hourly
    aggregate refreshed over the hours written late."""
    times = []
    for time, value in points:
        time = t(time) if isinstance(time, str) else time
        times.append(time)
        conn.execute("INSERT INTO readings (time, device_id, metric, value)"
                     " VALUES (%s, %s, %s, %s)", (time, device_id, metric, value))
        conn.execute(
            "INSERT INTO latest_readings (device_id, metric, time, value)"
            " VALUES (%s, %s, %s, %s) ON CONFLICT (device_id, metric) DO UPDATE"
            " SET time = EXCLUDED.time, value = EXCLUDED.value"
            " WHERE latest_readings.time < EXCLUDED.time", (device_id, metric, time, value))
    aggregate = HourlyAggregate()
    aggregate.detect(conn)
    aggregate.after_commit(conn, times)


def seed(conninfo: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for device_id, kind, name, town in DEVICES:
            conn.execute("INSERT INTO devices (device_id, kind, name, municipality, registered)"
                         " VALUES (%s, %s, %s, %s, true)", (device_id, kind, name, town))
        insert(conn, "bin-a", "fill_level_pct", FILL_A)
        insert(conn, "bin-a", "battery_v", [("2025-06-03T10:00:00Z", 3.6),
                                            ("2025-06-03T10:45:00Z", 3.58)])
        insert(conn, "bin-b", "fill_level_pct", [("2025-06-03T10:10:00Z", 5.0),
                                                 ("2025-06-03T10:20:00Z", 7.0)])
        insert(conn, "soil-a", "soil_moisture_vwc_pct", [("2025-06-03T10:00:00Z", 31.2)])


def test_if_none_match_parsing():
    assert parse_if_none_match('"a", W/"b" ,"c,d"') == ['"a"', '"b"', '"c,d"']
    assert parse_if_none_match("*") == ["*"]
    assert parse_if_none_match(None) == []
    assert if_none_match('W/"x"', '"x"')
    assert if_none_match('"y", "x"', '"x"')
    assert if_none_match("*", '"x"')
    assert not if_none_match('"y"', '"x"')
    assert not if_none_match("", '"x"')


def test_etag_304_cache_control_and_change(db):
    seed(db)
    with running_service(db) as (service, client):
        polls = ["/api/v1/latest", "/api/v1/latest?municipality=Wächtersbach",
                 "/api/v1/devices", "/api/v1/devices/bin-a", "/api/v1/devices/bin-a/latest",
                 "/api/v1/devices/bin-a/readings?since=2025-06-03T00:00:00Z"
                 "&until=2025-06-04T00:00:00Z",
                 "/api/v1/devices/bin-a/series?since=2025-06-03T00:00:00Z"
                 "&until=2025-06-04T00:00:00Z&bucket=1h",
                 "/api/v1/series?metric=fill_level_pct&since=2025-06-03T00:00:00Z"
                 "&until=2025-06-04T00:00:00Z",
                 "/api/v1/decoders"]
        tags = {}
        for url in polls:
            first = client.get(url)
            assert first.status_code == 200, (url, first.text)
            etag = first.headers["etag"]
            assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10, url
            assert first.headers["cache-control"].startswith("private, max-age="), url
            again = client.get(url, headers={"If-None-Match": etag})
            assert again.status_code == 304, url
            assert again.content == b"" and again.headers["etag"] == etag, url
            assert again.headers["cache-control"] == first.headers["cache-control"], url
            for header in (f"W/{etag}", f'"nope", {etag}', "*"):
                assert client.get(url, headers={"If-None-Match": header}).status_code == 304
            assert client.get(url, headers={"If-None-Match": '"nope"'}).status_code == 200
            tags[url] = etag

        latest = client.get(polls[0])
        assert latest.headers["cache-control"] == "private, max-age=5"
        TypeAdapter(list[DeviceLatest]).validate_python(latest.json())
        assert [d["device_id"] for d in latest.json()] == ["bin-a", "bin-b", "soil-a"]
        # A range that ended long ago may be kept for an hour.
        assert client.get(polls[6]).headers["cache-control"] == "private, max-age=3600"

        # New data changes the tags of everything it appears in, and only those.
        with psycopg.connect(db, autocommit=True) as conn:
            insert(conn, "bin-a", "fill_level_pct", [("2025-06-03T23:00:00Z", 99.0)])
        for url in polls[:2] + polls[4:8]:
            answer = client.get(url, headers={"If-None-Match": tags[url]})
            assert answer.status_code == 200, url
            assert answer.headers["etag"] != tags[url], url
        for url in polls[2:4]:
            assert client.get(url, headers={"If-None-Match": tags[url]}).status_code == 304

        # Moving a device to another municipality changes the filtered answer's tag, although
        # no reading changed.
        url = polls[1]
        tag = client.get(url).headers["etag"]
        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute("UPDATE devices SET municipality = 'Birstein' WHERE device_id = 'bin-b'")
        moved = client.get(url, headers={"If-None-Match": tag})
        assert moved.status_code == 200 and [d["device_id"] for d in moved.json()] == ["bin-a"]

        # Errors carry no cache headers.
        missing = client.get("/api/v1/devices/no-such-device")
        assert missing.status_code == 404 and "etag" not in missing.headers


def test_series_buckets_on_known_data(db, timescaledb):
    """The same numbers on both databases; whole hours come from the continuous aggregate
    where TimescaleDB has one, from the readings otherwise."""
    hourly_source = "readings_hourly" if timescaledb else "readings"
    seed(db)
    with running_service(db) as (service, client):
        url = "/api/v1/devices/bin-a/series"
        hourly = client.get(url, params={"metric": "fill_level_pct", "bucket": "1h",
                                         "since": "2025-06-03T10:20:00Z",
                                         "until": "2025-06-03T11:40:00Z"}).json()
        # The range is widened to whole buckets.
        assert hourly["since"] == "2025-06-03T10:00:00Z"
        assert hourly["until"] == "2025-06-03T12:00:00Z"
        assert hourly["bucket"] == "PT1H" and hourly["source"] == hourly_source
        [series] = hourly["series"]
        assert series["metric"] == "fill_level_pct"
        assert series["points"] == [
            {"time": "2025-06-03T10:00:00Z", "avg": 25.0, "min": 10.0, "max": 40.0,
             "last": 40.0, "n": 4},
            {"time": "2025-06-03T11:00:00Z", "avg": 47.75, "min": 45.5, "max": 50.0,
             "last": 45.5, "n": 2}]
        DeviceSeries.model_validate(hourly)  # the documented model, though not validated
        iso = client.get(url, params={"metric": "fill_level_pct", "bucket": "PT1H",
                                      "since": "2025-06-03T10:20:00Z",
                                      "until": "2025-06-03T11:40:00Z"}).json()
        assert iso == hourly

        quarter = client.get(url, params={"metric": "fill_level_pct", "bucket": "15m",
                                          "since": "2025-06-03T10:00:00Z",
                                          "until": "2025-06-03T10:30:00Z"}).json()
        assert quarter["source"] == "readings"  # below an hour: never the aggregate
        assert [(p["time"], p["n"], p["last"]) for p in quarter["series"][0]["points"]] == [
            ("2025-06-03T10:00:00Z", 1, 10.0), ("2025-06-03T10:15:00Z", 1, 20.0)]

        # Without a metric: every metric of the device.
        both = client.get(url, params={"bucket": "1d", "since": "2025-06-03T00:00:00Z",
                                       "until": "2025-06-04T00:00:00Z"}).json()
        assert both["source"] == hourly_source
        by_metric = {s["metric"]: s["points"] for s in both["series"]}
        assert set(by_metric) == {"battery_v", "fill_level_pct"}
        [day] = by_metric["fill_level_pct"]
        assert day["time"] == "2025-06-03T00:00:00Z" and day["n"] == 7
        assert day["avg"] == pytest.approx(265.5 / 7) and day["last"] == 70.0
        assert by_metric["battery_v"][0]["last"] == 3.58

        # Days in Berlin: the local day 3 June ends at 22:00 UTC, so 22:30 UTC is the 4th.
        berlin = client.get(url, params={"metric": "fill_level_pct", "bucket": "1d",
                                         "tz": "Europe/Berlin",
                                         "since": "2025-06-03T00:00:00+02:00",
                                         "until": "2025-06-04T00:00:00+02:00"}).json()
        assert berlin["tz"] == "Europe/Berlin"
        [local_day] = berlin["series"][0]["points"]
        assert local_day["time"] == "2025-06-02T22:00:00Z" and local_day["n"] == 6
        assert local_day["avg"] == pytest.approx(195.5 / 6) and local_day["last"] == 45.5

        # Many devices, one metric, filtered.
        many = client.get("/api/v1/series", params={
            "metric": "fill_level_pct", "municipality": "Wächtersbach", "bucket": "1h",
            "since": "2025-06-03T10:00:00Z", "until": "2025-06-03T11:00:00Z"}).json()
        ManySeries.model_validate(many)
        assert [(s["device_id"], s["name"]) for s in many["series"]] == [
            ("bin-a", "Mülleimer Schloßstraße"), ("bin-b", "Mülleimer Brückengasse")]
        assert many["series"][1]["points"] == [{"time": "2025-06-03T10:00:00Z", "avg": 6.0,
                                                "min": 5.0, "max": 7.0, "last": 7.0, "n": 2}]
        soil = client.get("/api/v1/series", params={
            "metric": "soil_moisture_vwc_pct", "kind": "soil",
            "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z"}).json()
        assert [s["device_id"] for s in soil["series"]] == ["soil-a"]
        chosen = client.get("/api/v1/series", params=[
            ("metric", "fill_level_pct"), ("device_id", "bin-b"),
            ("since", "2025-06-03T00:00:00Z"), ("until", "2025-06-04T00:00:00Z")]).json()
        assert [s["device_id"] for s in chosen["series"]] == ["bin-b"]

        # Bounded, with a clear message.
        huge = client.get("/api/v1/series", params={
            "metric": "fill_level_pct", "bucket": "1m", "since": "2025-01-01T00:00:00Z",
            "until": "2025-06-01T00:00:00Z"})
        assert huge.status_code == 422
        assert f"{MAX_POINTS:,}" in huge.json()["detail"] and "3 devices" in huge.json()["detail"]
        for bad in ({"bucket": "1 month"}, {"bucket": "P1M"}, {"bucket": "10s"},
                    {"tz": "Mars/Olympus"}, {"since": "2025-06-03T00:00:00"}):
            assert client.get(url, params=bad).status_code == 422, bad
        assert client.get("/api/v1/devices/nobody/series").status_code == 404
        assert client.get("/api/v1/devices/nobody/series",
                          params={"metric": "fill_level_pct"}).status_code == 404
        # A known device without readings in the range: an empty series, not a 404.
        empty = client.get(url, params={"metric": "fill_level_pct",
                                        "since": "2020-01-01T00:00:00Z",
                                        "until": "2020-01-02T00:00:00Z"})
        assert empty.status_code == 200 and empty.json()["series"] == []

    # The aggregate path recombines hourly rows into the same buckets as the readings give.
    # On plain PostgreSQL readings_hourly is a view over readings; on TimescaleDB its hours
    # are the materialised ones (the readings were written long after their hours).
    from zoneinfo import ZoneInfo

    with psycopg.connect(db) as conn:
        if timescaledb:
            schema, table = conn.execute(
                "SELECT materialization_hypertable_schema, materialization_hypertable_name"
                " FROM timescaledb_information.continuous_aggregates"
                " WHERE view_name = 'readings_hourly'").fetchone()
            # bin-a: fill at 10, 11 and 22 h, battery at 10 h; bin-b and soil-a at 10 h.
            assert conn.execute(f'SELECT count(*) FROM "{schema}"."{table}"').fetchone()[0] == 6
        for bucket, zone in ((timedelta(hours=1), None), (timedelta(days=1), "Europe/Berlin"),
                             (timedelta(hours=3), None)):
            window = Window(t("2025-06-02T00:00:00Z"), t("2025-06-05T00:00:00Z"), bucket,
                            ZoneInfo(zone) if zone else None)
            raw = query_series(conn, window, ["bin-a", "bin-b"],
                               ["fill_level_pct", "battery_v"], "readings")
            rolled = query_series(conn, window, ["bin-a", "bin-b"],
                                  ["fill_level_pct", "battery_v"], "readings_hourly")
            assert len(raw) == len(rolled) > 0
            for a, b in zip(raw, rolled):
                assert a[:3] == b[:3] and a[4:] == b[4:] and a[3] == pytest.approx(b[3])


def test_bucket_parsing():
    assert parse_bucket("15m") == timedelta(minutes=15)
    assert parse_bucket("PT15M") == timedelta(minutes=15)
    assert parse_bucket("1h") == parse_bucket("PT1H") == timedelta(hours=1)
    assert parse_bucket("P1D") == parse_bucket("1d") == timedelta(days=1)
    assert parse_bucket("1w") == parse_bucket("P1W") == timedelta(weeks=1)
    assert parse_bucket("P1DT12H") == timedelta(hours=36)


def test_pagination_link_header_walks_all_pages(db):
    with psycopg.connect(db, autocommit=True) as conn:
        for i in range(23):
            conn.execute("INSERT INTO devices (device_id, kind, municipality) VALUES (%s, %s, %s)",
                         (f"dev-{i:03d}", "bin" if i % 2 else "soil",
                          "Gründau" if i % 3 else "Linsengericht"))
        # Two metrics at the same times: the cursor must not lose or repeat ties.
        start = t("2025-06-03T00:00:00Z")
        for metric in ("battery_v", "distance_m"):
            insert(conn, "dev-000", metric,
                   [(start + timedelta(minutes=10 * i), float(i)) for i in range(11)])

    def walk(client, url: str) -> tuple[list[dict], int]:
        items, pages = [], 0
        while url:
            answer = client.get(url)
            assert answer.status_code == 200, answer.text
            items += answer.json()
            pages += 1
            link = answer.headers.get("link")
            if link is None:
                break
            target, rel = link.split(";")
            assert rel.strip() == 'rel="next"' and target.startswith("</api/v1/")
            url = target.strip()[1:-1]
        return items, pages

    with running_service(db) as (service, client):
        everything, pages = walk(client, "/api/v1/devices?limit=5")
        assert [d["device_id"] for d in everything] == [f"dev-{i:03d}" for i in range(23)]
        assert pages == 5
        first = client.get("/api/v1/devices?limit=5")
        assert first.headers["x-total-count"] == "23"
        by_offset, pages = walk(client, "/api/v1/devices?limit=10&offset=0")
        assert by_offset == everything and pages == 3
        bins, _ = walk(client, "/api/v1/devices?limit=3&kind=bin&municipality=Gründau")
        expected = [f"dev-{i:03d}" for i in range(23) if i % 2 and i % 3]
        assert [d["device_id"] for d in bins] == expected
        assert client.get("/api/v1/devices?kind=bin&municipality=Gründau"
                          ).headers["x-total-count"] == str(len(expected))
        exact, pages = walk(client, "/api/v1/devices?limit=23")
        assert len(exact) == 23 and pages == 1  # no Link to an empty page

        rng = "since=2025-06-03T00:00:00Z&until=2025-06-04T00:00:00Z"
        whole = client.get(f"/api/v1/devices/dev-000/readings?{rng}").json()
        assert len(whole) == 22 and "link" not in client.get(
            f"/api/v1/devices/dev-000/readings?{rng}").headers
        paged, pages = walk(client, f"/api/v1/devices/dev-000/readings?{rng}&limit=3")
        assert paged == whole and pages == 8
        assert client.get("/api/v1/devices?cursor=%%%").status_code == 422
        assert client.get("/api/v1/devices?cursor=abc&offset=3").status_code == 422


def test_csv_export_german_spreadsheet(db):
    seed(db)
    with running_service(db) as (service, client):
        answer = client.get("/api/v1/devices/bin-a/readings.csv", params={
            "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z",
            "delimiter": ";", "decimal": "comma"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        disposition = answer.headers["content-disposition"]
        assert disposition.startswith("attachment; filename=") and disposition.endswith('.csv"')
        assert "bin-a" in disposition
        assert answer.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM
        rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig")), delimiter=";"))
        assert rows[0] == ["time", "device_id", "name", "municipality", "kind", "metric",
                           "value"]
        body = rows[1:]
        assert len(body) == 9 and all(len(r) == 7 for r in body)
        assert body[0] == ["2025-06-03T12:00:00+02:00", "bin-a", "Mülleimer Schloßstraße",
                           "Wächtersbach", "bin", "battery_v", "3,6"]
        fills = [r[6] for r in body if r[5] == "fill_level_pct"]
        assert fills == ["10,0", "20,0", "30,0", "40,0", "50,0", "45,5", "70,0"]
        assert body[-1][0] == "2025-06-04T00:30:00+02:00"  # local time with its offset
        assert [float(v.replace(",", ".")) for v in fills] == [v for _, v in FILL_A]

        utc = client.get("/api/v1/devices/bin-a/readings.csv", params={
            "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z",
            "metric": "fill_level_pct", "tz": "UTC", "bom": "false"})
        assert not utc.content.startswith(b"\xef\xbb\xbf")
        plain = list(csv.DictReader(io.StringIO(utc.text)))
        assert [(r["time"], float(r["value"])) for r in plain] == [
            (t(time).isoformat(), value) for time, value in FILL_A]

        many = client.get("/api/v1/readings.csv", params={
            "metric": "fill_level_pct", "municipality": "Wächtersbach", "kind": "bin",
            "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z",
            "delimiter": ";", "decimal": "comma"})
        assert many.status_code == 200
        rows = list(csv.reader(io.StringIO(many.content.decode("utf-8-sig")), delimiter=";"))
        assert [r[1] for r in rows[1:]] == ["bin-a"] * 7 + ["bin-b"] * 2
        assert rows[-1][2] == "Mülleimer Brückengasse" and rows[-1][6] == "7,0"
        soil = client.get("/api/v1/readings.csv", params={
            "kind": "soil", "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z"})
        assert [r["device_id"] for r in csv.DictReader(io.StringIO(
            soil.content.decode("utf-8-sig")))] == ["soil-a"]

        # A decimal comma in comma-separated values: unusual, but the values are quoted.
        odd = client.get("/api/v1/readings.csv", params={
            "decimal": "comma", "since": "2025-06-03T00:00:00Z", "until": "2025-06-04T00:00:00Z"})
        assert odd.status_code == 200
        quoted = list(csv.reader(io.StringIO(odd.content.decode("utf-8-sig"))))
        assert len(quoted[1]) == 7 and all("," in row[6] for row in quoted[1:])
        assert f'"{quoted[1][6]}"' in odd.text
        assert client.get("/api/v1/devices/nobody/readings.csv").status_code == 404


def test_openapi_documents_the_dashboard_endpoints(db):
    with running_service(db) as (service, client):
        spec = client.get("/openapi.json").json()
        # Start-up objects are kept out of garbage collections (FreezeStartupHeap) ...
        assert gc.get_freeze_count() > 0
    assert gc.get_freeze_count() == 0  # ... until shutdown
    paths = spec["paths"]
    ours = ["/api/v1/devices", "/api/v1/devices/{device_id}", "/api/v1/devices/{device_id}/latest",
            "/api/v1/latest", "/api/v1/devices/{device_id}/readings",
            "/api/v1/devices/{device_id}/series", "/api/v1/series",
            "/api/v1/devices/{device_id}/readings.csv", "/api/v1/readings.csv"]
    for path in ours:
        operation = paths[path]["get"]
        assert operation.get("summary"), path
        content = operation["responses"]["200"]["content"]
        media = content.get("application/json") or content["text/csv"]
        assert media.get("example") or media.get("examples"), path
        for parameter in operation.get("parameters", []):
            if parameter["name"] in ("cursor",):
                continue
            schema = parameter.get("schema", {})
            assert parameter.get("examples") or parameter.get("example") or \
                schema.get("examples") or parameter["name"] in ("bom",), (path, parameter)
    assert "ETag" in paths["/api/v1/latest"]["get"]["responses"]["200"]["headers"]
    assert "304" in paths["/api/v1/latest"]["get"]["responses"]
    assert "Link" in paths["/api/v1/devices"]["get"]["responses"]["200"]["headers"]
    schemas = spec["components"]["schemas"]
    for model in ("DeviceSeries", "ManySeries", "Point", "Value", "DeviceLatest"):
        assert schemas[model].get("examples"), model
    series = paths["/api/v1/devices/{device_id}/series"]["get"]
    assert series["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] \
        .endswith("/DeviceSeries")
