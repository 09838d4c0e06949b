"""The channel path a conversation took (chat>voice>human, ...): the label its resolution and
satisfaction are reported under, from a closed set so metrics stay bounded."""

from __future__ import annotations

from collections.abc import Sequence

from conversation.events import ChannelSwitchEvent, HandoffEvent, HandoffState, StoredEvent

MAX_STEPS = 4


def channel_path(events: Sequence[StoredEvent]) -> str:
    """Where the conversation went, each channel once per visit: it starts in chat, and a
    connected handoff adds `human`. Repeats collapse and the path stops at four steps, so
    the label has at most a few hundred values."""
    path = ["chat"]
    for stored in events:
        event = stored.event
        step = None
        if isinstance(event, ChannelSwitchEvent):
            step = event.to_channel.value
        elif isinstance(event, HandoffEvent) and event.state is HandoffState.CONNECTED:
            step = "human"
        if step is not None and step != path[-1] and len(path) < MAX_STEPS:
            path.append(step)
    return ">".join(path)
