"""The data folder as serving reads it, and the check that a model belongs to it.

The catalogue at the end of the purchase log is the inventory replay of
:mod:`curatornet.evaluation.protocol` taken past the last event: every item of
items.parquet (all of them have been uploaded by then) minus the one-of-a-kind
items that were sold. Prints and photographs stay after a sale.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curatornet import parts
from curatornet.artifacts import catalogue_fingerprint, embeddings_matrix
from curatornet.errors import InputError
from curatornet.io import read_table
from curatornet.models.persistence import MODEL_FILE


@dataclass
class ServingData:
    """Items (by item index), their embeddings and, when read, the purchase histories."""

    items_path: Path
    embeddings_path: Path
    item_ids: np.ndarray  # object (n,), str
    artist_ids: np.ndarray  # object (n,), str or None
    embeddings: np.ndarray  # float32 (n, dim)
    one_of_a_kind: np.ndarray | None = None  # bool (n,)
    user_ids: np.ndarray | None = None  # object (n_users,), by user index
    history_offsets: np.ndarray | None = None  # int64 (n_users + 1,); user u bought items[offsets[u]:offsets[u+1]]
    history_items: np.ndarray | None = None  # int64, distinct items per user, ascending

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def embedding_dim(self) -> int:
        return int(self.embeddings.shape[1])

    @property
    def fingerprint(self) -> str:
        return catalogue_fingerprint(self.item_ids)

    @property
    def n_users(self) -> int:
        return 0 if self.user_ids is None else len(self.user_ids)

    def history(self, user: int) -> np.ndarray:
        """Distinct items user index ``user`` bought."""
        return self.history_items[self.history_offsets[user] : self.history_offsets[user + 1]]

    def sold_one_of_a_kind(self) -> np.ndarray:
        """bool (n,): one-of-a-kind items bought at least once (they have left the inventory)."""
        sold = np.zeros(self.n_items, bool)
        sold[self.history_items] = True
        return sold & self.one_of_a_kind

    def inventory(self) -> np.ndarray:
        """Item indexes of the inventory at the end of the purchase log, ascending."""
        return np.flatnonzero(~self.sold_one_of_a_kind())


def load_data(data_dir: str | Path, purchases: bool = True) -> ServingData:
    """Read items.parquet and embeddings.parquet (and purchases.parquet when ``purchases``), checked."""
    data_dir = Path(data_dir)
    items_path, embeddings_path = data_dir / "items.parquet", data_dir / "embeddings.parquet"
    columns = ("item", "item_id", "artist_id") + (("one_of_a_kind",) if purchases else ())
    items = read_table(items_path, columns).to_pandas()
    if len(items) == 0:
        raise InputError(items_path, "item", 0, "no items")
    items = items.sort_values("item", kind="stable").reset_index(drop=True)
    if not np.array_equal(items["item"].to_numpy(), np.arange(len(items))):
        raise InputError(items_path, "item", items["item"].head(5).tolist(), "item indexes must be 0..n-1 without gaps")
    item_ids = items["item_id"].astype(str).to_numpy(dtype=object)
    duplicated = pd.Index(item_ids).duplicated()
    if duplicated.any():
        raise InputError(items_path, "item_id", item_ids[np.flatnonzero(duplicated)[0]], "item id appears twice")
    artists = items["artist_id"].astype(object).where(items["artist_id"].notna(), None).to_numpy(dtype=object)
    table = read_table(embeddings_path, ("item", "embedding"))
    embeddings = embeddings_matrix(table)
    if len(embeddings) != len(items):
        raise InputError(
            embeddings_path, "item", len(embeddings), f"{len(items)} items in items.parquet but this many embeddings"
        )
    if not np.isfinite(embeddings).all():
        raise InputError(embeddings_path, "embedding", "NaN/inf", "embeddings must be finite")
    data = ServingData(items_path, embeddings_path, item_ids, artists, embeddings)
    if purchases:
        data.one_of_a_kind = items["one_of_a_kind"].fillna(False).to_numpy(dtype=bool)
        _read_histories(data, data_dir / "purchases.parquet")
    return data


def _read_histories(data: ServingData, path: Path) -> None:
    frame = read_table(path, ("user", "user_id", "item")).to_pandas()
    users = frame["user"].to_numpy(dtype=np.int64)
    items = frame["item"].to_numpy(dtype=np.int64)
    if len(frame) and (users.min() < 0):
        raise InputError(path, "user", int(users.min()), "user indexes must be 0 or more")
    bad = (items < 0) | (items >= data.n_items)
    if bad.any():
        raise InputError(path, "item", int(items[bad][0]), f"item index outside [0, {data.n_items})")
    n_users = int(users.max()) + 1 if len(frame) else 0
    ids = frame.groupby("user", sort=True)["user_id"].agg(["first", "nunique"])
    if (ids["nunique"] > 1).any():
        user = int(ids.index[ids["nunique"] > 1][0])
        raise InputError(path, "user_id", user, "one user index has several user_id values")
    user_ids = np.full(n_users, None, dtype=object)
    user_ids[ids.index.to_numpy()] = ids["first"].astype(str).to_numpy()
    # Distinct (user, item) pairs in user, then item order: one CSR over all users.
    pairs = np.unique(users * data.n_items + items)
    pair_users, pair_items = pairs // data.n_items, pairs % data.n_items
    data.user_ids = user_ids
    data.history_offsets = np.concatenate([[0], np.cumsum(np.bincount(pair_users, minlength=n_users))])
    data.history_items = pair_items


def check_model_matches_data(meta: Mapping[str, Any], model_dir: str | Path, data: ServingData) -> None:
    """Refuse a model trained on another catalogue, or on embeddings of another dimension.

    With a recorded ``catalogue`` (model.json) the item ids must give the same
    fingerprint. Without one, a model with parameters per item index (its
    record's ``item_parameters``: VBPR) must at least have as many items.
    """
    model_file = Path(model_dir) / MODEL_FILE
    dim = int(meta.get("embedding_dim", data.embedding_dim))
    if dim != data.embedding_dim:
        raise InputError(
            data.embeddings_path, "embedding", data.embedding_dim, f"the model {model_file} expects length {dim}"
        )
    recorded = meta.get("catalogue")
    if isinstance(recorded, Mapping) and recorded.get("fingerprint") is not None:
        if str(recorded["fingerprint"]) != data.fingerprint:
            raise InputError(
                data.items_path,
                "catalogue fingerprint",
                data.fingerprint,
                f"the model {model_file} was trained on another catalogue (fingerprint {recorded['fingerprint']}, "
                f"{recorded.get('n_items')} items; this one has {data.n_items}): use its own data folder",
            )
    elif _item_parameters(meta) and int(meta.get("n_items", data.n_items)) != data.n_items:
        raise InputError(
            data.items_path,
            "item",
            data.n_items,
            f"items in this catalogue, but the {parts.display_name(meta['model'])} model {model_file} "
            f"was trained on {meta.get('n_items')}",
        )


def _item_parameters(meta: Mapping[str, Any]) -> bool:
    name = meta.get("model")
    return name in parts.model_names() and parts.model(name).item_parameters


def training_hash(meta: Mapping[str, Any]) -> str:
    """sha256 of model.json's ``training`` section as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(meta.get("training", {}), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()
