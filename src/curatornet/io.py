"""Atomic writing of artifacts and checked reading of Parquet files.

Every artifact is written to a temporary file beside its target and renamed
into place only when complete, so a failed step never leaves a half-written
output behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from curatornet.errors import InputError

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the artifact the permissions a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp_path.unlink()
        raise


def write_parquet(
    data: pd.DataFrame | pa.Table, path: str | Path, schema: pa.Schema | None = None, row_group_size: int | None = None
) -> None:
    """Write a DataFrame or Table to Parquet atomically, cast to ``schema`` when given.

    ``row_group_size`` (rows) bounds what a reader decodes at once (default: Arrow's).
    """
    table = data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
    if schema is not None:
        table = table.select(schema.names).cast(schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, row_group_size=row_group_size)


def write_csv(frame: pd.DataFrame, path: str | Path, **kwargs) -> None:
    """Write a CSV atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, **kwargs)


def write_text(text: str, path: str | Path) -> None:
    """Write a text file atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_table(path: str | Path, required: Sequence[str] = ()) -> pa.Table:
    """Read a Parquet file, failing clearly when it is missing or lacks a column."""
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, str(path), "file does not exist")
    try:
        table = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(path, None, str(path), f"not a readable Parquet file ({exc})") from exc
    # Decoding leaves freed buffers in Arrow's allocator, several times the table's
    # size for a big embeddings file: hand them back to the system.
    pa.default_memory_pool().release_unused()
    for column in required:
        if column not in table.column_names:
            raise InputError(path, column, table.column_names, "required column is missing")
    return table


def read_frame(path: str | Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """Like :func:`read_table` but returns a pandas DataFrame."""
    return read_table(path, required).to_pandas()
