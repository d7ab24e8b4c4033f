"""A private MQTT 3.1.1 broker (rumqttd from the ``iotcore`` wheel) on 127.0.0.1 only.

iotcore runs the broker in a child process that exits when our end of its stdin pipe closes,
which the kernel does for us when we die, however we die.
"""
from __future__ import annotations

import logging
import socket

log = logging.getLogger(__name__)

MAX_PAYLOAD = 2 * 1024 * 1024  # room for oversized test messages; we reject them ourselves


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, port: int = 0) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self._broker = None

    def start(self) -> "EmbeddedBroker":
        from iotcore import Broker

        self._broker = Broker(port=self.port, listen=self.host, max_payload_size=MAX_PAYLOAD)
        self._broker.start()
        log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)
        return self

    def stop(self) -> None:
        broker, self._broker = self._broker, None
        if broker is not None:
            broker.stop()

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
