"""Which decoder an uplink gets, and what becomes a reading."""
from __future__ import annotations

from datetime import datetime, timezone

from app.decoding import UPSTREAM, DeviceConfig, decode_uplink
from app.model import Network, Uplink

FRAME = bytes.fromhex("02012f000304d200010bb1")
GEOMETRY = {"distance_empty_m": 1.5, "distance_full_m": 0.2}


def uplink(**kw) -> Uplink:
    base = dict(network=Network.TTS, source="test", device_id="bin-001",
                application_id="app", received_at=datetime(2025, 6, 3, tzinfo=timezone.utc),
                f_port=1, payload=FRAME)
    base.update(kw)
    return Uplink(**base)


def metrics(result) -> dict[str, float]:
    return {r.metric: r.value for r in result.readings}


def test_version_ids_pick_the_decoder():
    result = decode_uplink(uplink(brand_id="decentlab", model_id="dl-mbx"), DeviceConfig(
        attributes=GEOMETRY))
    assert result.decoder == "decentlab/dl-mbx" and result.kind == "bin"
    assert metrics(result) == {"distance_m": 1.234, "fill_level_pct": 20.5, "battery_v": 2.993}


def test_configured_decoder_wins_over_what_the_network_reports():
    result = decode_uplink(uplink(brand_id="acme", model_id="thing"),
                           DeviceConfig(decoder="decentlab/dl-mbx"))
    assert result.decoder == "decentlab/dl-mbx"
    assert metrics(result)["distance_m"] == 1.234


def test_network_decoded_payload_is_used_without_a_local_decoder():
    result = decode_uplink(uplink(payload=b"\x01", decoded_payload={"soil_moisture_pct": 23.4}),
                           None)
    assert result.decoder == UPSTREAM and metrics(result) == {"soil_moisture_pct": 23.4}


def test_no_decoder_is_an_error_with_a_reason():
    result = decode_uplink(uplink(brand_id="acme", model_id="thing"), None)
    assert result.readings == []
    assert result.error == ("no decoder for device bin-001 (model: acme/thing) and no "
                            "decoded_payload from the network server")


def test_decode_error_is_reported_not_raised():
    result = decode_uplink(uplink(payload=FRAME[:7], brand_id="decentlab", model_id="dl-mbx"),
                           None)
    assert result.error == "DL-MBX expects 11 bytes for sensor flags 0x0003, got 7"


def test_unknown_configured_decoder():
    result = decode_uplink(uplink(), DeviceConfig(decoder="nobody/nothing"))
    assert "does not exist" in result.error


def test_mac_only_frame_has_no_readings_and_no_error():
    result = decode_uplink(uplink(f_port=0, payload=b""), None)
    assert (result.readings, result.error) == ([], None)


def test_missing_values_are_not_readings():
    zero_samples = bytes.fromhex("02012f000304d200000bb1")
    result = decode_uplink(uplink(payload=zero_samples, brand_id="decentlab",
                                  model_id="dl-mbx"), DeviceConfig(attributes=GEOMETRY))
    assert metrics(result) == {"battery_v": 2.993}


def test_simulated_uplinks_keep_no_readings_when_asked():
    result = decode_uplink(uplink(brand_id="decentlab", model_id="dl-mbx", simulated=True),
                           None, keep_readings=False)
    assert result.decoder == "decentlab/dl-mbx" and result.readings == []
