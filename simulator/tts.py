"""Build TTS v3 ``ApplicationUp`` JSON exactly as The Things Stack sends it.

Follows ``shared/formats.md`` §2: zero values are left out (no ``f_cnt`` on the first uplink of
a session, no ``f_port`` on MAC-only frames), EUIs in upper-case hex, 64-bit numbers
(frequency, frequency offset) as strings, bytes in base64, timestamps in RFC 3339 with
nanoseconds and ``Z``. Every random part (session keys, DevAddr, uplink tokens, ULIDs, the
nanoseconds) comes from the device's own ``random.Random``, so a seeded device produces
byte-identical messages run after run.
"""
from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def rfc3339(when: datetime, nanos: int = 0) -> str:
    """RFC 3339 in UTC with nine fractional digits; ``nanos`` (0-999) below the microsecond."""
    if when.tzinfo is not timezone.utc:
        when = when.astimezone(timezone.utc)
    # Formatted by hand: strftime took a tenth of the demo's simulated week (five per uplink).
    return (f"{when.year:04d}-{when.month:02d}-{when.day:02d}T{when.hour:02d}:{when.minute:02d}:"
            f"{when.second:02d}.{when.microsecond:06d}{nanos % 1000:03d}Z")


def ulid(when: datetime, rng: random.Random) -> str:
    value = (int(when.timestamp() * 1000) << 80) | rng.getrandbits(80)
    return "".join(_CROCKFORD[(value >> shift) & 31] for shift in range(125, -1, -5))


@dataclass(frozen=True)
class Gateway:
    gateway_id: str
    eui: str
    latitude: float | None = None
    longitude: float | None = None
    altitude: int = 0


DEFAULT_GATEWAY = Gateway("bauhof-gw-dach", "7076FF0056081234", 50.2601, 9.2867, 160)


@dataclass(frozen=True)
class Reception:
    """One gateway hearing an uplink."""

    gateway: Gateway
    rssi: float
    snr: float


@dataclass
class VirtualDevice:
    device_id: str
    dev_eui: str
    application_id: str = "bauhof-sensors"
    tenant_id: str = "ttn"
    brand_id: str | None = None
    model_id: str | None = None
    rng: random.Random = field(default_factory=lambda: random.Random(os.urandom(16)), repr=False)
    session_key_id: str = ""
    dev_addr: str = ""
    f_cnt: int = 0

    def __post_init__(self) -> None:
        if not self.session_key_id:
            self._new_session()

    @property
    def uid(self) -> str:
        return f"{self.application_id}@{self.tenant_id}"

    @property
    def topic(self) -> str:
        return f"v3/{self.uid}/devices/{self.device_id}/up"

    def _new_session(self) -> None:
        self.session_key_id = base64.b64encode(self.rng.randbytes(16)).decode()
        self.dev_addr = self.rng.randbytes(4).hex().upper()
        self.f_cnt = 0

    def rejoin(self, received_at: datetime | None = None) -> dict[str, Any]:
        """A new OTAA session: new session key and DevAddr, f_cnt from 0. Returns the join
        message TTS publishes on ``.../join``."""
        self._new_session()
        when = received_at or datetime.now(timezone.utc)
        return {
            "end_device_ids": self._ids(),
            "correlation_ids": [f"as:up:{ulid(when, self.rng)}"],
            "received_at": rfc3339(when, self.rng.randrange(1000)),
            "join_accept": {"session_key_id": self.session_key_id,
                            "received_at": rfc3339(when, self.rng.randrange(1000))},
        }

    def uplink(self, payload: bytes, f_port: int = 1, received_at: datetime | None = None,
               decoded_payload: dict[str, Any] | None = None, rssi: float = -97.0,
               snr: float = 6.25, receptions: list[Reception] | None = None) -> dict[str, Any]:
        """The next uplink of this device (advances its frame counter)."""
        heard = receptions or [Reception(DEFAULT_GATEWAY, rssi, snr)]
        doc = self._uplink(payload, f_port, received_at or datetime.now(timezone.utc),
                           decoded_payload, heard)
        self.f_cnt += 1
        return doc

    def simulated_uplink(self, payload: bytes, f_port: int = 1,
                         received_at: datetime | None = None,
                         decoded_payload: dict[str, Any] | None = None) -> dict[str, Any]:
        """What the Console's "simulate uplink" publishes (formats.md §4): flagged simulated,
        placeholder radio data, no f_cnt and no session key, and Go's zero time as the network
        server's reception (it never saw the uplink; the application server's time is the
        envelope's); the frame counter is untouched."""
        when = received_at or datetime.now(timezone.utc)
        message = _drop_zero({
            "f_port": f_port,
            "frm_payload": base64.b64encode(payload).decode(),
            "decoded_payload": decoded_payload,
            "rx_metadata": [{"gateway_ids": {"gateway_id": "test"}, "rssi": 42,
                             "channel_rssi": 42, "snr": 4.2}],
            "settings": {"data_rate": {"lora": {"bandwidth": 125000, "spreading_factor": 7}},
                         "frequency": "868000000"},
            "received_at": "0001-01-01T00:00:00Z",
        })
        return {
            "end_device_ids": self._ids(),
            "correlation_ids": [f"as:up:{ulid(when, self.rng)}"],
            "received_at": rfc3339(when, self.rng.randrange(1000)),
            "uplink_message": message,
            "simulated": True,
        }

    def _ids(self) -> dict[str, Any]:
        return _drop_zero({
            "device_id": self.device_id,
            "application_ids": {"application_id": self.application_id},
            "dev_eui": self.dev_eui,
            "join_eui": "70B3D57ED0000000",
            "dev_addr": self.dev_addr,
        })

    def _uplink(self, payload: bytes, f_port: int, received_at: datetime,
                decoded_payload: dict[str, Any] | None,
                receptions: list[Reception]) -> dict[str, Any]:
        rng = self.rng
        # The network server receives ~250 ms after the gateway; the application server ~10 ms
        # later. Gateways' concentrator counters are arbitrary and wrap at 2^32 µs.
        gateway_time = received_at - timedelta(milliseconds=rng.randrange(180, 320))
        rx_metadata = []
        for index, heard in enumerate(receptions):
            gw = heard.gateway
            counter = rng.getrandbits(32)
            entry = {
                "gateway_ids": {"gateway_id": gw.gateway_id, "eui": gw.eui},
                "time": rfc3339(gateway_time),
                "timestamp": counter,
                "rssi": round(heard.rssi),
                "channel_rssi": round(heard.rssi),
                "snr": round(heard.snr * 4) / 4,
                "frequency_offset": str(rng.randrange(-4000, 4000)),
                "uplink_token": base64.b64encode(rng.randbytes(30)).decode(),
                "channel_index": rng.randrange(8),
                "received_at": rfc3339(gateway_time + timedelta(milliseconds=25 + 3 * index),
                                       rng.randrange(1000)),
            }
            if gw.latitude is not None:
                entry["location"] = {"latitude": gw.latitude, "longitude": gw.longitude,
                                     "altitude": gw.altitude, "source": "SOURCE_REGISTRY"}
            rx_metadata.append(_drop_zero(entry))
        spreading_factor = _spreading_factor(max(r.snr for r in receptions))
        message = _drop_zero({
            "session_key_id": self.session_key_id,
            "f_port": f_port,
            "f_cnt": self.f_cnt,
            "frm_payload": base64.b64encode(payload).decode() if payload else "",
            "decoded_payload": decoded_payload,
            "rx_metadata": rx_metadata,
            "settings": {
                "data_rate": {"lora": {"bandwidth": 125000,
                                       "spreading_factor": spreading_factor,
                                       "coding_rate": "4/5"}},
                "frequency": str(rng.choice((868100000, 868300000, 868500000, 867100000,
                                             867300000, 867500000, 867700000, 867900000))),
                "timestamp": rx_metadata[0]["timestamp"],
                "time": rfc3339(gateway_time),
            },
            "received_at": rfc3339(received_at, rng.randrange(1000)),
            "consumed_airtime": f"{_airtime_s(len(payload), spreading_factor):.6f}s",
            "version_ids": _drop_zero({"brand_id": self.brand_id, "model_id": self.model_id,
                                       "band_id": "EU_863_870" if self.brand_id else None}),
            "network_ids": {"net_id": "000013", "ns_id": "EC656E0000000181",
                            "tenant_id": self.tenant_id, "cluster_id": "eu1",
                            "cluster_address": "eu1.cloud.thethings.network"},
        })
        as_time = received_at + timedelta(milliseconds=rng.randrange(5, 30))
        return {
            "end_device_ids": self._ids(),
            "correlation_ids": [f"gs:uplink:{ulid(gateway_time, rng)}"],
            "received_at": rfc3339(as_time, rng.randrange(1000)),
            "uplink_message": message,
        }


def _spreading_factor(snr: float) -> int:
    # ADR settles on the fastest rate the link margin allows (EU868 demodulation floors).
    for sf, floor in ((7, -7.5), (8, -10.0), (9, -12.5), (10, -15.0), (11, -17.5)):
        if snr - 5 >= floor:
            return sf
    return 12


def _airtime_s(payload_len: int, sf: int, bandwidth: int = 125000) -> float:
    """LoRa time on air (Semtech AN1200.13) of a LoRaWAN frame with 13 bytes of overhead."""
    size = payload_len + 13
    symbol = (2 ** sf) / bandwidth
    low_rate = 1 if sf >= 11 else 0
    body = 8 + max(
        -(-(8 * size - 4 * sf + 28 + 16) // (4 * (sf - 2 * low_rate))) * 5, 0)
    return (12.25 + body) * symbol


def _drop_zero(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if v not in (0, "", None, False, [], {})}


def encode(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
