"""Batch top-k: the k best items for every user of the purchase log, as of its end.

For each user the profile is all of their purchases, and the candidates are
the inventory at the end of the log (every item minus the one-of-a-kind items
sold, see :mod:`curatornet.serving.data`) minus the user's own purchases.

Users are scored a block at a time: one matrix product per block for the
NumPy models (query vectors times the inventory's item vectors, or a faiss
search), one ``score`` call per block for any other
:class:`~curatornet.models.base.Scorer` (VisRank, the TensorFlow scorers).
VBPR users without trained factors get VBPR's item-side ranking, as in the
evaluation. Ties are broken by item index.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet import parts
from curatornet.errors import InputError
from curatornet.io import read_frame, write_parquet
from curatornet.models.base import Queries, Scorer
from curatornet.registry import resolve
from curatornet.serving.data import ServingData, check_model_matches_data, load_data
from curatornet.serving.index import Exclusions, make_index, sorted_top_k
from curatornet.serving.models import NumpyScorer, load_numpy_model

log = logging.getLogger(__name__)

TOP_K_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("rank", pa.int32()),
        ("item_id", pa.string()),
        ("artist_id", pa.string()),
        ("score", pa.float32()),
        ("model", pa.string()),
    ]
)

#: Upper bound on the floats of one block of scores (about 128 MB in float32).
BLOCK_FLOATS = 32_000_000


def _block_profiles(data: ServingData, users: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row of each value, items flat, lengths) of the purchase histories of ``users``."""
    starts = data.history_offsets[users]
    lengths = data.history_offsets[users + 1] - starts
    rows = np.repeat(np.arange(len(users)), lengths)
    within = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return rows, data.history_items[np.repeat(starts, lengths) + within], lengths


def batch_top_k(
    scorer: Scorer | NumpyScorer, data: ServingData, k: int, block: int = 1024, index: str = "exact", **index_options
) -> pd.DataFrame:
    """Columns user_id, rank (1..k), item_id, artist_id, score, model; users in user order.

    ``scorer`` scores item indexes of ``data`` (its embeddings by row).
    ``index='faiss'`` (NumPy models only) searches an approximate index
    instead of scoring every candidate. A user with fewer than ``k``
    candidates gets them all.
    """
    if k < 1:
        raise InputError(None, "k", k, "must be at least 1")
    if data.history_offsets is None:
        raise InputError(data.items_path.parent / "purchases.parquet", None, None, "purchase histories were not read")
    started = time.perf_counter()
    inventory = data.inventory()
    users = np.flatnonzero(np.diff(data.history_offsets) > 0)
    factored = isinstance(scorer, NumpyScorer)
    if factored:
        vectors = scorer.item_matrix()
        item_index = make_index(index, vectors.shape[1], **index_options)
        item_index.add(inventory, vectors[inventory])
        block = max(1, min(block, BLOCK_FLOATS // max(1, len(inventory))))
    elif index != "exact":
        raise InputError(None, "index", index, f"{scorer.name} scores are not inner products: use the exact index")
    else:
        block = max(1, min(block, BLOCK_FLOATS // max(1, len(inventory))))
        position = np.full(data.n_items, -1, np.int64)
        position[inventory] = np.arange(len(inventory))
    parts_scores, parts_ids = [], []
    for start in range(0, len(users), block):
        chunk = users[start : start + block]
        rows, flat, lengths = _block_profiles(data, chunk)
        if factored:
            queries = scorer.flat_query_vectors(chunk, flat, lengths)
            scores, ids = item_index.search(queries, k, Exclusions(rows, flat))
        else:
            profiles = np.split(flat, np.cumsum(lengths)[:-1])
            scores = np.array(scorer.score(Queries(chunk, profiles), inventory), dtype=np.float32)
            if scores.shape != (len(chunk), len(inventory)):
                raise InputError(scorer.name, "scores", scores.shape, f"expected {(len(chunk), len(inventory))}")
            at = position[flat]
            scores[rows[at >= 0], at[at >= 0]] = -np.inf
            scores, ids = sorted_top_k(scores, inventory, k)
        width = scores.shape[1]
        if width < k:  # pad so that blocks stack
            scores = np.pad(scores, ((0, 0), (0, k - width)), constant_values=-np.inf)
            ids = np.pad(ids, ((0, 0), (0, k - width)), constant_values=-1)
        parts_scores.append(scores)
        parts_ids.append(ids)
    scores = np.concatenate(parts_scores) if parts_scores else np.zeros((0, k), np.float32)
    ids = np.concatenate(parts_ids) if parts_ids else np.zeros((0, k), np.int64)
    user_rows, ranks = np.nonzero(ids >= 0)  # row-major: users in order, ranks ascending
    items = ids[user_rows, ranks]
    frame = pd.DataFrame(
        {
            "user_id": pd.array(data.user_ids[users[user_rows]], dtype="string"),
            "rank": (ranks + 1).astype(np.int32),
            "item_id": pd.array(data.item_ids[items], dtype="string"),
            "artist_id": pd.array(data.artist_ids[items], dtype="string"),
            "score": scores[user_rows, ranks].astype(np.float32),
            "model": pd.array(np.full(len(items), scorer.name, dtype=object), dtype="string"),
        }
    )
    log.info(
        "top %d for %d users over %d inventory items (%s, %s index) in %.2f s",
        k,
        len(users),
        len(inventory),
        scorer.name,
        index,
        time.perf_counter() - started,
    )
    return frame


def load_batch_scorer(model: str | Path, data: ServingData, settings: Mapping[str, Any] | None = None):
    """A model directory as a NumPy scorer (checked against the catalogue), or a baseline that can
    write batch recommendations (``model``: its name, VisRank's for one; ``settings``: its settings,
    :func:`curatornet.evaluation.evaluate.baseline_settings`)."""
    name = str(model)
    if name in parts.baseline_names():
        spec = parts.baseline(name)
        if not spec.batch:
            raise InputError(None, "recommender", name, "this baseline cannot write batch recommendations")
        purchases = None
        if spec.purchases:
            purchases = read_frame(data.items_path.parent / "purchases.parquet", ("user", "item", "time", "split"))
        return resolve(spec.build)(data.embeddings, purchases, dict(settings or {}))
    numpy_model = load_numpy_model(model)
    check_model_matches_data(numpy_model.meta, model, data)
    return NumpyScorer(numpy_model, data.embeddings, source=str(data.embeddings_path))


def write_top_k(
    model: str | Path,
    data_dir: str | Path,
    k: int,
    out: str | Path,
    index: str = "exact",
    settings: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Batch top-k of ``model`` (a model directory, or a batch baseline's name (VisRank's), with its
    ``settings``) on ``data_dir``, written atomically to ``out``."""
    data = load_data(data_dir)
    scorer = load_batch_scorer(model, data, settings)
    frame = batch_top_k(scorer, data, k, index=index)
    write_parquet(frame, out, TOP_K_SCHEMA)
    return frame
