"""The one path every message takes: intake queue -> parse -> decode -> store -> callbacks.

Sources (MQTT, webhook) only ``submit`` raw bytes; they never touch the database. A bounded
queue decouples them from the writer, so that a slow database never blocks the MQTT network
loop for long. One worker thread takes whatever has queued up (up to ``batch_max``), prepares
it and writes it in one transaction. Each message's ``done`` callback runs only after that
transaction committed: an MQTT QoS 1 message is acknowledged, a webhook answered, then and not
before. While the database is unreachable the worker keeps its batch, retries with back-off
and reports itself degraded; the queue absorbs what arrives meanwhile, up to its bound.
"""
from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from app.config import Settings
from app.decoding import DeviceConfig, decode_uplink
from app.metrics import Metrics
from app.model import DeadLetter, Outcome, Result
from app.sources.chirpstack import parse_chirpstack
from app.sources.errors import Rejected
from app.sources.tts import NotAnUplink, parse_tts
from app.store import TRANSIENT, Prepared, Store

log = logging.getLogger(__name__)

Done = Callable[[Result], None]


@dataclass(slots=True)
class Message:
    raw: bytes
    source: str  # tts-mqtt, tts-webhook, chirpstack-mqtt, ...
    topic: str | None = None
    done: Done | None = None


class Pipeline:
    def __init__(self, settings: Settings, store: Store, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._queue: queue.Queue[Message] = queue.Queue(maxsize=settings.queue_max)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._devices: dict[str, DeviceConfig] = {}
        self._devices_loaded_at = float("-inf")
        self.database_ok = False
        self.last_error: str | None = None
        self.last_commit_at: float | None = None
        self._give_up_at = float("inf")
        self._in_hand = 0  # messages taken from the queue and not yet committed

    # --- intake ----------------------------------------------------------------------------

    def submit(self, message: Message, timeout: float | None = None) -> bool:
        """Queue a message. Blocks while the queue is full, up to ``timeout`` (None: forever).

        Returns False if the message could not be queued (full, or shutting down); the caller
        then still owns it: a webhook answers 503, MQTT QoS 1 leaves it unacknowledged.
        """
        if self._stopping.is_set():
            return False
        try:
            self._queue.put(message, timeout=timeout)
        except queue.Full:
            return False
        self.metrics.received.labels(message.source).inc()
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def invalidate_devices(self) -> None:
        """The registry changed (API write): reload it before the next batch."""
        self._devices_loaded_at = float("-inf")

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bauhof-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> int:
        """Refuse new messages, write what is queued (for up to ``timeout``), stop.

        Returns how many messages were left unwritten (0 unless the database is down).
        """
        self._give_up_at = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 5)
        left = self.depth + self._in_hand
        if left:
            log.error("stopped with %d messages unwritten (database unavailable)", left)
        return left

    # --- worker --------------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.store.close()

    def _loop(self) -> None:
        backoff = 0.5
        batch: list[Message] = []
        while True:
            if not batch:
                batch = self._take()
                if not batch:
                    if self._stopping.is_set():
                        return
                    self._idle_check()
                    continue
            self._in_hand = len(batch)
            try:
                self._refresh_devices()
                self._process(batch)
            except TRANSIENT as err:
                self._degraded(err)
                now = time.monotonic()
                if now >= self._give_up_at:
                    return
                time.sleep(min(backoff * random.uniform(0.8, 1.2), self._give_up_at - now))
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception as err:  # noqa: BLE001 - a bug must not stop ingestion
                log.exception("unexpected error processing a batch of %d", len(batch))
                if not self._dead_letter_all(batch, err):
                    time.sleep(1.0)
                    continue
            batch = []
            self._in_hand = 0
            backoff = 0.5

    def _dead_letter_all(self, batch: list[Message], err: Exception) -> bool:
        """Keep the raw messages of a batch that failed for an unexpected reason."""
        reason = f"internal error: {type(err).__name__}: {err}"[:500]
        items = [Prepared(raw=m.raw, source=m.source, topic=m.topic,
                          dead_letter=self._letter(m, "internal", reason)) for m in batch]
        try:
            self.store.write(items)
        except Exception:  # noqa: BLE001
            log.exception("could not dead-letter the batch either; retrying")
            return False
        self.metrics.dead_letters.labels("internal").inc(len(batch))
        for message in batch:
            if message.done is not None:
                message.done(Result(Outcome.DEAD_LETTER, reason))
        return True

    def _take(self) -> list[Message]:
        try:
            first = self._queue.get(timeout=0.5)
        except queue.Empty:
            return []
        batch = [first]
        # Take what has queued up meanwhile: batches grow with the load by themselves.
        while len(batch) < self.settings.batch_max:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        self.metrics.queue_depth.set(self._queue.qsize())
        return batch

    def _process(self, batch: list[Message]) -> None:
        started = time.perf_counter()
        prepared = [self._prepare(m) for m in batch]
        report = self.store.write(prepared)
        self._healthy()
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        self.metrics.readings.inc(report.readings)
        for letter in report.dead_letters:
            self.metrics.dead_letters.labels(letter.stage).inc()
        for message, item in zip(batch, prepared):
            result = self._result(item)
            if result.outcome is Outcome.STORED:
                self.metrics.stored.labels(message.source).inc()
            elif result.outcome is Outcome.DUPLICATE:
                self.metrics.duplicate.labels(message.source).inc()
            elif result.outcome is Outcome.IGNORED:
                self.metrics.ignored.labels(message.source).inc()
            if message.done is not None:
                try:
                    message.done(result)
                except Exception:  # noqa: BLE001 - a caller's callback must not stop the writer
                    log.exception("completion callback failed")

    @staticmethod
    def _result(item: Prepared) -> Result:
        u = item.uplink
        letter = item.dead_letter
        if u is None or item.refused:
            if letter is None:
                return Result(Outcome.IGNORED)
            return Result(Outcome.DEAD_LETTER, letter.reason, letter.device_id)
        if not item.inserted:
            return Result(Outcome.DUPLICATE, None, u.device_id)
        readings = len(item.decoding.readings) if item.decoding else 0
        return Result(Outcome.STORED, letter.reason if letter else None, u.device_id, readings)

    def _prepare(self, message: Message) -> Prepared:
        item = Prepared(raw=message.raw, source=message.source, topic=message.topic)
        context = {"source": message.source, "topic": message.topic or "-"}
        if len(message.raw) > self.settings.max_message_bytes:
            item.dead_letter = self._letter(
                message, "parse", f"message has {len(message.raw)} bytes; at most "
                f"{self.settings.max_message_bytes} are accepted")
            return item
        try:
            if message.source.startswith("tts"):
                uplink = parse_tts(message.raw, message.source, message.topic)
            elif message.source.startswith("chirpstack"):
                uplink = parse_chirpstack(message.raw, message.source, message.topic)
            else:
                raise Rejected("parse", f"no parser for source {message.source!r}")
        except NotAnUplink as kind:
            log.debug("ignoring TTS %s message", kind, extra=context)
            return item
        except Rejected as err:
            item.dead_letter = self._letter(message, err.stage, err.reason, err.device_id)
            log.info("dead letter: %s", err.reason,
                     extra={**context, "stage": err.stage, "device": err.device_id or "-"})
            return item

        device = self._devices.get(uplink.device_id)
        if device is None and not self.settings.auto_register_devices:
            item.dead_letter = self._letter(
                message, "device", f"device {uplink.device_id} is not registered "
                "(BAUHOF_AUTO_REGISTER_DEVICES is off)", uplink.device_id)
            return item
        item.uplink = uplink
        keep = not uplink.simulated or self.settings.store_simulated_readings
        item.decoding = decode_uplink(uplink, device, keep_readings=keep)
        if item.decoding.error:
            item.dead_letter = self._letter(message, "decode", item.decoding.error,
                                            uplink.device_id)
            log.info("decode failed: %s", item.decoding.error,
                     extra={**context, "device": uplink.device_id, "uplink": uplink.log_id})
        return item

    def _letter(self, message: Message, stage: str, reason: str,
                device_id: str | None = None) -> DeadLetter:
        cap = self.settings.max_message_bytes
        return DeadLetter(stage=stage, reason=reason, source=message.source,
                          raw=message.raw[:cap], raw_size=len(message.raw),
                          truncated=len(message.raw) > cap, topic=message.topic,
                          device_id=device_id)

    # --- state ---------------------------------------------------------------------------------

    def _refresh_devices(self) -> None:
        now = time.monotonic()
        if now - self._devices_loaded_at >= self.settings.device_cache_refresh_s:
            self._devices = self.store.load_devices()
            self._devices_loaded_at = now

    def _idle_check(self) -> None:
        # Keep readiness truthful while nothing arrives: probe the database every few seconds.
        if self.last_commit_at is None or time.monotonic() - self.last_commit_at > 5:
            try:
                self.store.ping()
                self._refresh_devices()
                self._healthy()
            except TRANSIENT as err:
                self._degraded(err)
                time.sleep(1.0)

    def _healthy(self) -> None:
        if not self.database_ok:
            log.info("database reachable")
        self.database_ok = True
        self.last_error = None
        self.last_commit_at = time.monotonic()

    def _degraded(self, err: Exception) -> None:
        self.metrics.db_errors.inc()
        if self.database_ok or self.last_error is None:
            log.warning("database unavailable, buffering (%d queued): %s",
                        self.depth, str(err).strip().splitlines()[0] if str(err) else err)
        self.database_ok = False
        self.last_error = type(err).__name__
