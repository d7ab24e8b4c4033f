"""The MQTT intake: one owner of the broker connection (TTS v3, or a ChirpStack broker).

TTS speaks MQTT 3.1.1 only, publishes uplinks at QoS 0 and keeps no session, so we set a
keep-alive, reconnect with back-off and subscribe again on every connect. The network loop only
hands messages to the pipeline; it never waits for the database, except when the pipeline's
bounded queue is full, which is the back-pressure we want. With QoS 1 (ChirpStack with a
persistent session) a message is acknowledged only after its batch is committed.
"""
from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as mqtt
from pydantic import SecretStr

from app.config import Settings
from app.pipeline import Message, Pipeline

log = logging.getLogger(__name__)


_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class _BufferedSocket:
    """The broker connection with a read buffer in front.

    paho reads every packet with three or more ``recv`` calls (type, length, body), each a
    system call that also releases and re-takes the GIL. Reading what is there in one go and
    serving paho's small reads from memory makes intake several times cheaper at thousands of
    messages a second. ``pending()`` tells paho's loop that buffered bytes are waiting (it
    already asks SSL sockets the same), so it does not wait in ``select`` while they are.

    After each read we also ask for an immediate ACK (Linux): a broker that sends with Nagle's
    algorithm (Mosquitto does by default) otherwise holds small messages back until our delayed
    ACK, which at a few messages a second adds tens of milliseconds.
    """

    __slots__ = ("_sock", "_buffer", "_position", "_quickack")
    READ_SIZE = 256 * 1024

    def __init__(self, sock) -> None:
        self._sock = sock
        self._buffer = b""
        self._position = 0
        self._quickack = _QUICKACK is not None and sock.family in (socket.AF_INET,
                                                                   socket.AF_INET6)

    def recv(self, size: int) -> bytes:
        buffer, position = self._buffer, self._position
        available = len(buffer) - position
        if available <= 0:
            data = self._sock.recv(max(size, self.READ_SIZE))
            if self._quickack:
                try:
                    self._sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)
                except OSError:
                    self._quickack = False
            if len(data) <= size:
                return data
            self._buffer, self._position = data, size
            return data[:size]
        if size < available:
            self._position = position + size
            return buffer[position:position + size]
        self._buffer, self._position = b"", 0
        return buffer[position:] if position else buffer

    def pending(self) -> int:
        inner = self._sock.pending() if hasattr(self._sock, "pending") else 0
        return len(self._buffer) - self._position + inner

    def __getattr__(self, name: str):
        return getattr(self._sock, name)


class _Client(mqtt.Client):
    """paho's client reading through ``_BufferedSocket``, every buffered packet per wake-up."""

    def _create_socket(self):
        sock = super()._create_socket()
        return _BufferedSocket(sock) if isinstance(sock, (socket.socket, ssl.SSLSocket)) else sock

    def loop_read(self, max_packets: int = 1) -> mqtt.MQTTErrorCode:
        sock = self._sock
        if not isinstance(sock, _BufferedSocket):
            return super().loop_read(max_packets)
        # paho reads one packet per call when nothing is in flight; go on while bytes wait.
        for _ in range(1000):
            if self._sock is None:
                return mqtt.MQTTErrorCode.MQTT_ERR_NO_CONN
            rc = self._packet_read()
            if rc > 0:
                return self._loop_rc_handle(rc)
            if rc == mqtt.MQTTErrorCode.MQTT_ERR_AGAIN or not sock.pending():
                break
        return mqtt.MQTTErrorCode.MQTT_ERR_SUCCESS


def source_for_topic(topic: str) -> str:
    if topic.startswith("v3/"):
        return "tts-mqtt"
    if topic.startswith("application/"):
        return "chirpstack-mqtt"
    return "mqtt"


def scoped(topic: str, username: str | None) -> str:
    """A TTS topic with any application narrowed to the connection's own (``{app}@{tenant}``).

    TTS sends a connection only its API key's application anyway; a broker that is not TTS
    (a test's, a bridge) would otherwise hand every connection every application's uplinks.
    """
    if username and "@" in username and topic.startswith("v3/+/"):
        return f"v3/{username}/{topic[5:]}"
    return topic


class MqttSource:
    """One connection to the broker; a service holds one per TTS application (each API key
    sees one application's uplinks), or a single one for ChirpStack or one application."""

    def __init__(self, settings: Settings, pipeline: Pipeline, username: str | None = None,
                 password: SecretStr | None = None, client_id: str | None = None) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.username = username
        self._password = password
        self._client_id = settings.mqtt_client_id if client_id is None else client_id
        self.topics = [scoped(topic, username) for topic in settings.mqtt_topics]
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
        persistent = s.mqtt_qos == 1 and bool(self._client_id)
        client = _Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=self._client_id,
            protocol=mqtt.MQTTv311,
            clean_session=not persistent,
            manual_ack=s.mqtt_qos == 1,
        )
        if self.username:
            password = self._password.get_secret_value() if self._password else None
            client.username_pw_set(self.username, password)
        if s.mqtt_tls:
            client.tls_set(ca_certs=str(s.mqtt_ca_file) if s.mqtt_ca_file else None,
                           cert_reqs=ssl.CERT_REQUIRED)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        return client

    def start(self) -> None:
        s = self.settings
        log.info("connecting to MQTT broker %s:%s (tls=%s) as %s for %s", s.mqtt_host,
                 s.mqtt_port, s.mqtt_tls, self.username or "anonymous",
                 ", ".join(self.topics))
        self.client.connect_async(s.mqtt_host, s.mqtt_port, keepalive=s.mqtt_keepalive_s)
        self.client.loop_start()

    def wait_connected(self, timeout: float) -> bool:
        """True once connected with the subscriptions in place (the broker's SUBACK)."""
        return self._connected_once.wait(timeout)

    def stop(self) -> None:
        self._stopping = True
        self.client.disconnect()
        self.client.loop_stop()
        self.connected = False

    # --- callbacks (paho's network thread) -----------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the connection of %s: %s",
                      self.username or "anonymous", reason_code)
            return
        self.connected = True
        # TTS keeps no subscriptions across connections: subscribe on every connect.
        client.subscribe([(topic, self.settings.mqtt_qos) for topic in self.topics])
        log.info("MQTT connected as %s, subscribing to %s", self.username or "anonymous",
                 ", ".join(self.topics))
        if self.on_connected is not None:
            self.on_connected()

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # Ready only once the broker has the subscription: a message published before the
        # SUBACK would find no subscriber and be dropped.
        refused = [str(rc) for rc in reason_codes if rc.is_failure]
        if refused:
            log.error("MQTT broker refused the subscription: %s", ", ".join(refused))
            return
        log.info("MQTT subscribed to %s", ", ".join(self.topics))
        self._connected_once.set()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        was = self.connected
        self.connected = False
        if was and not self._stopping:
            log.warning("MQTT connection of %s lost (%s); reconnecting with back-off",
                        self.username or "anonymous", reason_code)
            if self.on_disconnected is not None:
                self.on_disconnected()

    def _on_message(self, client, userdata, msg: mqtt.MQTTMessage) -> None:
        # An exception raised here would end paho's network thread, and all intake with it.
        try:
            topic = msg.topic
        except UnicodeDecodeError:  # a broker that lets a topic through that is not UTF-8
            topic = bytes(getattr(msg, "_topic", b"")).decode("utf-8", "replace")
        done = None
        if msg.qos > 0:
            mid, qos = msg.mid, msg.qos
            done = lambda _result: client.ack(mid, qos)  # noqa: E731 - after the commit
        message = Message(raw=msg.payload, source=source_for_topic(topic), topic=topic,
                          done=done)
        # Block while the queue is full (back-pressure), but notice a shutdown.
        while not self.pipeline.submit(message, timeout=1.0):
            if self.pipeline.stopping:
                return
