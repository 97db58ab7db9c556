"""Command line: ``python -m curatornet <command> ...`` (also installed as ``curatornet``).

Commands are argparse subcommands; each registers itself in ``COMMANDS`` via
``add_<name>(subparsers)`` so that more can be added without touching the
others. TensorFlow is imported only by the commands that load a model.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from curatornet.errors import InputError

# --------------------------------------------------------------------------- recommend


def read_new_items(path: str | Path, dim: int) -> tuple[list[str], np.ndarray]:
    """Ids and (n, dim) vectors of a .npy of [item_id, vector] rows (checked like the data stage's)."""
    from curatornet.data.embeddings import read_embeddings_npy

    ids, vectors = read_embeddings_npy(path, expected_dim=dim)
    return [str(i) for i in ids], vectors


def recommend(
    model_dir: str | Path,
    item_ids: Sequence[str],
    k: int = 20,
    data_dir: str | Path = "results/data",
    new_items: str | Path | None = None,
):
    """Top ``k`` items for the profile ``item_ids`` as a DataFrame (rank, item_id, artist_id, score).

    Items of the catalogue and new items (``new_items`` .npy, never seen in
    training) are both candidates and both may be in the profile; profile
    items are never recommended.
    """
    import pandas as pd

    from curatornet.artifacts import embeddings_matrix
    from curatornet.io import read_table
    from curatornet.models.base import Queries
    from curatornet.models.registry import load_scorer

    data_dir = Path(data_dir)
    items = read_table(data_dir / "items.parquet", ("item", "item_id", "artist_id")).to_pandas()
    items = items.sort_values("item").reset_index(drop=True)
    embeddings = embeddings_matrix(read_table(data_dir / "embeddings.parquet", ("item", "embedding")))
    if len(items) != len(embeddings):
        raise InputError(
            data_dir / "embeddings.parquet",
            "item",
            len(embeddings),
            f"{len(items)} items in items.parquet but this many embeddings",
        )
    ids = items["item_id"].astype(str).tolist()
    artists = items["artist_id"].tolist()
    if new_items is not None:
        new_ids, new_vectors = read_new_items(new_items, embeddings.shape[1])
        clash = sorted(set(new_ids) & set(ids))
        if clash:
            raise InputError(new_items, "item_id", clash[:5], "new item ids already exist in the catalogue")
        ids += new_ids
        artists += [None] * len(new_ids)
        embeddings = np.concatenate([embeddings, new_vectors])
    index = {item_id: k for k, item_id in enumerate(ids)}
    unknown = [i for i in item_ids if i not in index]
    if unknown or not item_ids:
        raise InputError(None, "--items", unknown[:5] or item_ids, "unknown item ids" if unknown else "empty profile")
    if k < 1:
        raise InputError(None, "--k", k, "must be at least 1")
    profile = np.unique([index[i] for i in item_ids]).astype(np.int32)
    candidates = np.setdiff1d(np.arange(len(ids)), profile).astype(np.int32)
    scorer = load_scorer(model_dir, embeddings)
    scores = scorer.score(Queries(np.array([-1]), [profile]), candidates)[0]
    top = np.argsort(-scores, kind="stable")[:k]
    chosen = candidates[top]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(top) + 1),
            "item_id": [ids[c] for c in chosen],
            "artist_id": [artists[c] if artists[c] is not None else "-" for c in chosen],
            "score": scores[top],
        }
    )


def add_recommend(subparsers) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="top-k recommendations for a set of liked items (new users and new items need no retraining)",
    )
    parser.add_argument("--model", required=True, help="trained model directory (results/models/...)")
    parser.add_argument("--items", required=True, help="comma-separated item_ids of the profile")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--data", default="results/data", help="folder with items.parquet and embeddings.parquet")
    parser.add_argument("--new-items", help=".npy of [item_id, vector] rows: items unseen in training")
    parser.set_defaults(run=run_recommend)


def run_recommend(args: argparse.Namespace) -> int:
    item_ids = [i.strip() for i in args.items.split(",") if i.strip()]
    table = recommend(args.model, item_ids, args.k, args.data, args.new_items)
    print("rank\titem_id\tartist_id\tscore")
    for row in table.itertuples(index=False):
        print(f"{row.rank}\t{row.item_id}\t{row.artist_id}\t{row.score:.6f}")
    return 0


# --------------------------------------------------------------------------- train


def add_train(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train one model (what the workflow's train rule runs)")
    parser.add_argument("--model", choices=["curatornet", "vbpr"], required=True)
    parser.add_argument("--sampling", choices=["guidelines", "random"], default="guidelines")
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--train", required=True, help="training triples (.parquet)")
    parser.add_argument("--valid", required=True, help="validation triples (.parquet)")
    parser.add_argument("--embeddings", required=True, help="embeddings.parquet")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--batch-size", type=int, default=4096)
    parser.add_argument("--max-epochs", type=int, default=8)
    parser.add_argument("--learning-rate", type=float)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--log", help="log file")
    parser.set_defaults(run=run_train)


def run_train(args: argparse.Namespace) -> int:
    from curatornet.logs import setup_logging
    from curatornet.models.training import TrainSettings, configure_tensorflow, train_model, tune_allocator

    setup_logging(args.log)
    tune_allocator()
    configure_tensorflow(threads=args.threads)
    settings = TrainSettings(
        model=args.model,
        sampling=args.sampling,
        l2=args.l2,
        batch_size=args.batch_size,
        max_epochs=args.max_epochs,
        seed=args.seed,
    )
    if args.learning_rate is not None:
        settings.learning_rate = args.learning_rate
    elif args.model == "vbpr":
        settings.learning_rate = 0.005
    train_model(settings, args.train, args.valid, args.embeddings, args.out)
    return 0


# --------------------------------------------------------------------------- make-dataset


def add_make_dataset(subparsers) -> None:
    parser = subparsers.add_parser(
        "make-dataset",
        help="write a data set of the second generative model (users and items in one latent space) "
        "in UGallery's research layout, with its embeddings",
    )
    parser.add_argument("--out", required=True, help="folder for valid_artworks.csv, valid_sales.csv, embeddings.npy")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies artists and users (1: UGallery-sized)")
    parser.add_argument("--embedding-dim", type=int, default=2048, help="length of the embedding vectors")
    parser.set_defaults(run=run_make_dataset)


def run_make_dataset(args: argparse.Namespace) -> int:
    from curatornet.data.latent import generate_latent, latent_parameters, write_research_layout

    if not args.scale > 0:
        raise InputError(None, "--scale", args.scale, "must be positive")
    if args.embedding_dim < 1:
        raise InputError(None, "--embedding-dim", args.embedding_dim, "must be at least 1")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise InputError(out, "--out", str(out), "exists and is not a folder")
    data = generate_latent(latent_parameters(args.scale, args.embedding_dim), args.seed)
    paths = write_research_layout(data, out)
    print(
        f"wrote {len(data.artworks)} artworks, {len(data.sales)} sales by "
        f"{data.sales['customer_id'].nunique()} customers to {out}"
    )
    print(f"use it with: dataset: {{format: ugallery, path: {out}, embeddings: {paths['embeddings']}}}")
    return 0


# --------------------------------------------------------------------------- entry point

#: Subcommands: each adds its parser and sets ``run``. Append new ones here.
COMMANDS: list[Callable] = [add_recommend, add_train, add_make_dataset]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="curatornet", description="CuratorNet workflow tools")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
