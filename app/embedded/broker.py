"""A private MQTT 3.1.1 broker (rumqttd from the ``iotcore`` wheel) on 127.0.0.1 only.

We start iotcore's broker process ourselves rather than through ``iotcore.Broker`` for one
reason: it must run in a session of its own, so that a Ctrl+C in the terminal does not kill it
while the service is still flushing; we stop it last. Like iotcore's own launcher, the child
exits as soon as our end of its stdin pipe closes, which the kernel does when we die, however.
"""
from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time

log = logging.getLogger(__name__)

MAX_PAYLOAD = 2 * 1024 * 1024  # room for oversized test messages; we reject them ourselves
# The working directory must not shadow the package (iotcore's own launcher does the same).
_BOOTSTRAP = ("import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
              "from iotcore._serve import main; main()")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _accepting(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


class EmbeddedBrokerError(RuntimeError):
    pass


class EmbeddedBroker:
    def __init__(self, port: int = 0) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port(self.host)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 10.0) -> "EmbeddedBroker":
        if _accepting(self.host, self.port):
            raise EmbeddedBrokerError(f"port {self.port} is already in use")
        options = {"config_path": None, "listen": self.host, "port": self.port,
                   "max_payload_size": MAX_PAYLOAD}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, json.dumps(options)],
            stdin=subprocess.PIPE, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise EmbeddedBrokerError(f"broker exited with code {self.process.returncode}")
            if _accepting(self.host, self.port):
                log.info("embedded MQTT broker listening on %s:%s", self.host, self.port)
                return self
            time.sleep(0.05)
        self.stop()
        raise EmbeddedBrokerError(f"broker not listening after {timeout:.0f} s")

    def stop(self, timeout: float = 5.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdin is not None:
            process.stdin.close()
        log.info("embedded MQTT broker stopped")

    def __enter__(self) -> "EmbeddedBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
