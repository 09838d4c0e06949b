"""`python -m worker start|dev|console|connect`: the framework's CLI around Baton's server."""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from worker.settings import SettingsError, WorkerSettings, current_settings

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def share_metrics_across_processes(settings: WorkerSettings) -> None:
    """Jobs run in child processes, whose metrics reach the metrics port through a directory.
    prometheus_client decides at its first import whether to write there: named any later
    (the framework names it when the server starts), the main process's own metrics, the load
    among them, never leave it."""
    if settings.metrics_port is None or settings.job_executor != "process" \
            or MULTIPROC_ENV in os.environ:
        return
    directory = settings.metrics_dir or tempfile.mkdtemp(prefix="baton-worker-metrics-")
    os.makedirs(directory, exist_ok=True)
    os.environ[MULTIPROC_ENV] = directory


def main() -> None:
    # Through the framework's JSON handler rather than to stderr as plain text.
    logging.captureWarnings(True)
    wants_help = bool({"--help", "-h"} & set(sys.argv[1:]))
    try:
        settings = current_settings()
    except SettingsError as exc:
        if not wants_help:
            sys.exit(str(exc))
        # Reading the help needs no credentials.
        settings = WorkerSettings.from_env()
    share_metrics_across_processes(settings)
    # Imported only now, after the line above: both import prometheus_client.
    from livekit.agents import cli

    from worker.server import build_server

    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
