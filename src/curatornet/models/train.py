"""The training stage's entry point: one (model, sampling, λ, seed) run into its model directory.

It picks the model, reads its triples (each model and sampling reads its own
triplet set, see :func:`curatornet.models.settings.triplet_set`), builds the validation baskets, trains
with :func:`curatornet.models.loop.fit` and writes the directory
(:mod:`curatornet.models.persistence`). TensorFlow is imported only here, when
a run actually trains.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from curatornet.artifacts import VBPR_GUIDELINES, catalogue_fingerprint, first_non_finite_row, read_embeddings_matrix
from curatornet.errors import InputError
from curatornet.evaluation.protocol import build_cases
from curatornet.io import read_frame
from curatornet.models.features import Standardizer
from curatornet.models.loop import fit
from curatornet.models.persistence import write_model_dir
from curatornet.models.settings import TrainSettings
from curatornet.sampling.triples import Triples, read_triplets

log = logging.getLogger(__name__)

#: Share of the catalogue a batch must touch for CuratorNet's tower to run over the whole catalogue.
CATALOGUE_MODE_SHARE = 0.85


def read_embeddings(path: str | Path) -> np.ndarray:
    """(n_items, dim) float32 matrix of an embeddings file, checked (dense items, finite values)."""
    matrix = read_embeddings_matrix(path)
    if first_non_finite_row(matrix) is not None:
        raise InputError(path, "embedding", "NaN/inf", "embeddings must be finite")
    return matrix


def read_run_triplets(settings: TrainSettings, path: str | Path, n_items: int) -> Triples:
    """The triples of one run: VBPR keeps its guidelines and known users and drops profiles."""
    if settings.model == "vbpr":
        keep = list(VBPR_GUIDELINES) if settings.sampling == "guidelines" else None
        return read_triplets(path, n_items, keep, known_users_only=True, allow_empty_profiles=True).without_profiles()
    return read_triplets(path, n_items).add_profile_keys()


def choose_curatornet_item_mode(train: Triples, n_items: int, batch_size: int, seed: int) -> str:
    """'catalogue' when a batch touches most items anyway, else 'unique'.

    Running the tower over the whole catalogue skips tf.unique and the gather
    of input rows; it only pays off when a batch's distinct items come close
    to the catalogue size.
    """
    rng = np.random.default_rng(seed)
    counts = []
    for _ in range(3):
        rows = rng.choice(len(train), size=min(batch_size, len(train)), replace=False)
        batch = train.batch(rows)
        counts.append(len(np.unique(np.concatenate([batch.values, batch.positive, batch.negative]))))
    share = float(np.mean(counts)) / n_items
    mode = "catalogue" if share > CATALOGUE_MODE_SHARE else "unique"
    log.info("a batch touches %.0f%% of the %d items: the item tower runs per %s", 100 * share, n_items, mode)
    return mode


def train_model(
    settings: TrainSettings,
    train_path: str | Path,
    valid_path: str | Path,
    embeddings_path: str | Path,
    items_path: str | Path,
    purchases_path: str | Path,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Train one run and write its directory; returns the contents of model.json.

    Early stopping, the learning-rate decay and the kept epoch follow the mean
    AUC over the validation baskets (``split == "valid"`` in purchases.parquet,
    scored like the test); without validation baskets they fall back to the
    pairwise accuracy on the validation triples, and model.json says so.
    """
    from curatornet.models.environment import configure_tensorflow

    configure_tensorflow(seed=settings.seed)
    embeddings = read_embeddings(embeddings_path)
    n_items = len(embeddings)
    items = read_frame(items_path, ("item", "item_id", "artist_id", "upload_time", "one_of_a_kind"))
    if len(items) != n_items:
        raise InputError(
            embeddings_path, "item", n_items, f"{len(items)} items in {items_path} but this many embeddings"
        )
    purchases = read_frame(purchases_path, ("user", "user_id", "item", "time", "basket", "split"))
    item_ids = items.sort_values("item")["item_id"].astype(str)
    standardizer = Standardizer.fit(embeddings)

    train = read_run_triplets(settings, train_path, n_items)
    valid = read_run_triplets(settings, valid_path, n_items)
    cases = build_cases(items, purchases, "valid", str(items_path), str(purchases_path))
    n_users = int(purchases["user"].max()) + 1 if len(purchases) else 0
    trainer, hyper = build_trainer(settings, standardizer, embeddings, train, n_users)
    monitor = "valid_auc" if len(cases) else "valid_accuracy"
    if not len(cases):
        log.warning("no validation baskets (no user has three baskets): selecting on validation pairwise accuracy")

    def validate() -> dict[str, float]:
        from curatornet.evaluation.validation import mean_auc

        auc = mean_auc(trainer.scorer(), cases) if len(cases) else math.nan
        return {"valid_auc": auc, "valid_accuracy": trainer.pairwise_accuracy(valid)}

    log.info(
        "%s on %s sampling, l2=%g, seed %d: %d training triples of %d users, %d validation triples, "
        "%d validation baskets, %d items of dimension %d",
        settings.model,
        settings.sampling,
        settings.l2,
        settings.seed,
        len(train),
        len(np.unique(train.user[train.user >= 0])),
        len(valid),
        len(cases),
        n_items,
        embeddings.shape[1],
    )
    result = fit(trainer, train, settings.schedule, validate, monitor)
    meta = {
        "model": settings.model,
        "sampling": settings.sampling,
        "l2": settings.l2,
        "seed": settings.seed,
        "n_items": int(n_items),
        "n_users": n_users,
        "catalogue": {"n_items": int(n_items), "fingerprint": catalogue_fingerprint(item_ids)},
        "hyperparameters": hyper,
        "training": settings.as_params(),
        "n_train_triples": len(train),
        "n_train_users": int(len(np.unique(train.user[train.user >= 0]))),
        "n_valid_triples": len(valid),
        "validation_users": len(cases),
        "monitor": result.monitor,
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "stop_reason": result.stop_reason,
        "valid_auc": result.at_best("valid_auc"),
        "valid_accuracy": result.at_best("valid_accuracy"),
    }
    log.info(
        "kept epoch %d of %d (%s): valid AUC %.4f, valid accuracy %.4f",
        result.best_epoch,
        len(result.history),
        result.stop_reason,
        meta["valid_auc"],
        meta["valid_accuracy"],
    )
    return write_model_dir(out_dir, trainer.model, standardizer, result.history, _json_safe(meta))


def build_trainer(
    settings: TrainSettings, standardizer: Standardizer, embeddings: np.ndarray, train: Triples, n_users: int
) -> tuple[Any, dict[str, Any]]:
    """The model of ``settings`` with its trainer, and the hyperparameters to record."""
    n_items, dim = embeddings.shape
    batch_size = settings.schedule.batch_size
    if settings.model == "vbpr":
        from curatornet.models.vbpr import VBPR, VBPRTrainer, choose_item_mode

        hyper = dict(settings.hyperparameters)
        model = VBPR(max(n_users, 1), n_items, dim, hyper["latent_dim"], hyper["visual_dim"], seed=settings.seed)
        model.mark_known_users(train.user)
        mode = choose_item_mode(n_items, batch_size)
        trainer = VBPRTrainer(model, standardizer, embeddings, settings.l2, settings.schedule.learning_rate, mode)
    else:
        from curatornet.models.curatornet import CuratorNet, CuratorNetTrainer

        hyper = dict(settings.hyperparameters)
        model = CuratorNet(dim, hyper["tower_units"], hyper["head_units"], seed=settings.seed)
        mode = choose_curatornet_item_mode(train, n_items, batch_size, settings.seed)
        trainer = CuratorNetTrainer(model, standardizer, embeddings, settings.l2, settings.schedule.learning_rate, mode)
    return trainer, {**hyper, "item_mode": mode}


def _json_safe(value: Any) -> Any:
    """NaN becomes None (JSON has no NaN), recursively."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value
