"""Prometheus metrics of one service instance (its own registry, so tests can run several)."""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("bauhof_uplinks_received_total",
                                "Messages received, by source", ["source"], registry=r)
        self.stored = Counter("bauhof_uplinks_stored_total",
                              "Uplinks stored for the first time", ["source"], registry=r)
        self.duplicate = Counter("bauhof_uplinks_duplicate_total",
                                 "Uplinks already stored (same idempotency key)", ["source"],
                                 registry=r)
        self.ignored = Counter("bauhof_messages_ignored_total",
                               "Valid messages that are not uplinks, by source and kind (TTS:"
                               " join_accept, downlink_sent, ...; ChirpStack: join, log, ...)",
                               ["source", "kind"], registry=r)
        self.device_status = Counter("bauhof_device_status_recorded_total",
                                     "Device status reports (ChirpStack status events) recorded",
                                     ["source"], registry=r)
        self.dead_letters = Counter("bauhof_dead_letters_total",
                                    "Messages or uplinks dead-lettered, by stage", ["stage"],
                                    registry=r)
        self.readings = Counter("bauhof_readings_stored_total", "Readings stored", registry=r)
        self.queue_depth = Gauge("bauhof_queue_depth", "Messages waiting to be written",
                                 registry=r)
        self.commit_seconds = Histogram(
            "bauhof_batch_commit_seconds", "Time to write and commit one batch", registry=r,
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))
        self.batch_size = Histogram("bauhof_batch_size", "Messages per batch", registry=r,
                                    buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000))
        self.db_errors = Counter("bauhof_database_errors_total",
                                 "Failed batch writes that will be retried", registry=r)
