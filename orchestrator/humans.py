"""Human agents: the accounts the operator configures (passwords hashed at rest), and their
sign-in sessions, kept in Redis so any replica recognises them and they expire.

`python -m orchestrator.humans` reads a password from the terminal and prints its hash for
`BATON_HUMANS`.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pydantic import BaseModel, ConfigDict, Field

from conversation.errors import redis_errors
from conversation.redisclient import RedisClient
from orchestrator.errors import TooManySignIns

SESSION_PREFIX = "hs_"
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}
_SESSIONS = "baton:human-session:"
_ATTEMPTS = "baton:human-login-attempts:"


class HumanAccount(BaseModel):
    """One human agent, as the operator configures them in `BATON_HUMANS` (a JSON list)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    username: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,31}$")
    name: str = Field(min_length=1, max_length=64, description="Shown to the visitor")
    password_hash: str = Field(pattern=r"^scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)
    return "$".join(["scrypt", str(_SCRYPT["n"]), str(_SCRYPT["r"]), str(_SCRYPT["p"]),
                     base64.b64encode(salt).decode(), base64.b64encode(digest).decode()])


def password_matches(password: str, stored: str) -> bool:
    _scheme, n, r, p, salt, digest = stored.split("$")
    candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), dklen=32,
                               n=int(n), r=int(r), p=int(p))
    return hmac.compare_digest(candidate, base64.b64decode(digest))


# Checked when the username is unknown too, so the answer takes as long either way.
_DECOY = hash_password(secrets.token_hex(16))


@dataclass(frozen=True, slots=True)
class Session:
    token: str
    username: str
    expires_at: datetime


class Humans:
    """Signs humans in and out and recognises their sessions."""

    def __init__(self, accounts: tuple[HumanAccount, ...], redis: RedisClient, *,
                 session_ttl: timedelta, attempts: int, attempt_window: timedelta) -> None:
        self.accounts = {account.username: account for account in accounts}
        self.redis = redis
        self.session_ttl = session_ttl
        self.attempts = attempts
        self.attempt_window = attempt_window

    async def sign_in(self, username: str, password: str) -> Session | None:
        """A new session, or None for wrong credentials. Each username gets a bounded number of
        tries per window; beyond them TooManySignIns, however right the password."""
        if not await self._may_try(username):
            raise TooManySignIns()
        account = self.accounts.get(username)
        # scrypt takes tens of milliseconds of CPU: off the event loop.
        matched = await asyncio.to_thread(password_matches, password,
                                          account.password_hash if account else _DECOY)
        if account is None or not matched:
            return None
        token = SESSION_PREFIX + secrets.token_urlsafe(32)
        with redis_errors():
            await self.redis.set(_session_key(token), username,
                                 ex=int(self.session_ttl.total_seconds()))
        return Session(token, username, datetime.now(UTC) + self.session_ttl)

    async def session(self, token: str) -> HumanAccount | None:
        if not token.startswith(SESSION_PREFIX) or len(token) > 128:
            return None
        with redis_errors():
            username = await self.redis.get(_session_key(token))
        if username is None:
            return None
        return self.accounts.get(username.decode() if isinstance(username, bytes) else username)

    async def sign_out(self, token: str) -> None:
        with redis_errors():
            await self.redis.delete(_session_key(token))

    async def _may_try(self, username: str) -> bool:
        key = _ATTEMPTS + hashlib.sha256(username.encode()).hexdigest()
        with redis_errors():
            tries = await self.redis.incr(key)
            if tries == 1:
                await self.redis.expire(key, int(self.attempt_window.total_seconds()))
        return int(tries) <= self.attempts


def _session_key(token: str) -> str:
    # Only a digest of the token is stored: a Redis dump opens no dashboard.
    return _SESSIONS + hashlib.sha256(token.encode()).hexdigest()


def parse_accounts(value: str) -> tuple[HumanAccount, ...]:
    return tuple(HumanAccount.model_validate(item) for item in json.loads(value or "[]"))


def main() -> None:
    password = getpass.getpass("password for the human agent: ")
    if len(password) < 12:
        raise SystemExit("use at least 12 characters")
    print(hash_password(password))


if __name__ == "__main__":
    main()
