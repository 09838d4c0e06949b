"""The Baton voice worker: a LiveKit Agents server that continues a chat by voice."""
