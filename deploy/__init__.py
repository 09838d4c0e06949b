"""Deployment assets and the local stack launcher."""
