"""The HTTP API: device registry, latest values, readings, tokens, metrics, health."""
from __future__ import annotations

import psycopg
from fixtures_data import DATA
from helpers import SECRET, TOKEN, running_service

AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOOK = {"X-Webhook-Secret": SECRET}
DECODED = (DATA / "examples" / "tts_uplink_decoded.json").read_bytes()


def test_configuring_a_device_needs_a_token(db):
    with running_service(db) as (service, client):
        body = {"name": "Marktplatz", "kind": "bin"}
        assert client.put("/api/v1/devices/bin-001", json=body).status_code == 401
        assert client.put("/api/v1/devices/bin-001", json=body,
                          headers={"Authorization": "Bearer wrong-token-123456"}
                          ).status_code == 401
        answer = client.put("/api/v1/devices/bin-001", json=body, headers=AUTH)
        assert answer.status_code == 200 and answer.json()["registered"] is True
    with running_service(db, api_tokens=[]) as (service, client):
        answer = client.put("/api/v1/devices/bin-001", json=body, headers=AUTH)
        assert answer.status_code == 403 and "BAUHOF_API_TOKENS" in answer.json()["detail"]


def test_device_listing_filters_and_updates_merge(db):
    with running_service(db) as (service, client):
        for device_id, town, kind in [("bin-001", "Bad Orb", "bin"),
                                      ("bin-002", "Birstein", "bin"),
                                      ("soil-001", "Bad Orb", "soil")]:
            client.put(f"/api/v1/devices/{device_id}", headers=AUTH,
                       json={"municipality": town, "kind": kind,
                             "attributes": {"volume_l": 120}}).raise_for_status()
        client.put("/api/v1/devices/bin-001", headers=AUTH,
                   json={"attributes": {"distance_empty_m": 1.0}}).raise_for_status()

        orb = client.get("/api/v1/devices", params={"municipality": "Bad Orb"}).json()
        assert [d["device_id"] for d in orb] == ["bin-001", "soil-001"]
        bins = client.get("/api/v1/devices", params={"kind": "bin"}).json()
        assert [d["device_id"] for d in bins] == ["bin-001", "bin-002"]
        one = client.get("/api/v1/devices/bin-001").json()
        assert one["attributes"] == {"volume_l": 120, "distance_empty_m": 1.0}
        assert one["municipality"] == "Bad Orb"  # kept when a later update leaves it out
        page = client.get("/api/v1/devices", params={"limit": 1, "offset": 1}).json()
        assert [d["device_id"] for d in page] == ["bin-002"]


def test_unknown_device_and_bad_ids(db):
    with running_service(db) as (service, client):
        assert client.get("/api/v1/devices/no-such-device").status_code == 404
        assert client.get("/api/v1/devices/no-such-device/latest").status_code == 404
        assert client.get("/api/v1/devices/DROP TABLE").status_code == 422
        bad = client.put("/api/v1/devices/bin-001", headers=AUTH,
                         json={"decoder": "nobody/nothing"})
        # The known decoders are in the schema, and the answer names them.
        assert bad.status_code == 422 and "decentlab/dl-mbx" in bad.json()["detail"]
        assert bad.json()["errors"][0]["loc"] == ["body", "decoder"]


def test_readings_over_a_time_range(db):
    with running_service(db) as (service, client):
        client.post("/api/v1/webhooks/tts", content=DECODED, headers=HOOK).raise_for_status()
        url = "/api/v1/devices/soil-beet-a3/readings"
        inside = client.get(url, params={"since": "2025-06-03T05:00:00Z",
                                         "until": "2025-06-03T06:00:00Z"}).json()
        assert len(inside) == 5
        assert inside[0]["time"].startswith("2025-06-03T05:48:40.690458")
        before = client.get(url, params={"since": "2025-06-03T04:00:00Z",
                                         "until": "2025-06-03T05:00:00Z"}).json()
        assert before == []
        one = client.get(url, params={"since": "2025-06-01T00:00:00Z",
                                      "metric": "soil_moisture_pct"}).json()
        assert [r["value"] for r in one] == [23.4]
        # default window is the last 24 h; this reading is from 2025
        assert client.get(url).json() == []
        naive = client.get(url, params={"since": "2025-06-03T05:00:00"})
        assert naive.status_code == 422


def test_latest_of_all_devices_in_one_call(db):
    with running_service(db) as (service, client):
        client.post("/api/v1/webhooks/tts", content=DECODED, headers=HOOK).raise_for_status()
        client.put("/api/v1/devices/soil-beet-a3", headers=AUTH,
                   json={"municipality": "Sinntal"}).raise_for_status()
        everything = client.get("/api/v1/latest").json()
        assert [d["device_id"] for d in everything] == ["soil-beet-a3"]
        assert len(everything[0]["values"]) == 5
        assert client.get("/api/v1/latest", params={"municipality": "Birstein"}).json() == []


def test_decoders_metrics_health_and_openapi(db):
    with running_service(db) as (service, client):
        client.post("/api/v1/webhooks/tts", content=DECODED, headers=HOOK).raise_for_status()
        decoders = client.get("/api/v1/decoders").json()
        assert {"id": "decentlab/dl-mbx", "name": "Decentlab DL-MBX", "kind": "bin",
                "tts_version_ids": [{"brand_id": "decentlab", "model_id": "dl-mbx"}]} in decoders
        metrics = client.get("/metrics").text
        assert 'bauhof_uplinks_stored_total{source="tts-webhook"} 1.0' in metrics
        assert "bauhof_batch_commit_seconds_bucket" in metrics
        assert client.get("/health/live").json() == {"status": "alive"}
        ready = client.get("/health/ready").json()
        assert ready["status"] == "ready" and ready["mqtt"] == "disabled"
        spec = client.get("/openapi.json").json()
        assert "/api/v1/devices/{device_id}/readings" in spec["paths"]
        # Dead letters are read like readings: open while no read tokens are configured.
        assert client.get("/api/v1/ingest-errors").status_code == 200


def test_large_json_answers_are_gzipped_small_ones_not(db):
    # A dashboard polling /latest of a whole county gets it compressed; the ETag is the same
    # with and without gzip, so a 304 works for both.
    with running_service(db) as (service, client):
        with psycopg.connect(db) as conn:
            for n in range(60):
                conn.execute("INSERT INTO latest_readings (device_id, metric, time, value)"
                             " VALUES (%s, 'fill_level_pct', now(), %s)", (f"bin-{n:03d}", n))
                conn.execute("INSERT INTO devices (device_id) VALUES (%s)", (f"bin-{n:03d}",))
        big = client.get("/api/v1/latest", headers={"Accept-Encoding": "gzip"})
        plain = client.get("/api/v1/latest", headers={"Accept-Encoding": "identity"})
        assert big.headers["content-encoding"] == "gzip"
        assert big.num_bytes_downloaded < len(plain.content) / 3
        assert "content-encoding" not in plain.headers
        assert big.json() == plain.json() and len(big.json()) == 60
        assert big.headers["etag"] == plain.headers["etag"]
        again = client.get("/api/v1/latest", headers={"Accept-Encoding": "gzip",
                                                      "If-None-Match": big.headers["etag"]})
        assert again.status_code == 304
        small = client.get("/health/live", headers={"Accept-Encoding": "gzip"})
        assert "content-encoding" not in small.headers


def test_dates_and_times_are_iso_8601_or_refused(db):
    # Pydantic alone reads "0" as 1 January 1970 and 0.5 as half a second after it.
    with running_service(db) as (service, client):
        for path, params in (("/api/v1/routes", {"date": "0"}),
                             ("/api/v1/routes", {"date": "2026-5-4"}),
                             ("/api/v1/gaps", {"until": "0.5"}),
                             ("/api/v1/devices/bin-001/readings", {"since": "0"}),
                             ("/api/v1/readings.csv", {"until": "1700000000"})):
            answer = client.get(path, params=params)
            assert answer.status_code == 422, (path, params, answer.text)
            assert "ISO 8601" in answer.text or "YYYY-MM-DD" in answer.text
        assert client.get("/api/v1/routes", params={"date": "2026-05-04"}).status_code == 200
        assert client.get("/api/v1/gaps", params={"until": "2026-05-04T00:00:00Z"}
                          ).status_code == 200
