"""The orchestrator: Baton's stateless HTTP service in front of Redis and LiveKit."""
