"""Keys of the per-conversation tool-result cache: tool name plus canonical arguments."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from conversation.errors import InvalidInput


def canonical_arguments(arguments: str | Mapping[str, Any]) -> str:
    """The same arguments give the same text whatever their key order or spacing."""
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except json.JSONDecodeError as exc:
            raise InvalidInput("arguments", f"must be JSON: {exc.msg}") from None
    if not isinstance(arguments, Mapping):
        raise InvalidInput("arguments", "must be a JSON object")
    return json.dumps(arguments, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_field(name: str, arguments: str | Mapping[str, Any]) -> str:
    digest = hashlib.sha256(canonical_arguments(arguments).encode()).hexdigest()[:32]
    return f"{name}:{digest}"
