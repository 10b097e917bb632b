"""Errors that stop a stage with one clear message (naming the file, record or key)."""


class InputError(RuntimeError):
    """Bad or missing input: the message names the file and, where known, the record."""


class GateError(RuntimeError):
    """A dataset-level check failed (e.g. the Great Expectations suite); the stage exits 1."""
