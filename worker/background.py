"""Work done at a low CPU priority, so that it never slows the calls in progress.

The worker readies a new job process the moment a call takes the last ready one, that is while
that call's first words are being made: loading the VAD and building the model clients would
compete with the call for the CPU. On Linux a thread's nice value is its own, so the readying
runs in a thread of its own at nice 10, and the process's main thread, which runs the next call
later, keeps its priority (an unprivileged process cannot raise a priority back). At nice 10 a
thread still gets about a tenth of a CPU that calls keep busy, so a process is readied within
the framework's initialization timeout even on a saturated worker.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

NICENESS = 10


def at_low_priority(work: Callable[[], T]) -> T:
    """Run `work` in a thread at nice NICENESS and return what it returns (or raise what it
    raises). Elsewhere than Linux, where priorities are per process, it runs as it is."""
    if not sys.platform.startswith("linux"):
        return work()
    outcome: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            thread = threading.get_native_id()
            # Only ever lowered: raising a priority back needs a privilege.
            if os.getpriority(os.PRIO_PROCESS, thread) < NICENESS:
                os.setpriority(os.PRIO_PROCESS, thread, NICENESS)
            outcome.append(work())
        except BaseException as exc:
            failure.append(exc)

    runner = threading.Thread(target=run, name="baton-background")
    runner.start()
    runner.join()
    if failure:
        raise failure[0]
    return outcome[0]
