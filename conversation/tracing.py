"""W3C trace ids: taken from a request's `traceparent` or made new, and carried in a dispatch's
metadata, so the orchestrator's lines about a switch and the worker's about its call share one."""

from __future__ import annotations

import json
import re
import secrets

TRACE_ID_KEY = "trace_id"
"""The dispatch metadata field that carries the trace id to the job."""

_TRACE_ID = re.compile(r"[0-9a-f]{32}")
# version-trace_id-parent_id-flags; versions after 00 may append fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?")
_INVALID_TRACE = "0" * 32
_INVALID_PARENT = "0" * 16


def new_trace_id() -> str:
    return secrets.token_hex(16)


def is_trace_id(value: object) -> bool:
    return isinstance(value, str) and bool(_TRACE_ID.fullmatch(value)) \
        and value != _INVALID_TRACE


def from_traceparent(header: str | None) -> str | None:
    """The trace id of a `traceparent` header; None when it is absent or invalid (which the
    W3C recommendation says to ignore)."""
    if not header:
        return None
    match = _TRACEPARENT.fullmatch(header.strip())
    if match is None:
        return None
    version, trace_id, parent_id, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or parent_id == _INVALID_PARENT \
            or not is_trace_id(trace_id):
        return None
    return trace_id


def from_dispatch(metadata: str) -> str | None:
    """The trace id a dispatch's metadata carries; None for dispatches made outside a request
    (reconciliation, recovery) or by someone else."""
    try:
        fields = json.loads(metadata)
    except ValueError:
        return None
    value = fields.get(TRACE_ID_KEY) if isinstance(fields, dict) else None
    return value if isinstance(value, str) and is_trace_id(value) else None
