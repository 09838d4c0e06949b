"""Work done at a low CPU priority: in a thread of its own, leaving the caller's priority."""

from __future__ import annotations

import os
import sys
import threading

import pytest

from worker.background import NICENESS, at_low_priority

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="thread priorities are Linux's")


def own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_the_work_runs_at_low_priority_and_the_caller_keeps_its_own() -> None:
    before = own_niceness()

    assert at_low_priority(own_niceness) == max(before, NICENESS)
    assert own_niceness() == before


def test_what_the_work_raises_reaches_the_caller() -> None:
    def fail() -> None:
        raise ValueError("no VAD model")

    with pytest.raises(ValueError, match="no VAD model"):
        at_low_priority(fail)
