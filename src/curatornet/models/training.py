"""Shared training loop of CuratorNet and VBPR.

Triples are read from Parquet into NumPy once (profiles as one flat value
array with offsets), shuffled per epoch by a seeded generator and cut into
batches by vectorised slicing; a background thread prepares the next batch
while TensorFlow runs the current step. A model plugs in through a small
trainer object (:class:`Trainer`): one step, validation accuracy, weights.

Schedule: Adam; the learning rate is multiplied by ``lr_decay`` when validation
pairwise accuracy has not improved for ``lr_patience`` epochs, training stops
after ``early_stop_patience`` epochs without improvement, and the weights of
the best epoch are restored at the end.
"""

from __future__ import annotations

import concurrent.futures
import ctypes
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from curatornet.artifacts import VBPR_GUIDELINES, embeddings_matrix
from curatornet.errors import InputError
from curatornet.io import read_table, write_csv, write_text

log = logging.getLogger("curatornet.training")

MODEL_FILE = "model.json"
HISTORY_FILE = "history.csv"
STANDARDIZER_FILE = "standardizer.npz"
WEIGHTS_FILE = "weights.npz"
HISTORY_COLUMNS = ["epoch", "loss", "valid_accuracy", "learning_rate", "triples_per_second", "seconds"]
TRIPLET_COLUMNS = ("profile", "positive", "negative", "user")


# --------------------------------------------------------------------------- data


@dataclass
class Batch:
    """One batch of triples; the profiles are ragged: ``values`` with sorted ``row_ids``."""

    values: np.ndarray  # int32, items of the batch's distinct profiles, profile after profile
    row_ids: np.ndarray  # int32, distinct profile of each value (non-decreasing)
    positive: np.ndarray  # int32 (b,)
    negative: np.ndarray  # int32 (b,)
    user: np.ndarray  # int32 (b,)
    profile_rows: np.ndarray | None = None  # int32 (b,), distinct profile of each triple; None: row i is triple i

    def __len__(self) -> int:
        return len(self.positive)

    @property
    def triple_profiles(self) -> np.ndarray:
        """Index into the distinct profiles for every triple."""
        return np.arange(len(self), dtype=np.int32) if self.profile_rows is None else self.profile_rows


@dataclass
class TripletArrays:
    """Triples held as NumPy arrays; profile i is ``values[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray  # int64 (n + 1,)
    values: np.ndarray  # int32
    positive: np.ndarray  # int32 (n,)
    negative: np.ndarray  # int32 (n,)
    user: np.ndarray  # int32 (n,)
    guideline: np.ndarray | None = None  # object (n,) when the file has the column
    profile_key: np.ndarray | None = None  # uint64 (n,), equal for equal profiles (see add_profile_keys)

    def __len__(self) -> int:
        return len(self.positive)

    def add_profile_keys(self, seed: int = 0x5EED) -> TripletArrays:
        """Give every triple a key of its profile (as a multiset of items).

        Many triples share a profile (all of a user's D3/D4 triples, say); a
        batch then pools and runs the profile head once per distinct profile.
        The key is the wrapping sum of one random 64-bit word per item, so it
        ignores order; different profiles collide with probability ~2^-64.
        """
        words = np.random.default_rng(seed).integers(0, 2**63, int(self.values.max()) + 1, dtype=np.uint64)
        words = words * np.uint64(2) + np.uint64(1)
        self.profile_key = np.add.reduceat(words[self.values], self.offsets[:-1].astype(np.intp))
        return self

    @classmethod
    def from_lists(
        cls,
        profiles: Sequence[Sequence[int]],
        positive: Sequence[int],
        negative: Sequence[int],
        user: Sequence[int] | None = None,
    ) -> TripletArrays:
        """Build from Python lists (tests, small inputs)."""
        lengths = np.array([len(p) for p in profiles], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        values = (
            np.concatenate([np.asarray(p, dtype=np.int32) for p in profiles])
            if len(profiles)
            else np.zeros(0, np.int32)
        )
        n = len(positive)
        users = np.full(n, -1, np.int32) if user is None else np.asarray(user, np.int32)
        return cls(
            offsets, values.astype(np.int32), np.asarray(positive, np.int32), np.asarray(negative, np.int32), users
        )

    def without_profiles(self) -> TripletArrays:
        """The same triples with empty profiles (models that ignore profiles, like VBPR)."""
        offsets = np.zeros(len(self) + 1, np.int64)
        return TripletArrays(offsets, np.zeros(0, np.int32), self.positive, self.negative, self.user, self.guideline)

    def subset(self, rows: np.ndarray) -> TripletArrays:
        """The triples at ``rows`` (indexes or boolean mask), in that order."""
        rows = np.flatnonzero(rows) if rows.dtype == bool else np.asarray(rows)
        batch = self.batch(rows)
        lengths = np.bincount(batch.row_ids, minlength=len(rows))
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        guideline = None if self.guideline is None else self.guideline[rows]
        key = None if self.profile_key is None else self.profile_key[rows]
        return TripletArrays(offsets, batch.values, batch.positive, batch.negative, batch.user, guideline, key)

    def batch(self, rows: np.ndarray, distinct_profiles: bool = False) -> Batch:
        """Gather the triples at ``rows`` without a Python loop per triple.

        With ``distinct_profiles`` (and profile keys), equal profiles in the
        batch are sent once and ``profile_rows`` maps triples to them.
        """
        rows = np.asarray(rows)
        if distinct_profiles and self.profile_key is not None:
            _, first, inverse = np.unique(self.profile_key[rows], return_index=True, return_inverse=True)
            batch = self.batch(rows[first])
            return Batch(
                batch.values,
                batch.row_ids,
                self.positive[rows],
                self.negative[rows],
                self.user[rows],
                inverse.astype(np.int32).reshape(-1),
            )
        starts = self.offsets[rows]
        lengths = (self.offsets[rows + 1] - starts).astype(np.int64)
        row_ids = np.repeat(np.arange(len(rows), dtype=np.int32), lengths)
        # Position of every value: its row's start plus its rank inside the row.
        first = np.cumsum(lengths) - lengths
        within = np.arange(int(lengths.sum()), dtype=np.int64) - np.repeat(first, lengths)
        values = self.values[np.repeat(starts, lengths) + within]
        return Batch(values, row_ids, self.positive[rows], self.negative[rows], self.user[rows])


def read_triplets(
    path: str | Path,
    n_items: int,
    guidelines: Sequence[str] | None = None,
    known_users_only: bool = False,
) -> TripletArrays:
    """Read a triplet file, keeping the ``guidelines`` given (all if None).

    ``known_users_only`` drops the artificial profiles (user = -1). Raises
    :class:`InputError` for a missing column, nulls, empty profiles, item
    indexes outside ``[0, n_items)`` or a file with no usable triple.
    """
    table = read_table(path, TRIPLET_COLUMNS)
    if guidelines is not None:
        if "guideline" not in table.column_names:
            raise InputError(path, "guideline", table.column_names, "column needed to select guidelines is missing")
        table = table.filter(pc.is_in(table.column("guideline"), value_set=pa.array(list(guidelines))))
    if known_users_only:
        table = table.filter(pc.greater_equal(table.column("user"), 0))
    if table.num_rows == 0:
        what = (
            "no triples"
            if guidelines is None and not known_users_only
            else (
                f"no triples left after keeping guidelines {list(guidelines or [])}"
                + (" and known users" if known_users_only else "")
            )
        )
        raise InputError(path, None, str(path), what)
    for name in TRIPLET_COLUMNS:
        if table.column(name).null_count:
            raise InputError(path, name, "null", f"{table.column(name).null_count} null values")
    profile = table.column("profile").combine_chunks()
    offsets = profile.offsets.to_numpy().astype(np.int64)
    offsets -= offsets[0]
    values = profile.flatten().to_numpy(zero_copy_only=False).astype(np.int32, copy=False)
    if profile.flatten().null_count:
        raise InputError(path, "profile", "null", "profiles contain null item indexes")
    lengths = np.diff(offsets)
    if (lengths == 0).any():
        row = int(np.flatnonzero(lengths == 0)[0])
        raise InputError(path, "profile", f"row {row}: []", "empty profile")

    def column(name: str) -> np.ndarray:
        return table.column(name).to_numpy().astype(np.int32, copy=False)

    positive, negative, user = column("positive"), column("negative"), column("user")
    for name, array in (("profile", values), ("positive", positive), ("negative", negative)):
        check_item_indexes(array, n_items, path, name)
    if (user < -1).any():
        raise InputError(path, "user", int(user[user < -1][0]), "user index below -1")
    guideline = None
    if "guideline" in table.column_names:
        guideline = table.column("guideline").to_numpy(zero_copy_only=False)
    return TripletArrays(offsets, values, positive, negative, user, guideline)


def read_embeddings(path: str | Path) -> np.ndarray:
    """(n_items, dim) float32 matrix of an embeddings file, checked."""
    table = read_table(path, ("item", "embedding"))
    if table.num_rows == 0:
        raise InputError(path, None, str(path), "no embeddings")
    items = np.sort(table.column("item").to_numpy())
    if not np.array_equal(items, np.arange(len(items))):
        raise InputError(path, "item", items[:5].tolist(), "item indexes must be 0..n-1 without gaps")
    matrix = embeddings_matrix(table)
    if not np.isfinite(matrix).all():
        raise InputError(path, "embedding", "NaN/inf", "embeddings must be finite")
    return matrix


def iterate_batches(
    data: TripletArrays, batch_size: int, rng: np.random.Generator | None, distinct_profiles: bool = False
) -> Iterator[Batch]:
    """Batches of ``data`` in a shuffled order (or file order when ``rng`` is None).

    The next batch is cut in a worker thread while the caller runs the current
    step: NumPy and TensorFlow both release the GIL for their heavy work.
    """
    order = np.arange(len(data)) if rng is None else rng.permutation(len(data))
    starts = range(0, len(order), batch_size)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = None
        for start in starts:
            future = pool.submit(data.batch, order[start : start + batch_size], distinct_profiles)
            if pending is not None:
                yield pending.result()
            pending = future
        if pending is not None:
            yield pending.result()


# --------------------------------------------------------------------------- loop


class Trainer(Protocol):
    """What the loop needs from a model (see CuratorNetTrainer and VBPRTrainer)."""

    learning_rate: float

    def train_step(self, batch: Batch) -> float: ...

    def pairwise_accuracy(self, data: TripletArrays) -> float: ...

    def get_weights(self) -> dict[str, np.ndarray]: ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...


@dataclass
class Schedule:
    batch_size: int = 4096
    max_epochs: int = 8
    learning_rate: float = 1e-3
    lr_decay: float = 0.6
    lr_patience: int = 1
    early_stop_patience: int = 2
    seed: int = 42


@dataclass
class FitResult:
    history: pd.DataFrame
    best_epoch: int
    valid_accuracy: float
    weights: dict[str, np.ndarray] = field(repr=False)


def fit(trainer: Trainer, train: TripletArrays, valid: TripletArrays, schedule: Schedule) -> FitResult:
    """Train with the schedule; the trainer ends holding the best epoch's weights."""
    rng = np.random.default_rng(schedule.seed)
    rate = float(schedule.learning_rate)  # tracked here: the optimiser holds it as float32
    trainer.learning_rate = rate
    best_accuracy, best_epoch, best_weights = -1.0, 0, trainer.get_weights()
    since_best = since_change = 0
    rows = []
    for epoch in range(1, schedule.max_epochs + 1):
        started = time.perf_counter()
        loss_sum = 0.0
        for batch in iterate_batches(train, schedule.batch_size, rng, distinct_profiles=True):
            loss_sum += trainer.train_step(batch) * len(batch)
        train_seconds = time.perf_counter() - started
        accuracy = trainer.pairwise_accuracy(valid)
        seconds = time.perf_counter() - started
        row = {
            "epoch": epoch,
            "loss": loss_sum / len(train),
            "valid_accuracy": accuracy,
            "learning_rate": rate,
            "triples_per_second": len(train) / train_seconds,
            "seconds": seconds,
        }
        rows.append(row)
        log.info(
            "epoch %d: loss %.5f, valid accuracy %.4f, learning rate %.3g, %.0f triples/s, %.1f s",
            epoch,
            row["loss"],
            accuracy,
            rate,
            row["triples_per_second"],
            seconds,
        )
        if not np.isfinite(row["loss"]):
            log.warning("loss is not finite at epoch %d: stopping (best epoch kept)", epoch)
            break
        if accuracy > best_accuracy:
            best_accuracy, best_epoch, best_weights = accuracy, epoch, trainer.get_weights()
            since_best = since_change = 0
            continue
        since_best += 1
        since_change += 1
        if since_best >= schedule.early_stop_patience:
            log.info("no improvement for %d epochs: stopping, best epoch %d", since_best, best_epoch)
            break
        if since_change >= schedule.lr_patience:
            rate *= schedule.lr_decay
            trainer.learning_rate = rate
            since_change = 0
            log.info("learning rate decays to %.3g", rate)
    trainer.set_weights(best_weights)
    history = pd.DataFrame(rows, columns=HISTORY_COLUMNS)
    return FitResult(history, best_epoch, float(best_accuracy), best_weights)


# --------------------------------------------------------------------------- environment


def configure_tensorflow(threads: int | None = None, seed: int | None = None) -> None:
    """Thread counts (before TensorFlow starts its runtime) and global seeds.

    GPUs are left visible on purpose: TensorFlow places ops on one when present.
    """
    import keras
    import tensorflow as tf

    if threads is not None:
        try:
            tf.config.threading.set_intra_op_parallelism_threads(int(threads))
            tf.config.threading.set_inter_op_parallelism_threads(int(threads))
        except RuntimeError:  # runtime already initialised (e.g. second call in one process)
            log.debug("TensorFlow threads already fixed; keeping them")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))


# glibc mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3


def tune_allocator(top_pad: int = 512 << 20) -> bool:
    """Keep freed memory mapped instead of returning it to the kernel (glibc only).

    A training step allocates and frees the same large buffers every batch; by
    default glibc serves those with fresh mmap()s (or trims the heap), so each
    step pays page faults again. ``mallopt`` has the same effect as the
    MALLOC_*_ environment variables but works after the process has started,
    which a Snakemake ``script:`` job needs. Returns False where unavailable.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # glibc's upper bound for this parameter
    ok &= mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    ok &= mallopt(_M_TOP_PAD, top_pad)
    return bool(ok)


# --------------------------------------------------------------------------- stage entry point


@dataclass
class TrainSettings:
    """Everything one training job needs besides its file paths."""

    model: str = "curatornet"
    sampling: str = "guidelines"
    l2: float = 0.0
    batch_size: int = 4096
    max_epochs: int = 8
    learning_rate: float = 1e-3
    lr_decay: float = 0.6
    lr_patience: int = 1
    early_stop_patience: int = 2
    seed: int = 42
    latent_dim: int = 100  # VBPR
    visual_dim: int = 100  # VBPR
    tower_units: tuple[int, ...] = (200, 200)  # CuratorNet
    head_units: tuple[int, ...] = (300, 200, 200)  # CuratorNet
    item_mode: str = "auto"  # CuratorNet: tower per distinct item or over the catalogue

    @classmethod
    def from_config(cls, training: Mapping[str, Any], model: str, sampling: str, l2: float, seed: int) -> TrainSettings:
        """Settings of one (model, sampling, λ) job from the config's ``training`` section."""
        vbpr = training.get("vbpr", {})
        rate = vbpr.get("learning_rate", 0.005) if model == "vbpr" else training.get("learning_rate", 1e-3)
        return cls(
            model=model,
            sampling=sampling,
            l2=float(l2),
            batch_size=int(training.get("batch_size", 4096)),
            max_epochs=int(training.get("max_epochs", 8)),
            learning_rate=float(rate),
            lr_decay=float(training.get("lr_decay", 0.6)),
            lr_patience=int(training.get("lr_patience", 1)),
            early_stop_patience=int(training.get("early_stop_patience", 2)),
            seed=int(seed),
            latent_dim=int(vbpr.get("latent_dim", 100)),
            visual_dim=int(vbpr.get("visual_dim", 100)),
        )

    def as_params(self) -> dict[str, Any]:
        """Plain (JSON-like) values, for Snakemake params and model.json."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    def schedule(self) -> Schedule:
        return Schedule(
            self.batch_size,
            self.max_epochs,
            self.learning_rate,
            self.lr_decay,
            self.lr_patience,
            self.early_stop_patience,
            self.seed,
        )


def job_settings(config: Mapping[str, Any], model: str, sampling: str, l2: float) -> dict[str, Any]:
    """Settings of one training job of the workflow (plain values; see TrainSettings)."""
    return TrainSettings.from_config(config["training"], model, sampling, l2, config.get("seed", 42)).as_params()


def train_model(
    settings: TrainSettings,
    train_path: str | Path,
    valid_path: str | Path,
    embeddings_path: str | Path,
    out_dir: str | Path,
) -> dict[str, Any]:
    """Train one model and write its directory; returns the contents of model.json.

    Files: weights.npz, standardizer.npz, history.csv and, written last,
    model.json (its presence means the directory is complete).
    """
    from curatornet.models.features import Standardizer

    if settings.model not in ("curatornet", "vbpr"):
        raise InputError(None, "model", settings.model, "unknown model (curatornet or vbpr)")
    out_dir = Path(out_dir)
    configure_tensorflow(seed=settings.seed)
    embeddings = read_embeddings(embeddings_path)
    n_items, dim = embeddings.shape
    standardizer = Standardizer.fit(embeddings)
    features = standardizer.transform(embeddings, source=str(embeddings_path))

    if settings.model == "vbpr":
        from curatornet.models.vbpr import VBPR, VBPRTrainer

        keep = list(VBPR_GUIDELINES) if settings.sampling == "guidelines" else None
        train = read_triplets(train_path, n_items, keep, known_users_only=True).without_profiles()
        valid = read_triplets(valid_path, n_items, keep, known_users_only=True).without_profiles()
        n_users = int(max(train.user.max(), valid.user.max())) + 1
        model = VBPR(n_users, n_items, dim, settings.latent_dim, settings.visual_dim, seed=settings.seed)
        model.mark_known_users(train.user)
        trainer = VBPRTrainer(model, features, settings.l2, settings.learning_rate)
        hyper = {"latent_dim": settings.latent_dim, "visual_dim": settings.visual_dim}
    else:
        from curatornet.models.curatornet import CuratorNet, CuratorNetTrainer

        train = read_triplets(train_path, n_items).add_profile_keys()
        valid = read_triplets(valid_path, n_items).add_profile_keys()
        users = np.concatenate([train.user, valid.user])
        n_users = int(users.max()) + 1 if len(users) else 0
        model = CuratorNet(dim, settings.tower_units, settings.head_units, seed=settings.seed)
        mode = settings.item_mode
        if mode == "auto":
            mode = choose_item_mode(train, n_items, settings.batch_size, settings.seed)
        trainer = CuratorNetTrainer(model, features, settings.l2, settings.learning_rate, item_mode=mode)
        hyper = {"tower_units": list(settings.tower_units), "head_units": list(settings.head_units), "item_mode": mode}
    log.info(
        "%s on %s sampling, l2=%g: %d training and %d validation triples, %d items of dimension %d",
        settings.model,
        settings.sampling,
        settings.l2,
        len(train),
        len(valid),
        n_items,
        dim,
    )
    result = fit(trainer, train, valid, settings.schedule())
    skip = ("tower_units", "head_units", "latent_dim", "visual_dim", "item_mode")
    meta = {
        "model": settings.model,
        "sampling": settings.sampling,
        "l2": settings.l2,
        "n_items": int(n_items),
        "n_users": n_users,
        "hyperparameters": hyper,
        "training": {k: v for k, v in asdict(settings).items() if k not in skip},
        "n_train_triples": len(train),
        "n_valid_triples": len(valid),
        "best_epoch": result.best_epoch,
        "epochs_run": len(result.history),
        "valid_accuracy": result.valid_accuracy,
    }
    return write_model_dir(out_dir, model, standardizer, result.history, meta)


def write_model_dir(
    out_dir: str | Path, model: Any, standardizer: Any, history: pd.DataFrame | None, meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write weights.npz, standardizer.npz, history.csv and, last, model.json.

    ``model`` is a CuratorNet or VBPR (anything with ``save_weights_npz``);
    ``meta`` must hold at least ``model``, ``n_items``, ``n_users`` and
    ``hyperparameters``. Returns the contents of model.json.
    """
    out_dir = Path(out_dir)
    model.save_weights_npz(out_dir / WEIGHTS_FILE)
    standardizer.save(out_dir / STANDARDIZER_FILE)
    if history is None:
        history = pd.DataFrame(columns=HISTORY_COLUMNS)
    write_csv(history, out_dir / HISTORY_FILE)
    full = {
        "format": 1,
        **meta,
        "embedding_dim": int(standardizer.dim),
        "weights": WEIGHTS_FILE,
        "standardizer": STANDARDIZER_FILE,
        "history": HISTORY_FILE,
    }
    write_text(json.dumps(full, indent=2) + "\n", out_dir / MODEL_FILE)
    return full


def choose_item_mode(train: TripletArrays, n_items: int, batch_size: int, seed: int) -> str:
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
    mode = "catalogue" if share > 0.85 else "unique"
    log.info(
        "a batch touches %.0f%% of the %d items: item tower runs per %s",
        100 * share,
        n_items,
        "catalogue" if mode == "catalogue" else "distinct item",
    )
    return mode


def check_item_indexes(items: Any, n_items: int, source: Any, field: str) -> np.ndarray:
    """``items`` as int64, failing on the first index outside [0, n_items)."""
    items = np.asarray(items, dtype=np.int64)
    bad = (items < 0) | (items >= n_items)
    if bad.any():
        raise InputError(source, field, int(items[bad][0]), f"item index outside [0, {n_items})")
    return items


def restore_model(model_dir: str | Path, embeddings: np.ndarray, build) -> tuple[Any, dict[str, Any]]:
    """Rebuild a trained model from its directory: ``build(meta, dim)`` makes the
    empty model, whose weights are then loaded. ``embeddings`` must have the
    model's dimension. Returns the model and its metadata."""
    model_dir = Path(model_dir)
    meta = read_model_meta(model_dir)
    dim = int(meta["embedding_dim"])
    if np.ndim(embeddings) != 2 or np.shape(embeddings)[1] != dim:
        raise InputError(
            model_dir / MODEL_FILE,
            "embedding_dim",
            np.shape(embeddings),
            f"embeddings do not match the model's dimension {dim}",
        )
    model = build(meta, dim)
    weights_path = model_dir / meta["weights"]
    model.load_weights_dict(load_weights_npz(weights_path), source=str(weights_path))
    return model, meta


def read_model_meta(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise InputError(path, None, str(path), "model directory has no model.json (training incomplete?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, None, str(path), f"not valid JSON ({exc})") from exc


def load_weights_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, str(path), "weights file does not exist")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def save_weights_npz(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    from curatornet.io import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **weights)


def assign_weight(variable: Any, weights: Mapping[str, np.ndarray], key: str, source: str | None) -> None:
    """Set ``variable`` to ``weights[key]``, failing clearly when it is missing or of another shape."""
    if key not in weights:
        raise InputError(source, key, sorted(weights), "weight missing")
    value = np.asarray(weights[key])
    if tuple(value.shape) != tuple(variable.shape):
        raise InputError(source, key, value.shape, f"expected shape {tuple(variable.shape)}")
    variable.assign(value)


__all__ = [
    "Batch",
    "TripletArrays",
    "read_triplets",
    "read_embeddings",
    "iterate_batches",
    "Trainer",
    "Schedule",
    "FitResult",
    "fit",
    "configure_tensorflow",
    "tune_allocator",
    "TrainSettings",
    "train_model",
    "choose_item_mode",
    "read_model_meta",
    "load_weights_npz",
    "save_weights_npz",
    "assign_weight",
    "check_item_indexes",
    "restore_model",
    "write_model_dir",
    "planted_preference",
    "write_triplets",
    "job_settings",
]


# --------------------------------------------------------------------------- synthetic data


def planted_preference(
    n_items: int = 300,
    dim: int = 32,
    n_tastes: int = 4,
    n_users: int = 40,
    n_triples: int = 4000,
    max_profile: int = 4,
    seed: int = 0,
) -> tuple[np.ndarray, TripletArrays, np.ndarray]:
    """A small data set with a planted preference (tests, examples).

    Items belong to one of ``n_tastes`` visual tastes (embedding = the taste's
    centre plus noise); user u likes taste u % n_tastes. A triple's profile
    holds 1..max_profile items of the user's taste, the positive is another
    item of that taste, the negative an item of another taste. Returns the
    embeddings, the triples and each item's taste. The catalogue does not
    depend on ``seed``: two calls with different seeds give training and
    held-out triples over the same items.
    """
    item_rng = np.random.default_rng(1000)  # the catalogue is fixed; only triples vary with seed
    taste = item_rng.integers(0, n_tastes, n_items)
    centres = item_rng.standard_normal((n_tastes, dim)) * 2.0
    embeddings = (centres[taste] + item_rng.standard_normal((n_items, dim))).astype(np.float32)
    rng = np.random.default_rng(seed)
    by_taste = [np.flatnonzero(taste == t) for t in range(n_tastes)]
    others = [np.flatnonzero(taste != t) for t in range(n_tastes)]
    users = rng.integers(0, n_users, n_triples).astype(np.int32)
    lengths = rng.integers(1, max_profile + 1, n_triples)
    profiles, positive, negative = [], np.zeros(n_triples, np.int32), np.zeros(n_triples, np.int32)
    for k in range(n_triples):  # small sizes only
        t = users[k] % n_tastes
        picked = rng.choice(by_taste[t], size=lengths[k] + 1, replace=False)
        profiles.append(picked[:-1])
        positive[k] = picked[-1]
        negative[k] = rng.choice(others[t])
    return embeddings, TripletArrays.from_lists(profiles, positive, negative, users), taste


def write_triplets(
    data: TripletArrays, path: str | Path, split: str = "train", guideline: str | Sequence[str] = "d4_profile"
) -> None:
    """Write triples in the merged triplet-file layout (MERGED_TRIPLETS_SCHEMA)."""
    from curatornet.artifacts import MERGED_TRIPLETS_SCHEMA
    from curatornet.io import write_parquet

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
