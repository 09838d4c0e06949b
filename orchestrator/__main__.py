"""`python -m orchestrator`: serve the API with uvicorn, configured from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from orchestrator.app import create_app
from orchestrator.logs import configure_logging
from orchestrator.settings import Settings

log = logging.getLogger("orchestrator")


def main() -> None:
    configure_logging()
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        # Only the messages: the offending input may be a secret.
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            log.error("bad configuration%s: %s", f" {where}" if where else "", error["msg"])
        sys.exit(2)
    # uvicorn's records go through the JSON handler; its access log is replaced by the
    # request lines of orchestrator/logs.py, which leave out the query (a widget token).
    uvicorn.run(create_app(settings), host=settings.listen_host, port=settings.port,
                log_config=None, log_level="info", access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
