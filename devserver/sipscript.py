"""The SIP script: what the simulated far end of each dialled number or transfer target does."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

import yaml

B = TypeVar("B")

# Reason phrases of the statuses a script is likely to use (RFC 3261 and friends).
REASONS: dict[int, str] = {
    200: "OK",
    202: "Accepted",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    607: "Unwanted",
    608: "Rejected",
}


# DTMF digits in RFC 4733 event-code order.
DTMF_DIGITS = "0123456789*#ABCD"


class ScriptError(ValueError):
    """The script is not in the documented format."""


@dataclass(frozen=True)
class CallBehaviour:
    """The far end of one call, timed from the moment the INVITE is sent."""

    ring_after_ms: int = 0
    answer_after_ms: int = 0
    status: int = 200
    reason: str = ""
    no_answer: bool = False
    hangup_after_s: float | None = None
    audio: Path | None = None
    audio_loop: bool = False
    dtmf: str = ""
    dtmf_after_ms: int = 0
    dtmf_interval_ms: int = 100

    @property
    def answers(self) -> bool:
        return not self.no_answer and 200 <= self.status < 300

    @property
    def reason_phrase(self) -> str:
        return self.reason or REASONS.get(self.status, "")


@dataclass(frozen=True)
class TransferBehaviour:
    """The outcome of a REFER to one target."""

    status: int = 200
    reason: str = ""
    after_ms: int = 0
    as_response: bool = False
    empty_response: bool = False
    """Answer a successful transfer with an empty response, as LiveKit server v1.13.5 does."""

    @property
    def succeeds(self) -> bool:
        return 200 <= self.status < 300

    @property
    def reason_phrase(self) -> str:
        return self.reason or REASONS.get(self.status, "")


@dataclass(frozen=True)
class SipScript:
    """Rules by number: exact numbers first, then glob patterns in order, then the default."""

    default: CallBehaviour = field(default_factory=CallBehaviour)
    numbers: tuple[tuple[str, CallBehaviour], ...] = ()
    transfer_default: TransferBehaviour = field(default_factory=TransferBehaviour)
    transfers: tuple[tuple[str, TransferBehaviour], ...] = ()

    def call(self, number: str) -> CallBehaviour:
        return _match(number, self.numbers, self.default)

    def transfer(self, target: str) -> TransferBehaviour:
        return _match(target, self.transfers, self.transfer_default)

    def to_dict(self) -> dict[str, Any]:
        return {
            "default": _plain(self.default),
            "numbers": {pattern: _plain(b) for pattern, b in self.numbers},
            "transfers": {pattern: _plain(b) for pattern, b in self.transfers},
            "transfer_default": _plain(self.transfer_default),
        }


def _match(key: str, rules: tuple[tuple[str, B], ...], default: B) -> B:
    for pattern, behaviour in rules:
        if pattern == key:
            return behaviour
    for pattern, behaviour in rules:
        if fnmatchcase(key, pattern):
            return behaviour
    return default


def _plain(behaviour: CallBehaviour | TransferBehaviour) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in vars(behaviour).items():
        out[name] = str(value) if isinstance(value, Path) else value
    return out


def load_script(path: Path) -> SipScript:
    """Read a JSON or YAML script; audio paths are relative to the script's folder."""
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return parse_script(data or {}, base=path.parent)


def parse_script(data: Any, *, base: Path | None = None) -> SipScript:
    if not isinstance(data, Mapping):
        raise ScriptError("a SIP script is a mapping with 'default', 'numbers' and 'transfers'")
    unknown = set(data) - {"default", "numbers", "transfers", "transfer_default"}
    if unknown:
        raise ScriptError(f"unknown keys in SIP script: {sorted(unknown)}")
    return SipScript(
        default=_call(data.get("default") or {}, base),
        numbers=tuple((str(k), _call(v or {}, base)) for k, v in _mapping(data, "numbers").items()),
        transfer_default=_transfer(data.get("transfer_default") or {}),
        transfers=tuple(
            (str(k), _transfer(v or {})) for k, v in _mapping(data, "transfers").items()
        ),
    )


def _mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key) or {}
    if not isinstance(value, Mapping):
        raise ScriptError(f"'{key}' must map numbers or patterns to behaviours")
    return value


def _call(data: Any, base: Path | None) -> CallBehaviour:
    fields = _fields(data, CallBehaviour)
    audio = fields.get("audio")
    if audio is not None:
        path = Path(str(audio))
        path = path if path.is_absolute() or base is None else base / path
        if not path.is_file():
            raise ScriptError(f"audio file not found: {path}")
        fields["audio"] = path
    behaviour = CallBehaviour(**fields)
    if any(d not in DTMF_DIGITS for d in str(behaviour.dtmf).upper()):
        raise ScriptError(f"DTMF digits are 0-9, *, #, A-D, not {behaviour.dtmf!r}")
    if not 200 <= behaviour.status < 700:
        raise ScriptError(f"status {behaviour.status} is not a final SIP status")
    return behaviour


def _transfer(data: Any) -> TransferBehaviour:
    behaviour = TransferBehaviour(**_fields(data, TransferBehaviour))
    if not 200 <= behaviour.status < 700:
        raise ScriptError(f"status {behaviour.status} is not a final SIP status")
    return behaviour


def _fields(data: Any, cls: type[CallBehaviour] | type[TransferBehaviour]) -> dict[str, Any]:
    if not isinstance(data, Mapping):
        raise ScriptError(f"a behaviour must be a mapping, not {data!r}")
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ScriptError(f"unknown behaviour keys {sorted(unknown)}; known: {sorted(known)}")
    return dict(data)
