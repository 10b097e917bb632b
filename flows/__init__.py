"""Prefect flows (run from the repository root, e.g. `python -m flows.pipeline`)."""
