"""The settings a preflight check runs with, read as the orchestrator reads them, and the checks
of the settings themselves: secrets that are placeholders, on-call numbers."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import ValidationError

from deploy.preflight.results import Result, fail, ok, unknown
from orchestrator.settings import MIN_SECRET_CHARS, Environment, Settings
from worker.settings import WorkerSettings


@dataclass
class Loaded:
    """The orchestrator's settings from the environment, or None if they do not load."""

    settings: Settings | None
    results: list[Result] = field(default_factory=list)


def load() -> Loaded:
    """Settings.from_env(), as the orchestrator starts. Placeholder secrets outside development
    stop the orchestrator; here they are reported and the other checks run anyway."""
    try:
        settings = Settings.from_env()
    except ValidationError as refused:
        try:
            relaxed = Settings(env=Environment.DEVELOPMENT)  # type: ignore[call-arg]
        except ValidationError:
            return Loaded(None, [fail("settings", f"{_errors(refused)}: the orchestrator does "
                                                  "not start with these; fix them first")])
        return Loaded(relaxed, [ok("settings"), fail("secrets", _unfit(relaxed))])
    return Loaded(settings, [ok("settings"), check_secrets(settings)])


def check_secrets(settings: Settings) -> Result:
    problems = settings.secret_problems()
    if settings.env is not Environment.DEVELOPMENT:
        return ok("secrets", f"none is a placeholder or shorter than {MIN_SECRET_CHARS} "
                             "characters")
    if problems:
        return fail("secrets", f"BATON_ENV=development, where the services take development "
                               f"secrets, and {'; '.join(problems)}: fine for a local stack "
                               "only; a deployment sets BATON_ENV=production and secrets of "
                               f"{MIN_SECRET_CHARS}+ random characters (openssl rand -hex 32)")
    return ok("secrets", "none is a placeholder, but BATON_ENV=development: a deployment sets "
                         "BATON_ENV=production")


def check_oncall_numbers() -> Result:
    """The worker's on-call humans, when this environment names them: valid E.164 numbers
    and a trunk to dial them through. The numbers themselves are never printed."""
    name = "oncall-numbers"
    try:
        worker = WorkerSettings.from_env()
    except ValidationError as exc:
        ours = [err for err in exc.errors() if "BATON_ONCALL_NUMBERS" in err["loc"]]
        if ours:
            return fail(name, f"{ours[0]['msg'].removeprefix('Value error, ')}: list them "
                              "comma-separated, each a + then the country code and number")
        return unknown(name, f"the worker's settings in this environment do not load "
                             f"({_errors(exc)})")
    if not worker.oncall_numbers:
        return ok(name, "none set: handoffs go to humans on the dashboard only")
    if not worker.sip_outbound_trunk:
        return fail(name, "BATON_ONCALL_NUMBERS is set but BATON_SIP_OUTBOUND_TRUNK is not: the "
                          "worker dials on-call humans through that trunk, so it dials none")
    return ok(name, f"{len(worker.oncall_numbers)} valid number(s), dialled through the "
                    "outbound trunk")


def _unfit(settings: Settings) -> str:
    return (f"{'; '.join(settings.secret_problems())}: outside BATON_ENV=development the "
            f"services refuse to start with these; use secrets of {MIN_SECRET_CHARS}+ random "
            "characters (openssl rand -hex 32)")


def _errors(exc: ValidationError) -> str:
    """Each error's setting and message; never the value given."""
    return "; ".join(f"{'.'.join(str(part) for part in err['loc']) or 'settings'}: "
                     f"{err['msg'].removeprefix('Value error, ')}" for err in exc.errors())
