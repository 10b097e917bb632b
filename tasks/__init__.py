"""Prefect tasks: thin wrappers that run DVC stages and record lineage (no data logic)."""
