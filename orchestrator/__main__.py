"""`python -m orchestrator`: serve the API with uvicorn, configured from the environment."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from orchestrator.app import create_app
from orchestrator.settings import Settings


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
    except ValidationError as exc:
        # Only the messages: the offending input may be a secret.
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"])
            print(f"orchestrator: bad configuration{' ' + where if where else ''}: "
                  f"{error['msg']}", file=sys.stderr)
        sys.exit(2)
    uvicorn.run(create_app(settings), host=settings.listen_host, port=settings.port,
                log_level="info", access_log=False, proxy_headers=False)


if __name__ == "__main__":
    main()
