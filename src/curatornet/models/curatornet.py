"""CuratorNet (paper sections 3.2-3.4) in TensorFlow / Keras 3.

One item tower (two SELU layers) maps a standardised image embedding f_i to
Φ(f_i). A profile P_u is the mean and the max over its items' tower outputs,
concatenated (the paper's pooling; ``pooling`` may keep one of them) and passed
through three SELU layers, giving Φ(P_u). The score
is x_ui = Φ(P_u)·Φ(f_i); training minimises the sigmoid cross-entropy of
x_ui - x_uj with label 1 plus λ times the squared norm of the weight matrices.

Speed: a batch runs the tower once per *distinct* item among its positives,
negatives and profile items (or once over the catalogue when a batch touches
nearly all of it), and profiles are ragged (flat values + row ids), so there
is no padding slot at all: pooling sees real profile items only. Training reads
the margin x_ui − x_uj directly, and over the catalogue the first kernel's
gradient comes from a stored transpose of the features. On the CPU, the step's
gathers, pooling and margin run as fused kernels (:mod:`curatornet.models.fused_ops`);
TensorFlow's own ops remain the reference, and the path where a GPU is visible.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from curatornet.errors import InputError, check_item_indexes
from curatornet.models.base import PAPER_POOLING, Queries, pooling_parts
from curatornet.models.features import Standardizer
from curatornet.models.keras_trainer import INDEX_SPEC, KerasTrainer
from curatornet.models.persistence import assign_weight, restore_model
from curatornet.sampling.triples import Batch, Triples
from curatornet.seeds import stream_rng, stream_seed

if TYPE_CHECKING:  # typing only
    from curatornet.models.train import TrainingInputs

log = logging.getLogger(__name__)

#: Share of the catalogue a batch must touch for the tower to run over the whole catalogue.
CATALOGUE_MODE_SHARE = 0.85


class CuratorNet(keras.Model):
    """The network Φ: an item tower and a profile head, sizes as arguments (paper's by default)."""

    def __init__(
        self,
        input_dim: int = 2048,
        tower_units: Sequence[int] = (200, 200),
        head_units: Sequence[int] = (300, 200, 200),
        seed: int = 0,
        pooling: str = PAPER_POOLING,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not tower_units or not head_units or tower_units[-1] != head_units[-1]:
            raise InputError(
                None,
                "head_units",
                (list(tower_units), list(head_units)),
                "the last tower and head sizes must be equal (their dot product is the score)",
            )
        self.input_dim = int(input_dim)
        self.tower_units = tuple(int(u) for u in tower_units)
        self.head_units = tuple(int(u) for u in head_units)
        self.pooling = pooling
        self._pools = pooling_parts(pooling)

        def dense(units: int, name: str) -> keras.layers.Dense:
            # LeCun normal initialisation keeps SELU activations self-normalising; each layer
            # draws from its own stream of the run's seed, so no two runs share initial weights.
            initializer = keras.initializers.LecunNormal(seed=stream_seed(seed, f"curatornet/{name}"))
            return keras.layers.Dense(units, activation="selu", kernel_initializer=initializer, name=name)

        self.tower = [dense(u, f"tower_{k}") for k, u in enumerate(self.tower_units)]
        self.head = [dense(u, f"head_{k}") for k, u in enumerate(self.head_units)]
        # Create the variables now so that weights can be loaded before any call.
        self.profile_vectors(self.item_vectors(tf.zeros((1, self.input_dim))), tf.zeros((1,), tf.int32))

    @property
    def output_dim(self) -> int:
        return self.tower_units[-1]

    def item_vectors(self, features: tf.Tensor, features_t: tf.Tensor | None = None) -> tf.Tensor:
        """Φ(f_i) for rows of standardised embeddings: (n, input_dim) -> (n, output_dim).

        ``features_t``, the transpose of a constant ``features`` stored as its own
        array, gives the first kernel's gradient Fᵀ·dH as a plain product: the same
        product with a transposed operand runs at about 60% of the matmul rate.
        """
        h = features if features_t is None else self._first_layer_on_constant(features, features_t)
        for layer in self.tower[0 if features_t is None else 1 :]:
            h = layer(h)
        return h

    def _first_layer_on_constant(self, features: tf.Tensor, features_t: tf.Tensor) -> tf.Tensor:
        layer = self.tower[0]

        @tf.custom_gradient
        def product(kernel):
            # features is a constant: the kernel's gradient is the only one wanted.
            return tf.matmul(features, kernel), lambda upstream: tf.matmul(features_t, upstream)

        return layer.activation(product(layer.kernel.value) + layer.bias.value)

    def profile_vectors(self, value_vectors: tf.Tensor, row_ids: tf.Tensor) -> tf.Tensor:
        """Φ(P_u) from the tower outputs of the profiles' items.

        ``value_vectors`` holds one row per real profile item and ``row_ids``
        (sorted) says which profile it belongs to; every profile must have at
        least one item. The pooling's statistics (mean and max, or one of them) are taken over those rows only.
        """
        pools = {"mean": tf.math.segment_mean, "max": tf.math.segment_max}
        return self._head(tf.concat([pools[name](value_vectors, row_ids) for name in self._pools], axis=1))

    def _head(self, pooled: tf.Tensor) -> tf.Tensor:
        for layer in self.head:
            pooled = layer(pooled)
        return pooled

    def triple_scores(
        self,
        features: tf.Tensor,
        values: tf.Tensor,
        row_ids: tf.Tensor,
        positive: tf.Tensor,
        negative: tf.Tensor,
        item_mode: str = "unique",
        profile_rows: tf.Tensor | None = None,
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(x_ui, x_uj) for a batch with ragged profiles; ``features`` is the standardised catalogue.

        ``values``/``row_ids`` describe the batch's profiles; ``profile_rows``
        says which profile each triple uses (None: triple i uses profile i),
        so a profile shared by many triples is pooled once.
        """
        profile, hp, hn = self._batch_vectors(features, values, row_ids, positive, negative, item_mode, profile_rows)
        return tf.reduce_sum(profile * hp, axis=1), tf.reduce_sum(profile * hn, axis=1)

    def triple_margins(self, *batch: Any, features_t: tf.Tensor | None = None, fused: bool = False) -> tf.Tensor:
        """x_ui − x_uj = Φ(P_u)·(Φ(f_i) − Φ(f_j)), what the loss reads: one product per triple, not two.

        ``batch``: the arguments of :meth:`triple_scores`; ``features_t`` as in :meth:`item_vectors`.
        ``fused``: the gathers, the pooling and the margin run as the CPU kernels of
        :mod:`curatornet.models.fused_ops` (the same values and gradients up to rounding).
        """
        if fused:
            return self._fused_margins(*batch, features_t=features_t)
        profile, hp, hn = self._batch_vectors(*batch, features_t=features_t)
        return tf.reduce_sum(profile * (hp - hn), axis=1)

    def _batch_items(self, features, values, positive, negative, item_mode, features_t):
        """Tower outputs h of the batch's items, and the batch's (values, positive, negative) as rows of h."""
        if item_mode == "catalogue":
            return self.item_vectors(features, features_t), values, positive, negative
        # The tower runs once per distinct item, whatever role the item plays.
        b = tf.shape(positive)[0]
        distinct, where = tf.unique(tf.concat([positive, negative, values], axis=0))
        return self.item_vectors(tf.gather(features, distinct)), where[2 * b :], where[:b], where[b : 2 * b]

    def _batch_vectors(
        self, features, values, row_ids, positive, negative, item_mode="unique", profile_rows=None, features_t=None
    ):
        """Φ(P_u) of each triple's profile and Φ of its positive and negative item."""
        h, values, positive, negative = self._batch_items(features, values, positive, negative, item_mode, features_t)
        hp, hn, hv = tf.gather(h, positive), tf.gather(h, negative), tf.gather(h, values)
        profile = self.profile_vectors(hv, row_ids)
        if profile_rows is not None:
            profile = tf.gather(profile, profile_rows)
        return profile, hp, hn

    def _fused_margins(
        self, features, values, row_ids, positive, negative, item_mode="unique", profile_rows=None, features_t=None
    ):
        from curatornet.models import fused_ops  # Numba loads only where a model trains

        h, values, positive, negative = self._batch_items(features, values, positive, negative, item_mode, features_t)
        profiles = self._head(fused_ops.pool(h, values, row_ids, self._pools))
        rows = tf.range(tf.shape(positive)[0]) if profile_rows is None else profile_rows
        return fused_ops.margins(profiles, h, rows, positive, negative)

    def padded_triple_scores(
        self, features: tf.Tensor, profiles: tf.Tensor, positive: tf.Tensor, negative: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Like :meth:`triple_scores` for a (b, width) profile matrix padded with -1.

        Padding is dropped before the tower, so it cannot change a score or a
        gradient whatever the width.
        """
        profiles = tf.convert_to_tensor(profiles, tf.int32)
        real = profiles >= 0
        values = tf.boolean_mask(profiles, real)
        row_ids = tf.cast(tf.where(real)[:, 0], tf.int32)
        return self.triple_scores(features, values, row_ids, tf.cast(positive, tf.int32), tf.cast(negative, tf.int32))

    def regularization(self) -> tf.Tensor:
        """‖W‖² summed over the weight matrices (kernels, not biases)."""
        return tf.add_n([tf.reduce_sum(tf.square(layer.kernel)) for layer in self.tower + self.head])

    def bpr_loss(self, x_ui: tf.Tensor, x_uj: tf.Tensor, l2: float) -> tf.Tensor:
        return self.margin_loss(x_ui - x_uj, l2)

    def margin_loss(self, margin: tf.Tensor, l2: float) -> tf.Tensor:
        # Sigmoid cross-entropy with label 1 of the margin is softplus(-margin).
        return tf.reduce_mean(tf.nn.softplus(-margin)) + l2 * self.regularization()

    # ---- weights as plain arrays (portable .npz, no training data needed)

    def weights_dict(self) -> dict[str, np.ndarray]:
        out = {}
        for layer in self.tower + self.head:
            out[f"{layer.name}/kernel"] = np.array(layer.kernel.numpy())
            out[f"{layer.name}/bias"] = np.array(layer.bias.numpy())
        return out

    def load_weights_dict(self, weights: Mapping[str, np.ndarray], source: str | None = None) -> None:
        for layer in self.tower + self.head:
            for part, variable in (("kernel", layer.kernel), ("bias", layer.bias)):
                assign_weight(variable, weights, f"{layer.name}/{part}", source)

    def hyperparameters(self) -> dict:
        return {"tower_units": list(self.tower_units), "head_units": list(self.head_units), "pooling": self.pooling}


class CuratorNetTrainer(KerasTrainer):
    """Compiled train and validation steps of CuratorNet for :func:`curatornet.models.loop.fit`."""

    def __init__(
        self,
        model: CuratorNet,
        standardizer: Standardizer,
        embeddings: np.ndarray,
        l2: float,
        learning_rate: float,
        item_mode: str = "unique",
        fused: bool | None = None,
    ):
        """``fused``: run the step's gathers, pooling and margin as CPU kernels
        (:mod:`curatornet.models.fused_ops`); None: where TensorFlow sees no GPU."""
        if item_mode not in ("unique", "catalogue"):
            raise InputError(None, "item_mode", item_mode, "expected 'unique' or 'catalogue'")
        super().__init__(model, learning_rate)
        self.item_mode = item_mode
        if fused is None:
            from curatornet.models import fused_ops

            fused = fused_ops.available()
        self.fused = bool(fused)
        self.l2 = float(l2)
        self.standardizer = standardizer
        self.embeddings = embeddings
        self._features = standardizer.transform(embeddings, source="embeddings")
        # Kept as constants on the device: batches send item indexes only.
        self.features = tf.constant(self._features)
        self.features_t = tf.constant(np.ascontiguousarray(self._features.T)) if item_mode == "catalogue" else None
        self._step = tf.function(self._train_step, input_signature=[INDEX_SPEC] * 5)
        self._compiled_catalogue = tf.function(lambda: model.item_vectors(self.features))
        self._weights_version = 0  # counts weight changes: a check's scorer and accuracy share one catalogue pass
        self._catalogue_cache: tuple[int, tf.Tensor] | None = None
        vectors = tf.TensorSpec([None, model.output_dim], tf.float32)
        self._profiles = tf.function(
            lambda h, values, row_ids: model.profile_vectors(tf.gather(h, values), row_ids),
            input_signature=[vectors, INDEX_SPEC, INDEX_SPEC],
        )
        self._count_right = tf.function(self._count_right_order, input_signature=[vectors, vectors] + [INDEX_SPEC] * 3)
        self._layout: tuple[Triples, tuple[tf.Tensor, ...]] | None = None

    def _train_step(self, values, row_ids, positive, negative, profile_rows):
        with tf.GradientTape() as tape:
            margin = self.model.triple_margins(
                self.features,
                values,
                row_ids,
                positive,
                negative,
                self.item_mode,
                profile_rows,
                features_t=self.features_t,
                fused=self.fused,
            )
            loss = self.model.margin_loss(margin, self.l2)
        self.minimise(tape, loss)
        return loss

    def train_step(self, batch: Batch) -> float:
        self._weights_version += 1
        return float(self._step(batch.values, batch.row_ids, batch.positive, batch.negative, batch.triple_profiles))

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        self._weights_version += 1
        super().set_weights(weights)

    def _catalogue(self) -> tf.Tensor:
        """Φ(f_i) of every item with the current weights."""
        if self._catalogue_cache is None or self._catalogue_cache[0] != self._weights_version:
            self._catalogue_cache = (self._weights_version, self._compiled_catalogue())
        return self._catalogue_cache[1]

    @staticmethod
    def _count_right_order(item_vectors, profiles, positive, negative, profile_rows):
        delta = tf.gather(item_vectors, positive) - tf.gather(item_vectors, negative)
        margins = tf.reduce_sum(tf.gather(profiles, profile_rows) * delta, axis=1)
        return tf.reduce_sum(tf.cast(margins > 0, tf.int64))

    def pairwise_accuracy(self, data: Triples, batch_size: int = 65536) -> float:
        """Share of triples with x_ui > x_uj.

        The tower runs once over the catalogue and the head once per distinct
        profile of ``data``; the layout of ``data``'s distinct profiles is built
        once and kept for the next call with the same triples (every check reads
        the same validation triples).
        """
        if self._layout is None or self._layout[0] is not data:
            whole = data.batch(np.arange(len(data)), distinct_profiles=True)
            parts = (whole.values, whole.row_ids, whole.positive, whole.negative, whole.triple_profiles)
            self._layout = (data, tuple(tf.constant(part) for part in parts))
        values, row_ids, positive, negative, profile_rows = self._layout[1]
        vectors = self._catalogue()
        profiles = self._profiles(vectors, values, row_ids)
        right = 0
        for start in range(0, len(data), batch_size):
            rows = slice(start, start + batch_size)
            right += int(self._count_right(vectors, profiles, positive[rows], negative[rows], profile_rows[rows]))
        return right / len(data)

    def scorer(self) -> CuratorNetScorer:
        """A scorer of the current weights: a snapshot of the catalogue's Φ(f_i) (ask again after a step)
        with the model's head."""
        vectors = self._catalogue().numpy()
        return CuratorNetScorer(
            self.model, self.standardizer, self.embeddings, features=self._features, catalogue=vectors
        )


class CuratorNetScorer:
    """CuratorNet behind the :class:`~curatornet.models.base.Scorer` interface.

    ``embeddings`` are raw (unstandardised) vectors indexed by item; rows
    beyond the training catalogue are new items, scored like any other (cold
    start): the model needs only their embedding. ``queries.users`` is unused.
    """

    name = "curatornet"

    def __init__(
        self,
        model: CuratorNet,
        standardizer: Standardizer,
        embeddings: np.ndarray,
        chunk: int = 8192,
        features: np.ndarray | None = None,
        catalogue: np.ndarray | None = None,
    ):
        """``features``: ``embeddings`` already standardised; ``catalogue``: Φ(f_i) of every item
        already computed with the model's current weights (a trainer's snapshot)."""
        self.model = model
        self.features = standardizer.transform(embeddings, source="embeddings") if features is None else features
        self.catalogue = catalogue
        self.chunk = chunk

    @classmethod
    def load(cls, model_dir: str | Path, embeddings: np.ndarray) -> CuratorNetScorer:
        def build(meta: dict, dim: int) -> CuratorNet:
            hyper = meta["hyperparameters"]
            pooling = hyper.get("pooling", PAPER_POOLING)  # a model.json of before the pooling was a choice
            return CuratorNet(dim, hyper["tower_units"], hyper["head_units"], pooling=pooling)

        model, meta = restore_model(model_dir, embeddings, build)
        return cls(model, Standardizer.load(Path(model_dir) / meta["standardizer"]), embeddings)

    def _check(self, items: np.ndarray, field: str) -> np.ndarray:
        return check_item_indexes(items, len(self.features), None, field)

    def item_vectors(self, items: np.ndarray) -> np.ndarray:
        """Φ(f_i) of the given items, (m, output_dim)."""
        items = self._check(items, "items")
        if self.catalogue is not None:
            return self.catalogue[items]
        parts = [
            self.model.item_vectors(tf.constant(self.features[items[s : s + self.chunk]])).numpy()
            for s in range(0, len(items), self.chunk)
        ]
        return np.concatenate(parts) if parts else np.zeros((0, self.model.output_dim), np.float32)

    def profile_vectors(self, profiles: Sequence[np.ndarray]) -> np.ndarray:
        """Φ(P_u) of each profile, (n, output_dim); the tower runs once per distinct profile item."""
        lengths = np.array([len(p) for p in profiles], dtype=np.int64)
        if (lengths == 0).any():
            raise InputError(
                None,
                "profiles",
                int(np.flatnonzero(lengths == 0)[0]),
                "CuratorNet needs at least one item in every profile (query index shown)",
            )
        if len(profiles) == 0:
            return np.zeros((0, self.model.output_dim), np.float32)
        values = self._check(np.concatenate([np.asarray(p) for p in profiles]), "profiles")
        distinct, where = np.unique(values, return_inverse=True)
        vectors = self.item_vectors(distinct)
        row_ids = np.repeat(np.arange(len(profiles), dtype=np.int32), lengths)
        return self.model.profile_vectors(tf.constant(vectors[where]), tf.constant(row_ids)).numpy()

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        candidates = self.item_vectors(items)
        profiles = self.profile_vectors(queries.profiles)
        return (profiles @ candidates.T).astype(np.float32, copy=False)


def choose_item_mode(train: Triples, n_items: int, batch_size: int, seed: int) -> str:
    """'catalogue' when a batch touches most items anyway, else 'unique'.

    Running the tower over the whole catalogue skips tf.unique and the gather
    of input rows; it only pays off when a batch's distinct items come close
    to the catalogue size.
    """
    rng = stream_rng(seed, "item mode probe")
    counts = []
    for _ in range(3):
        rows = rng.choice(len(train), size=min(batch_size, len(train)), replace=False)
        batch = train.batch(rows)
        counts.append(len(np.unique(np.concatenate([batch.values, batch.positive, batch.negative]))))
    share = float(np.mean(counts)) / n_items
    mode = "catalogue" if share > CATALOGUE_MODE_SHARE else "unique"
    log.info("a batch touches %.0f%% of the %d items: the item tower runs per %s", 100 * share, n_items, mode)
    return mode


def build_trainer(inputs: TrainingInputs) -> tuple[CuratorNetTrainer, dict[str, Any]]:
    """CuratorNet of the run's hyperparameters with its trainer, and the hyperparameters to record
    (its model record's ``trainer``, :mod:`curatornet.parts`)."""
    from curatornet.models.environment import configure_tensorflow

    settings = inputs.settings
    configure_tensorflow(threads=inputs.threads, seed=settings.seed)
    hyper = dict(settings.hyperparameters)
    dim, pooling = inputs.embeddings.shape[1], hyper["pooling"]
    model = CuratorNet(dim, hyper["tower_units"], hyper["head_units"], seed=settings.seed, pooling=pooling)
    mode = choose_item_mode(inputs.train, len(inputs.embeddings), settings.schedule.batch_size, settings.seed)
    trainer = CuratorNetTrainer(
        model, inputs.standardizer, inputs.embeddings, settings.l2, settings.schedule.learning_rate, mode
    )
    return trainer, {**hyper, "item_mode": mode, "fused_step": trainer.fused}
