"""When each step on the way to a call's first words was done, logged once the agent speaks."""

from __future__ import annotations

import logging
import time
from typing import Any

from livekit.agents import AgentSession, AgentStateChangedEvent

from worker import metrics

logger = logging.getLogger("baton.worker")


class FirstWords:
    """Milliseconds from the start of the job's entrypoint to each step, logged as one record
    ("first words", fields `<step>_ms`) when the agent starts speaking, with the CPU time the
    job's process used until then (`cpu_ms`, all its threads), and observed as the metric
    `baton_worker_first_words_seconds`. The framework turns the agent's state to "speaking"
    when the first audio frame plays."""

    def __init__(self) -> None:
        self._started = time.monotonic()
        self._cpu_started = time.process_time()
        self.steps: dict[str, float] = {}

    def mark(self, step: str) -> None:
        self.steps.setdefault(step, (time.monotonic() - self._started) * 1000)

    def watch(self, session: AgentSession[Any]) -> None:
        def on_state(event: AgentStateChangedEvent) -> None:
            if event.new_state != "speaking":
                return
            session.off("agent_state_changed", on_state)
            self.mark("speaking")
            metrics.FIRST_WORDS_SECONDS.observe(self.steps["speaking"] / 1000)
            cpu_ms = (time.process_time() - self._cpu_started) * 1000
            logger.info("first words", extra={f"{step}_ms": round(ms, 1)
                                              for step, ms in self.steps.items()}
                        | {"cpu_ms": round(cpu_ms, 1)})

        session.on("agent_state_changed", on_state)
