"""The orchestrator's configuration, read once from the environment."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode, SettingsConfigDict

from conversation.phone import known_region
from conversation.settings import StoreSettings, seconds
from conversation.settings import env as _env
from orchestrator.humans import HumanAccount, parse_accounts

# Values that appear in docs, examples and the devserver; a production deployment using any of
# them would accept forged tokens.
PLACEHOLDER_SECRETS = frozenset({
    "", "devkey", "secret", "changeme", "change-me", "dev-api-key", "dev-widget-secret",
    "test", "password",
})
MIN_SECRET_CHARS = 32
WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(StoreSettings):
    """Every knob of the orchestrator; durations are seconds in the environment.

    Production is the default, as for the worker: a deployment that forgets BATON_ENV must
    not run with the development secrets. `make run` and the tests opt into development.
    """

    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    env: Environment = Field(Environment.PRODUCTION, validation_alias=_env("BATON_ENV"))
    host: str | None = Field(None, validation_alias=_env("BATON_HOST"),
                             description="Default: loopback in development, all interfaces "
                                         "otherwise (containers)")
    port: int = Field(8000, ge=1, le=65535, validation_alias=_env("BATON_PORT"))

    livekit_url: str = Field("ws://127.0.0.1:7880", validation_alias=_env("LIVEKIT_URL"))
    livekit_api_url: str | None = Field(None, validation_alias=_env("LIVEKIT_API_URL"))
    livekit_api_key: str = Field("devkey", validation_alias=_env("LIVEKIT_API_KEY"))
    livekit_api_secret: SecretStr = Field(SecretStr("secret"),
                                          validation_alias=_env("LIVEKIT_API_SECRET"))
    livekit_timeout: float = Field(5.0, gt=0, le=60, validation_alias=_env("BATON_LIVEKIT_TIMEOUT"))

    agent_name: str = Field("baton-voice", min_length=1, max_length=128,
                            validation_alias=_env("BATON_AGENT_NAME"))
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (SecretStr("dev-api-key"),), validation_alias=_env("BATON_API_KEYS"))
    widget_secret: SecretStr = Field(SecretStr("dev-widget-secret"),
                                     validation_alias=_env("BATON_WIDGET_SECRET"))

    visitor_token_ttl: timedelta = Field(timedelta(minutes=10),
                                         validation_alias=_env("BATON_VISITOR_TOKEN_TTL"))
    widget_token_ttl: timedelta = Field(timedelta(minutes=15),
                                        validation_alias=_env("BATON_WIDGET_TOKEN_TTL"))
    room_empty_timeout: int = Field(300, ge=1, validation_alias=_env("BATON_ROOM_EMPTY_TIMEOUT"))
    room_departure_timeout: int = Field(
        20, ge=1, validation_alias=_env("BATON_ROOM_DEPARTURE_TIMEOUT"))

    max_body_bytes: int = Field(65_536, ge=1024, validation_alias=_env("BATON_MAX_BODY_BYTES"))
    reconcile_interval: float = Field(
        30.0, ge=0, validation_alias=_env("BATON_RECONCILE_INTERVAL"),
        description="Seconds between reconciliations of rooms and dispatches; 0 turns off "
                    "the background checks (reconciliation and waiting calls)")
    sse_heartbeat: timedelta = Field(timedelta(seconds=15),
                                     validation_alias=_env("BATON_SSE_HEARTBEAT"))
    humans: Annotated[tuple[HumanAccount, ...], NoDecode] = Field(
        (), validation_alias=_env("BATON_HUMANS"),
        description="Human agents, a JSON list of {username, name, password_hash}; hash "
                    "passwords with `python -m orchestrator.humans`")
    human_session_ttl: timedelta = Field(timedelta(hours=8),
                                         validation_alias=_env("BATON_HUMAN_SESSION_TTL"))
    human_login_attempts: int = Field(10, ge=1, validation_alias=_env("BATON_HUMAN_LOGIN_ATTEMPTS"),
                                      description="Sign-in tries per username per 15 minutes")
    agent_wait: timedelta = Field(
        timedelta(seconds=60), validation_alias=_env("BATON_AGENT_WAIT"),
        description="How long a visitor in a call waits for an agent before they are told none "
                    "is available and the conversation goes back to chat")
    dispatch_grace: timedelta = Field(
        timedelta(seconds=5), validation_alias=_env("BATON_DISPATCH_GRACE"),
        description="How long an agent may take to join after its dispatch before the dispatch "
                    "counts as lost (no worker took it) and another is created")
    waiting_check_interval: float = Field(
        1.0, gt=0, validation_alias=_env("BATON_WAITING_CHECK_INTERVAL"),
        description="Seconds between checks of calls still waiting for their agent")
    # Each live stream holds a Redis connection of its own (a blocking read) and a socket:
    # size the replica's bound to its file descriptors and to Redis's maxclients over all
    # replicas.
    sse_streams_per_replica: int = Field(
        1000, ge=1, validation_alias=_env("BATON_SSE_STREAMS_PER_REPLICA"),
        description="Live streams one replica serves at once; beyond, 429")
    sse_streams_per_token: int = Field(
        4, ge=1, validation_alias=_env("BATON_SSE_STREAMS_PER_TOKEN"),
        description="Live streams one widget token holds open on a replica (a visitor's tabs)")
    sse_streams_per_api_key: int = Field(
        250, ge=1, validation_alias=_env("BATON_SSE_STREAMS_PER_API_KEY"),
        description="Live streams one API key holds open on a replica")

    # Phone fallback. Paid calls are a fraud target, so dial-out is off until an operator
    # names the trunk and the countries it may call.
    sip_outbound_trunk: str | None = Field(
        None, max_length=128, validation_alias=_env("BATON_SIP_OUTBOUND_TRUNK"),
        description="The LiveKit SIP outbound trunk id (ST_...) dial-out calls leave through; "
                    "unset turns dial-out off (409)")
    dial_countries: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("BATON_DIAL_COUNTRIES"),
        description="ISO region codes (US,GB,...) whose numbers may be dialled and transferred "
                    "to; empty, the default, allows none and turns dial-out off (409)")
    dial_attempts_per_conversation: int = Field(
        3, ge=1, validation_alias=_env("BATON_DIAL_ATTEMPTS_PER_CONVERSATION"),
        description="Dial-out attempts one conversation may make per "
                    "BATON_DIAL_CONVERSATION_WINDOW; beyond, 429")
    dial_conversation_window: timedelta = Field(
        timedelta(hours=1), validation_alias=_env("BATON_DIAL_CONVERSATION_WINDOW"))
    dial_attempts_per_window: int = Field(
        30, ge=1, validation_alias=_env("BATON_DIAL_ATTEMPTS_PER_WINDOW"),
        description="Dial-out attempts all replicas together may make per BATON_DIAL_WINDOW; "
                    "beyond, 429")
    dial_window: timedelta = Field(timedelta(minutes=1),
                                   validation_alias=_env("BATON_DIAL_WINDOW"))
    dial_ringing_timeout: int = Field(
        30, ge=1, le=120, validation_alias=_env("BATON_DIAL_RINGING_TIMEOUT"),
        description="Whole seconds a dialled phone rings before the call counts as no answer")
    dial_max_duration: timedelta = Field(
        timedelta(hours=1), validation_alias=_env("BATON_DIAL_MAX_DURATION"),
        description="LiveKit SIP hangs up a dialled call after this long")

    @field_validator("humans", mode="before")
    @classmethod
    def _accounts(cls, value: object) -> object:
        return parse_accounts(value) if isinstance(value, str) else value
    chat_agent: bool = Field(
        True, validation_alias=_env("BATON_CHAT_AGENT"),
        description="Ask Baton's chat agent (python -m worker.chat) to answer each visitor "
                    "message posted; off for sites whose own chat bot answers through the "
                    "conversations API")
    web_dir: Path = Field(WEB_DIST, validation_alias=_env("BATON_WEB_DIR"),
                          description="The built web files (npm run build in web/): the widget "
                                      "script, and in development the demo page")
    widget_origins: Annotated[tuple[str, ...], NoDecode] = Field(
        (), validation_alias=_env("BATON_WIDGET_ORIGINS"),
        description="Origins of the sites that embed the widget (comma-separated), allowed to "
                    "call the API from the browser (CORS); the orchestrator's own pages need none")
    demo_offline: bool = Field(
        False, validation_alias=_env("BATON_DEMO_OFFLINE"),
        description="The local stack runs the scripted models: the demo page says so")

    @field_validator("visitor_token_ttl", "widget_token_ttl", "sse_heartbeat", "agent_wait",
                     "dispatch_grace", "human_session_ttl", "dial_conversation_window",
                     "dial_window", "dial_max_duration", mode="before")
    @classmethod
    def _seconds(cls, value: object) -> object:
        return seconds(value)

    @field_validator("dial_conversation_window", "dial_window", "dial_max_duration")
    @classmethod
    def _at_least_a_second(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=1):
            raise ValueError("must be at least 1 second")
        return value

    @field_validator("dial_countries", mode="before")
    @classmethod
    def _split_countries(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip().upper() for part in value.split(",") if part.strip())
        return value

    @field_validator("dial_countries")
    @classmethod
    def _known_countries(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [code for code in value if not known_region(code)]
        if unknown:
            raise ValueError(f"not ISO region codes phone numbers are known for: {unknown}")
        return value

    @field_validator("livekit_api_url", "host", "sip_outbound_trunk", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("api_keys", "widget_origins", mode="before")
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @model_validator(mode="after")
    def _refuse_dev_secrets_outside_development(self) -> Settings:
        if self.env is Environment.DEVELOPMENT:
            return self
        if problems := self.secret_problems():
            raise ValueError(f"refusing to start with BATON_ENV={self.env.value}: "
                             + "; ".join(problems))
        return self

    def secret_problems(self) -> list[str]:
        """What makes these secrets unfit outside development, naming the settings only."""
        problems = []
        if self.livekit_api_key in PLACEHOLDER_SECRETS:
            problems.append("LIVEKIT_API_KEY is a placeholder")
        problems += _weak("LIVEKIT_API_SECRET", self.livekit_api_secret)
        problems += _weak("BATON_WIDGET_SECRET", self.widget_secret)
        if not self.api_keys:
            problems.append("BATON_API_KEYS is empty")
        for index, key in enumerate(self.api_keys):
            problems += _weak(f"BATON_API_KEYS[{index}]", key)
        return problems

    @classmethod
    def from_env(cls) -> Settings:
        # mypy sees the aliased fields as required arguments; pydantic fills them from the
        # environment or their defaults.
        return cls()  # type: ignore[call-arg]

    def environment(self) -> dict[str, str]:
        """These settings as environment variables, for starting another process with them."""
        env: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            alias = info.validation_alias
            assert isinstance(alias, AliasChoices)
            env[str(alias.choices[0])] = _env_value(getattr(self, name))
        return env

    @property
    def listen_host(self) -> str:
        if self.host:
            return self.host
        return "127.0.0.1" if self.env is Environment.DEVELOPMENT else "0.0.0.0"

    @property
    def is_development(self) -> bool:
        return self.env is Environment.DEVELOPMENT

    @property
    def livekit_api_endpoint(self) -> str:
        """Where the orchestrator calls LiveKit's server API; clients use `livekit_url`."""
        return self.livekit_api_url or self.livekit_url


def _weak(name: str, secret: SecretStr) -> list[str]:
    value = secret.get_secret_value()
    if value in PLACEHOLDER_SECRETS:
        return [f"{name} is a placeholder"]
    if len(value) < MIN_SECRET_CHARS:
        return [f"{name} is shorter than {MIN_SECRET_CHARS} characters"]
    return []


def _env_value(value: object) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, timedelta):
        return str(value.total_seconds())
    if isinstance(value, tuple) and value and isinstance(value[0], HumanAccount):
        return json.dumps([account.model_dump() for account in value])
    if isinstance(value, tuple):
        return ",".join(_env_value(part) for part in value)
    if isinstance(value, StrEnum):
        return value.value
    return "" if value is None else str(value)
