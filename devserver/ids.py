"""LiveKit-style resource ids: a type prefix and a random base62 suffix."""

from __future__ import annotations

import secrets
import string

_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """Return e.g. ``RM_`` + 12 random characters, the shape LiveKit's ids have."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))
