"""The Redis store of conversations: record hash, event stream, dedup index and tool cache."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from conversation.errors import ConversationExists, ConversationNotFound, redis_errors
from conversation.events import EVENT_LIST_ADAPTER, Event, StoredEvent, VerificationEvent
from conversation.ids import validate_conversation_id, validate_stream_id
from conversation.record import SCHEMA_VERSION, Conversation, Status, VerifiedIdentity
from conversation.redisclient import RedisClient, longest_block
from conversation.toolcache import cache_field, canonical_arguments

# Every script checks the record first, so a write to an unknown conversation changes nothing.
_CREATE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.error_reply('EXISTS') end
redis.call('HSET', KEYS[1], unpack(ARGV, 3, #ARGV - 1))
if ARGV[2] ~= '' then
  local seq = redis.call('XADD', KEYS[2], '*', 'event_id', ARGV[2], 'data', ARGV[1])
  redis.call('HSET', KEYS[3], ARGV[2], seq)
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[#ARGV]) end
return 1
"""

# State changes are compare-and-set: `ARGV[5]` is a JSON list of transitions
# {"key": 1 (the record) or 5 (the handoff), "field": "status" or "state", "from": [states],
#  "require": {field: value}, "set": {field: value}, "gate": bool}, applied together only when
# each one's key holds one of its `from` states and every `require`d field holds its value, so
# a writer acting on a stale read (a late "visitor left" of an earlier call) changes nothing.
# A gated event is written only with its transitions. A duplicate event id writes nothing at
# all: every writer of one event id asks for the same transitions, so the first one applied them.
_TRANSITION_LIB = """
local function holds(t)
  local key = KEYS[t['key']]
  if t['from'] ~= false then
    local state = redis.call('HGET', key, t['field'])
    local allowed = false
    for _, s in ipairs(t['from']) do if s == state then allowed = true end end
    if not allowed then return false end
  end
  for field, value in pairs(t['require']) do
    if redis.call('HGET', key, field) ~= value then return false end
  end
  return true
end
local function all_hold(ts)
  for _, t in ipairs(ts) do if not holds(t) then return false end end
  return true
end
local function gated(ts)
  for _, t in ipairs(ts) do if t['gate'] then return true end end
  return false
end
local function apply(ts)
  for _, t in ipairs(ts) do
    local set = {}
    for field, value in pairs(t['set']) do set[#set + 1] = field; set[#set + 1] = value end
    if #set > 0 then redis.call('HSET', KEYS[t['key']], unpack(set)) end
  end
end
"""

# Appends one event once per event id (KEYS[2] the log, KEYS[3] its id index), trimming the log
# to `max_events` and counting what it dropped on the record.
_APPEND_LIB = """
local function append_one(event_id, data, max_events)
  local existing = redis.call('HGET', KEYS[3], event_id)
  if existing then return existing, 1 end
  local seq = redis.call('XADD', KEYS[2], '*', 'event_id', event_id, 'data', data)
  redis.call('HSET', KEYS[3], event_id, seq)
  local excess = redis.call('XLEN', KEYS[2]) - max_events
  if excess > 0 then
    for _, entry in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', excess)) do
      -- event_id is always the first field written, so its value is the entry's second item.
      redis.call('HDEL', KEYS[3], entry[2][2])
      redis.call('XDEL', KEYS[2], entry[1])
    end
    redis.call('HINCRBY', KEYS[1], 'trimmed_events', excess)
  end
  return seq, 0
end
"""

_APPEND = _TRANSITION_LIB + _APPEND_LIB + """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCONV') end
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then return {existing, 1, 0} end
local ts = cjson.decode(ARGV[5])
local applies = 0
if #ts > 0 then
  if all_hold(ts) then applies = 1 elseif gated(ts) then return {'', 0, 0} end
end
local seq = append_one(ARGV[1], ARGV[2], tonumber(ARGV[3]))
if applies == 1 then apply(ts) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[6])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
return {seq, 0, applies}
"""

# Several events, in order, in one step: ARGV = max_events, ttl, now, then id and data pairs.
_APPEND_ALL = _APPEND_LIB + """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCONV') end
local out = {}
for i = 4, #ARGV, 2 do
  local seq, duplicate = append_one(ARGV[i], ARGV[i + 1], tonumber(ARGV[1]))
  out[#out + 1] = {seq, duplicate}
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
return out
"""

_TRANSITION = _TRANSITION_LIB + """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCONV') end
local ts = cjson.decode(ARGV[2])
if not all_hold(ts) then return 0 end
apply(ts)
redis.call('HSET', KEYS[1], 'updated_at', ARGV[3])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[1]) end
return 1
"""

_CACHE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCONV') end
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end
return 1
"""


@dataclass(frozen=True, slots=True)
class Transition:
    """A state change that applies only from the states named and while `require` holds.

    It changes the conversation's `status`, or with `on_handoff` its current handoff's
    `state`. `set` lists other fields (room, visitor, calls, times) that change with it. A
    `gate`d transition writes its event only when it applies: the event says the change
    happened.
    """

    to: StrEnum | None
    """None leaves the state as it is (the transition only checks and sets fields)."""
    from_: frozenset[StrEnum] | None
    """None allows any state, none included (a handoff not started yet)."""
    require: Mapping[str, str] = field(default_factory=dict)
    set: Mapping[str, str] = field(default_factory=dict)
    gate: bool = False
    on_handoff: bool = False

    def script_value(self) -> dict[str, Any]:
        name = "state" if self.on_handoff else "status"
        changes = dict(self.set) if self.to is None else {name: self.to.value, **self.set}
        return {"key": 5 if self.on_handoff else 1, "field": name,
                "from": False if self.from_ is None else sorted(s.value for s in self.from_),
                "require": dict(self.require), "set": changes, "gate": self.gate}


Transitions = Transition | Sequence[Transition] | None


def _script_arg(transitions: Transitions) -> str:
    if transitions is None:
        listed: Sequence[Transition] = ()
    elif isinstance(transitions, Transition):
        listed = (transitions,)
    else:
        listed = transitions
    # A JSON array even when empty: cjson decodes `{}` and `[]` alike, both with length 0.
    return json.dumps([t.script_value() for t in listed])


@dataclass(frozen=True, slots=True)
class Appended:
    seq: str
    """The event's position; empty when a gated transition did not apply and nothing was
    written."""
    duplicate: bool
    """True when an event with this event_id was already stored; nothing new was written."""
    transitioned: bool = False
    """True when the append's transition applied."""

    @property
    def written(self) -> bool:
        return bool(self.seq) and not self.duplicate


@dataclass(frozen=True, slots=True)
class _Keys:
    record: str
    log: str
    ids: str
    tools: str
    handoff: str

    @classmethod
    def of(cls, conversation_id: str) -> _Keys:
        # The hash tag keeps one conversation's keys in one Redis Cluster slot, which the
        # multi-key scripts need.
        base = f"conv:{{{validate_conversation_id(conversation_id)}}}"
        return cls(base, f"{base}:log", f"{base}:ids", f"{base}:tools", f"{base}:handoff")

    def all(self) -> list[str]:
        return [self.record, self.log, self.ids, self.tools, self.handoff]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


class ConversationStore:
    """Reads and writes conversations; every write is atomic and refreshes retention."""

    def __init__(self, redis: RedisClient, *, retention: timedelta = timedelta(days=30),
                 max_events: int = 10_000) -> None:
        if max_events < 1:
            raise ValueError("max_events must be positive")
        self.redis = redis
        self.retention = retention
        self.max_events = max_events
        self._create = redis.register_script(_CREATE)
        self._append = redis.register_script(_APPEND)
        self._append_all = redis.register_script(_APPEND_ALL)
        self._transition = redis.register_script(_TRANSITION)
        self._cache = redis.register_script(_CACHE)

    @property
    def _ttl_ms(self) -> str:
        return str(int(self.retention.total_seconds() * 1000))

    async def create(self, conversation_id: str, *, identity: VerifiedIdentity | None = None,
                     now: datetime | None = None) -> Conversation:
        keys = _Keys.of(conversation_id)
        moment = _iso(now or datetime.now(UTC))
        fields: dict[str, str] = {
            "status": Status.CHAT.value, "created_at": moment, "updated_at": moment,
            "schema_version": str(SCHEMA_VERSION), "trimmed_events": "0", "room": "",
            "calls": "0", "visitor": "", "handoffs": "0", "handoff": "",
        }
        verification = ""
        event_id = ""
        if identity is not None:
            fields |= {"subject": identity.subject, "method": identity.method,
                       "verified_at": _iso(identity.verified_at)}
            event = VerificationEvent(subject=identity.subject, method=identity.method,
                                      verified_at=identity.verified_at)
            verification, event_id = event.model_dump_json(), event.event_id
        args = [verification, event_id, *_flatten(fields), self._ttl_ms]
        with redis_errors():
            try:
                await self._create(keys=keys.all(), args=args)
            except ResponseError as exc:
                if "EXISTS" in str(exc):
                    raise ConversationExists(conversation_id) from None
                raise
        return await self.get(conversation_id)

    async def get(self, conversation_id: str) -> Conversation:
        keys = _Keys.of(conversation_id)
        with redis_errors():
            raw = await self.redis.hgetall(keys.record)
        if not raw:
            raise ConversationNotFound(conversation_id)
        return _record(conversation_id, {_text(k): _text(v) for k, v in raw.items()})

    async def append(self, conversation_id: str, event: Event, *,
                     transition: Transitions = None) -> Appended:
        """Append once per event_id; a retry with the same id returns the original position.

        A `transition` (or several, all or none) is applied in the same atomic step when the
        record allows it, so a channel switch and its event are never half-written.
        """
        keys = _Keys.of(conversation_id)
        args = [event.event_id, event.model_dump_json(), str(self.max_events), self._ttl_ms,
                _script_arg(transition), _iso(datetime.now(UTC))]
        seq, duplicate, applied = await self._run(self._append, keys, args, conversation_id)
        return Appended(_text(seq), bool(duplicate), bool(applied))

    async def append_all(self, conversation_id: str, events: Sequence[Event]) -> list[Appended]:
        """Append several events in one step: a reader, or a writer that crashed half way, sees
        all of them or none. Each is still stored once per event_id."""
        if not events:
            return []
        keys = _Keys.of(conversation_id)
        args = [str(self.max_events), self._ttl_ms, _iso(datetime.now(UTC)),
                *(part for event in events for part in (event.event_id,
                                                         event.model_dump_json()))]
        replies = await self._run(self._append_all, keys, args, conversation_id)
        return [Appended(_text(seq), bool(duplicate)) for seq, duplicate in replies]

    async def position_of(self, conversation_id: str, event_id: str) -> str | None:
        """Where the event with this id is in the log, or None if none was written."""
        keys = _Keys.of(conversation_id)
        with redis_errors():
            seq = await self.redis.hget(keys.ids, event_id)
        return None if seq is None else _text(seq)

    async def transition(self, conversation_id: str, transition: Transitions) -> bool:
        """Apply state changes without an event; False when the record did not allow them."""
        keys = _Keys.of(conversation_id)
        args = [self._ttl_ms, _script_arg(transition), _iso(datetime.now(UTC))]
        return bool(await self._run(self._transition, keys, args, conversation_id))

    async def _run(self, script: AsyncScript, keys: _Keys, args: list[str],
                   conversation_id: str) -> Any:
        """Run a script over a conversation's keys; `NOCONV` from it means no such record."""
        with redis_errors():
            try:
                return await script(keys=keys.all(), args=args)
            except ResponseError as exc:
                if "NOCONV" in str(exc):
                    raise ConversationNotFound(conversation_id) from None
                raise

    async def handoff_fields(self, conversation_id: str) -> dict[str, str]:
        """The raw fields of the conversation's handoff record (`conversation.handoffs` reads
        them); empty when it never had one."""
        keys = _Keys.of(conversation_id)
        with redis_errors():
            raw = await self.redis.hgetall(keys.handoff)
        return {_text(k): _text(v) for k, v in raw.items()}

    async def read(self, conversation_id: str, *, after: str | None = None,
                   count: int | None = None) -> list[StoredEvent]:
        """Events in log order, optionally only those after the position `after`."""
        keys = _Keys.of(conversation_id)
        start = f"({validate_stream_id(after)}" if after else "-"
        with redis_errors():
            entries = cast(_Entries, await self.redis.xrange(keys.log, min=start, max="+",
                                                             count=count))
            if not entries and not await self.redis.exists(keys.record):
                raise ConversationNotFound(conversation_id)
        return _decode(entries)

    async def read_tail(self, conversation_id: str, count: int, *,
                        before: str | None = None) -> tuple[list[StoredEvent], int]:
        """The newest `count` events (before the position `before`), oldest first, and the
        number of events the log holds, read in one consistent step."""
        keys = _Keys.of(conversation_id)
        end = f"({validate_stream_id(before, 'before')}" if before else "+"
        with redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.xrevrange(keys.log, max=end, min="-", count=count)
                pipe.xlen(keys.log)
                pipe.exists(keys.record)
                entries, length, exists = await pipe.execute()
        if not exists:
            raise ConversationNotFound(conversation_id)
        return _decode(list(reversed(cast(_Entries, entries)))), int(length)

    async def follow(self, conversation_id: str, *, after: str | None = None,
                     block: timedelta = timedelta(seconds=15)) -> AsyncIterator[StoredEvent]:
        """Yield events after `after` as they are appended, blocking in Redis between them."""
        keys = _Keys.of(conversation_id)
        position = validate_stream_id(after) if after else "0-0"
        with redis_errors():
            if not await self.redis.exists(keys.record):
                raise ConversationNotFound(conversation_id)
        block_ms = int(min(block, longest_block(self.redis)).total_seconds() * 1000)
        while True:
            with redis_errors():
                reply = cast(list[tuple[Any, _Entries]] | None, await self.redis.xread(
                    {keys.log: position}, block=block_ms, count=500))
            for _stream, entries in reply or []:
                for stored in _decode(entries):
                    position = stored.seq
                    yield stored

    async def cached_tool_result(self, conversation_id: str, name: str,
                                 arguments: str | Mapping[str, Any], *,
                                 max_age: timedelta | None = None) -> str | None:
        """The cached output for these arguments, unless it is older than `max_age`."""
        keys = _Keys.of(conversation_id)
        with redis_errors():
            raw = await self.redis.hget(keys.tools, cache_field(name, arguments))
        if raw is None:
            return None
        entry = json.loads(raw)
        if max_age is not None and \
                datetime.now(UTC) - datetime.fromisoformat(entry["at"]) > max_age:
            return None
        return str(entry["output"])

    async def cache_tool_result(self, conversation_id: str, name: str,
                                arguments: str | Mapping[str, Any], output: str) -> None:
        keys = _Keys.of(conversation_id)
        value = json.dumps({"name": name, "arguments": canonical_arguments(arguments),
                            "output": output, "at": _iso(datetime.now(UTC))})
        await self._run(self._cache, keys, [cache_field(name, arguments), value, self._ttl_ms],
                        conversation_id)


def _flatten(fields: Mapping[str, str]) -> list[str]:
    return [part for pair in fields.items() for part in pair]


_Entries = Sequence[tuple[Any, Mapping[Any, Any]]]


def _decode(entries: _Entries) -> list[StoredEvent]:
    if not entries:
        return []
    # One validation call for the whole batch is several times faster than one per event.
    payload = b"[" + b",".join(_bytes(fields[b"data"] if b"data" in fields else fields["data"])
                               for _seq, fields in entries) + b"]"
    events = EVENT_LIST_ADAPTER.validate_json(payload)
    return [StoredEvent(_text(seq), event)
            for (seq, _fields), event in zip(entries, events, strict=True)]


def _bytes(value: bytes | str) -> bytes:
    return value if isinstance(value, bytes) else value.encode()


def _record(conversation_id: str, fields: Mapping[str, str]) -> Conversation:
    identity = None
    if fields.get("subject"):
        identity = VerifiedIdentity(subject=fields["subject"], method=fields["method"],
                                    verified_at=datetime.fromisoformat(fields["verified_at"]))
    return Conversation(
        id=conversation_id,
        status=Status(fields["status"]),
        identity=identity,
        room=fields.get("room") or None,
        created_at=datetime.fromisoformat(fields["created_at"]),
        updated_at=datetime.fromisoformat(fields["updated_at"]),
        schema_version=int(fields["schema_version"]),
        trimmed_events=int(fields.get("trimmed_events", "0")),
        calls=int(fields.get("calls", "0")),
        visitor=fields.get("visitor") or None,
        handoffs=int(fields.get("handoffs", "0")),
        handoff=fields.get("handoff") or None,
    )
