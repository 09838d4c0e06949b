"""Twirp errors: a code, a message and metadata, answered with the code's HTTP status."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

# The HTTP status Twirp's specification gives each error code.
STATUS_BY_CODE: dict[str, int] = {
    "canceled": 408,
    "invalid_argument": 400,
    "malformed": 400,
    "deadline_exceeded": 408,
    "not_found": 404,
    "bad_route": 404,
    "already_exists": 409,
    "permission_denied": 403,
    "unauthenticated": 401,
    "resource_exhausted": 429,
    "failed_precondition": 412,
    "aborted": 409,
    "out_of_range": 400,
    "unimplemented": 501,
    "internal": 500,
    "unavailable": 503,
    "dataloss": 500,
    "unknown": 500,
}


class TwirpError(Exception):
    """An error answered as Twirp JSON ``{code, msg, meta}`` with the code's HTTP status."""

    def __init__(self, code: str, msg: str, meta: Mapping[str, str] | None = None) -> None:
        if code not in STATUS_BY_CODE:
            raise ValueError(f"unknown twirp code {code!r}")
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta: dict[str, str] = dict(meta or {})

    @property
    def status(self) -> int:
        return STATUS_BY_CODE[self.code]

    def to_response(self) -> web.Response:
        body: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.meta:
            body["meta"] = self.meta
        return web.json_response(body, status=self.status)
