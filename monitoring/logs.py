"""The `acme` logger's output: `text` (`HH:MM:SS message`, as --follow has always printed)
or `json` (one object per line: ts, level, logger, event, message, and the event's numbers).

Records carry their numbers as `extra={"event": "cycle", "fields": {...}}`, so the code that
logs needs nothing from this module, only the standard library.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import TextIO

LOGGER_NAME = "acme"
LOG_FORMATS = ("text", "json")

# Which dbt's --log-format and --log-level (read from the environment by the in-process dbt)
# take under json, so that every line on stdout is a JSON object and dbt's per-model lines
# do not drown the one line per cycle; dbt still writes everything to its dbt.log.
DBT_JSON_ENVIRONMENT = {"DBT_LOG_FORMAT": "json", "DBT_LOG_LEVEL": "warn"}


class JsonFormatter(logging.Formatter):
    RESERVED = ("ts", "level", "logger", "event", "message")

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": getattr(record, "event", None) or "log",
            "message": record.getMessage(),
        }
        for key, value in (getattr(record, "fields", None) or {}).items():
            if key not in self.RESERVED:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def text_formatter() -> logging.Formatter:
    # Local time and no level: the lines tests and operators already grep for
    # (`HH:MM:SS loaded N changes ...`, `...; retrying in Ns`) stay as they were.
    return logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S")


def configure_logging(log_format: str = "text", stream: TextIO | None = None) -> logging.Logger:
    """Sends the `acme` logger's INFO and above to stdout (or stream) in the given format."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(LOG_FORMATS)}")
    logger = logging.getLogger(LOGGER_NAME)
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    # stdout, like the lines click printed before: a service manager collects both streams,
    # and stderr stays for the one `Error: ...` line a fatal failure ends with.
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(JsonFormatter() if log_format == "json" else text_formatter())
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if log_format == "json":
        for name, value in DBT_JSON_ENVIRONMENT.items():
            os.environ.setdefault(name, value)
    return logger
