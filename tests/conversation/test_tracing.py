"""Trace ids: read from W3C traceparent headers and dispatch metadata, or made new."""

from __future__ import annotations

import json

import pytest

from conversation.tracing import from_dispatch, from_traceparent, is_trace_id, new_trace_id

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_the_trace_id_of_a_valid_traceparent_is_used() -> None:
    assert from_traceparent(f"00-{TRACE}-00f067aa0ba902b7-01") == TRACE


def test_a_later_version_may_append_fields() -> None:
    assert from_traceparent(f"01-{TRACE}-00f067aa0ba902b7-01-extra") == TRACE


@pytest.mark.parametrize("header", [
    None, "", "garbage", f"00-{TRACE}-00f067aa0ba902b7-01-extra",
    f"ff-{TRACE}-00f067aa0ba902b7-01", f"00-{'0' * 32}-00f067aa0ba902b7-01",
    f"00-{TRACE}-{'0' * 16}-01", f"00-{TRACE.upper()}-00f067aa0ba902b7-01",
])
def test_an_absent_or_invalid_traceparent_gives_none(header: str | None) -> None:
    assert from_traceparent(header) is None


def test_new_trace_ids_are_valid_and_differ() -> None:
    first, second = new_trace_id(), new_trace_id()
    assert is_trace_id(first) and is_trace_id(second) and first != second


@pytest.mark.parametrize(("metadata", "expected"), [
    (json.dumps({"conversation_id": "c1", "trace_id": TRACE}), TRACE),
    (json.dumps({"conversation_id": "c1"}), None),
    (json.dumps({"trace_id": "not-a-trace"}), None),
    ("", None), ("[1, 2]", None),
])
def test_a_dispatch_carries_its_requests_trace_id(metadata: str, expected: str | None) -> None:
    assert from_dispatch(metadata) == expected
