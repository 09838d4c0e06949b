"""Prometheus metrics of the voice worker, served by the framework on the metrics port."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_WRITTEN = Counter(
    "baton_worker_events_written_total",
    "Conversation events the worker wrote to the log, by kind (message, tool_call, ...).",
    ["kind"])
WRITE_RETRIES = Counter(
    "baton_worker_writeback_retries_total",
    "Log writes retried because Redis was unavailable.")
EVENTS_LOST = Counter(
    "baton_worker_writeback_lost_total",
    "Buffered events still unwritten when a job ended.")
BUFFER_DEPTH = Gauge(
    "baton_worker_writeback_buffer_depth",
    "Events waiting in memory for Redis.", multiprocess_mode="livesum")
TOOL_CACHE_HITS = Counter(
    "baton_worker_tool_cache_hits_total",
    "Tool calls answered from the conversation's tool cache.", ["tool"])
TOOL_CALLS = Counter(
    "baton_worker_tool_backend_calls_total",
    "Tool calls that reached the business backend.", ["tool"])
HISTORY_RESTORE_SECONDS = Histogram(
    "baton_worker_history_restore_seconds",
    "Time to load the log and build the model's context at the start of a job.",
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
# Set by the worker's main process each time the framework samples its load (twice a second).
# A label, not a bare gauge: the value is created on first use, after the framework has cleared
# the multiprocess directory, so it lands in a file the metrics port reads.
ACTIVE_JOBS = Gauge(
    "baton_worker_active_jobs",
    "Calls this worker is running now.", ["agent_name"], multiprocess_mode="livemostrecent")
LOAD = Gauge(
    "baton_worker_load",
    "Live calls / BATON_MAX_JOBS (1 = full): what the worker reports to LiveKit, and what the "
    "HorizontalPodAutoscaler scales on.", ["agent_name"], multiprocess_mode="livemostrecent")
JOB_SECONDS = Histogram(
    "baton_worker_job_duration_seconds",
    "Duration of voice jobs, from entrypoint to the end of the write-back flush.",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1200, 3600))
HANDOFFS_STARTED = Counter(
    "baton_handoffs_started_total",
    "Handoffs to a human the agent ran, by trigger (tool, keyword, api).", ["trigger"])
HANDOFFS = Counter(
    "baton_handoffs_total",
    "Handoffs to a human by trigger and outcome: connected, or the typed failure (no_answer, "
    "busy, declined, timeout, no_human_available, caller_left, failed).", ["trigger", "outcome"])
HANDOFF_CONNECT_SECONDS = Histogram(
    "baton_handoff_connect_seconds",
    "Time from a handoff's start in the call to the visitor and the human hearing each other, "
    "the human's own time to accept and connect included.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300))
FIRST_WORDS_SECONDS = Histogram(
    "baton_worker_first_words_seconds",
    "Time from a job's start (its entrypoint) to the agent's first audio playing in the call.",
    buckets=(0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 30))
