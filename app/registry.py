"""The device registry: what a person configured about a device, and what uplinks told us.

Uplinks register devices by themselves (id, DevEUI, application, model, last seen); the
configuration a Bauhof adds (name, municipality, location, decoder, bin geometry) comes through
the API or ``bauhof`` commands and is never overwritten by uplinks.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from pydantic import BaseModel, Field, model_validator

from app.sources.tts import TTS_ID_PATTERN

Kind = Literal["bin", "weather", "soil", "irrigation", "level", "other"]

_COLUMNS = ("device_id, dev_eui, application_id, network, brand_id, model_id, decoder, kind, "
            "name, municipality, latitude, longitude, attributes, registered, created_at, "
            "last_seen, status_at, battery_pct, external_power, link_margin_db")


class DeviceSettings(BaseModel):
    """What a person sets on a device. Fields left out keep their value."""

    name: str | None = Field(default=None, max_length=200)
    kind: Kind | None = None
    municipality: str | None = Field(default=None, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    decoder: str | None = Field(default=None, description="decoder id, e.g. decentlab/dl-mbx")
    dev_eui: str | None = Field(default=None, pattern=r"^[0-9A-Fa-f]{16}$")
    application_id: str | None = Field(default=None, max_length=100)
    attributes: dict[str, Any] | None = Field(
        default=None,
        description="Merged into the stored attributes: volume_l, distance_empty_m, "
                    "distance_full_m, full_threshold_pct, ...",
        json_schema_extra={"examples": [{"volume_l": 120, "distance_empty_m": 1.05,
                                         "distance_full_m": 0.15}]},
    )


class DeviceHealth(BaseModel):
    """What the network server last learned of the device (ChirpStack status event)."""

    time: datetime
    battery_pct: float | None = Field(description="None: not measurable, or external power")
    external_power: bool | None
    link_margin_db: int | None = Field(description="demodulation margin of the device's last "
                                                   "received downlink")


class Device(BaseModel):
    device_id: str
    dev_eui: str | None
    application_id: str | None
    network: str | None
    brand_id: str | None
    model_id: str | None
    decoder: str | None
    kind: str | None
    name: str | None
    municipality: str | None
    latitude: float | None
    longitude: float | None
    attributes: dict[str, Any]
    registered: bool
    created_at: datetime
    last_seen: datetime | None
    status: DeviceHealth | None = None

    @model_validator(mode="before")
    @classmethod
    def _status_from_columns(cls, row: Any) -> Any:
        if isinstance(row, dict) and "status_at" in row:
            row = dict(row)
            at = row.pop("status_at")
            health = {k: row.pop(k) for k in ("battery_pct", "external_power", "link_margin_db")}
            row["status"] = DeviceHealth(time=at, **health) if at is not None else None
        return row


DEVICE_ID = Field(pattern=TTS_ID_PATTERN, description="TTS device id (eui-<deveui> for ChirpStack)")


def list_devices(conn: psycopg.Connection, municipality: str | None = None,
                 kind: str | None = None, limit: int = 1000, offset: int = 0) -> list[Device]:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"SELECT {_COLUMNS} FROM devices"
            " WHERE (%(m)s::text IS NULL OR municipality = %(m)s)"
            "   AND (%(k)s::text IS NULL OR kind = %(k)s)"
            " ORDER BY device_id LIMIT %(limit)s OFFSET %(offset)s",
            {"m": municipality, "k": kind, "limit": limit, "offset": offset},
        )
        return [Device(**row) for row in cur.fetchall()]


def get_device(conn: psycopg.Connection, device_id: str) -> Device | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(f"SELECT {_COLUMNS} FROM devices WHERE device_id = %s", (device_id,))
        row = cur.fetchone()
    return Device(**row) if row else None


def configure_device(conn: psycopg.Connection, device_id: str,
                     settings: DeviceSettings) -> Device:
    """Create or update a device's configuration; returns the stored device."""
    values = settings.model_dump(exclude_unset=True)
    attributes = values.pop("attributes", None)
    if "dev_eui" in values and values["dev_eui"]:
        values["dev_eui"] = values["dev_eui"].upper()
    columns = list(values)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            INSERT INTO devices (device_id, registered, attributes
                                 {''.join(', ' + c for c in columns)})
            VALUES (%(device_id)s, true, %(attributes)s
                    {''.join(f', %({c})s' for c in columns)})
            ON CONFLICT (device_id) DO UPDATE SET
                registered = true,
                attributes = devices.attributes || EXCLUDED.attributes
                {''.join(f', {c} = EXCLUDED.{c}' for c in columns)}
            RETURNING {_COLUMNS}
            """,
            {"device_id": device_id, "attributes": Jsonb(attributes or {}), **values},
        )
        row = cur.fetchone()
    conn.commit()
    return Device(**row)
