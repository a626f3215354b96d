"""Logging set-up: plain lines for a terminal, or one JSON object a line (ZONEHUB_LOG_FORMAT=json)
for a log collector, each carrying the request id of the request it serves and, in a worker,
the job it runs (a job enqueued by a request carries that request's id)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from services import requestctx


class ContextFilter(logging.Filter):
    """Adds `request_id` and `job` to every record (None outside a request or a job)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = requestctx.request_id.get()
        record.job = requestctx.job.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {"ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
                 "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        for name in ("request_id", "job"):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(*, level: str = "INFO", fmt: str = "text") -> None:
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
