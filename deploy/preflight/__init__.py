"""The preflight check of a deployment's wiring: `python -m deploy.preflight`."""
