"""`python -m worker start|dev|console|connect`: the framework's CLI around Baton's server."""

from __future__ import annotations

import sys

from livekit.agents import cli

from worker.server import build_server
from worker.settings import SettingsError, WorkerSettings, current_settings


def main() -> None:
    wants_help = bool({"--help", "-h"} & set(sys.argv[1:]))
    try:
        settings = current_settings()
    except SettingsError as exc:
        if not wants_help:
            sys.exit(str(exc))
        # Reading the help needs no credentials.
        settings = WorkerSettings.from_env()
    cli.run_app(build_server(settings))


if __name__ == "__main__":
    main()
