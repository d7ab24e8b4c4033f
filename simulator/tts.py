"""Build TTS v3 ``ApplicationUp`` uplink JSON exactly as The Things Stack sends it.

Follows ``shared/formats.md`` §2: zero values are left out (no ``f_cnt`` on the first uplink of
a session), EUIs in upper-case hex, 64-bit numbers (frequency) as strings, bytes in base64,
timestamps in RFC 3339 with nanoseconds and ``Z``.
"""
from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def rfc3339(when: datetime) -> str:
    when = when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond:06d}{(when.microsecond * 7) % 1000:03d}Z"


def ulid(when: datetime, rng: "os.urandom" = os.urandom) -> str:
    value = (int(when.timestamp() * 1000) << 80) | int.from_bytes(rng(10), "big")
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass
class VirtualDevice:
    device_id: str
    dev_eui: str
    application_id: str = "bauhof-sensors"
    tenant_id: str = "ttn"
    brand_id: str | None = None
    model_id: str | None = None
    session_key_id: str = field(default_factory=lambda: base64.b64encode(os.urandom(16)).decode())
    dev_addr: str = field(default_factory=lambda: os.urandom(4).hex().upper())
    f_cnt: int = 0

    @property
    def topic(self) -> str:
        return f"v3/{self.application_id}@{self.tenant_id}/devices/{self.device_id}/up"

    def rejoin(self) -> None:
        self.session_key_id = base64.b64encode(os.urandom(16)).decode()
        self.dev_addr = os.urandom(4).hex().upper()
        self.f_cnt = 0

    def uplink(self, payload: bytes, f_port: int = 1, received_at: datetime | None = None,
               decoded_payload: dict[str, Any] | None = None, rssi: float = -97.0,
               snr: float = 6.25) -> dict[str, Any]:
        """The next uplink of this device (advances its frame counter)."""
        doc = tts_uplink(self, payload, f_port, received_at or datetime.now(timezone.utc),
                         decoded_payload, rssi, snr)
        self.f_cnt += 1
        return doc


def _drop_zero(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v not in (0, "", None, False, [], {})}


def tts_uplink(device: VirtualDevice, payload: bytes, f_port: int, received_at: datetime,
               decoded_payload: dict[str, Any] | None = None, rssi: float = -97.0,
               snr: float = 6.25) -> dict[str, Any]:
    gateway_time = received_at - timedelta(milliseconds=48)
    message = _drop_zero({
        "session_key_id": device.session_key_id,
        "f_port": f_port,
        "f_cnt": device.f_cnt,
        "frm_payload": base64.b64encode(payload).decode(),
        "decoded_payload": decoded_payload,
        "rx_metadata": [_drop_zero({
            "gateway_ids": {"gateway_id": "bauhof-gw-dach", "eui": "7076FF0056081234"},
            "time": rfc3339(gateway_time),
            "timestamp": int(gateway_time.timestamp() * 1e6) % 2**32,
            "rssi": rssi,
            "channel_rssi": rssi,
            "snr": snr,
            "uplink_token": base64.b64encode(os.urandom(30)).decode(),
            "channel_index": 1,
            "received_at": rfc3339(gateway_time + timedelta(milliseconds=25)),
        })],
        "settings": {
            "data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 9,
                                   "coding_rate": "4/5"}},
            "frequency": "868300000",
            "timestamp": int(gateway_time.timestamp() * 1e6) % 2**32,
            "time": rfc3339(gateway_time),
        },
        "received_at": rfc3339(received_at),
        "consumed_airtime": "0.185344s",
        "version_ids": _drop_zero({"brand_id": device.brand_id, "model_id": device.model_id,
                                   "band_id": "EU_863_870" if device.brand_id else None}),
        "network_ids": {"net_id": "000013", "ns_id": "EC656E0000000181", "tenant_id":
                        device.tenant_id, "cluster_id": "eu1",
                        "cluster_address": "eu1.cloud.thethings.network"},
    })
    return {
        "end_device_ids": _drop_zero({
            "device_id": device.device_id,
            "application_ids": {"application_id": device.application_id},
            "dev_eui": device.dev_eui,
            "join_eui": "70B3D57ED0000000",
            "dev_addr": device.dev_addr,
        }),
        "correlation_ids": [f"gs:uplink:{ulid(received_at)}"],
        "received_at": rfc3339(received_at + timedelta(milliseconds=12)),
        "uplink_message": message,
    }


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
