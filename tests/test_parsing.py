"""TTS and ChirpStack JSON -> Uplink: defaults for omitted fields, keys, clear rejections."""
from __future__ import annotations

import base64
import json
from datetime import datetime, timezone

import pytest

from app.model import Network
from app.sources.chirpstack import parse_chirpstack
from app.sources.errors import Rejected
from app.sources.tts import NotAnUplink, parse_tts
from fixtures_data import DATA

RAW = (DATA / "examples" / "tts_uplink_raw.json").read_bytes()
DECODED = (DATA / "examples" / "tts_uplink_decoded.json").read_bytes()
CHIRPSTACK = (DATA / "examples" / "chirpstack_up.json").read_bytes()


def tts(**changes) -> bytes:
    doc = json.loads(RAW)
    for path, value in changes.items():
        target = doc
        *parents, last = path.split("__")
        for key in parents:
            target = target[key]
        if value is ...:
            target.pop(last, None)
        else:
            target[last] = value
    return json.dumps(doc).encode()


def test_tts_example_fields():
    u = parse_tts(RAW, "tts-mqtt", "v3/bauhof-sensors@ttn/devices/bin-marktplatz-017/up")
    assert (u.network, u.device_id, u.application_id) == (Network.TTS, "bin-marktplatz-017",
                                                           "bauhof-sensors")
    assert u.dev_eui == "70B3D57ED0063A91" and u.f_port == 2 and u.f_cnt == 1842
    assert u.payload == bytes.fromhex("01029e0e1a14")
    # the network server's reception time, not the application server's
    assert u.received_at == datetime(2025, 6, 3, 5, 42, 17, 359402, tzinfo=timezone.utc)
    assert u.radio.frequency == 868300000  # a string on the wire
    assert (u.radio.gateway_count, u.radio.rssi, u.radio.snr) == (2, -97.0, 6.25)
    assert u.radio.spreading_factor == 9 and u.radio.airtime_s == pytest.approx(0.185344)
    assert u.correlation_id == "gs:uplink:01JWX5M3G8Q2T9K4V7B1C6D0EF"


def test_tts_decoded_payload_and_version_ids():
    u = parse_tts(DECODED, "tts-webhook")
    assert u.decoded_payload["soil_moisture_pct"] == 23.4
    assert (u.brand_id, u.model_id) == ("acme-sensorik", "soilprobe-s2")


def test_first_uplink_of_a_session_has_no_f_cnt():
    u = parse_tts(tts(uplink_message__f_cnt=...), "tts-mqtt")
    assert u.f_cnt == 0


def test_mac_only_uplink_has_no_port_and_no_payload():
    u = parse_tts(tts(uplink_message__f_port=..., uplink_message__frm_payload=...), "tts-mqtt")
    assert (u.f_port, u.payload) == (0, b"")


def test_simulated_flag_and_fallback_time():
    u = parse_tts(tts(simulated=True, uplink_message__received_at=...), "tts-mqtt")
    assert u.simulated
    assert u.received_at == datetime(2025, 6, 3, 5, 42, 17, 574210, tzinfo=timezone.utc)


def test_unknown_fields_are_ignored():
    u = parse_tts(tts(uplink_message__some_future_field={"x": 1}), "tts-mqtt")
    assert u.f_cnt == 1842


def test_dedup_key_is_stable_and_scoped_by_session():
    a = parse_tts(RAW, "tts-mqtt")
    b = parse_tts(RAW, "tts-webhook")
    assert a.dedup_key == b.dedup_key == "tts:70B3D57ED0063A91:fi2r2mflmOaerEDs1iv6UA==:1842:2"
    rejoined = parse_tts(tts(uplink_message__session_key_id="AAAAAAAAAAAAAAAAAAAAAA=="),
                         "tts-mqtt")
    assert rejoined.dedup_key != a.dedup_key


def test_device_without_dev_eui_keys_on_application_and_device():
    u = parse_tts(tts(end_device_ids__dev_eui=...), "tts-mqtt")
    assert u.dedup_key.startswith("tts:bauhof-sensors/bin-marktplatz-017:")


def test_join_accept_is_not_an_uplink():
    doc = json.loads(RAW)
    del doc["uplink_message"]
    doc["join_accept"] = {"session_key_id": "AAAAAAAAAAAAAAAAAAAAAA=="}
    with pytest.raises(NotAnUplink):
        parse_tts(json.dumps(doc).encode(), "tts-mqtt")


@pytest.mark.parametrize("raw, stage, reason", [
    (b"{not json", "parse", "not valid JSON"),
    (b"[]", "validate", "Input should be an object"),
    (tts(end_device_ids=...), "validate", "end_device_ids: Field required"),
    (tts(end_device_ids__device_id="Robert'); DROP TABLE devices;--"), "validate",
     "end_device_ids.device_id: String should match pattern"),
    (tts(end_device_ids__device_id="gerät-ü"), "validate", "device_id"),
    (tts(uplink_message__frm_payload="%%%not-base64%%%"), "validate", "not valid base64"),
    (tts(uplink_message__f_cnt=2**40), "validate", "f_cnt: Input should be less than"),
    (tts(uplink_message__f_cnt="many"), "validate", "f_cnt"),
    (tts(uplink_message__f_port=300), "validate", "f_port"),
    (tts(uplink_message__received_at=..., received_at=...,
         uplink_message__rx_metadata=[]), "validate", "no received_at"),
    (tts(uplink_message__received_at="0001-01-01T00:00:00Z", received_at=...,
         uplink_message__rx_metadata=[{"gateway_ids": {"gateway_id": "test"},
                                       "time": "yesterday", "received_at": 1.5}]),
     "validate", "no received_at"),
    (tts(uplink_message__received_at="1970-01-01T00:00:00Z"), "validate",
     "received_at 1970-01-01T00:00:00+00:00 is not between 2000 and 2100"),
    (tts(uplink_message__received_at="2025-06-03T05:42:17"), "validate", "time zone"),
    (tts(uplink_message__frm_payload=base64.b64encode(bytes(300)).decode()), "validate",
     "at most 255"),
    (tts(uplink_message=...), "validate", "no uplink_message"),
    (tts(end_device_ids__dev_eui="XYZ"), "validate", "dev_eui"),
])
def test_bad_input_is_rejected_with_a_reason(raw, stage, reason):
    with pytest.raises(Rejected) as caught:
        parse_tts(raw, "tts-mqtt")
    assert caught.value.stage == stage
    assert reason in caught.value.reason


def test_a_missing_or_zero_network_time_falls_back_to_the_application_then_a_gateway():
    doc = json.loads(RAW)
    server = datetime.fromisoformat(doc["received_at"])
    gateway = datetime.fromisoformat(doc["uplink_message"]["rx_metadata"][0]["received_at"])
    network = datetime.fromisoformat(doc["uplink_message"]["received_at"])
    assert len({server, gateway, network}) == 3
    # Go's zero time, as Console-simulated uplinks and their Storage Integration copies carry.
    zero = "0001-01-01T00:00:00Z"
    assert parse_tts(tts(uplink_message__received_at=zero), "tts-mqtt").received_at == server
    assert parse_tts(tts(uplink_message__received_at=...), "tts-mqtt").received_at == server
    for envelope in (zero, ...):
        u = parse_tts(tts(uplink_message__received_at=zero, received_at=envelope), "tts-mqtt")
        assert u.received_at == gateway
    # Delivered by MQTT, a webhook or the backfill: the same time, so the same key.
    once = parse_tts(tts(uplink_message__received_at=zero), "tts-mqtt")
    again = parse_tts(tts(uplink_message__received_at=zero), "tts-backfill")
    assert (once.received_at, once.dedup_key) == (again.received_at, again.dedup_key)


def test_topic_must_name_the_same_device():
    with pytest.raises(Rejected, match="topic names device 'other-device'"):
        parse_tts(RAW, "tts-mqtt", "v3/bauhof-sensors@ttn/devices/other-device/up")


def test_chirpstack_example():
    u = parse_chirpstack(CHIRPSTACK, "chirpstack-mqtt",
                         "application/da971bbe-bfd6-4f3e-ae64-b4ffe87b808d/device/"
                         "a84041000181c2d7/event/up")
    assert u.network is Network.CHIRPSTACK
    assert u.device_id == "eui-a84041000181c2d7" and u.dev_eui == "A84041000181C2D7"
    assert u.dedup_key == "cs:82a9027e-77c4-4aa7-9a2f-b60a15c4dd38"
    assert (u.f_port, u.f_cnt, u.device_name) == (1, 311, "wetter-bauhof-dach")
    assert u.decoded_payload["relative_humidity_pct"] == 62.0
    assert u.radio.frequency == 867100000 and u.radio.spreading_factor == 7


def test_chirpstack_decoder_tag_names_the_model():
    doc = json.loads(CHIRPSTACK)
    doc["deviceInfo"]["tags"]["decoder"] = "decentlab/dl-mbx"
    u = parse_chirpstack(json.dumps(doc).encode(), "chirpstack-mqtt")
    assert (u.brand_id, u.model_id) == ("decentlab", "dl-mbx")


def test_chirpstack_without_deduplication_id_is_rejected():
    doc = json.loads(CHIRPSTACK)
    del doc["deduplicationId"]
    with pytest.raises(Rejected, match="deduplicationId"):
        parse_chirpstack(json.dumps(doc).encode(), "chirpstack-mqtt")
