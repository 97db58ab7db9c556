"""The training stage's entry point: one (model, sampling, λ, seed) run into its model directory.

It reads the run's triples (each model and sampling reads its own triplet
set, see :func:`curatornet.models.settings.triplet_set`), builds the
validation baskets, has the model's record build its trainer
(:class:`curatornet.registry.ModelSpec`, ``trainer``), trains with
:func:`curatornet.models.loop.fit` and writes the directory
(:mod:`curatornet.models.persistence`). TensorFlow is imported only by the
trainers of the models that use it, when a run actually trains.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curatornet import parts
from curatornet.artifacts import catalogue_fingerprint, first_non_finite_row, read_embeddings_matrix
from curatornet.errors import InputError
from curatornet.evaluation.protocol import Cases, build_cases
from curatornet.io import read_frame
from curatornet.models.features import Standardizer
from curatornet.models.loop import fit, fit_steps, rate_schedule
from curatornet.models.persistence import write_model_dir
from curatornet.models.settings import TrainSettings
from curatornet.registry import resolve
from curatornet.sampling.triples import Triples, read_triplets

log = logging.getLogger(__name__)


def read_embeddings(path: str | Path) -> np.ndarray:
    """(n_items, dim) float32 matrix of an embeddings file, checked (dense items, finite values)."""
    matrix = read_embeddings_matrix(path)
    if first_non_finite_row(matrix) is not None:
        raise InputError(path, "embedding", "NaN/inf", "embeddings must be finite")
    return matrix


def read_run_triplets(settings: TrainSettings, path: str | Path, n_items: int) -> Triples:
    """The triples of one run: the model's guidelines (all without a list), and for a model that
    reads no profile only known users' triples, their profiles dropped."""
    spec = parts.model(settings.model)
    keep = list(spec.guidelines) if spec.guidelines is not None and settings.sampling == "guidelines" else None
    if not spec.profiles:
        return read_triplets(path, n_items, keep, known_users_only=True, allow_empty_profiles=True).without_profiles()
    return read_triplets(path, n_items, keep).add_profile_keys()


@dataclass
class TrainingInputs:
    """What a model's trainer builder gets (:class:`curatornet.registry.ModelSpec`, ``trainer``)."""

    settings: TrainSettings
    standardizer: Standardizer
    embeddings: np.ndarray  # raw, by item index
    train: Triples
    n_users: int
    threads: int | None = None  # the job's threads, for a model whose library needs them set before it starts


@dataclass
class PreparedRun:
    """Everything one run trains on, read and checked, with its freshly initialised trainer."""

    settings: TrainSettings
    trainer: Any
    hyperparameters: dict[str, Any]
    standardizer: Standardizer
    train: Triples
    valid: Triples
    cases: Cases  # the validation baskets
    items: pd.DataFrame
    purchases: pd.DataFrame
    n_users: int

    @property
    def n_items(self) -> int:
        return len(self.items)

    @property
    def monitor(self) -> str:
        return "valid_auc" if len(self.cases) else "valid_accuracy"

    def validate(self) -> dict[str, float]:
        """The validation figures of the trainer's current weights (what every check reads)."""
        from curatornet.evaluation.validation import mean_auc

        auc = mean_auc(self.trainer.scorer(), self.cases) if len(self.cases) else math.nan
        return {"valid_auc": auc, "valid_accuracy": self.trainer.pairwise_accuracy(self.valid)}


def prepare_run(
    settings: TrainSettings,
    train_path: str | Path,
    valid_path: str | Path,
    embeddings_path: str | Path,
    items_path: str | Path,
    purchases_path: str | Path,
    threads: int | None = None,
) -> PreparedRun:
    """Read one run's files, build its validation baskets and its model (seeded by the run's seed)."""
    embeddings = read_embeddings(embeddings_path)
    n_items = len(embeddings)
    items = read_frame(items_path, ("item", "item_id", "artist_id", "upload_time", "one_of_a_kind"))
    if len(items) != n_items:
        raise InputError(
            embeddings_path, "item", n_items, f"{len(items)} items in {items_path} but this many embeddings"
        )
    purchases = read_frame(purchases_path, ("user", "user_id", "item", "time", "basket", "split"))
    standardizer = Standardizer.fit(embeddings)
    train = read_run_triplets(settings, train_path, n_items)
    valid = read_run_triplets(settings, valid_path, n_items)
    cases = build_cases(items, purchases, "valid", str(items_path), str(purchases_path))
    n_users = int(purchases["user"].max()) + 1 if len(purchases) else 0
    build = resolve(parts.model(settings.model).trainer)
    trainer, hyper = build(TrainingInputs(settings, standardizer, embeddings, train, n_users, threads))
    if not len(cases):
        log.warning("no validation baskets (no user has three baskets): selecting on validation pairwise accuracy")
    log.info(
        "%s on %s sampling, l2=%g, seed %d: %d training triples of %d users (%.0f steps a pass), "
        "%d validation triples, %d validation baskets, %d items of dimension %d",
        settings.model,
        settings.sampling,
        settings.l2,
        settings.seed,
        len(train),
        len(np.unique(train.user[train.user >= 0])),
        math.ceil(len(train) / settings.schedule.batch_size),
        len(valid),
        len(cases),
        n_items,
        embeddings.shape[1],
    )
    return PreparedRun(settings, trainer, hyper, standardizer, train, valid, cases, items, purchases, n_users)


def train_model(
    settings: TrainSettings,
    train_path: str | Path,
    valid_path: str | Path,
    embeddings_path: str | Path,
    items_path: str | Path,
    purchases_path: str | Path,
    out_dir: str | Path,
    threads: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Train one run and write its directory; returns the contents of model.json (with ``extra``'s keys:
    an ablation's variant).

    Early stopping, the learning-rate decay and the kept check follow the mean
    AUC over the validation baskets (``split == "valid"`` in purchases.parquet,
    scored like the test); without validation baskets they fall back to the
    pairwise accuracy on the validation triples, and model.json says so.
    """
    run = prepare_run(settings, train_path, valid_path, embeddings_path, items_path, purchases_path, threads)
    result = fit(run.trainer, run.train, settings.schedule, run.validate, run.monitor)
    train = run.train
    item_ids = run.items.sort_values("item")["item_id"].astype(str)
    meta = {
        "model": settings.model,
        "sampling": settings.sampling,
        "l2": settings.l2,
        "seed": settings.seed,
        "n_items": run.n_items,
        "n_users": run.n_users,
        "catalogue": {"n_items": run.n_items, "fingerprint": catalogue_fingerprint(item_ids)},
        "hyperparameters": run.hyperparameters,
        "training": settings.as_params(),
        "n_train_triples": len(train),
        "n_train_users": int(len(np.unique(train.user[train.user >= 0]))),
        "n_valid_triples": len(run.valid),
        "validation_users": len(run.cases),
        "monitor": result.monitor,
        "smoothing": settings.schedule.smoothing,
        "min_steps": settings.schedule.min_steps,
        "best_check": result.best_check,
        "best_step": int(result.at_best("step")) if result.best_check else 0,
        "checks_run": len(result.history),
        "steps_run": int(result.history["step"].iloc[-1]) if len(result.history) else 0,
        "stop_reason": result.stop_reason,
        "valid_auc": result.at_best("valid_auc"),
        "valid_monitor_smoothed": result.at_best("monitor_smoothed"),
        "valid_accuracy": result.at_best("valid_accuracy"),
        **(extra or {}),
    }
    log.info(
        "kept check %d (step %d) of %d checks, %d steps (%s): valid AUC %.4f (smoothed %s %.4f), valid accuracy %.4f",
        meta["best_check"],
        meta["best_step"],
        meta["checks_run"],
        meta["steps_run"],
        result.stop_reason,
        meta["valid_auc"],
        result.monitor,
        meta["valid_monitor_smoothed"],
        meta["valid_accuracy"],
    )
    return write_model_dir(out_dir, run.trainer.model, run.standardizer, result.history, _json_safe(meta))


def refit_steps(selected: dict[str, Any], n_refit_triples: int) -> int:
    """The refit's Adam steps: the selected run's kept step, scaled by how much larger the refit's
    training set is than the run's (the same number of passes over the triples)."""
    n_run = int(selected.get("n_train_triples") or 0)
    if n_run <= 0:
        raise InputError("model.json", "n_train_triples", n_run, "the selected run records no training triples")
    return int(round(int(selected.get("best_step") or 0) * n_refit_triples / n_run))


def refit_model(
    settings: TrainSettings,
    selected_dir: str | Path,
    train_path: str | Path,
    embeddings_path: str | Path,
    items_path: str | Path,
    purchases_path: str | Path,
    out_dir: str | Path,
    threads: int | None = None,
) -> dict[str, Any]:
    """Train the selected run once more on every purchase before the test baskets (``training.refit``).

    ``settings`` are the selected run's (its model, sampling, λ and seed); ``selected_dir`` is its
    directory, whose kept step and training set size fix the refit's steps (:func:`refit_steps`) and
    whose history gives the learning rate at each step, stretched to the longer run. ``train_path``
    holds the refit triples. Nothing is validated or stopped early: the validation baskets are part
    of the training purchases now. Returns the contents of model.json.
    """
    import json

    selected_dir = Path(selected_dir)
    selected = json.loads((selected_dir / "model.json").read_text(encoding="utf-8"))
    history = pd.read_csv(selected_dir / "history.csv") if (selected_dir / "history.csv").exists() else None
    embeddings = read_embeddings(embeddings_path)
    n_items = len(embeddings)
    items = read_frame(items_path, ("item", "item_id", "artist_id", "upload_time", "one_of_a_kind"))
    purchases = read_frame(purchases_path, ("user", "split"))
    standardizer = Standardizer.fit(embeddings)
    train = read_run_triplets(settings, train_path, n_items)
    n_users = int(purchases["user"].max()) + 1 if len(purchases) else 0
    build = resolve(parts.model(settings.model).trainer)
    trainer, hyper = build(TrainingInputs(settings, standardizer, embeddings, train, n_users, threads))
    steps = refit_steps(selected, len(train))
    ratio = len(train) / int(selected["n_train_triples"])
    original_rate = rate_schedule(history, settings.schedule.learning_rate)
    log.info(
        "refit of %s on %s sampling, l2=%g, seed %d: %d triples (%.4f times the run's %d), %d steps "
        "(the run kept step %d)",
        settings.model,
        settings.sampling,
        settings.l2,
        settings.seed,
        len(train),
        ratio,
        selected["n_train_triples"],
        steps,
        selected.get("best_step", 0),
    )
    result = fit_steps(trainer, train, settings.schedule, steps, lambda step: original_rate(step / ratio))
    item_ids = items.sort_values("item")["item_id"].astype(str)
    meta = {
        "model": settings.model,
        "sampling": settings.sampling,
        "l2": settings.l2,
        "seed": settings.seed,
        "n_items": n_items,
        "n_users": n_users,
        "catalogue": {"n_items": n_items, "fingerprint": catalogue_fingerprint(item_ids)},
        "hyperparameters": hyper,
        "training": settings.as_params(),
        "refit": {
            "of": str(selected_dir),
            "run_best_step": int(selected.get("best_step") or 0),
            "run_train_triples": int(selected["n_train_triples"]),
            "run_valid_auc": selected.get("valid_auc"),
            "ratio": ratio,
        },
        "n_train_triples": len(train),
        "n_train_users": int(len(np.unique(train.user[train.user >= 0]))),
        "monitor": result.monitor,
        "best_check": result.best_check,
        "best_step": steps,
        "checks_run": len(result.history),
        "steps_run": int(result.history["step"].iloc[-1]) if len(result.history) else 0,
        "stop_reason": result.stop_reason,
    }
    return write_model_dir(out_dir, trainer.model, standardizer, result.history, _json_safe(meta))


def _json_safe(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
