"""The one path every message takes: intake queue -> parse -> decode -> store -> callbacks.

Sources (MQTT, webhook) only ``submit`` raw bytes; they never touch the database. A bounded
queue decouples them from the writer, so that a slow database never blocks the MQTT network
loop for long. A preparer thread takes whatever has queued up (up to ``batch_max``) and parses
and decodes it while the writer thread writes the batch before in one transaction: at most one
batch is being written and one prepared, and the database's share of the work overlaps ours.
Each message's ``done`` callback runs only after its transaction committed: an MQTT QoS 1
message is acknowledged, a webhook answered, then and not before. While the database is
unreachable the writer keeps its batch, retries with back-off and reports itself degraded; the
queue absorbs what arrives meanwhile, up to its bound.
"""
from __future__ import annotations

import logging
import random
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from app.config import Settings
from app.decoding import Decoding, DeviceConfig, decode_uplink
from app.device_keys import DeviceKeys
from app.metrics import Metrics
from app.model import DeadLetter, DeviceStatus, Outcome, Result, Uplink
from app.sources.chirpstack import parse_chirpstack
from app.sources.errors import NotAnUplink, Rejected
from app.sources.tts import parse_tts
from app.store import TRANSIENT, Prepared, Store, fingerprint

log = logging.getLogger(__name__)

Done = Callable[[Result], None]
U = TypeVar("U", Uplink, DeviceStatus)

# The writer waits for the database several times per batch and then for the GIL, which a busy
# thread (the preparer, MQTT intake) hands over only after the switch interval, 5 ms by default:
# at 10,000 uplinks/s that alone doubled the time a batch took. With 1 ms, p99 latency at 15,000
# uplinks/s was 320 ms instead of 580 ms in a paired run.
SWITCH_INTERVAL_S = 0.001
# How long a stop waits for a database that is already known to be away.
DEGRADED_STOP_S = 5.0


@dataclass(slots=True)
class Message:
    raw: bytes
    source: str  # tts-mqtt, tts-webhook, chirpstack-mqtt, ...
    topic: str | None = None
    done: Done | None = None
    event: str | None = None  # ChirpStack HTTP integration: ?event= (MQTT: in the topic)


class Intake:
    """The bounded queue between the sources and the preparer.

    Like ``queue.Queue``, but the preparer takes everything that has queued up (up to a limit)
    under one lock acquisition, and nobody is notified who is not waiting: at thousands of
    messages a second the per-message cost of the queue matters.
    """

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Message] = deque()
        self._max = maxsize
        self._lock = threading.Lock()
        self._readable = threading.Condition(self._lock)
        self._writable = threading.Condition(self._lock)
        self._reader_waiting = False
        self._writers_waiting = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: Message, timeout: float | None = None) -> bool:
        """Append; wait while full, up to ``timeout`` (None: forever). False if still full."""
        with self._lock:
            items = self._items
            if len(items) >= self._max:
                deadline = None if timeout is None else time.monotonic() + timeout
                self._writers_waiting += 1
                try:
                    while len(items) >= self._max:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            return False
                        self._writable.wait(remaining)
                finally:
                    self._writers_waiting -= 1
            items.append(item)
            if self._reader_waiting:
                self._readable.notify()
        return True

    def take(self, limit: int, timeout: float) -> list[Message]:
        """Up to ``limit`` messages, oldest first; waits up to ``timeout`` for the first."""
        with self._lock:
            items = self._items
            if not items:
                self._reader_waiting = True
                try:
                    self._readable.wait(timeout)
                finally:
                    self._reader_waiting = False
                if not items:
                    return []
            if len(items) <= limit:
                batch = list(items)
                items.clear()
            else:
                batch = [items.popleft() for _ in range(limit)]
            if self._writers_waiting:
                self._writable.notify_all()
        return batch


@dataclass(slots=True)
class _Batch:
    messages: list[Message]
    prepared: list[Prepared] | None  # None: prepare again (the device registry changed)
    devices_version: int
    error: Exception | None = None  # preparing failed unexpectedly


class _Slot:
    """Hands one prepared batch from the preparer to the writer."""

    def __init__(self) -> None:
        self._item: _Batch | None = None
        self._changed = threading.Condition()

    def wait_empty(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: self._item is None, timeout)

    def put(self, item: _Batch) -> None:
        with self._changed:
            self._item = item
            self._changed.notify_all()

    def get(self, timeout: float) -> _Batch | None:
        with self._changed:
            if self._item is None:
                self._changed.wait(timeout)
            item, self._item = self._item, None
            if item is not None:
                self._changed.notify_all()
        return item


class Pipeline:
    def __init__(self, settings: Settings, store: Store, metrics: Metrics) -> None:
        self.settings = settings
        self.store = store
        self.metrics = metrics
        self._queue = Intake(settings.queue_max)
        self._received: dict[str, object] = {}  # source -> its counter, to skip labels()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None  # the writer
        self._preparer: threading.Thread | None = None
        self._slot = _Slot()
        self._prepared_all = threading.Event()  # the preparer has stopped
        self._writer_gone = threading.Event()  # the writer has stopped
        self._devices: dict[str, DeviceConfig] = {}
        self._keys = DeviceKeys()
        self._devices_version = 0
        self._devices_loaded_at = float("-inf")
        self._unknown_kinds: set[tuple[str, str]] = set()  # (source, kind) logged already
        self.database_ok = False
        self.last_error: str | None = None
        self.last_commit_at: float | None = None
        self._give_up_at = float("inf")
        # Messages taken from the queue (counted by the preparer) and finished (by the writer).
        self._taken = 0
        self._finished = 0
        self._unwritten: list[Message] = []  # the batch the writer gave up on at a stop
        self._writing: _Batch | None = None  # the batch being written
        # Called by the writer after each commit with the devices whose new uplinks it stored
        # (the alerts' "evaluate on every stored batch"); it must return at once.
        self.on_committed: Callable[[set[str]], None] | None = None

    # --- intake ----------------------------------------------------------------------------

    def pending(self) -> int:
        """Messages accepted but not yet taken by the writer."""
        return len(self._queue)

    def submit(self, message: Message, timeout: float | None = None) -> bool:
        """Queue a message. Blocks while the queue is full, up to ``timeout`` (None: forever).

        Returns False if the message could not be queued (full, or shutting down); the caller
        then still owns it: a webhook answers 503, MQTT QoS 1 leaves it unacknowledged.
        """
        if self._stopping.is_set() or not self._queue.put(message, timeout):
            return False
        counter = self._received.get(message.source)
        if counter is None:
            counter = self._received[message.source] = self.metrics.received.labels(
                message.source)
        counter.inc()
        return True

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def depth(self) -> int:
        return len(self._queue)

    def invalidate_devices(self) -> None:
        """The registry changed (API write): reload it before the next batch."""
        self._devices_loaded_at = float("-inf")

    # --- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        if sys.getswitchinterval() > SWITCH_INTERVAL_S:
            sys.setswitchinterval(SWITCH_INTERVAL_S)
        self._thread = threading.Thread(target=self._run, name="bauhof-writer", daemon=True)
        self._preparer = threading.Thread(target=self._prepare_loop, name="bauhof-prepare",
                                          daemon=True)
        self._thread.start()
        self._preparer.start()

    @property
    def _in_hand(self) -> int:
        """Messages taken from the queue and not yet committed."""
        return self._taken - self._finished

    def stop(self, timeout: float = 30.0) -> list[Message]:
        """Refuse new messages, write what is queued (for up to ``timeout``), stop.

        Returns the messages left unwritten, oldest first (none unless the database is down).
        While the database is known to be away, it is given a few seconds, not ``timeout``:
        a container runtime kills a process that takes longer than about ten.
        """
        if self.last_error is not None:
            timeout = min(timeout, DEGRADED_STOP_S)
        self._give_up_at = time.monotonic() + timeout
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout + 5)
        if self._preparer is not None:
            self._preparer.join(5)
        left = list(self._unwritten)
        writing = self._writing
        if writing is not None and self._thread is not None and self._thread.is_alive():
            # Stuck in a call to a database that went away: not committed as far as we know
            # (and if it was, the idempotency key keeps a replay from storing it twice).
            left += writing.messages
        handed = self._slot.get(timeout=0)
        if handed is not None:
            left += handed.messages
        left += self._queue.take(len(self._queue) + 1, timeout=0)
        if left:
            log.error("stopped with %d messages unwritten (database unavailable)", len(left))
        return left

    # --- worker --------------------------------------------------------------------------------

    def _prepare_loop(self) -> None:
        """Parse and decode the next batch while the writer writes the one before."""
        try:
            while not self._writer_gone.is_set():
                # Take only once the writer has the previous batch: the batch is then as large
                # as the load makes it, and at most two are in hand.
                if not self._slot.wait_empty(0.5):
                    continue
                batch = self._take()
                if not batch:
                    if self._stopping.is_set():
                        return
                    continue
                self._taken += len(batch)
                version, devices = self._devices_version, self._devices
                try:
                    prepared = [self._prepare(m, devices) for m in batch]
                except Exception as err:  # noqa: BLE001 - a bug must not stop ingestion
                    self._slot.put(_Batch(batch, None, version, err))
                else:
                    self._slot.put(_Batch(batch, prepared, version))
        finally:
            self._prepared_all.set()

    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self._writer_gone.set()
            self.store.close()

    def _loop(self) -> None:
        while True:
            batch = self._slot.get(timeout=0.5)
            if batch is None:
                if not self._prepared_all.is_set():
                    self._idle_check()
                    continue
                batch = self._slot.get(timeout=0)  # the last one, handed over as it stopped
                if batch is None:
                    return
            self._writing = batch
            if not self._write_batch(batch):
                self._unwritten = batch.messages
                return
            self._writing = None
            self._finished += len(batch.messages)

    def _write_batch(self, batch: _Batch) -> bool:
        """Write one batch, retrying while the database is away. False: gave up (stopping)."""
        backoff = 0.5
        messages, prepared = batch.messages, batch.prepared
        while True:
            try:
                if batch.error is not None:
                    raise batch.error
                self._refresh_devices()
                if prepared is None or batch.devices_version != self._devices_version:
                    # Prepared before the registry was read again (or a retry): decide anew.
                    prepared = [self._prepare(m) for m in messages]
                    batch.devices_version = self._devices_version
                self._process(messages, prepared)
                return True
            except TRANSIENT as err:
                self._degraded(err)
                now = time.monotonic()
                if self._stopping.is_set():  # it went away during the stop: a few seconds more
                    self._give_up_at = min(self._give_up_at, now + DEGRADED_STOP_S)
                if now >= self._give_up_at:
                    return False
                time.sleep(min(backoff * random.uniform(0.8, 1.2), self._give_up_at - now))
                backoff = min(backoff * 2, 30.0)
                prepared = None
            except Exception as err:  # noqa: BLE001 - a bug must not stop ingestion
                log.exception("unexpected error processing a batch of %d", len(messages))
                if self._dead_letter_all(messages, err):
                    return True
                time.sleep(1.0)
                prepared = None

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
        # Whatever has queued up meanwhile: batches grow with the load by themselves.
        batch = self._queue.take(self.settings.batch_max, timeout=0.5)
        if batch:
            self.metrics.queue_depth.set(len(self._queue))
        return batch

    def _process(self, batch: list[Message], prepared: list[Prepared]) -> None:
        started = time.perf_counter()
        report = self.store.write(prepared)
        self._healthy()
        self.metrics.commit_seconds.observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(batch))
        if report.readings:
            self.metrics.readings.inc(report.readings)
        for letter in report.dead_letters:
            self.metrics.dead_letters.labels(letter.stage).inc()
        # Counted per batch, not per message: labels() costs more than the rest of the loop.
        outcomes: Counter[tuple[Outcome, str]] = Counter()
        other_kinds: Counter[tuple[str, str]] = Counter()
        for message, item in zip(batch, prepared):
            if item.kind is not None:
                other_kinds[message.source, item.kind] += 1
            if message.done is None:
                outcomes[self._outcome(item), message.source] += 1
                continue
            result = self._result(item)
            outcomes[result.outcome, message.source] += 1
            try:
                message.done(result)
            except Exception:  # noqa: BLE001 - a caller's callback must not stop the writer
                log.exception("completion callback failed")
        counters = {Outcome.STORED: self.metrics.stored,
                    Outcome.DUPLICATE: self.metrics.duplicate,
                    Outcome.RECORDED: self.metrics.device_status}
        for (outcome, source), n in outcomes.items():
            if outcome in counters:
                counters[outcome].labels(source).inc(n)
        for (source, kind), n in other_kinds.items():
            self.metrics.ignored.labels(source, kind).inc(n)
        if self.on_committed is not None and report.inserted:
            devices = {item.uplink.device_id for item in prepared
                       if item.inserted and item.uplink is not None}
            try:
                self.on_committed(devices)
            except Exception:  # noqa: BLE001 - a listener's bug must not stop the writer
                log.exception("after-commit listener failed")

    @staticmethod
    def _outcome(item: Prepared) -> Outcome:
        """What ``_result`` would say, without building the Result."""
        if item.status is not None and not item.refused:
            return Outcome.RECORDED
        if item.uplink is None or item.refused:
            return Outcome.IGNORED if item.dead_letter is None else Outcome.DEAD_LETTER
        return Outcome.STORED if item.inserted else Outcome.DUPLICATE

    @staticmethod
    def _result(item: Prepared) -> Result:
        u = item.uplink
        letter = item.dead_letter
        if item.status is not None and not item.refused:
            return Result(Outcome.RECORDED, None, item.status.device_id,
                          len(item.status.readings()))
        if u is None or item.refused:
            if letter is None:
                return Result(Outcome.IGNORED)
            return Result(Outcome.DEAD_LETTER, letter.reason, letter.device_id)
        if not item.inserted:
            return Result(Outcome.DUPLICATE, None, u.device_id)
        readings = len(item.decoding.readings) if item.decoding else 0
        return Result(Outcome.STORED, letter.reason if letter else None, u.device_id, readings)

    def _prepare(self, message: Message,
                 devices: dict[str, DeviceConfig] | None = None) -> Prepared:
        item = Prepared(raw=message.raw, source=message.source, topic=message.topic)
        if len(message.raw) > self.settings.max_message_bytes:
            item.dead_letter = self._letter(
                message, "parse", f"message has {len(message.raw)} bytes; at most "
                f"{self.settings.max_message_bytes} are accepted")
            return item
        try:
            if message.source.startswith("tts"):
                uplink = parse_tts(message.raw, message.source, message.topic)
            elif message.source.startswith("chirpstack"):
                parsed = parse_chirpstack(message.raw, message.source, message.topic,
                                          message.event)
                if isinstance(parsed, DeviceStatus):
                    item.status = self._keyed(parsed)
                    return item
                uplink = parsed
            else:
                raise Rejected("parse", f"no parser for source {message.source!r}")
        except NotAnUplink as other:
            item.kind = other.kind
            if not other.known and (message.source, other.kind) not in self._unknown_kinds:
                self._unknown_kinds.add((message.source, other.kind))
                log.warning("a message of a kind we do not know, %r: answered and counted, "
                            "not stored (said once per kind)", other.kind,
                            extra=self._context(message))
            return item
        except Rejected as err:
            item.dead_letter = self._letter(message, err.stage, err.reason, err.device_id)
            log.info("dead letter: %s", err.reason,
                     extra={**self._context(message), "stage": err.stage,
                            "device": err.device_id or "-"})
            return item

        uplink = self._keyed(uplink)
        device = (self._devices if devices is None else devices).get(uplink.device_id)
        if device is None and not self.settings.auto_register_devices:
            item.dead_letter = self._letter(
                message, "device", f"device {uplink.device_id} is not registered "
                "(BAUHOF_AUTO_REGISTER_DEVICES is off)", uplink.device_id)
            return item
        item.uplink = uplink
        keep = not uplink.simulated or self.settings.store_simulated_readings
        try:
            item.decoding = decode_uplink(uplink, device, keep_readings=keep)
        except Exception as err:  # noqa: BLE001 - a decoder bug costs this uplink's readings,
            # not the whole batch: the uplink is kept to decode again once the bug is fixed.
            log.exception("decoder crashed",
                          extra={**self._context(message), "device": uplink.device_id})
            reason = f"decoder crashed: {type(err).__name__}: {err}"[:500]
            item.decoding = Decoding(None, [], reason)
        if item.decoding.error:
            item.dead_letter = self._letter(message, "decode", item.decoding.error,
                                            uplink.device_id)
            log.info("decode failed: %s", item.decoding.error,
                     extra={**self._context(message), "device": uplink.device_id,
                            "uplink": uplink.log_id})
        return item

    def _keyed(self, parsed: U) -> U:
        """The uplink or status under its device's key (app/device_keys.py)."""
        key = self._keys.key(parsed.network.value, parsed.application_id, parsed.device_id)
        if key == parsed.device_id:
            return parsed
        return replace(parsed, device_id=key, network_device_id=parsed.device_id)

    @staticmethod
    def _context(message: Message) -> dict[str, str]:
        return {"source": message.source, "topic": message.topic or "-"}

    def _letter(self, message: Message, stage: str, reason: str,
                device_id: str | None = None) -> DeadLetter:
        cap = self.settings.max_message_bytes
        return DeadLetter(stage=stage, reason=reason, source=message.source,
                          raw=message.raw[:cap], raw_size=len(message.raw),
                          truncated=len(message.raw) > cap, topic=message.topic,
                          device_id=device_id,
                          fingerprint=fingerprint(message.source, message.raw))

    # --- state ---------------------------------------------------------------------------------

    def _refresh_devices(self) -> None:
        now = time.monotonic()
        if now - self._devices_loaded_at >= self.settings.device_cache_refresh_s:
            devices, keys = self.store.load_devices()
            self._keys.load(keys)
            self._devices = devices
            self._devices_version += 1  # after the swap: see _prepare_loop
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
