"""An uplink of every supported model, published in TTS format, ends up as normalised readings."""
from __future__ import annotations

import json
import time
from pathlib import Path

import psycopg

from decoders import MODELS
from helpers import TOKEN, Publisher, running_service, wait_until
from simulator.tts import VirtualDevice, encode

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "decoders" / "examples"
GEOMETRY = {"distance_empty_m": 2.0, "distance_full_m": 0.1}


def sample(model) -> tuple[dict, dict]:
    """The first example of the model whose normalised output has a value."""
    stem = model.id.replace("/", "_").replace("-", "_")
    for example in json.loads((EXAMPLES_DIR / f"{stem}.json").read_text()):
        decoded = model.decode(example["f_port"], bytes.fromhex(example["bytes_hex"]))
        values = model.normalize(decoded, GEOMETRY)
        if any(v is not None for v in values.values()):
            return example, values
    raise AssertionError(f"{model.id} has no example with a normalised value")


def test_every_model_lands_in_the_database(db, mqtt_broker, app_id):
    plan = []
    for n, model in enumerate(MODELS):
        example, expected = sample(model)
        brand, model_id = model.tts_ids[0] if model.tts_ids else (None, None)
        device = VirtualDevice(f"dev-{n:03d}", f"70B3D57EDF{n:06X}", app_id, brand_id=brand,
                               model_id=model_id)
        plan.append((model, device, example, expected))

    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"]) as (service, client), \
            Publisher(mqtt_broker) as pub:
        for model, device, example, _ in plan:
            settings = {"attributes": GEOMETRY}
            if not model.tts_ids:  # e.g. CayenneLPP: TTS has no device-repository id for it
                settings["decoder"] = model.id
            client.put(f"/api/v1/devices/{device.device_id}", json=settings,
                       headers={"Authorization": f"Bearer {TOKEN}"}).raise_for_status()
        time.sleep(0.5)  # the writer reloads the registry
        for model, device, example, _ in plan:
            pub.publish(device.topic, encode(device.uplink(bytes.fromhex(example["bytes_hex"]),
                                                           f_port=example["f_port"])))

        def stored() -> int:
            with psycopg.connect(db) as conn:
                return conn.execute("SELECT count(*) FROM raw_uplinks").fetchone()[0]

        wait_until(lambda: stored() == len(plan), timeout=30, what="one uplink per model")
        with psycopg.connect(db) as conn:
            for model, device, _, expected in plan:
                rows = dict(conn.execute("SELECT metric, value FROM readings WHERE device_id = %s",
                                         (device.device_id,)).fetchall())
                want = {k: v for k, v in expected.items() if v is not None}
                assert rows == want, model.id
                decoder = conn.execute("SELECT decoder FROM raw_uplinks WHERE device_id = %s",
                                       (device.device_id,)).fetchone()[0]
                assert decoder == model.id
