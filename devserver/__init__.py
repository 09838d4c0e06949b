"""A LiveKit-compatible server for local development and CI; never the production path."""
