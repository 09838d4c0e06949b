"""Bounds on concurrent live streams, per credential and per replica, counted in this process."""

from __future__ import annotations

from collections import Counter

from prometheus_client import Gauge

from orchestrator.errors import TooManyStreams


class StreamSlots:
    """The live streams this replica serves, in all and per credential.

    Per-replica, in-process state on purpose: what a stream costs (a socket and a Redis
    connection of its own) is this replica's, so the bounds are too. A credential's streams
    spread over replicas by the load balancer each count against that replica's bound. The event
    loop runs one task at a time and nothing here awaits, so counting needs no lock.
    """

    def __init__(self, per_replica: int, gauge: Gauge) -> None:
        self.per_replica = per_replica
        self._gauge = gauge
        self._held: Counter[str] = Counter()
        self._total = 0

    def take(self, holder: str, bound: int) -> Slot:
        """A slot for one more stream of `holder` (a digest of its credential), or
        TooManyStreams when the holder or the replica has `bound`, `per_replica` open."""
        if self._total >= self.per_replica:
            raise TooManyStreams("this replica serves as many live streams as it may; retry")
        if self._held[holder] >= bound:
            raise TooManyStreams(f"these credentials hold {bound} live streams open already; "
                                 "close one or retry")
        self._held[holder] += 1
        self._total += 1
        self._gauge.set(self._total)
        return Slot(self, holder)

    def _free(self, holder: str) -> None:
        self._held[holder] -= 1
        if self._held[holder] <= 0:
            del self._held[holder]
        self._total -= 1
        self._gauge.set(self._total)


class Slot:
    """One stream's place; `release` gives it back, once however often it is called."""

    def __init__(self, slots: StreamSlots, holder: str) -> None:
        self._slots: StreamSlots | None = slots
        self._holder = holder

    def release(self) -> None:
        if self._slots is not None:
            self._slots._free(self._holder)
            self._slots = None
