"""Prefect flows: thin wrappers that pass table names and paths and call the flywheel library."""
