"""Logging set-up: context fields (device, uplink) on every line, secrets scrubbed.

Call sites pass context as ``extra={"device": ..., "uplink": ...}``; the formatter prints it as
``key=value`` pairs (text) or JSON fields.
"""
from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable

CONTEXT_FIELDS = ("device", "uplink", "source", "stage", "topic", "plan_day", "kind", "vehicle",
                  "alert", "rule")


class SecretScrubber(logging.Filter):
    """Replaces secret values anywhere in the formatted message, whatever library logged it."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        message = record.getMessage()
        scrubbed = message
        for secret in self.secrets:
            scrubbed = scrubbed.replace(secret, "***")
        if scrubbed != message:
            record.msg, record.args = scrubbed, None
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        context = " ".join(
            f"{key}={getattr(record, key)}" for key in CONTEXT_FIELDS if hasattr(record, key)
        )
        return f"{line} [{context}]" if context else line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT_FIELDS:
            if hasattr(record, key):
                doc[key] = getattr(record, key)
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def add_secrets(secrets: Iterable[str]) -> None:
    """Scrub these too from now on (secrets read from files after start-up, e.g. the alert
    routes' passwords)."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, SecretScrubber):
                f.secrets.extend(s for s in secrets if s and s not in f.secrets)


def configure(level: str = "INFO", fmt: str = "text", secrets: Iterable[str] = ()) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(SecretScrubber(secrets))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # paho logs every packet at DEBUG; uvicorn's access log is noise for a polling dashboard.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
