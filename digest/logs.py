"""Logging set-up: readable lines by default, one JSON object per line for log shippers.

Code logs with ``extra={"edition_id": ..., "batch_id": ...}``; the JSON format
carries those fields, so a send can be followed across workers by its ids.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

from digest.config import Settings

#: Record attributes copied into JSON lines when present.
CONTEXT_FIELDS = ("edition_id", "batch_id", "source_id", "list_id", "task_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(settings: Settings, level: int = logging.INFO) -> None:
    """Send Digest's (and Celery's) logs to standard error in the configured format."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
