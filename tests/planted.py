"""A small world with a planted preference, for the model and training tests.

Items belong to one of ``N_TASTES`` visual tastes (embedding = the taste's
centre plus noise); user u likes taste u % N_TASTES. Triples, a data folder
(items, embeddings, purchases with train, valid and test baskets) and
training settings are built from it, so that a test trains a real model on
real files in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet.artifacts import (
    ITEMS_SCHEMA,
    MERGED_TRIPLETS_SCHEMA,
    PURCHASES_SCHEMA,
    embeddings_schema,
)
from curatornet.config import schema_defaults
from curatornet.io import write_parquet
from curatornet.models.settings import TrainSettings
from curatornet.sampling.triples import Triples

N_ITEMS, DIM, N_TASTES, N_USERS = 300, 32, 4, 40
SMALL_CURATORNET = {"tower_units": [16, 16], "head_units": [24, 16, 16]}
SMALL_VBPR = {"latent_dim": 8, "visual_dim": 8}


def catalogue() -> tuple[np.ndarray, np.ndarray]:
    """(embeddings, taste of each item); fixed, whatever the seed of the triples."""
    rng = np.random.default_rng(1000)
    taste = rng.integers(0, N_TASTES, N_ITEMS)
    centres = rng.standard_normal((N_TASTES, DIM)) * 2.0
    embeddings = (centres[taste] + rng.standard_normal((N_ITEMS, DIM))).astype(np.float32)
    return embeddings, taste


def planted_triples(n_triples: int, seed: int, max_profile: int = 4) -> Triples:
    """Profiles of 1..max_profile items of the user's taste, positive of that taste, negative of another."""
    _, taste = catalogue()
    rng = np.random.default_rng(seed)
    by_taste = [np.flatnonzero(taste == t) for t in range(N_TASTES)]
    others = [np.flatnonzero(taste != t) for t in range(N_TASTES)]
    users = rng.integers(0, N_USERS, n_triples).astype(np.int32)
    lengths = rng.integers(1, max_profile + 1, n_triples)
    profiles, positive, negative = [], np.zeros(n_triples, np.int32), np.zeros(n_triples, np.int32)
    for k in range(n_triples):  # small sizes only
        t = users[k] % N_TASTES
        picked = rng.choice(by_taste[t], size=lengths[k] + 1, replace=False)
        profiles.append(picked[:-1])
        positive[k] = picked[-1]
        negative[k] = rng.choice(others[t])
    return Triples.from_lists(profiles, positive, negative, users)


def write_triplets(
    data: Triples, path: str | Path, split: str = "train", guideline: str | list[str] = "d4_profile"
) -> None:
    """Write triples in the merged triplet-file layout (MERGED_TRIPLETS_SCHEMA)."""
    n = len(data)
    profile = pa.ListArray.from_arrays(pa.array(data.offsets.astype(np.int32)), pa.array(data.values, pa.int32()))
    guidelines = [guideline] * n if isinstance(guideline, str) else list(guideline)
    table = pa.table(
        {
            "profile": profile,
            "positive": pa.array(data.positive, pa.int32()),
            "negative": pa.array(data.negative, pa.int32()),
            "user": pa.array(data.user, pa.int32()),
            "split": pa.array([split] * n),
            "hash": pa.array(np.arange(n, dtype=np.uint64)),
            "guideline": pa.array(guidelines),
        }
    )
    write_parquet(table, path, MERGED_TRIPLETS_SCHEMA)


def write_embeddings(embeddings: np.ndarray, path: str | Path) -> None:
    table = pa.table(
        {
            "item": pa.array(np.arange(len(embeddings), dtype=np.int32)),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1]),
        }
    )
    write_parquet(table, path, embeddings_schema(embeddings.shape[1]))


def write_data_folder(folder: str | Path, seed: int = 7) -> Path:
    """items, embeddings and purchases .parquet of the planted world.

    Every user buys three baskets of items of their taste: two items (train),
    one item (valid), one item (test); items are prints (not one-of-a-kind),
    so the whole catalogue is always in the inventory.
    """
    folder = Path(folder)
    embeddings, taste = catalogue()
    rng = np.random.default_rng(seed)
    items = pd.DataFrame(
        {
            "item": np.arange(N_ITEMS, dtype=np.int32),
            "item_id": [f"art{k:03d}" for k in range(N_ITEMS)],
            "artist_id": [f"artist{k % 7}" for k in range(N_ITEMS)],
            "upload_time": pd.Timestamp("2015-01-01"),
            "one_of_a_kind": False,
        }
    )
    rows = []
    for user in range(N_USERS):
        liked = rng.choice(np.flatnonzero(taste == user % N_TASTES), size=4, replace=False)
        for basket, (chosen, split) in enumerate(((liked[:2], "train"), (liked[2:3], "valid"), (liked[3:], "test"))):
            when = pd.Timestamp("2016-01-01") + pd.Timedelta(days=30 * basket + user)
            rows += [(user, f"user{user:02d}", int(i), when, basket, split) for i in chosen]
    purchases = pd.DataFrame(rows, columns=list(PURCHASES_SCHEMA.names))
    write_parquet(items, folder / "items.parquet", ITEMS_SCHEMA)
    write_embeddings(embeddings, folder / "embeddings.parquet")
    write_parquet(purchases, folder / "purchases.parquet", PURCHASES_SCHEMA)
    return folder


def settings(model: str = "curatornet", sampling: str = "guidelines", l2: float = 0.0, seed: int = 3, **training):
    """TrainSettings from the schema's defaults, small models, overridden by ``training`` keys."""
    config = schema_defaults()["training"]
    config.update(curatornet={**config["curatornet"], **SMALL_CURATORNET}, vbpr={**config["vbpr"], **SMALL_VBPR})
    # 3,000 planted triples are 12 steps a pass: a check every half pass, none kept before the first pass.
    config.update(batch_size=256, check_every_steps=6, min_steps=12, max_steps=48, smoothing=2, early_stop_patience=3)
    for key, value in training.items():  # a model's block is merged over its defaults
        merge = isinstance(value, dict) and isinstance(config.get(key), dict)
        config[key] = {**config[key], **value} if merge else value
    return TrainSettings.from_config(config, model, sampling, l2, seed)


def train_paths(root: Path, data: Path) -> dict[str, Path]:
    """The keyword arguments of train_model for files under ``root`` and a data folder."""
    return {
        "train_path": root / "train.parquet",
        "valid_path": root / "valid.parquet",
        "embeddings_path": data / "embeddings.parquet",
        "items_path": data / "items.parquet",
        "purchases_path": data / "purchases.parquet",
    }
