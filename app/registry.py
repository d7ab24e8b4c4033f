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
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.device_keys import split
from app.sources.tts import TTS_ID_PATTERN
from decoders import MODELS

Kind = Literal["bin", "weather", "soil", "irrigation", "level", "other"]
# The known decoders, so that the OpenAPI document lists them and a typo is a 422 with them.
DecoderId = Literal[tuple(sorted(m.id for m in MODELS))]  # type: ignore[valid-type]

# A device's key (app/device_keys.py): a TTS or ChirpStack device id, optionally followed by
# @ and an application id (TTS: an id like the device's; ChirpStack: a UUID).
DEVICE_KEY_PATTERN = r"^[a-z0-9](?:-?[a-z0-9]){2,35}(?:@[a-z0-9](?:-?[a-z0-9]){2,63})?$"

_COLUMNS = ("device_id, network_device_id, dev_eui, application_id, network, brand_id, model_id, "
            "decoder, kind, "
            "name, municipality, latitude, longitude, attributes, registered, created_at, "
            "last_seen, status_at, battery_pct, external_power, link_margin_db")


class DeviceSettings(BaseModel):
    """What a person sets on a device. Fields left out keep their value."""

    # No lax conversions: "longitude": false is a mistake, not 0.0.
    model_config = ConfigDict(strict=True)

    name: str | None = Field(default=None, max_length=200)
    kind: Kind | None = None
    municipality: str | None = Field(default=None, max_length=100)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    decoder: DecoderId | None = Field(default=None, description="decoder id, e.g. "
                                      "decentlab/dl-mbx (GET /api/v1/decoders)")
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
    device_id: str = Field(description="The key in every URL and export: the network's device "
                                       "id, or `{id}@{application}` where another application "
                                       "has a device of the same id")
    network_device_id: str | None = Field(description="The id the network server gives it")
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


def resolve_key(conn: psycopg.Connection, key: str) -> str:
    """``{id}@{application}`` names a device whose key is plainly its id, too."""
    own_id, application_id = split(key)
    row = conn.execute(
        "SELECT device_id FROM devices WHERE device_id = %s"
        " OR (application_id = %s AND network_device_id = %s)"
        " ORDER BY device_id = %s DESC LIMIT 1", (key, application_id, own_id, key)).fetchone()
    conn.commit()
    return row[0] if row else key


def configure_device(conn: psycopg.Connection, device_id: str,
                     settings: DeviceSettings) -> Device:
    """Create or update a device's configuration; returns the stored device.

    ``{id}@{application}`` configures that application's device before it ever sent.
    """
    values = settings.model_dump(exclude_unset=True)
    own_id, application_id = split(device_id)
    if application_id is not None and not values.get("application_id"):
        values["application_id"] = application_id
    attributes = values.pop("attributes", None)
    if "dev_eui" in values and values["dev_eui"]:
        values["dev_eui"] = values["dev_eui"].upper()
    columns = list(values)
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            f"""
            INSERT INTO devices (device_id, network_device_id, registered, attributes
                                 {''.join(', ' + c for c in columns)})
            VALUES (%(device_id)s, %(own_id)s, true, %(attributes)s
                    {''.join(f', %({c})s' for c in columns)})
            ON CONFLICT (device_id) DO UPDATE SET
                registered = true,
                network_device_id = COALESCE(devices.network_device_id,
                                             EXCLUDED.network_device_id),
                attributes = devices.attributes || EXCLUDED.attributes
                {''.join(f', {c} = EXCLUDED.{c}' for c in columns)}
            RETURNING {_COLUMNS}
            """,
            {"device_id": device_id, "own_id": own_id, "attributes": Jsonb(attributes or {}),
             **values},
        )
        row = cur.fetchone()
    conn.commit()
    return Device(**row)
