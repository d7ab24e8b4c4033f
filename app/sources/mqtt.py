"""The MQTT intake: one owner of the broker connection (TTS v3, or a ChirpStack broker).

TTS speaks MQTT 3.1.1 only, publishes uplinks at QoS 0 and keeps no session, so we set a
keep-alive, reconnect with back-off and subscribe again on every connect. The network loop only
hands messages to the pipeline; it never waits for the database, except when the pipeline's
bounded queue is full, which is the back-pressure we want. With QoS 1 (ChirpStack with a
persistent session) a message is acknowledged only after its batch is committed.
"""
from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt

from app.config import Settings
from app.pipeline import Message, Pipeline

log = logging.getLogger(__name__)


def source_for_topic(topic: str) -> str:
    if topic.startswith("v3/"):
        return "tts-mqtt"
    if topic.startswith("application/"):
        return "chirpstack-mqtt"
    return "mqtt"


class MqttSource:
    def __init__(self, settings: Settings, pipeline: Pipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.connected = False
        self._stopping = False
        self._connected_once = threading.Event()
        # Called (in paho's thread) after every successful (re)connect: the service starts a
        # backfill there, because TTS kept nothing for us while we were away.
        self.on_connected: Callable[[], None] | None = None
        self.on_disconnected: Callable[[], None] | None = None
        self.client = self._make_client()

    def _make_client(self) -> mqtt.Client:
        s = self.settings
        persistent = s.mqtt_qos == 1 and bool(s.mqtt_client_id)
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=s.mqtt_client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
            manual_ack=s.mqtt_qos == 1,
        )
        if s.mqtt_username:
            password = s.mqtt_password.get_secret_value() if s.mqtt_password else None
            client.username_pw_set(s.mqtt_username, password)
        if s.mqtt_tls:
            client.tls_set(ca_certs=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        return client

    def start(self) -> None:
        s = self.settings
        log.info("connecting to MQTT broker %s:%s (tls=%s) for %s", s.mqtt_host, s.mqtt_port,
                 s.mqtt_tls, ", ".join(s.mqtt_topics))
        self.client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        return self._connected_once.wait(timeout)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False

    # --- callbacks (paho's network thread) -----------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the connection: %s", reason_code)
            return
        self.connected = True
        # TTS keeps no subscriptions across connections: subscribe on every connect.
        client.subscribe([(topic, self.settings.mqtt_qos) for topic in self.settings.mqtt_topics])
        log.info("MQTT connected, subscribed to %s", ", ".join(self.settings.mqtt_topics))
        self._connected_once.set()
        if self.on_connected is not None:
            self.on_connected()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        if was and not self._stopping:
            log.warning("MQTT connection lost (%s); reconnecting with back-off", reason_code)
            if self.on_disconnected is not None:
                self.on_disconnected()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        done = None
        if msg.qos > 0:
            mid, qos = msg.mid, msg.qos
            done = lambda _result: client.ack(mid, qos)  # noqa: E731 - after the commit
        message = Message(raw=msg.payload, source=source_for_topic(msg.topic), topic=msg.topic,
                          done=done)
        # Block while the queue is full (back-pressure), but notice a shutdown.
        while not self.pipeline.submit(message, timeout=1.0):
            if self.pipeline.stopping:
                return
