"""JSON log lines, one object per record, carrying the request's trace id and conversation id.

Every request gets a trace id (from its W3C `traceparent`, or new), returned in `X-Trace-Id`
and put on every record logged while it is handled, with the conversation id its path names.
Records are masked for phone and card numbers before they are written.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from conversation import InvalidInput, validate_conversation_id
from conversation.redaction import RECORD_FIELDS, RedactNumbers
from conversation.tracing import from_traceparent, new_trace_id

TRACE_HEADER = "X-Trace-Id"

_trace_id: ContextVar[str | None] = ContextVar("baton_trace_id", default=None)
_conversation_id: ContextVar[str | None] = ContextVar("baton_conversation_id", default=None)

_CONVERSATION_PATH = re.compile(r"/v1/conversations/([^/]+)")
# Scraped and probed every few seconds: their lines would drown the rest.
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
# Besides the record's own fields, uvicorn's copy of its message with terminal colours.
_LEFT_OUT = RECORD_FIELDS | {"color_message"}

log = logging.getLogger("orchestrator.requests")


def current_trace_id() -> str | None:
    """The trace id of the request being handled, if any."""
    return _trace_id.get()


class JsonLines(logging.Formatter):
    """time, level, logger, message, then the ids and any `extra` fields; a traceback as
    `exc_info`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry |= {name: value for name, value in record.__dict__.items()
                  if name not in _LEFT_OUT and not name.startswith("_")}
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class RequestContext(logging.Filter):
    """Puts the handled request's ids on records that do not name their own."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (("trace_id", _trace_id), ("conversation_id", _conversation_id)):
            value = var.get()
            if value is not None and not hasattr(record, name):
                setattr(record, name, value)
        return True


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing masked JSON lines with the request's ids."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonLines())
    handler.addFilter(RequestContext())
    handler.addFilter(RedactNumbers())
    return handler


def configure_logging(level: int = logging.INFO) -> None:
    """Every record of the process, uvicorn's included, as one JSON line on stderr."""
    root = logging.getLogger()
    root.handlers[:] = [json_handler()]
    root.setLevel(level)
    # Warnings would go to stderr as plain text.
    logging.captureWarnings(True)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    # It logs every URL it requests, query included, at INFO.
    logging.getLogger("httpx").setLevel(logging.WARNING)


class RequestLogMiddleware:
    """Gives each request its trace id and conversation id, returns the trace id in
    `X-Trace-Id`, and logs one line when the response is done: method, path (never the query,
    which may hold a widget token), status and time taken."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        trace_id = from_traceparent(_header(scope, b"traceparent")) or new_trace_id()
        status = 500
        started = time.perf_counter()

        async def send_with_trace(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", []),
                                      (TRACE_HEADER.lower().encode(), trace_id.encode())]
            await send(message)

        with _request_ids(trace_id, _conversation_of(scope["path"])):
            try:
                await self.app(scope, receive, send_with_trace)
            finally:
                path = scope["path"]
                log.log(logging.DEBUG if path in _QUIET_PATHS else logging.INFO,
                        "%s %s %d", scope["method"], path, status,
                        extra={"method": scope["method"], "path": path, "status": status,
                               "duration_ms": round((time.perf_counter() - started) * 1000, 2)})


@contextmanager
def _request_ids(trace_id: str, conversation_id: str | None) -> Iterator[None]:
    trace_token = _trace_id.set(trace_id)
    conversation_token = _conversation_id.set(conversation_id)
    try:
        yield
    finally:
        _conversation_id.reset(conversation_token)
        _trace_id.reset(trace_token)


def _conversation_of(path: str) -> str | None:
    """The conversation a path is about, when it names a valid one."""
    match = _CONVERSATION_PATH.match(path)
    if match is None:
        return None
    try:
        return validate_conversation_id(match.group(1))
    except InvalidInput:
        return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
