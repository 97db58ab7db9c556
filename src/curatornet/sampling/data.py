"""The training purchases, artists and clusters in the flat arrays the samplers use.

Only purchases with ``split == "train"`` are used: the test baskets stay hidden
(paper section 3.5, last paragraph), and so do the validation baskets. All per-user and per-basket sets are
stored as CSR arrays (``ptr`` offsets into a flat ``items`` array).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curatornet.artifacts import PURCHASE_SPLITS
from curatornet.errors import InputError
from curatornet.io import read_table
from curatornet.sampling.arrays import offsets_from_lengths

_SPLIT_RULE = "split must be one of " + ", ".join(repr(s) for s in PURCHASE_SPLITS)


@dataclass
class SamplingData:
    """Everything the guideline samplers read, as NumPy arrays.

    Items are the dense indexes 0..n_items-1 of ``items.parquet``; users the
    dense ``user`` indexes of ``purchases.parquet`` (a user without training
    purchases simply has empty sets).
    """

    n_items: int
    artist: np.ndarray  # int32 (n_items,): artist code; an unknown artist is a code of its own
    n_artists: int
    cluster: np.ndarray | None  # int32 (n_items,) visual cluster, None when not loaded
    n_clusters: int
    n_users: int
    # I+_u: the distinct training items of each user, ascending.
    user_ptr: np.ndarray  # int64 (n_users + 1,)
    user_items: np.ndarray  # int32
    # P_{u,k}: the distinct items of every training basket, ordered by (user, basket).
    basket_user: np.ndarray  # int32 (n_baskets,)
    basket_number: np.ndarray  # int32 (n_baskets,): k, the basket's 0-based order for its user
    basket_ptr: np.ndarray  # int64 (n_baskets + 1,)
    basket_items: np.ndarray  # int32
    # I+_{u,k}: each user's items in order of first purchase; the items up to
    # basket k are the slice [first_ptr[u], first_end[b]) where b is the basket (u, k).
    first_ptr: np.ndarray  # int64 (n_users + 1,)
    first_items: np.ndarray  # int32
    first_end: np.ndarray  # int64 (n_baskets,)

    @property
    def n_baskets(self) -> int:
        return len(self.basket_user)

    def user_sizes(self) -> np.ndarray:
        return np.diff(self.user_ptr)

    def owned_keys(self) -> np.ndarray:
        """Sorted int64 keys ``user * n_items + item`` of all (u, i in I+_u) pairs."""
        users = np.repeat(np.arange(self.n_users, dtype=np.int64), self.user_sizes())
        return users * self.n_items + self.user_items  # ascending: users ascending, items ascending within

    @classmethod
    def from_tables(
        cls,
        items: pa.Table | pd.DataFrame,
        purchases: pa.Table | pd.DataFrame | None = None,
        clusters: pa.Table | pd.DataFrame | None = None,
        sources: dict[str, str | Path] | None = None,
    ) -> SamplingData:
        """Check the canonical tables and build the arrays.

        ``sources`` names the files (keys ``items``, ``purchases``, ``clusters``)
        for error messages. ``purchases`` and ``clusters`` may be left out for
        the guidelines that do not need them (D5, D6 need neither).
        """
        names = {"items": "items.parquet", "purchases": "purchases.parquet", "clusters": "clusters/items.parquet"}
        names.update({k: str(v) for k, v in (sources or {}).items()})

        items_t = _as_table(items)
        _require(items_t, ("item", "artist_id"), names["items"])
        item = _int_column(items_t, "item", names["items"])
        n_items = len(item)
        if n_items == 0:
            raise InputError(names["items"], "item", 0, "no items")
        order = np.argsort(item, kind="stable")
        if not np.array_equal(item[order], np.arange(n_items)):
            bad = _first_bad_dense(item[order])
            raise InputError(names["items"], "item", bad, "item indexes must be unique and dense 0..N-1")
        artist = _artist_codes(items_t.column("artist_id"))[order]
        n_artists = int(artist.max()) + 1

        cluster = None
        n_clusters = 0
        if clusters is not None:
            clusters_t = _as_table(clusters)
            _require(clusters_t, ("item", "cluster"), names["clusters"])
            c_item = _int_column(clusters_t, "item", names["clusters"])
            c_val = _int_column(clusters_t, "cluster", names["clusters"])
            c_order = np.argsort(c_item, kind="stable")
            if not np.array_equal(c_item[c_order], np.arange(n_items)):
                bad = _first_bad_dense(c_item[c_order], n_items)
                raise InputError(names["clusters"], "item", bad, f"clusters must list every item 0..{n_items - 1} once")
            cluster = c_val[c_order].astype(np.int32)
            if cluster.min() < 0:
                raise InputError(names["clusters"], "cluster", int(cluster.min()), "negative cluster label")
            n_clusters = int(cluster.max()) + 1

        if purchases is None:
            empty64 = np.zeros(1, dtype=np.int64)
            none32 = np.empty(0, dtype=np.int32)
            return cls(
                n_items,
                artist,
                n_artists,
                cluster,
                n_clusters,
                0,
                empty64,
                none32,
                none32,
                none32,
                np.zeros(1, np.int64),
                none32,
                empty64,
                none32,
                np.empty(0, np.int64),
            )

        p = _as_table(purchases)
        source = names["purchases"]
        _require(p, ("user", "item", "basket", "split"), source)
        split = p.column("split")
        if split.null_count:
            raise InputError(source, "split", None, _SPLIT_RULE)
        bad_split = pc.invert(pc.is_in(split, value_set=pa.array(PURCHASE_SPLITS)))
        if pc.any(bad_split).as_py():
            raise InputError(source, "split", pc.filter(split, bad_split)[0].as_py(), _SPLIT_RULE)
        user = _int_column(p, "user", source)
        p_item = _int_column(p, "item", source)
        basket = _int_column(p, "basket", source)
        for name, values in (("user", user), ("basket", basket)):
            if len(values) and values.min() < 0:
                raise InputError(source, name, int(values.min()), "must not be negative")
        unknown = (p_item < 0) | (p_item >= n_items)
        if unknown.any():
            raise InputError(source, "item", int(p_item[unknown][0]), f"unknown item (items are 0..{n_items - 1})")
        n_users = int(user.max()) + 1 if len(user) else 0

        train = pc.equal(split, "train").to_numpy(zero_copy_only=False)
        user, p_item, basket = user[train], p_item[train], basket[train]

        # Baskets: distinct (user, basket, item) rows in that order.
        order = np.lexsort((p_item, basket, user))
        user, basket, p_item = user[order], basket[order], p_item[order]
        distinct = np.ones(len(user), dtype=bool)
        distinct[1:] = (user[1:] != user[:-1]) | (basket[1:] != basket[:-1]) | (p_item[1:] != p_item[:-1])
        user, basket, p_item = user[distinct], basket[distinct], p_item[distinct]
        new_basket = np.ones(len(user), dtype=bool)
        new_basket[1:] = (user[1:] != user[:-1]) | (basket[1:] != basket[:-1])
        b_start = np.flatnonzero(new_basket)
        basket_ptr = np.append(b_start, len(user)).astype(np.int64)
        basket_user = user[b_start].astype(np.int32)
        basket_number = basket[b_start].astype(np.int32)

        # First purchase of each (user, item): later repurchases are already in I+_{u,k}.
        by_item = np.lexsort((basket, p_item, user))
        first_sorted = np.ones(len(user), dtype=bool)
        su, si = user[by_item], p_item[by_item]
        first_sorted[1:] = (su[1:] != su[:-1]) | (si[1:] != si[:-1])
        is_first = np.empty(len(user), dtype=bool)
        is_first[by_item] = first_sorted
        first_items = p_item[is_first].astype(np.int32)
        first_counts = np.zeros(len(user) + 1, dtype=np.int64)
        np.cumsum(is_first, out=first_counts[1:])
        first_end = first_counts[basket_ptr[1:]]
        first_ptr = offsets_from_lengths(np.bincount(user[is_first], minlength=n_users))

        # I+_u: distinct items per user, ascending.
        u_first = user[is_first]
        u_order = np.lexsort((first_items, u_first))
        user_items = first_items[u_order]
        user_ptr = first_ptr  # same counts: one first purchase per distinct (user, item)
        return cls(
            n_items=n_items,
            artist=artist,
            n_artists=n_artists,
            cluster=cluster,
            n_clusters=n_clusters,
            n_users=n_users,
            user_ptr=user_ptr,
            user_items=user_items,
            basket_user=basket_user,
            basket_number=basket_number,
            basket_ptr=basket_ptr,
            basket_items=p_item.astype(np.int32),
            first_ptr=first_ptr,
            first_items=first_items,
            first_end=first_end,
        )

    def require_purchases(self, guideline: str) -> None:
        if self.n_users == 0:
            raise InputError("purchases.parquet", "split", "train", f"guideline {guideline} needs training purchases")

    def require_clusters(self, guideline: str) -> None:
        if self.cluster is None:
            raise InputError(
                "clusters/items.parquet", "cluster", None, f"guideline {guideline} needs the visual clusters"
            )


def refit_view(purchases: pa.Table | pd.DataFrame) -> tuple[pa.Table, float]:
    """The purchases as a refit samples them, and how much larger its training purchases are.

    After λ is selected, the refit trains on every purchase before the test
    baskets: the validation baskets become training purchases (``split``
    ``valid`` -> ``train``). The ratio is (train + valid rows) / train rows, the
    factor by which the refit's triple budgets and steps grow.
    """
    table = _as_table(purchases)
    split = table.column("split")
    train = pc.sum(pc.equal(split, "train")).as_py() or 0
    valid = pc.sum(pc.equal(split, "valid")).as_py() or 0
    if train == 0:
        raise InputError("purchases.parquet", "split", "train", "no training purchases to refit on")
    relabelled = pc.if_else(pc.equal(split, "valid"), "train", split)
    table = table.set_column(table.column_names.index("split"), "split", relabelled)
    return table, (train + valid) / train


def _as_table(data: pa.Table | pd.DataFrame) -> pa.Table:
    return data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)


def _require(table: pa.Table, columns: tuple[str, ...], source: str) -> None:
    for column in columns:
        if column not in table.column_names:
            raise InputError(source, column, table.column_names, "required column is missing")


def _int_column(table: pa.Table, column: str, source: str) -> np.ndarray:
    values = table.column(column)
    if values.null_count:
        raise InputError(source, column, None, "missing values")
    if not pa.types.is_integer(values.type):
        raise InputError(source, column, str(values.type), "expected an integer column")
    return values.to_numpy().astype(np.int64)


def _first_bad_dense(sorted_values: np.ndarray, expected: int | None = None) -> object:
    """A value that breaks 'unique and dense 0..N-1' (for the error message)."""
    n = len(sorted_values)
    if expected is not None and n != expected:
        return f"{n} rows for {expected} items"
    wrong = np.flatnonzero(sorted_values != np.arange(n))
    return int(sorted_values[wrong[0]]) if len(wrong) else None


def _artist_codes(column: pa.ChunkedArray) -> np.ndarray:
    """int32 artist code per row; each row with an unknown (null) artist gets a code of its own."""
    values = column.to_pandas() if not isinstance(column, pd.Series) else column
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = codes.astype(np.int64)
    unknown = codes < 0
    codes[unknown] = len(uniques) + np.arange(int(unknown.sum()))
    return codes.astype(np.int32)


#: The tables a shard job may read, with the columns it needs (curatornet.sampling.plan.shard_inputs).
SHARD_TABLE_COLUMNS = {
    "items": ("item", "artist_id"),
    "purchases": ("user", "item", "basket", "split"),
    "clusters": ("item", "cluster"),
}


def read_shard_tables(inputs) -> tuple[dict[str, str], dict[str, pa.Table | None]]:
    """A shard job's input paths and tables: each of SHARD_TABLE_COLUMNS the job was given (None when its
    guideline reads no such table). ``inputs``: the job's named inputs, the items table named
    ``inventory`` (Snakemake reserves ``items``)."""
    sources = {"items": inputs["inventory"]}
    sources.update({name: inputs[name] for name in ("purchases", "clusters") if name in inputs.keys()})
    tables = {
        name: read_table(sources[name], required=columns) if name in sources else None
        for name, columns in SHARD_TABLE_COLUMNS.items()
    }
    return sources, tables
