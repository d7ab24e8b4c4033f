"""Test helpers: a running service with an HTTP client, an MQTT publisher, polling."""
from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import paho.mqtt.client as mqtt
import psycopg
from fastapi.testclient import TestClient

from app.api.app import create_app
from app.config import Settings
from app.service import Service

T = TypeVar("T")

TOKEN = "test-token-0123456789abcdef"
SECRET = "webhook-secret-0123456789"


def wait_until(probe: Callable[[], T], timeout: float = 15.0, interval: float = 0.05,
               what: str = "condition") -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last: {value!r}")
        time.sleep(interval)


def make_settings(**overrides: Any) -> Settings:
    # A spool of its own: a service stopped while its database was away must not hand its
    # messages to another test's service.
    values: dict[str, Any] = {"api_tokens": [TOKEN], "webhook_secret": SECRET,
                              "device_cache_refresh_s": 0.2,
                              "spool_dir": Path(tempfile.gettempdir()) / f"bauhof-spool-{uuid.uuid4().hex}"}
    values.update(overrides)
    return Settings(**values)


@contextlib.contextmanager
def running_service(conninfo: str, broker: tuple[str, int] | None = None,
                    topics: list[str] | None = None,
                    **overrides: Any) -> Iterator[tuple[Service, TestClient]]:
    """A started service (pipeline, MQTT intake, API) and a client for its HTTP API."""
    if broker is not None:
        overrides.update(mqtt_host=broker[0], mqtt_port=broker[1])
    if topics is not None:
        overrides["mqtt_topics"] = topics
    service = Service(make_settings(**overrides), conninfo)
    with TestClient(create_app(service)) as client:
        if service.mqtt is not None:
            assert service.mqtt.wait_connected(10), "service did not connect to the broker"
            time.sleep(0.2)  # the SUBACK follows the CONNACK
        yield service, client


@contextlib.contextmanager
def served(service: Service) -> Iterator[str]:
    """The service's HTTP API on a free port of a real uvicorn (browsers and schemathesis need a
    socket, not a test client); yields its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(create_app(service), host="127.0.0.1", port=0,
                                           log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, timeout=30, what="the service to start")
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(20)


class Publisher:
    """Publishes like TTS does: MQTT 3.1.1, QoS 0 unless told otherwise."""

    def __init__(self, broker: tuple[str, int]) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        self.client.connect(*broker)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 0) -> None:
        info = self.client.publish(topic, payload, qos=qos)
        info.wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> "Publisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def count(conninfo: str, sql: str, *params: Any) -> int:
    with psycopg.connect(conninfo) as conn:
        return conn.execute(sql, params).fetchone()[0]


class TcpProxy:
    """A TCP relay we can cut and restore: a database outage without touching the database."""

    def __init__(self, upstream: tuple[str, int] | str) -> None:
        self.upstream = upstream  # (host, port) or a unix socket path
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._up = threading.Event()
        self._up.set()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        if isinstance(self.upstream, str):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(self.upstream)
        else:
            sock = socket.create_connection(self.upstream)
        return sock

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._up.is_set():
                client.close()
                continue
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            with self._lock:
                self._pairs.append((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        """Drop every open connection and refuse new ones."""
        self._up.clear()
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for s in pair:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

    def restore(self) -> None:
        self._up.set()

    def close(self) -> None:
        self.cut()
        self._listener.close()


def proxied_conninfo(conninfo: str, proxy: TcpProxy) -> str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    params.update(host="127.0.0.1", port=str(proxy.port))
    return psycopg.conninfo.make_conninfo(**params)


def upstream_of(conninfo: str) -> tuple[str, int] | str:
    params = psycopg.conninfo.conninfo_to_dict(conninfo)
    host, port = params.get("host", "127.0.0.1"), int(params.get("port", 5432))
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}"
    return host, port
