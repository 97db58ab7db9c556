"""Errors raised for bad input: they always name the file, the field and the value."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


class InputError(ValueError):
    """Bad input data or configuration.

    The message names the file, the column (or key) and the offending value so
    that a user can find and fix the problem without reading a traceback.
    """

    def __init__(self, file: str | Path | None, field: str | None, value: Any, problem: str):
        self.file = None if file is None else str(file)
        self.field = field
        self.value = value
        self.problem = problem
        where = []
        if self.file is not None:
            where.append(f"file {self.file!r}")
        if field is not None:
            where.append(f"field {field!r}")
        location = ", ".join(where) if where else "input"
        shown = _short(value)
        super().__init__(f"{location}: {problem} (value: {shown})")


def _short(value: Any, limit: int = 200) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_item_indexes(items: Any, n_items: int, source: Any, field: str) -> np.ndarray:
    """``items`` as int64, failing on the first index outside [0, n_items)."""
    items = np.asarray(items, dtype=np.int64)
    bad = (items < 0) | (items >= n_items)
    if bad.any():
        raise InputError(source, field, int(items[bad][0]), f"item index outside [0, {n_items})")
    return items
