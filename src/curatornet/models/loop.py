"""The training loop shared by CuratorNet and VBPR, and its schedule.

Triples are shuffled per epoch by a seeded generator and cut into batches by
vectorised slicing; a background thread prepares the next batch while the
model runs the current step. A model plugs in through a trainer
(:class:`curatornet.models.base.Trainer`).

An epoch is a pass over the training triples, or over ``epoch_triples`` of
them when set: on a large training set that checks the validation figures
several times per pass, so training can stop without finishing passes that
would be wasted (the next pass continues where the last one stopped, and every
pass is a new shuffle).

Schedule: Adam at ``learning_rate``; after every epoch the loop asks for the
validation figures and watches one of them (the *monitor*, normally the AUC
on the validation baskets). The learning rate is multiplied by ``lr_decay``
when the monitor has not improved for ``lr_patience`` epochs, training stops
after ``early_stop_patience`` epochs without improvement, and the weights of
the best epoch are restored at the end.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from curatornet.models.base import Trainer
from curatornet.sampling.triples import Batch, Triples

log = logging.getLogger(__name__)

HISTORY_COLUMNS = [
    "epoch",
    "loss",
    "valid_auc",
    "valid_accuracy",
    "learning_rate",
    "triples_per_second",
    "seconds",
]
#: Why training ended (model.json ``stop_reason``).
STOP_PATIENCE = "patience"
STOP_MAX_EPOCHS = "max_epochs"
STOP_NOT_FINITE = "non-finite loss"


@dataclass(frozen=True)
class Schedule:
    """How long and how fast to train; built from the validated config (no defaults here)."""

    batch_size: int
    max_epochs: int
    learning_rate: float
    lr_decay: float
    lr_patience: int
    early_stop_patience: int
    seed: int
    epoch_triples: int | None = None  # None: an epoch is one pass over the training triples


@dataclass
class FitResult:
    history: pd.DataFrame
    best_epoch: int
    monitor: str
    best_value: float
    stop_reason: str
    weights: dict[str, np.ndarray] = field(repr=False)

    def at_best(self, column: str) -> float:
        """A history column's value at the kept epoch."""
        rows = self.history.loc[self.history["epoch"] == self.best_epoch, column]
        return float(rows.iloc[0]) if len(rows) else math.nan


def iterate_batches(
    data: Triples, batch_size: int, rng: np.random.Generator | None, distinct_profiles: bool = False
) -> Iterator[Batch]:
    """Batches of ``data`` in a shuffled order (or file order when ``rng`` is None).

    The next batch is cut in a worker thread while the caller runs the current
    step: NumPy and TensorFlow both release the GIL for their heavy work.
    """
    order = np.arange(len(data)) if rng is None else rng.permutation(len(data))
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for start in range(0, len(order), batch_size):
            future = pool.submit(data.batch, order[start : start + batch_size], distinct_profiles)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


def batch_stream(data: Triples, batch_size: int, rng: np.random.Generator) -> Iterator[Batch]:
    """Batches of shuffled passes over ``data``, one pass after another, without end."""
    while True:
        yield from iterate_batches(data, batch_size, rng, distinct_profiles=True)


def fit(
    trainer: Trainer,
    train: Triples,
    schedule: Schedule,
    validate: Callable[[], Mapping[str, float]],
    monitor: str = "valid_auc",
) -> FitResult:
    """Train with the schedule; the trainer ends holding the best epoch's weights.

    ``validate()`` returns the validation figures of the current weights
    (``valid_auc`` and ``valid_accuracy``); ``monitor`` names the one that
    early stopping, the learning-rate decay and the kept epoch follow.
    """
    if monitor not in ("valid_auc", "valid_accuracy"):
        raise ValueError(f"unknown monitor {monitor!r}")
    rng = np.random.default_rng(schedule.seed)
    rate = float(schedule.learning_rate)  # tracked here: the optimiser holds it as float32
    trainer.learning_rate = rate
    best_value, best_epoch, best_weights = -math.inf, 0, trainer.get_weights()
    since_best = since_change = 0
    stop_reason = STOP_MAX_EPOCHS
    rows = []
    per_epoch = len(train) if schedule.epoch_triples is None else min(int(schedule.epoch_triples), len(train))
    stream = batch_stream(train, schedule.batch_size, rng)
    for epoch in range(1, schedule.max_epochs + 1):
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        while seen < per_epoch:
            batch = next(stream)
            loss_sum += trainer.train_step(batch) * len(batch)
            seen += len(batch)
        train_seconds = time.perf_counter() - started
        figures = validate()
        row = {
            "epoch": epoch,
            "loss": loss_sum / seen,
            "valid_auc": float(figures.get("valid_auc", math.nan)),
            "valid_accuracy": float(figures.get("valid_accuracy", math.nan)),
            "learning_rate": rate,
            "triples_per_second": seen / train_seconds,
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        log.info(
            "epoch %d: loss %.5f, valid AUC %.4f, valid accuracy %.4f, learning rate %.3g, %.0f triples/s, %.1f s",
            epoch,
            row["loss"],
            row["valid_auc"],
            row["valid_accuracy"],
            rate,
            row["triples_per_second"],
            row["seconds"],
        )
        if not np.isfinite(row["loss"]):
            log.warning("loss is not finite at epoch %d: stopping (best epoch kept)", epoch)
            stop_reason = STOP_NOT_FINITE
            break
        value = row[monitor]
        if value > best_value:
            best_value, best_epoch, best_weights = value, epoch, trainer.get_weights()
            since_best = since_change = 0
            continue
        since_best += 1
        since_change += 1
        if since_best >= schedule.early_stop_patience:
            log.info("%s did not improve for %d epochs: stopping, best epoch %d", monitor, since_best, best_epoch)
            stop_reason = STOP_PATIENCE
            break
        if since_change >= schedule.lr_patience:
            rate *= schedule.lr_decay
            trainer.learning_rate = rate
            since_change = 0
            log.info("learning rate decays to %.3g", rate)
    if best_epoch == 0:
        log.warning("no epoch gave a finite %s: keeping the initial weights", monitor)
    trainer.set_weights(best_weights)
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return FitResult(history, best_epoch, monitor, float(best_value), stop_reason, best_weights)
