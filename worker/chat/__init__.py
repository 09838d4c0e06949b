"""The chat agent: the voice agent's brain on the text channel, answering typed messages from
a Redis stream of turns (`python -m worker.chat`)."""
