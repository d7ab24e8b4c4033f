"""A small built-in publisher for ``bauhof demo``: litter bins in six towns, sending TTS uplinks.

Bins fill up at their own pace and are emptied when full; two soil probes report through the
network server's own decoder (``decoded_payload``), the other path into our store. The full
simulator, with physics, faults and a ground truth, is ``simulator/`` issue 4's work.
"""
from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass

import paho.mqtt.client as mqtt

from decoders.decentlab_dl_mbx import frame as encode_dl_mbx
from simulator.tts import VirtualDevice, encode

log = logging.getLogger(__name__)

# Town centres of the inter-municipal cooperation (Main-Kinzig district).
TOWNS = {
    "Wächtersbach": (50.2553, 9.2939),
    "Bad Orb": (50.2268, 9.3483),
    "Bad Soden-Salmünster": (50.2805, 9.3672),
    "Birstein": (50.3533, 9.3036),
    "Sinntal": (50.3047, 9.6153),
    "Steinau an der Straße": (50.3138, 9.4640),
}
SITES = ("Marktplatz", "Bushaltestelle", "Stadtpark", "Wanderparkplatz")
DISTANCE_EMPTY_M = 1.0
DISTANCE_FULL_M = 0.15


@dataclass
class DemoBin:
    device: VirtualDevice
    name: str
    municipality: str
    latitude: float
    longitude: float
    fill: float  # 0..1
    rate: float  # fill per uplink

    def next_payload(self, rng: random.Random) -> bytes:
        self.fill += self.rate * rng.uniform(0.5, 1.5)
        if self.fill >= 1.0 and rng.random() < 0.3:
            self.fill = rng.uniform(0.0, 0.05)  # the crew came by
        self.fill = min(self.fill, 1.05)
        distance = DISTANCE_EMPTY_M - self.fill * (DISTANCE_EMPTY_M - DISTANCE_FULL_M)
        return encode_dl_mbx(round(distance * 1000), battery_v=rng.uniform(3.0, 3.1))


def _slug(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", " ": "-"})
    return "".join(c for c in text.lower().translate(table) if c.isalnum() or c == "-")


def make_fleet(per_town: int = 4, seed: int = 7) -> tuple[list[DemoBin], list[VirtualDevice]]:
    rng = random.Random(seed)
    bins = []
    for t, (town, (lat, lon)) in enumerate(TOWNS.items()):
        for i in range(per_town):
            site = SITES[i % len(SITES)]
            device = VirtualDevice(
                device_id=f"mbx-{_slug(town)}-{i + 1:02d}"[:36],
                dev_eui=f"70B3D57ED005{t:02X}{i:02X}",
                brand_id="decentlab", model_id="dl-mbx",
            )
            bins.append(DemoBin(device, f"{site} {town}", town, lat + rng.uniform(-0.01, 0.01),
                                lon + rng.uniform(-0.015, 0.015), fill=rng.uniform(0.1, 0.6),
                                rate=rng.uniform(0.01, 0.05)))
    probes = [VirtualDevice(device_id=f"boden-baum-{n:02d}", dev_eui=f"A81758FFFE0C21{n:02X}",
                            brand_id="acme-sensorik", model_id="soilprobe-s2")
              for n in (1, 2)]
    return bins, probes


def register_fleet(conn, bins: list[DemoBin], probes: list[VirtualDevice]) -> None:
    from app.registry import DeviceSettings, configure_device

    for b in bins:
        configure_device(conn, b.device.device_id, DeviceSettings(
            name=b.name, kind="bin", municipality=b.municipality, latitude=b.latitude,
            longitude=b.longitude, attributes={"volume_l": 120,
                                               "distance_empty_m": DISTANCE_EMPTY_M,
                                               "distance_full_m": DISTANCE_FULL_M}))
    for n, probe in enumerate(probes):
        configure_device(conn, probe.device_id, DeviceSettings(
            name=f"Jungbaum Bahnhofstraße {n + 1}", kind="soil", municipality="Wächtersbach",
            latitude=50.2561 + n * 0.001, longitude=9.2912))


class DemoPublisher:
    """Publishes one uplink per device every ``interval`` seconds, staggered, QoS 0 as TTS."""

    def __init__(self, host: str, port: int, interval: float = 10.0, per_town: int = 4) -> None:
        self.bins, self.probes = make_fleet(per_town)
        self.interval = interval
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bauhof-demo",
                                  protocol=mqtt.MQTTv311)
        self.client.connect(host, port, keepalive=30)
        self._stop = threading.Event()
        self._rng = random.Random(11)
        self._thread = threading.Thread(target=self._run, name="demo-publisher", daemon=True)

    def start(self) -> None:
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.client.disconnect()
        self.client.loop_stop()

    def _run(self) -> None:
        devices = len(self.bins) + len(self.probes)
        gap = self.interval / devices
        while not self._stop.is_set():
            for b in self.bins:
                self._publish(b.device, b.device.uplink(b.next_payload(self._rng)))
                if self._stop.wait(gap):
                    return
            for probe in self.probes:
                moisture = round(self._rng.uniform(12, 30), 1)
                doc = probe.uplink(b"\x02" + bytes(8), f_port=10, decoded_payload={
                    "soil_moisture_pct": moisture, "soil_temperature_c": 9.5,
                    "battery_v": 3.59})
                self._publish(probe, doc)
                if self._stop.wait(gap):
                    return

    def _publish(self, device: VirtualDevice, doc: dict) -> None:
        self.client.publish(device.topic, encode(doc), qos=0)
