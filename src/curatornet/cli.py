"""Command line: ``python -m curatornet <command> ...`` (also installed as ``curatornet``).

Commands are argparse subcommands; each registers itself in ``COMMANDS`` via
``add_<name>(subparsers)`` so that more can be added without touching the
others. TensorFlow is imported only by ``train``; ``recommend`` and ``serve`` run
the models in NumPy (:mod:`curatornet.serving`).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from curatornet.errors import InputError

MODEL_HELP = (
    "a trained run's directory (results/models/curatornet/guidelines/l2_0.01/seed_0), or a model's folder "
    "(results/models/curatornet): the run selected on validation, from results/models/selection.csv, "
    "or its refit on every purchase before the test baskets where the workflow made one (training.refit)"
)


def selected_model_dir(path: str | Path, announce: bool = True) -> Path:
    """The trained run to load: ``path`` itself when it holds a model.json; for a model's
    folder (``results/models/curatornet``), the run selected on the validation baskets, as
    ``selection.csv`` beside the folder records it (best sampling and λ, best seed).
    Where the workflow refit that run on every purchase before the test baskets (``training.refit``,
    ``<sampling>/refit/seed_<seed>``), the refit model is loaded instead.
    ``announce``: say on stderr which run that is (the service logs it instead)."""
    import pandas as pd

    from curatornet.stats import serving_run

    path = Path(path)
    selection_file = path.parent / "selection.csv"
    if (path / "model.json").exists() or not selection_file.exists():
        return path  # a run directory, or not a workflow's layout: the loader names what is missing
    run = serving_run(pd.read_csv(selection_file, dtype={"l2": str}), path.name)
    chosen = path / run["sampling"] / f"l2_{run['l2']}" / f"seed_{run['seed']}"
    refit = path / run["sampling"] / "refit" / f"seed_{run['seed']}"
    if _refits(refit / "model.json", run["l2"]):
        chosen = refit
    if announce:
        print(f"{path}: the run selected on validation is {chosen}", file=sys.stderr)
    return chosen


def _refits(model_json: Path, l2: str) -> bool:
    """Whether ``model_json`` is a refit of the run of λ ``l2`` (a refit left from another selection is not)."""
    import json

    from curatornet.artifacts import l2_label

    try:
        meta = json.loads(model_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return "refit" in meta and l2_label(float(meta.get("l2", -1))) == l2


# --------------------------------------------------------------------------- recommend


def recommend(
    model_dir: str | Path,
    item_ids: Sequence[str],
    k: int = 20,
    data_dir: str | Path = "results/data",
    new_items: str | Path | None = None,
    fold_in: bool = False,
    seed: int = 0,
):
    """Top ``k`` items for the profile ``item_ids`` as a DataFrame (rank, item_id, artist_id, score).

    Items of the catalogue and new items (``new_items`` .npy, never seen in
    training) are both candidates and both may be in the profile; profile
    items are never recommended. The model runs in NumPy. A VBPR model has no
    vector for a new user: it is refused unless ``fold_in`` asks for an
    approximate one (:meth:`curatornet.serving.models.NumpyVBPR.fold_in`).
    """
    import pandas as pd

    from curatornet import parts
    from curatornet.data.embeddings import read_embeddings_npy
    from curatornet.serving.data import check_model_matches_data, load_data
    from curatornet.serving.index import sorted_top_k
    from curatornet.serving.models import NumpyScorer, load_numpy_model

    if k < 1:
        raise InputError(None, "--k", k, "must be at least 1")
    model = load_numpy_model(model_dir)
    cold_start = parts.model(model.name).cold_start
    if not cold_start and not fold_in:
        raise InputError(
            None,
            "--items",
            list(item_ids)[:5],
            "VBPR has no vector for a new user (a profile of liked items) and would need retraining; "
            "add --fold-in for an approximate user vector fitted to these items, or use a CuratorNet model",
        )
    data = load_data(data_dir, purchases=False)
    check_model_matches_data(model.meta, model_dir, data)
    ids = [str(i) for i in data.item_ids]
    artists = list(data.artist_ids)
    scorer = NumpyScorer(model, data.embeddings, source=str(data.embeddings_path))
    if new_items is not None:
        new_ids, new_vectors = read_embeddings_npy(new_items, data.embedding_dim)
        clash = sorted(set(new_ids) & set(ids))
        if clash:
            raise InputError(new_items, "item_id", clash[:5], "new item ids already exist in the catalogue")
        scorer.add_items(new_vectors, source=str(new_items))
        ids += [str(i) for i in new_ids]
        artists += [None] * len(new_ids)
    index = {item_id: k for k, item_id in enumerate(ids)}
    unknown = [i for i in item_ids if i not in index]
    if unknown or not item_ids:
        raise InputError(None, "--items", unknown[:5] or item_ids, "unknown item ids" if unknown else "empty profile")
    profile = np.unique([index[i] for i in item_ids])
    candidates = np.setdiff1d(np.arange(len(ids)), profile)
    if not cold_start:
        query = scorer.fold_in_vectors([profile], seed=seed)[0]
    else:
        query = scorer.flat_query_vectors(np.array([-1]), profile, np.array([len(profile)]))[0]
    scores = scorer.item_matrix()[candidates] @ query
    top_scores, chosen = sorted_top_k(scores[None, :], candidates, k)
    return pd.DataFrame(
        {
            "rank": np.arange(1, chosen.shape[1] + 1),
            "item_id": [ids[c] for c in chosen[0]],
            "artist_id": [artists[c] if artists[c] is not None else "-" for c in chosen[0]],
            "score": top_scores[0],
        }
    )


def add_recommend(subparsers) -> None:
    parser = subparsers.add_parser(
        "recommend",
        help="top-k recommendations for a set of liked items (new users and new items need no retraining)",
    )
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--items", required=True, help="comma-separated item_ids of the profile")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--data", default="results/data", help="folder with items.parquet and embeddings.parquet")
    parser.add_argument("--new-items", help=".npy of [item_id, vector] rows: items unseen in training")
    parser.add_argument(
        "--fold-in",
        action="store_true",
        help="VBPR only: fit an approximate vector for the new user (item parameters fixed; an approximation)",
    )
    parser.set_defaults(run=run_recommend)


def run_recommend(args: argparse.Namespace) -> int:
    item_ids = [i.strip() for i in args.items.split(",") if i.strip()]
    model = selected_model_dir(args.model)
    table = recommend(model, item_ids, args.k, args.data, args.new_items, fold_in=args.fold_in)
    print("rank\titem_id\tartist_id\tscore")
    for row in table.itertuples(index=False):
        print(f"{row.rank}\t{row.item_id}\t{row.artist_id}\t{row.score:.6f}")
    return 0


# --------------------------------------------------------------------------- serve


def add_serve(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="recommendation service over HTTP (cold start, known users, new and sold items); "
        "OpenAPI document at /openapi.json",
    )
    parser.add_argument("--model", required=True, help=MODEL_HELP)
    parser.add_argument("--data", default="results/data", help="folder with items, embeddings and purchases")
    parser.add_argument("--db", help="SQLite file of catalogue changes (default: catalogue.sqlite in the model dir)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--index", choices=["exact", "faiss"], default="exact", help="exact scoring or approximate faiss search"
    )
    parser.add_argument(
        "--vbpr-fold-in",
        action="store_true",
        help="VBPR only: serve new users with a vector fitted to their profile (an approximation; see README)",
    )
    parser.add_argument(
        "--token-file",
        help="file holding the bearer token that changes (PUT, DELETE, /admin/) need; default: the environment "
        "variable CURATORNET_API_TOKEN; without either, changes are refused",
    )
    parser.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="a Host name clients may use besides localhost and the bind address (repeatable; '*': any)",
    )
    parser.add_argument("--max-body-mb", type=float, default=1.0, help="largest request body, in MiB (default 1)")
    parser.add_argument(
        "--read-only", action="store_true", help="never write the database: serve it as it is, refuse changes"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["critical", "error", "warning", "info", "debug"],
        help="info (default) logs one line per request",
    )
    parser.set_defaults(run=run_serve)


def run_serve(args: argparse.Namespace) -> int:
    """The logic is in curatornet.serving.server; --model is selected again at every reload."""
    import logging

    from curatornet.serving.server import serve

    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    serve(
        args.model,
        args.data,
        args.db,
        args.host,
        args.port,
        args.index,
        args.vbpr_fold_in,
        args.log_level,
        token_file=args.token_file,
        allowed_hosts=args.allowed_host,
        max_body_mb=args.max_body_mb,
        read_only=args.read_only,
        select_model=lambda path: selected_model_dir(path, announce=False),
    )
    return 0


# --------------------------------------------------------------------------- train


def add_train(subparsers) -> None:
    from curatornet import parts
    from curatornet.artifacts import SAMPLINGS
    from curatornet.config import schema_defaults

    defaults = schema_defaults()["training"]  # the schema is the only source of defaults
    parser = subparsers.add_parser("train", help="train one model (what the workflow's train rule runs)")
    parser.add_argument("--model", choices=parts.model_names(), required=True, help="a registered model")
    parser.add_argument("--sampling", choices=SAMPLINGS, default=SAMPLINGS[0])
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--train", required=True, help="training triples (.parquet)")
    parser.add_argument("--valid", required=True, help="validation triples (.parquet)")
    parser.add_argument("--data", default="results/data", help="folder with items, embeddings and purchases .parquet")
    parser.add_argument("--out", required=True, help="model directory to write")
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"])
    parser.add_argument("--learning-rate", type=float, help="default: the config schema's, per model")
    parser.add_argument("--check-every-steps", type=int, default=defaults["check_every_steps"])
    parser.add_argument("--min-steps", type=int, default=defaults["min_steps"])
    parser.add_argument("--max-steps", type=int, default=defaults["max_steps"])
    parser.add_argument("--smoothing", type=int, default=defaults["smoothing"], help="checks the monitor averages")
    parser.add_argument("--patience", type=int, default=defaults["early_stop_patience"], help="in checks")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--seed", type=int, default=defaults["seeds"][0])
    parser.add_argument("--log", help="log file")
    parser.set_defaults(run=run_train, training_defaults=defaults)


def run_train(args: argparse.Namespace) -> int:
    from curatornet.logs import setup_logging
    from curatornet.models.environment import tune_allocator
    from curatornet.models.settings import TrainSettings
    from curatornet.models.train import train_model

    setup_logging(args.log)
    tune_allocator()
    training = {
        **args.training_defaults,
        "batch_size": args.batch_size,
        "check_every_steps": args.check_every_steps,
        "min_steps": args.min_steps,
        "max_steps": args.max_steps,
        "smoothing": args.smoothing,
        "early_stop_patience": args.patience,
    }
    if args.learning_rate is not None:
        training["learning_rate"] = args.learning_rate
        own = dict(training.get(args.model) or {})
        if "learning_rate" in own:  # a model with a learning rate of its own
            training[args.model] = {**own, "learning_rate": args.learning_rate}
    settings = TrainSettings.from_config(training, args.model, args.sampling, args.l2, args.seed)
    data = Path(args.data)
    train_model(
        settings,
        args.train,
        args.valid,
        data / "embeddings.parquet",
        data / "items.parquet",
        data / "purchases.parquet",
        args.out,
        threads=args.threads,
    )
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
COMMANDS: list[Callable] = [add_recommend, add_serve, add_train, add_make_dataset]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=__package__, description="CuratorNet workflow tools")
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
