"""What a preflight check found, and how the results are printed and turned into an exit
status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from urllib.parse import urlsplit, urlunsplit


class Status(StrEnum):
    OK = "OK"
    FAIL = "FAIL"
    UNKNOWN = "UNKNOWN"
    """The check could not tell (a managed Redis refusing CONFIG, a dependency down)."""


@dataclass(frozen=True, slots=True)
class Result:
    name: str
    status: Status
    detail: str = ""
    """For OK, what was found; otherwise what is wrong and how to fix it. Never a secret."""

    def line(self) -> str:
        return f"{self.status.value} {self.name}" + (f": {self.detail}" if self.detail else "")


def ok(name: str, detail: str = "") -> Result:
    return Result(name, Status.OK, detail)


def fail(name: str, detail: str) -> Result:
    return Result(name, Status.FAIL, detail)


def unknown(name: str, detail: str) -> Result:
    return Result(name, Status.UNKNOWN, detail)


EXIT_OK, EXIT_FAILED, EXIT_UNKNOWN = 0, 1, 2


def exit_status(results: Sequence[Result]) -> int:
    """0 when every check passed, 1 when one failed, 2 when none failed but one could not
    tell (a pipeline may accept 2 where, say, a managed Redis hides its persistence)."""
    statuses = {result.status for result in results}
    if Status.FAIL in statuses:
        return EXIT_FAILED
    return EXIT_UNKNOWN if Status.UNKNOWN in statuses else EXIT_OK


def as_text(results: Sequence[Result]) -> str:
    return "\n".join(result.line() for result in results)


def as_json(results: Sequence[Result]) -> str:
    return json.dumps({"exit_status": exit_status(results),
                       "checks": [asdict(result) for result in results]}, indent=2)


def redacted(url: str) -> str:
    """The URL without its user and password (REDIS_URL may carry one)."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))
