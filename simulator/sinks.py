"""Where simulated messages go: MQTT as TTS publishes, TTS webhooks, ChirpStack v4 events.

Every sink takes ``Delivery`` objects in delivery order. MQTT uses 3.1.1 and QoS 0 on the TTS
topic layout, as The Things Stack does; the webhook posts the same JSON with the shared-secret
header, one attempt per message like a TTS webhook without retries.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import paho.mqtt.client as mqtt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    deliver_at: datetime  # simulated time at which it reaches the integration
    topic: str            # TTS topic: v3/{app}@{tenant}/devices/{device}/up (or /join)
    body: bytes           # exactly what goes on the wire
    doc: dict[str, Any] | None  # the ApplicationUp it encodes (None for broken JSON)
    device_id: str
    model: str = ""


class Sink(Protocol):
    def send(self, delivery: Delivery) -> None: ...
    def close(self) -> None: ...


class MemorySink:
    """Keeps every delivery, for tests and for the throughput mode's pre-rendering."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []

    def send(self, delivery: Delivery) -> None:
        self.deliveries.append(delivery)

    def close(self) -> None:
        pass


class MqttSink:
    def __init__(self, host: str, port: int = 1883, username: str | None = None,
                 password: str | None = None, client_id: str = "",
                 max_rate: float | None = None) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311)
        if username:
            self.client.username_pw_set(username, password)
        self.client.max_queued_messages_set(0)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()
        self.host, self.port = host, port
        self.sent = 0
        # A broker drops QoS 0 messages for a subscriber that falls behind (Mosquitto: 1,000
        # queued per client); a rate limit keeps a fast simulation within what it can take.
        self.max_rate = max_rate
        self._paced_from = time.monotonic()

    def send(self, delivery: Delivery) -> None:
        self.publish(delivery.topic, delivery.body)

    def publish(self, topic: str, body: bytes) -> None:
        if self.max_rate:
            delay = self._paced_from + self.sent / self.max_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        self.client.publish(topic, body, qos=0)
        self.sent += 1

    def flush(self, timeout: float = 60.0) -> None:
        # paho writes in order: once a QoS 1 marker is acknowledged, everything before it left.
        marker = self.client.publish("bauhof-sim/flush", b"", qos=1)
        marker.wait_for_publish(timeout)

    def close(self) -> None:
        self.flush()
        self.client.disconnect()
        self.client.loop_stop()


def kick(host: str, port: int, client_id: str) -> None:
    """Cut a subscriber's connection: a broker drops the older of two sessions with one client
    id (MQTT 3.1.1 takeover), which is what a TTS connection loss looks like from our side."""
    intruder = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                           protocol=mqtt.MQTTv311, clean_session=True)
    intruder.connect(host, port, keepalive=10)
    intruder.loop_start()
    intruder.disconnect()
    intruder.loop_stop()


class WebhookSink:
    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        import httpx

        self.url = url
        self.http = httpx.Client(timeout=timeout, headers={
            "X-Webhook-Secret": secret, "Content-Type": "application/json"})
        self.failed = 0

    def send(self, delivery: Delivery) -> None:
        if not delivery.topic.endswith("/up"):
            return  # joins are not configured on a typical uplink webhook
        try:
            answer = self.http.post(self.url, content=delivery.body)
            ok = answer.status_code < 300
        except Exception as err:  # noqa: BLE001 - TTS counts any failure and moves on
            log.warning("webhook failed: %s", err)
            ok = False
        if not ok:
            self.failed += 1  # without TTS's optional retries, a failed request is lost

    def close(self) -> None:
        self.http.close()


class ChirpStackSink:
    """Re-expresses each TTS uplink as the ChirpStack v4 ``up`` event of the same radio frame.

    The device's model goes into the ``decoder`` tag, the way a ChirpStack operator tells our
    service which decoder to use.
    """

    TENANT_ID = "3be74ff6-e8aa-48ac-9d57-a78d7219d98f"

    def __init__(self, host: str, port: int = 1883, max_rate: float | None = None) -> None:
        self.mqtt = MqttSink(host, port, max_rate=max_rate)

    @staticmethod
    def application_uuid(application_id: str) -> str:
        return str(uuid.UUID(hashlib.sha256(application_id.encode()).hexdigest()[:32]))

    def event(self, delivery: Delivery) -> tuple[str, bytes] | None:
        doc = delivery.doc
        if doc is None or "uplink_message" not in doc:
            return None
        ids = doc["end_device_ids"]
        up = doc["uplink_message"]
        app_uuid = self.application_uuid(ids["application_ids"]["application_id"])
        dev_eui = ids.get("dev_eui", "").lower()
        dedup = uuid.UUID(hashlib.sha256(delivery.body).hexdigest()[:32])
        lora = up.get("settings", {}).get("data_rate", {}).get("lora", {})
        event = {
            "deduplicationId": str(dedup),
            "time": up.get("received_at", doc.get("received_at", "")).replace("Z", "+00:00"),
            "deviceInfo": {
                "tenantId": self.TENANT_ID, "tenantName": "Main-Kinzig",
                "applicationId": app_uuid,
                "applicationName": ids["application_ids"]["application_id"],
                "deviceProfileId": str(uuid.UUID(hashlib.sha256(delivery.model.encode())
                                                 .hexdigest()[:32])),
                "deviceProfileName": delivery.model,
                "deviceName": ids["device_id"],
                "deviceClassEnabled": "CLASS_A",
                "devEui": dev_eui,
                "tags": {"decoder": delivery.model} if delivery.model else {},
            },
            "devAddr": ids.get("dev_addr", "").lower(),
            "adr": True,
            "dr": 12 - lora.get("spreading_factor", 7),
            "fCnt": up.get("f_cnt", 0),
            "fPort": up.get("f_port", 0),
            "confirmed": False,
            "data": up.get("frm_payload", ""),
            "rxInfo": [
                {"gatewayId": m["gateway_ids"].get("eui", "").lower(),
                 "uplinkId": m.get("timestamp", 0), "rssi": m.get("rssi", 0),
                 "snr": m.get("snr", 0.0), "crcStatus": "CRC_OK"}
                for m in up.get("rx_metadata", [])
            ],
            "txInfo": {"frequency": int(up.get("settings", {}).get("frequency", 868100000)),
                       "modulation": {"lora": {"bandwidth": lora.get("bandwidth", 125000),
                                               "spreadingFactor": lora.get("spreading_factor", 7),
                                               "codeRate": "CR_4_5"}}},
            "regionConfigId": "eu868",
        }
        topic = f"application/{app_uuid}/device/{dev_eui}/event/up"
        return topic, json.dumps(event, separators=(",", ":")).encode()

    def send(self, delivery: Delivery) -> None:
        converted = self.event(delivery)
        if converted is not None:
            self.mqtt.publish(*converted)

    def close(self) -> None:
        self.mqtt.close()
