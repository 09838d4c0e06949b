"""The orchestrator's typed errors and the one table that maps every error to its status."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from conversation import (
    BatonError,
    ConversationExists,
    ConversationNotFound,
    InvalidInput,
    StoreUnavailable,
)
from conversation.handoffs import HandoffInProgress, HandoffNotFound, NotInCall

log = logging.getLogger("orchestrator.errors")


class LiveKitUnavailable(BatonError):
    """LiveKit did not answer (connection refused, timeout, 5xx); nothing was recorded."""

    retryable = True


class LiveKitRejected(BatonError):
    """LiveKit answered a call with an error the orchestrator cannot fix by itself."""

    def __init__(self, operation: str, code: str) -> None:
        super().__init__(f"LiveKit refused {operation}: {code}")
        self.code = code


class Unauthorized(BatonError):
    def __init__(self, message: str = "missing or invalid credentials") -> None:
        super().__init__(message)


class Forbidden(BatonError):
    """Valid credentials that do not cover this conversation."""


class WebhookRejected(Unauthorized):
    """A webhook whose signature or body hash does not verify."""


class BodyTooLarge(BatonError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"request body is larger than {limit} bytes")


class DispatchBusy(BatonError):
    """Another request kept the room's dispatch lock longer than it may; retrying helps."""

    retryable = True

    def __init__(self, room: str) -> None:
        super().__init__(f"dispatch for {room} is busy; retry")


class HandoffMoved(BatonError):
    """The handoff is no longer where this step applies (accepted elsewhere, timed out)."""

    def __init__(self, handoff_id: str, state: str) -> None:
        super().__init__(f"handoff {handoff_id!r} is {state}; this step no longer applies")


class ConversationClosed(BatonError):
    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} is closed")


class TooManySignIns(BatonError):
    """Too many sign-in attempts for one username in the window; wait before the next."""

    retryable = True
    retry_after = 60

    def __init__(self) -> None:
        super().__init__("too many sign-in attempts; wait a minute and try again")


class TooManyStreams(BatonError):
    """More live streams than these credentials or this replica may hold; one ending frees a
    slot, and another replica may have room."""

    retryable = True


class DialOutDisabled(BatonError):
    """Dial-out is not configured (no outbound trunk, or no country allowed); the message
    names the setting."""


class CallInProgress(BatonError):
    """The conversation is in a call already, or a number is being dialled for it."""


class NoPhoneVisitor(BatonError):
    """A cold transfer needs the conversation's visitor on the phone."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"conversation {conversation_id!r} has no visitor on the phone")


class TooManyDialAttempts(BatonError):
    """More dial-out attempts than the conversation or all replicas together may make in
    their window; `retry_after` is when the oldest one leaves it."""

    retryable = True

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
class PageNotFound(BatonError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no such file: {name[:100]}")


# Checked in order, so subclasses come before their bases.
STATUS: tuple[tuple[type[BatonError], int, str | None], ...] = (
    (InvalidInput, 422, None),
    (ConversationNotFound, 404, None),
    (HandoffNotFound, 404, None),
    (HandoffInProgress, 409, None),
    (NotInCall, 409, None),
    (HandoffMoved, 409, None),
    (PageNotFound, 404, None),
    (ConversationExists, 409, None),
    (ConversationClosed, 409, None),
    (StoreUnavailable, 503, "Redis unavailable"),
    (LiveKitUnavailable, 503, "LiveKit unavailable"),
    (LiveKitRejected, 502, None),
    (DispatchBusy, 503, "Dispatch busy"),
    (Unauthorized, 401, None),
    (Forbidden, 403, None),
    (BodyTooLarge, 413, None),
    (TooManyStreams, 429, None),
    (TooManySignIns, 429, None),
    (DialOutDisabled, 409, None),
    (CallInProgress, 409, None),
    (NoPhoneVisitor, 409, None),
    (TooManyDialAttempts, 429, None),
)


class ErrorBody(BaseModel):
    """Every error response has this shape."""

    error: str = Field(description="The error type, e.g. ConversationNotFound")
    message: str
    field: str | None = Field(default=None, description="The input at fault, for 422")


def status_of(error: BatonError) -> tuple[int, str]:
    for kind, status, message in STATUS:
        if isinstance(error, kind):
            return status, message or error.message
    return 500, "internal error"


def error_response(error: BatonError) -> JSONResponse:
    status, message = status_of(error)
    body = ErrorBody(error=type(error).__name__, message=message,
                     field=error.field if isinstance(error, InvalidInput) else None)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    if error.retryable:
        headers = {"Retry-After": str(error.retry_after)}
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI descriptions of the error statuses a route can answer."""
    return {status: {"model": ErrorBody, "description": _DESCRIPTIONS[status]}
            for status in statuses}


_DESCRIPTIONS = {
    401: "Missing or invalid credentials",
    403: "The credentials do not cover this conversation",
    404: "No such conversation",
    409: "Conflicts with the conversation's state",
    413: "Request body too large",
    422: "Invalid input; `field` names it",
    429: "Too many requests (live streams, sign-ins, calls); retry after Retry-After",
    502: "LiveKit refused the request",
    503: "Redis or LiveKit unavailable; retry",
}


def install(app: FastAPI) -> None:
    async def baton_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, BatonError)
        _count(request, type(exc).__name__)
        if isinstance(exc, StoreUnavailable | LiveKitUnavailable | LiveKitRejected):
            log.warning("%s %s: %s", request.method, request.url.path, exc.message)
        return error_response(exc)

    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        _count(request, "InvalidInput")
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        location = [str(part) for part in first["loc"]]
        # The first part of an error's location is where it came from; the rest names it.
        if location and location[0] in ("body", "path", "query", "header"):
            location = location[1:] or location
        field = ".".join(location) or "body"
        body = ErrorBody(error="InvalidInput", message=f"{field}: {first['msg']}", field=field)
        return JSONResponse(body.model_dump(), status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:
            # FastAPI's "error parsing the body" (bytes that are not JSON text) is bad input
            # like any other, so it gets the same status and shape.
            _count(request, "InvalidInput")
            return error_response(InvalidInput("body", "must be a JSON document"))
        body = ErrorBody(error="HTTPError", message=str(exc.detail))
        return JSONResponse(body.model_dump(), status_code=exc.status_code, headers=exc.headers)

    app.add_exception_handler(BatonError, baton_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)


def _count(request: Request, kind: str) -> None:
    services = getattr(request.app.state, "services", None)
    if services is not None:
        services.metrics.errors.labels(kind).inc()
