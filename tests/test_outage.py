"""A database outage: the service buffers, reports degraded, and stores everything once after."""
from __future__ import annotations

from decoders.decentlab_dl_mbx import frame as dl_mbx
from helpers import (Publisher, TcpProxy, count, proxied_conninfo, running_service,
                     upstream_of, wait_until)
from simulator.tts import VirtualDevice, encode


def test_database_outage_buffers_and_recovers(db, mqtt_broker, app_id):
    proxy = TcpProxy(upstream_of(db))
    devices = [VirtualDevice(f"bin-{n:03d}", f"70B3D57ED00001{n:02X}", app_id,
                             brand_id="decentlab", model_id="dl-mbx") for n in range(5)]
    try:
        with running_service(proxied_conninfo(db, proxy), mqtt_broker,
                             [f"v3/{app_id}@ttn/devices/+/up"]) as (service, client), \
                Publisher(mqtt_broker) as pub:
            def send(rounds: int) -> None:
                for _ in range(rounds):
                    for d in devices:
                        pub.publish(d.topic, encode(d.uplink(dl_mbx(600, battery_v=3.0))))

            send(2)
            wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 10)

            proxy.cut()
            send(10)  # 50 uplinks while the database is away
            wait_until(lambda: client.get("/health/ready").status_code == 503, timeout=20,
                       what="readiness to report degraded")
            ready = client.get("/health/ready").json()
            assert ready["database"] == "unavailable" and ready["mqtt"] == "connected"
            assert client.get("/health/live").status_code == 200
            assert count(db, "SELECT count(*) FROM raw_uplinks") == 10

            proxy.restore()
            wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 60, timeout=60,
                       what="the buffered uplinks to be written")
            wait_until(lambda: client.get("/health/ready").status_code == 200, timeout=20)
            assert count(db, "SELECT count(*) FROM readings") == 120
            assert service.metrics.db_errors._value.get() >= 1
    finally:
        proxy.close()


def test_shutdown_flushes_the_queue(db, mqtt_broker, app_id):
    device = VirtualDevice("bin-001", "70B3D57ED0000A01", app_id, brand_id="decentlab",
                           model_id="dl-mbx")
    with running_service(db, mqtt_broker, [f"v3/{app_id}@ttn/devices/+/up"]) as (service, _), \
            Publisher(mqtt_broker) as pub:
        for _ in range(200):
            pub.publish(device.topic, encode(device.uplink(dl_mbx(600, battery_v=3.0))))
        wait_until(lambda: service.metrics.received.labels("tts-mqtt")._value.get() == 200)
    # leaving the block stopped the service: whatever was queued must be in the database
    assert count(db, "SELECT count(*) FROM raw_uplinks") == 200


def test_qos1_messages_are_acknowledged_only_after_commit(db, mqtt_broker, app_id):
    """A persistent QoS 1 session (ChirpStack style): what we did not commit comes again."""
    from app.service import Service
    from helpers import make_settings

    proxy = TcpProxy(upstream_of(db))
    device = VirtualDevice("bin-001", "70B3D57ED0000B01", app_id, brand_id="decentlab",
                           model_id="dl-mbx")
    settings = make_settings(mqtt_host=mqtt_broker[0], mqtt_port=mqtt_broker[1], mqtt_qos=1,
                             mqtt_client_id=f"bauhof-{app_id}",
                             mqtt_topics=[f"v3/{app_id}@ttn/devices/+/up"])
    try:
        first = Service(settings, proxied_conninfo(db, proxy))
        first.start()
        assert first.mqtt.wait_connected(10)
        with Publisher(mqtt_broker) as pub:
            pub.publish(device.topic, encode(device.uplink(dl_mbx(600, battery_v=3.0))), qos=1)
            wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 1)
            proxy.cut()  # from here on nothing can be committed
            for _ in range(5):
                pub.publish(device.topic, encode(device.uplink(dl_mbx(500, battery_v=3.0))),
                            qos=1)
            wait_until(lambda: first.metrics.received.labels("tts-mqtt")._value.get() == 6)
        # Stop without having written them: they were never acknowledged to the broker.
        first.mqtt.stop()
        assert len(first.pipeline.stop(timeout=1.0)) == 5
        first.pool.close()
        proxy.restore()

        second = Service(settings, proxied_conninfo(db, proxy))
        second.start()
        try:
            wait_until(lambda: count(db, "SELECT count(*) FROM raw_uplinks") == 6, timeout=30,
                       what="the broker to deliver the unacknowledged uplinks again")
        finally:
            second.stop()
        assert count(db, "SELECT count(*) FROM readings") == 12
    finally:
        proxy.close()


def test_an_unexpected_error_dead_letters_the_batch_and_ingest_goes_on(db, monkeypatch):
    import app.pipeline as pipeline_module
    from fixtures_data import DATA

    raw = (DATA / "examples" / "tts_uplink_decoded.json").read_bytes()
    # (A decoder's bug costs only its uplink's readings; a parser's bug is unexpected.)
    real_parse = pipeline_module.parse_tts
    calls = []

    def broken_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug in a parser")
        return real_parse(*args, **kwargs)

    monkeypatch.setattr(pipeline_module, "parse_tts", broken_once)
    with running_service(db) as (service, client):
        headers = {"X-Webhook-Secret": "webhook-secret-0123456789"}
        first = client.post("/api/v1/webhooks/tts", content=raw, headers=headers)
        assert first.status_code == 422
        assert first.json()["reason"] == "internal error: RuntimeError: a bug in a parser"
        second = client.post("/api/v1/webhooks/tts", content=raw, headers=headers)
        assert second.json()["result"] == "stored"
    assert count(db, "SELECT count(*) FROM ingest_errors WHERE stage = 'internal'") == 1
