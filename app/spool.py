"""What was received but not committed when the service stopped: kept on disk, replayed at start.

Only a stop while the database is away leaves such messages (``Pipeline.stop`` returns them):
they are appended to ``pending.jsonl`` in the spool directory, one JSON object per message with
the raw bytes in base64, and fsync'ed before the process exits. At the next start the file is
renamed to ``replaying-<time>.jsonl`` and its messages go through the pipeline again; the file
is deleted once every one of them is committed, or once a second stop has spooled again what
was still unwritten. A crash in between replays a file once more, which stores nothing twice:
uplinks are kept by their idempotency key, dead letters by their fingerprint.

Nothing is written on the hot path: a crash (SIGKILL, power) is covered by the network's own
redelivery and the backfill (docs/reliability.md), a stop while the database is away by this.
"""
from __future__ import annotations

import base64
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from app.model import Result
from app.pipeline import Message, Pipeline

log = logging.getLogger(__name__)

PENDING = "pending.jsonl"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._replaying: list[Path] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._unsubmitted: list[Message] = []  # a replay cut short by a stop

    # --- at stop ---------------------------------------------------------------------------

    def keep(self, messages: Sequence[Message]) -> None:
        """Append the messages and make them durable; then the files being replayed, whose
        unwritten messages are among them, are done."""
        if self._thread is not None:
            self._thread.join(5)  # it stops feeding as soon as the pipeline stops
            messages = [*messages, *self._unsubmitted]
            self._unsubmitted = []
        if messages:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / PENDING
            new = not path.exists()
            with open(path, "ab") as out:
                for m in messages:
                    out.write(json.dumps({"source": m.source, "topic": m.topic, "event": m.event,
                                          "raw": base64.b64encode(m.raw).decode()}).encode()
                              + b"\n")
                out.flush()
                os.fsync(out.fileno())
            if new:
                _fsync_dir(self.directory)  # the file's name must survive a power cut too
            log.warning("spooled %d unwritten messages to %s; they are written at the next "
                        "start", len(messages), path)
        with self._lock:
            for replayed in self._replaying:
                replayed.unlink(missing_ok=True)
            self._replaying.clear()

    # --- at start --------------------------------------------------------------------------

    def replay(self, pipeline: Pipeline) -> int:
        """Hand what the last stop spooled to the pipeline (in a thread); returns how many."""
        files = self._claim()
        messages = [m for path in files for m in self._read(path)]
        if not messages:
            for path in files:
                path.unlink(missing_ok=True)
            return 0
        with self._lock:
            self._replaying = files
        log.info("replaying %d messages spooled at the last stop", len(messages))
        self._thread = threading.Thread(target=self._feed, args=(pipeline, messages, files),
                                        name="bauhof-spool", daemon=True)
        self._thread.start()
        return len(messages)

    def wait(self, timeout: float) -> bool:
        """True once the replay has been fed and committed (tests, shutdown)."""
        if self._thread is not None:
            self._thread.join(timeout)
            return not self._thread.is_alive()
        return True

    def _claim(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        pending = self.directory / PENDING
        if pending.exists():
            # A new name, so that a stop during the replay appends to a fresh pending file.
            claimed = self.directory / f"replaying-{time.time_ns()}.jsonl"
            pending.rename(claimed)
            _fsync_dir(self.directory)
        return sorted(self.directory.glob("replaying-*.jsonl"))

    @staticmethod
    def _read(path: Path) -> Iterator[Message]:
        with open(path, "rb") as spooled:
            for number, line in enumerate(spooled, 1):
                try:
                    record = json.loads(line)
                    yield Message(raw=base64.b64decode(record["raw"], validate=True),
                                  source=record["source"], topic=record.get("topic"),
                                  event=record.get("event"))
                except (ValueError, KeyError, TypeError) as err:
                    # Only a write cut short by a crash leaves a broken line: the last one.
                    log.error("spool %s line %d unreadable, skipped: %s", path, number, err)

    def _feed(self, pipeline: Pipeline, messages: list[Message], files: list[Path]) -> None:
        left = len(messages)
        all_done = threading.Event()
        counting = threading.Lock()

        def done(_result: Result) -> None:
            nonlocal left
            with counting:
                left -= 1
                if left == 0:
                    all_done.set()

        for n, message in enumerate(messages):
            message.done = done
            while not pipeline.submit(message, timeout=1.0):
                if pipeline.stopping:  # keep() spools these with the pipeline's unwritten
                    self._unsubmitted = messages[n:]
                    return
        while not all_done.wait(1.0):
            if pipeline.stopping:
                return
        with self._lock:
            if self._replaying is files:
                for path in files:
                    path.unlink(missing_ok=True)
                self._replaying = []
        log.info("replayed %d spooled messages", len(messages))
