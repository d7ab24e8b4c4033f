"""Ground truth: the true state of every device at every uplink, and what happened to it.

Written as CSV (``time,device_id,metric,value`` and ``time,device_id,event,detail``) for
evaluations, and kept in memory when asked, for tests.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO


@dataclass(frozen=True)
class TruthRow:
    time: datetime
    device_id: str
    metric: str
    value: float


@dataclass(frozen=True)
class EventRow:
    time: datetime
    device_id: str
    event: str  # uplink, lost, duplicate, late, bad_frame, bad_json, rejoin, simulated, glitch,
    #             emptied, watered, disconnect, incident_start, incident_end (detail: the
    #             kind; simulator/incidents.py)
    detail: str = ""


class GroundTruth:
    def __init__(self, directory: Path | None = None, keep: bool = False) -> None:
        self.keep = keep
        self.values: list[TruthRow] = []
        self.events: list[EventRow] = []
        self._files: list[IO[str]] = []
        self._values_csv = self._events_csv = None
        if directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._values_csv = self._open(directory / "truth.csv", ("time", "device_id", "metric",
                                                                   "value"))
            self._events_csv = self._open(directory / "events.csv", ("time", "device_id", "event",
                                                                    "detail"))

    def _open(self, path: Path, header: tuple[str, ...]):
        handle = open(path, "w", newline="", encoding="utf-8")
        self._files.append(handle)
        writer = csv.writer(handle)
        writer.writerow(header)
        return writer

    def state(self, time: datetime, device_id: str, values: dict[str, float]) -> None:
        for metric, value in values.items():
            if self.keep:
                self.values.append(TruthRow(time, device_id, metric, value))
            if self._values_csv is not None:
                self._values_csv.writerow((time.isoformat(), device_id, metric, f"{value:.6g}"))

    def event(self, time: datetime, device_id: str, event: str, detail: str = "") -> None:
        if self.keep:
            self.events.append(EventRow(time, device_id, event, detail))
        if self._events_csv is not None:
            self._events_csv.writerow((time.isoformat(), device_id, event, detail))

    def close(self) -> None:
        for handle in self._files:
            handle.close()
        self._files = []
