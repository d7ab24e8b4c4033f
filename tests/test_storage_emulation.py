"""The TTS Storage Integration emulation, over real HTTP, as the service's backfill will use it."""
from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from simulator.storage import StorageServer, UplinkArchive
from simulator.tts import VirtualDevice

APP = "bauhof-sensors"
OTHER_APP = "stadtwerke-sensors"
KEY = "NNSXS.BAUHOFKEY.SECRET1"
OTHER_KEY = "NNSXS.STADTWERKEKEY.SECRET2"
T0 = datetime(2025, 6, 2, 6, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=4)  # the server's clock, for ``last``
UPLINKS = "/api/v3/as/applications/{app}/packages/storage/uplink_message"
DEVICE_UPLINKS = "/api/v3/as/applications/{app}/devices/{dev}/packages/storage/uplink_message"


def device(device_id: str, application_id: str = APP) -> VirtualDevice:
    rng = random.Random(device_id)
    return VirtualDevice(device_id, rng.randbytes(8).hex().upper(),
                         application_id=application_id, rng=rng)


def minutes(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


def received(doc: dict) -> str:
    return doc["received_at"]


@pytest.fixture(scope="module")
def docs() -> dict[str, list[dict]]:
    """Two bins and a soil probe of APP, one device of another application. bin-a's uplinks
    are added out of order (t+30 min arrives after t+90 min), as a late message would."""
    bin_a, bin_b, soil = device("bin-a"), device("bin-b"), device("soil-1")
    made = {
        "bin-a": [bin_a.uplink(b"\x01\x02", f_port=2, received_at=t) for t in minutes(0, 60, 90)],
        "bin-b": [bin_b.uplink(b"\x01\x03", f_port=2, received_at=t) for t in minutes(15, 45)],
        "soil-1": [soil.uplink(b"\x07", f_port=10, received_at=t) for t in minutes(20, 200)],
        "other": [device("pump-1", OTHER_APP).uplink(b"\x09", received_at=T0)],
    }
    made["late"] = [bin_a.uplink(b"\x01\x04", f_port=2, received_at=T0 + timedelta(minutes=30))]
    return made


@pytest.fixture(scope="module")
def archive(docs: dict[str, list[dict]]) -> UplinkArchive:
    store = UplinkArchive()
    for name in ("bin-a", "bin-b", "soil-1", "other", "late"):
        for doc in docs[name]:
            store.add(doc)
    return store


@pytest.fixture(scope="module")
def http(archive: UplinkArchive) -> Iterator[httpx.Client]:
    with StorageServer(archive, {KEY: APP, OTHER_KEY: OTHER_APP}, clock=lambda: NOW) as server:
        with httpx.Client(base_url=server.url, timeout=5,
                          headers={"Authorization": f"Bearer {KEY}"}) as client:
            yield client


def results(answer: httpx.Response) -> list[dict]:
    """Parse the stream as a backfill should: one JSON object per non-empty line."""
    assert answer.status_code == 200, answer.text
    lines = [line for line in answer.text.splitlines() if line.strip()]
    objects = [json.loads(line) for line in lines]
    assert all(set(o) == {"result"} for o in objects)
    return [o["result"] for o in objects]


def times(answer: httpx.Response) -> list[str]:
    return [received(doc) for doc in results(answer)]


def test_event_stream_body_is_result_objects_separated_by_blank_lines(http, docs) -> None:
    answer = http.get(UPLINKS.format(app=APP), params={"order": "received_at"},
                      headers={"Accept": "text/event-stream"})
    assert answer.headers["content-type"] == "text/event-stream"
    assert answer.text.endswith("}\n\n") and "}\n\n{" in answer.text
    expected = sorted(docs["bin-a"] + docs["bin-b"] + docs["soil-1"] + docs["late"], key=received)
    assert results(answer) == expected  # exactly what the simulator sent, other app left out


def test_without_event_stream_accept_the_body_is_json_lines(http) -> None:
    answer = http.get(UPLINKS.format(app=APP), params={"order": "received_at", "limit": 2})
    assert answer.headers["content-type"] == "application/json"
    assert answer.text.count("\n") == 2 and "\n\n" not in answer.text
    assert len(results(answer)) == 2


def test_after_and_before_alone_are_exclusive_and_together_inclusive(http, docs) -> None:
    url = DEVICE_UPLINKS.format(app=APP, dev="bin-a")
    a0, a60, a90 = (received(d) for d in docs["bin-a"])
    late = received(docs["late"][0])
    ordered = {"order": "received_at"}
    assert times(http.get(url, params={**ordered, "after": a60})) == [a90]
    assert times(http.get(url, params={**ordered, "before": a60})) == [a0, late]
    assert times(http.get(url, params={**ordered, "after": late, "before": a90})) == [
        late, a60, a90]


def test_order_and_limit(http, docs) -> None:
    url = UPLINKS.format(app=APP)
    all_times = sorted(received(d) for n in ("bin-a", "bin-b", "soil-1", "late") for d in docs[n])
    assert times(http.get(url, params={"order": "received_at", "limit": 3})) == all_times[:3]
    assert times(http.get(url, params={"order": "-received_at", "limit": 2})) == [
        all_times[-1], all_times[-2]]


def test_without_order_messages_come_in_storage_order_not_time_order(http, docs) -> None:
    url = DEVICE_UPLINKS.format(app=APP, dev="bin-a")
    stored = [received(d) for d in docs["bin-a"] + docs["late"]]
    assert times(http.get(url)) == stored
    assert stored != sorted(stored)


def test_last_counts_back_from_the_servers_clock(http, docs) -> None:
    # NOW is T0 + 4 h: the last hour holds only soil-1's uplink at T0 + 200 min.
    answer = http.get(UPLINKS.format(app=APP), params={"last": "1h"})
    assert times(answer) == [received(docs["soil-1"][1])]
    since = NOW - timedelta(hours=3, minutes=30)  # T0 + 30 min
    expected = [d for n in ("bin-a", "bin-b", "soil-1", "late") for d in docs[n]
                if datetime.fromisoformat(received(d)) > since]
    answer = http.get(UPLINKS.format(app=APP), params={"last": "3h30m", "order": "received_at"})
    assert results(answer) == sorted(expected, key=received)
    assert len(expected) == 5  # bin-a 60, 90; bin-b 45; soil-1 200; the late one at 30 + ms


def test_last_with_after_is_rejected(http) -> None:
    answer = http.get(UPLINKS.format(app=APP),
                      params={"last": "1h", "after": "2025-06-02T06:00:00Z"})
    assert answer.status_code == 400
    assert answer.json()["code"] == 3


def test_f_port_filter(http, docs) -> None:
    answer = http.get(UPLINKS.format(app=APP), params={"f_port": 10, "order": "received_at"})
    assert results(answer) == docs["soil-1"]


def test_device_endpoint_returns_only_that_device(http, docs) -> None:
    answer = http.get(DEVICE_UPLINKS.format(app=APP, dev="bin-b"), params={"order": "received_at"})
    assert results(answer) == docs["bin-b"]


def test_count_per_device_with_filters(http) -> None:
    url = UPLINKS.format(app=APP) + "/count"
    assert http.get(url).json() == {"count": {"bin-a": 4, "bin-b": 2, "soil-1": 2}}
    assert http.get(url, params={"f_port": 10}).json() == {"count": {"soil-1": 2}}
    device_url = DEVICE_UPLINKS.format(app=APP, dev="bin-b") + "/count"
    assert http.get(device_url).json() == {"count": {"bin-b": 2}}
    assert http.get(device_url, params={"after": "2030-01-01T00:00:00Z"}).json() == {}


def test_empty_result_is_200_with_empty_body(http) -> None:
    answer = http.get(UPLINKS.format(app=APP), params={"after": "2030-01-01T00:00:00Z"},
                      headers={"Accept": "text/event-stream"})
    assert answer.status_code == 200
    assert answer.content == b""
    assert results(answer) == []


def test_missing_key_is_401_unauthenticated(http) -> None:
    answer = http.get(UPLINKS.format(app=APP), headers={"Authorization": ""})
    assert answer.status_code == 401
    body = answer.json()
    assert body["code"] == 16
    assert body["details"][0]["@type"] == "type.googleapis.com/ttn.lorawan.v3.ErrorDetails"


def test_unknown_key_is_401_api_key_not_found(http) -> None:
    answer = http.get(UPLINKS.format(app=APP), headers={"Authorization": "Bearer NNSXS.NOPE.NOPE"})
    assert answer.status_code == 401
    assert answer.json()["details"][0]["name"] == "api_key_not_found"


def test_key_of_another_application_is_403_no_rights(http) -> None:
    answer = http.get(UPLINKS.format(app=APP), headers={"Authorization": f"Bearer {OTHER_KEY}"})
    assert answer.status_code == 403
    body = answer.json()
    assert body["code"] == 7
    assert body["message"] == ("error:pkg/auth/rights:no_application_rights "
                               f"(no rights for application `{APP}@ttn`)")
    # An application that does not exist is no different: TTS never says 404.
    assert http.get(UPLINKS.format(app="no-such-app")).status_code == 403


def test_invalid_requests_are_400(http) -> None:
    bad_type = http.get(f"/api/v3/as/applications/{APP}/packages/storage/uplinks")
    assert bad_type.status_code == 400
    assert bad_type.json()["details"][0]["attributes"]["field"] == "type"
    assert http.get(UPLINKS.format(app=APP), params={"order": "time"}).status_code == 400
    not_rfc3339 = http.get(UPLINKS.format(app=APP), params={"after": "2025-06-02 06:00:00"})
    assert not_rfc3339.status_code == 400 and not_rfc3339.json()["code"] == 3
    assert http.get("/api/v3/as/applications").json()["code"] == 5


def test_other_message_types_are_empty_and_field_mask_prunes(http, docs) -> None:
    join = http.get(f"/api/v3/as/applications/{APP}/packages/storage/join_accept")
    assert join.status_code == 200 and join.content == b""
    answer = http.get(DEVICE_UPLINKS.format(app=APP, dev="soil-1"),
                      params={"order": "received_at",
                              "field_mask": "end_device_ids.device_id,up.uplink_message.f_port"})
    assert results(answer) == [{"end_device_ids": {"device_id": "soil-1"},
                                "uplink_message": {"f_port": 10}}] * 2


def test_archive_queries_sort_out_of_order_adds_by_received_at(archive, docs) -> None:
    assert len(archive) == 9
    found = archive.query(APP, device_id="bin-a", order="received_at")
    assert [received(d) for d in found] == sorted(received(d) for d in docs["bin-a"] + docs["late"])
    assert archive.count(APP, after=T0 + timedelta(minutes=50)) == 3
    assert archive.query(APP, last=timedelta(hours=1), now=NOW) == [docs["soil-1"][1]]


def test_jsonl_round_trip_and_a_cut_off_last_line(tmp_path: Path, docs) -> None:
    path = tmp_path / "archive.jsonl"
    first = UplinkArchive(path)
    for doc in docs["bin-b"] + docs["late"]:
        first.add(doc)
    first.close()
    with path.open("ab") as f:
        f.write(b'{"end_device_ids": {"device_id": "bin-')  # a crash in the middle of a write
    again = UplinkArchive(path)
    assert len(again) == 3
    assert again.query(APP, order="received_at") == sorted(docs["bin-b"] + docs["late"],
                                                          key=received)
    again.add(docs["soil-1"][0])
    again.close()
    assert len(UplinkArchive(path)) == 4  # the new line was not glued to the broken one
