"""The training loop shared by CuratorNet and VBPR, and its schedule.

Triples are shuffled per pass by a seeded generator and cut into batches by
vectorised slicing; a background thread prepares the next batch while the
model runs the current step. A model plugs in through a trainer
(:class:`curatornet.models.base.Trainer`).

The unit of the schedule is the Adam step, not the pass over the training
triples: how many steps a pass holds depends on the budgets and the batch
size (22 on the default data at batch 16384, 610 at the paper's scale), while
the noise of one step does not. Every ``check_every_steps`` steps the loop
asks for the validation figures (a *check*) and watches one of them, the
*monitor* (normally the mean AUC over the validation baskets).

The validation AUC of one check is noisy (a mean over a few hundred users
whose AUCs spread widely), so the loop follows the monitor *smoothed* over
the last ``smoothing`` checks, and nothing happens before ``min_steps`` (and
before the first full smoothing window): no check before it may be kept,
stop training or decay the learning rate.
After that, the learning rate is multiplied by ``lr_decay`` when the smoothed
monitor has not improved for ``lr_patience`` checks, training stops after
``early_stop_patience`` checks without improvement (or at ``max_steps``), and
the weights of the check with the best smoothed monitor are restored.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from curatornet.errors import InputError
from curatornet.models.base import Trainer
from curatornet.sampling.triples import Batch, Triples
from curatornet.seeds import stream_rng

log = logging.getLogger(__name__)

HISTORY_COLUMNS = [
    "check",
    "step",
    "passes",
    "loss",
    "valid_auc",
    "monitor_smoothed",
    "valid_accuracy",
    "learning_rate",
    "eligible",
    "kept",
    "triples_per_second",
    "seconds",
]
#: Why training ended (model.json ``stop_reason``).
STOP_PATIENCE = "patience"
STOP_MAX_STEPS = "max_steps"
STOP_NOT_FINITE = "non-finite loss"
STOP_REFIT = "refit steps"
MONITORS = ("valid_auc", "valid_accuracy")


@dataclass(frozen=True)
class Schedule:
    """How long and how fast to train; built from the validated config (no defaults here)."""

    batch_size: int
    learning_rate: float
    seed: int
    check_every_steps: int  # Adam steps between two validation checks
    min_steps: int  # no check before this step is kept, stops training or decays the learning rate
    max_steps: int
    smoothing: int  # the monitor is averaged over this many checks (1: the check alone)
    early_stop_patience: int  # checks without improvement of the smoothed monitor before stopping
    lr_patience: int  # checks without improvement before the learning rate decays
    lr_decay: float

    def __post_init__(self) -> None:
        for name in ("batch_size", "check_every_steps", "max_steps", "smoothing", "early_stop_patience", "lr_patience"):
            if getattr(self, name) < 1:
                raise InputError(None, f"training.{name}", getattr(self, name), "must be at least 1")
        if not 0 <= self.min_steps <= self.max_steps:
            raise InputError(
                None, "training.min_steps", self.min_steps, f"must lie in [0, max_steps = {self.max_steps}]"
            )


@dataclass
class FitResult:
    history: pd.DataFrame
    monitor: str
    best_check: int  # 0: no check was kept (initial weights)
    stop_reason: str

    def at_best(self, column: str) -> float:
        """A history column's value at the kept check."""
        rows = self.history.loc[self.history["check"] == self.best_check, column]
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


def smoothed(values: list[float], window: int) -> float:
    """Mean of the last ``window`` values (fewer at the start); NaN when one of them is NaN."""
    tail = values[-window:]
    return float(np.mean(tail)) if tail else math.nan


def fit(
    trainer: Trainer,
    train: Triples,
    schedule: Schedule,
    validate: Callable[[], Mapping[str, float]],
    monitor: str = "valid_auc",
) -> FitResult:
    """Train with the schedule; the trainer ends holding the kept check's weights.

    ``validate()`` returns the validation figures of the current weights
    (``valid_auc`` and ``valid_accuracy``); ``monitor`` names the one that
    early stopping, the learning-rate decay and the kept check follow.
    """
    if monitor not in MONITORS:
        raise ValueError(f"unknown monitor {monitor!r}")
    rng = stream_rng(schedule.seed, "batch order")
    rate = float(schedule.learning_rate)  # tracked here: the optimiser holds it as float32
    trainer.learning_rate = rate
    best_value, best_check, best_weights = -math.inf, 0, trainer.get_weights()
    since_best = since_change = 0
    stop_reason = STOP_MAX_STEPS
    rows, raw = [], []
    stream = batch_stream(train, schedule.batch_size, rng)
    step = 0
    while step < schedule.max_steps:
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        for _ in range(min(schedule.check_every_steps, schedule.max_steps - step)):
            batch = next(stream)
            loss_sum += trainer.train_step(batch) * len(batch)
            seen += len(batch)
            step += 1
        train_seconds = time.perf_counter() - started
        figures = validate()
        raw.append(float(figures.get(monitor, math.nan)))
        row = {
            "check": len(rows) + 1,
            "step": step,
            "passes": step * schedule.batch_size / len(train),
            "loss": loss_sum / seen,
            "valid_auc": float(figures.get("valid_auc", math.nan)),
            "monitor_smoothed": smoothed(raw, schedule.smoothing),
            "valid_accuracy": float(figures.get("valid_accuracy", math.nan)),
            "learning_rate": rate,
            # A check counts once min_steps are done and its smoothing window is full.
            "eligible": step >= schedule.min_steps and len(raw) >= schedule.smoothing,
            "kept": False,
            "triples_per_second": seen / train_seconds,
            "seconds": time.perf_counter() - started,
        }
        rows.append(row)
        log.info(
            "check %d, step %d (%.2f passes): loss %.5f, valid AUC %.4f, smoothed %s %.4f, valid accuracy %.4f, "
            "learning rate %.3g, %.0f triples/s, %.1f s%s",
            row["check"],
            step,
            row["passes"],
            row["loss"],
            row["valid_auc"],
            monitor,
            row["monitor_smoothed"],
            row["valid_accuracy"],
            rate,
            row["triples_per_second"],
            row["seconds"],
            "" if row["eligible"] else " (not eligible yet: min_steps or the smoothing window)",
        )
        if not np.isfinite(row["loss"]):
            log.warning("loss is not finite at step %d: stopping (best check kept)", step)
            stop_reason = STOP_NOT_FINITE
            break
        if not row["eligible"]:
            continue
        value = row["monitor_smoothed"]
        if value > best_value:
            best_value, best_check, best_weights = value, row["check"], trainer.get_weights()
            since_best = since_change = 0
            continue
        since_best += 1
        since_change += 1
        if since_best >= schedule.early_stop_patience:
            log.info(
                "smoothed %s did not improve for %d checks: stopping at step %d, kept check %d",
                monitor,
                since_best,
                step,
                best_check,
            )
            stop_reason = STOP_PATIENCE
            break
        if since_change >= schedule.lr_patience:
            rate *= schedule.lr_decay
            trainer.learning_rate = rate
            since_change = 0
            log.info("learning rate decays to %.3g", rate)
    if best_check == 0:
        log.warning("no check after min_steps gave a finite %s: keeping the initial weights", monitor)
    trainer.set_weights(best_weights)
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    history["kept"] = history["check"] == best_check
    return FitResult(history, monitor, best_check, stop_reason)


def rate_schedule(history: pd.DataFrame, base_rate: float) -> Callable[[float], float]:
    """The learning rate a run used at each step, from its history (``step`` and ``learning_rate`` of
    every check: a check's rate is the one of the steps up to it), as a function of the step; after
    the last check the last rate holds. Without checks: ``base_rate``."""
    if history is None or len(history) == 0:
        return lambda step: float(base_rate)
    ends = history["step"].to_numpy(dtype=np.float64)
    rates = history["learning_rate"].to_numpy(dtype=np.float64)
    return lambda step: float(rates[min(int(np.searchsorted(ends, step, side="left")), len(rates) - 1)])


def fit_steps(
    trainer: Trainer, train: Triples, schedule: Schedule, steps: int, rate_at: Callable[[float], float]
) -> FitResult:
    """Train exactly ``steps`` Adam steps with no validation (the refit): no check is kept or stops
    training. ``rate_at(step)`` gives the learning rate of each step (1-based). The history has one row
    per ``check_every_steps`` steps with the loss; the last row is the weights kept."""
    rng = stream_rng(schedule.seed, "batch order")
    stream = batch_stream(train, schedule.batch_size, rng)
    rows, step, current = [], 0, None
    while step < steps:
        started = time.perf_counter()
        loss_sum, seen = 0.0, 0
        for _ in range(min(schedule.check_every_steps, steps - step)):
            step += 1
            rate = rate_at(step)
            if rate != current:
                trainer.learning_rate = current = rate
            batch = next(stream)
            loss_sum += trainer.train_step(batch) * len(batch)
            seen += len(batch)
        seconds = time.perf_counter() - started
        rows.append(
            dict.fromkeys(HISTORY_COLUMNS, math.nan)
            | {
                "check": len(rows) + 1,
                "step": step,
                "passes": step * schedule.batch_size / len(train),
                "loss": loss_sum / seen,
                "learning_rate": rate,
                "eligible": False,
                "kept": False,
                "triples_per_second": seen / seconds,
                "seconds": seconds,
            }
        )
        log.info(
            "refit step %d of %d (%.2f passes): loss %.5f, learning rate %.3g",
            step,
            steps,
            rows[-1]["passes"],
            rows[-1]["loss"],
            rate,
        )
        if not np.isfinite(rows[-1]["loss"]):
            log.warning("loss is not finite at step %d: the refit stops there", step)
            break
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    history["kept"] = history["check"] == len(history)
    return FitResult(history, "none", len(history), STOP_REFIT)
