"""VBPR (He & McAuley, AAAI 2016), the paper's state-of-the-art baseline (section 4.3).

x_ui = β_i + γ_u·γ_i + θ_u·(E f_i) + β′·f_i, with ``latent_dim`` non-visual
and ``visual_dim`` visual factors, trained by BPR (−ln σ(x_ui − x_uj)) on
(user, positive, negative) triples. f_i is the standardised embedding (the
same standardisation as CuratorNet, saved with the model). The user-only
terms cancel in x_ui − x_uj, so the model has none.

Regularisation: λ times the squared norm of the parameters a batch uses,
i.e. the user and item rows of the batch (averaged over its triples, like the
loss) plus E and β′.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np
import tensorflow as tf

from curatornet.errors import InputError, check_item_indexes
from curatornet.models.base import Queries
from curatornet.models.features import Standardizer
from curatornet.models.keras_trainer import INDEX_SPEC, KerasTrainer
from curatornet.models.persistence import assign_weight, restore_model
from curatornet.sampling.triples import Batch, Triples
from curatornet.seeds import stream_seed

if TYPE_CHECKING:  # typing only
    from curatornet.models.train import TrainingInputs

_WEIGHTS = ("beta_item", "gamma_user", "gamma_item", "theta_user", "projection", "beta_visual")


class VBPR(keras.Model):
    """VBPR's parameters for ``n_users`` users and ``n_items`` items with ``input_dim``-d features."""

    def __init__(
        self,
        n_users: int,
        n_items: int,
        input_dim: int = 2048,
        latent_dim: int = 100,
        visual_dim: int = 100,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if n_users < 1 or n_items < 1:
            raise InputError(None, "n_users/n_items", (n_users, n_items), "VBPR needs at least one user and item")
        self.n_users, self.n_items, self.input_dim = int(n_users), int(n_items), int(input_dim)
        self.latent_dim, self.visual_dim = int(latent_dim), int(visual_dim)

        def normal(name: str, shape: tuple[int, ...], std: float = 0.01):
            # One stream per weight and seed: no two runs share initial weights.
            initializer = keras.initializers.RandomNormal(stddev=std, seed=stream_seed(seed, f"vbpr/{name}"))
            return self.add_weight(shape=shape, initializer=initializer, name=name)

        self.beta_item = self.add_weight(shape=(n_items,), initializer="zeros", name="beta_item")
        self.gamma_user = normal("gamma_user", (n_users, latent_dim))
        self.gamma_item = normal("gamma_item", (n_items, latent_dim))
        self.theta_user = normal("theta_user", (n_users, visual_dim))
        # E's scale keeps E f_i of unit-variance features around 0.01 like the factors.
        self.projection = normal("projection", (input_dim, visual_dim), 0.01 / np.sqrt(input_dim))
        self.beta_visual = self.add_weight(shape=(input_dim,), initializer="zeros", name="beta_visual")
        #: Users seen in training; the others are scored with the item-side terms only.
        self.known_users = np.zeros(n_users, dtype=bool)

    def mark_known_users(self, users: np.ndarray) -> None:
        users = np.asarray(users)
        self.known_users[users[(users >= 0) & (users < self.n_users)]] = True

    def margins(
        self, features: tf.Tensor, user, positive, negative, item_mode: str = "gather"
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """(x_ui − x_uj, per-triple squared norm of the rows used) for known users.

        The visual terms are linear in f. ``gather`` projects each triple's
        f_i − f_j (batch × dim work); ``catalogue`` projects the whole
        catalogue once per step (items × dim work) and gathers the rows, which
        is cheaper whenever the catalogue is smaller than about twice the
        batch, and avoids gathering batch × dim raw features.
        """
        g_u, t_u = tf.gather(self.gamma_user, user), tf.gather(self.theta_user, user)
        g_i, g_j = tf.gather(self.gamma_item, positive), tf.gather(self.gamma_item, negative)
        b_i, b_j = tf.gather(self.beta_item, positive), tf.gather(self.beta_item, negative)
        if item_mode == "catalogue":
            visual = tf.matmul(features, self.projection)  # (n_items, visual_dim)
            visual_bias = tf.linalg.matvec(features, self.beta_visual)  # (n_items,)
            visual_diff = tf.gather(visual, positive) - tf.gather(visual, negative)
            bias_diff = tf.gather(visual_bias, positive) - tf.gather(visual_bias, negative)
        else:
            f_diff = tf.gather(features, positive) - tf.gather(features, negative)
            visual_diff = tf.matmul(f_diff, self.projection)
            bias_diff = tf.linalg.matvec(f_diff, self.beta_visual)
        margin = b_i - b_j + tf.reduce_sum(g_u * (g_i - g_j), axis=1) + tf.reduce_sum(t_u * visual_diff, axis=1)
        margin += bias_diff
        norms = (
            tf.reduce_sum(tf.square(g_u), 1)
            + tf.reduce_sum(tf.square(t_u), 1)
            + tf.reduce_sum(tf.square(g_i), 1)
            + tf.reduce_sum(tf.square(g_j), 1)
            + tf.square(b_i)
            + tf.square(b_j)
        )
        return margin, norms

    def bpr_loss(self, margin: tf.Tensor, norms: tf.Tensor, l2: float) -> tf.Tensor:
        shared = tf.reduce_sum(tf.square(self.projection)) + tf.reduce_sum(tf.square(self.beta_visual))
        return tf.reduce_mean(tf.nn.softplus(-margin)) + l2 * (tf.reduce_mean(norms) + shared)

    def weights_dict(self) -> dict[str, np.ndarray]:
        out = {name: np.array(getattr(self, name).numpy()) for name in _WEIGHTS}
        out["known_users"] = self.known_users.copy()
        return out

    def load_weights_dict(self, weights: Mapping[str, np.ndarray], source: str | None = None) -> None:
        for name in _WEIGHTS:
            assign_weight(getattr(self, name), weights, name, source)
        if "known_users" in weights:
            self.known_users = np.asarray(weights["known_users"], dtype=bool).copy()


def choose_item_mode(n_items: int, batch_size: int) -> str:
    """'catalogue' when projecting every item costs less than projecting a batch's differences."""
    return "catalogue" if n_items <= 2 * batch_size else "gather"


class VBPRTrainer(KerasTrainer):
    """Compiled VBPR train and validation steps for :func:`curatornet.models.loop.fit`."""

    def __init__(
        self,
        model: VBPR,
        standardizer: Standardizer,
        embeddings: np.ndarray,
        l2: float,
        learning_rate: float,
        item_mode: str = "gather",
    ):
        if item_mode not in ("gather", "catalogue"):
            raise InputError(None, "item_mode", item_mode, "expected 'gather' or 'catalogue'")
        super().__init__(model, learning_rate)
        self.l2 = float(l2)
        self.item_mode = item_mode
        self.standardizer = standardizer
        self.embeddings = embeddings
        self._features = standardizer.transform(embeddings, source="embeddings")
        self.features = tf.constant(self._features)
        self._step = tf.function(self._train_step, input_signature=[INDEX_SPEC] * 3)
        self._margin = tf.function(
            lambda u, i, j: model.margins(self.features, u, i, j, item_mode)[0], input_signature=[INDEX_SPEC] * 3
        )

    def _train_step(self, user, positive, negative):
        with tf.GradientTape() as tape:
            margin, norms = self.model.margins(self.features, user, positive, negative, self.item_mode)
            loss = self.model.bpr_loss(margin, norms, self.l2)
        self.minimise(tape, loss)
        return loss

    def train_step(self, batch: Batch) -> float:
        return float(self._step(batch.user, batch.positive, batch.negative))

    def pairwise_accuracy(self, data: Triples, batch_size: int = 65536) -> float:
        """Share of triples with x_ui > x_uj; users unknown to the model get the item-side terms only."""
        features = self._features
        right = 0
        for start in range(0, len(data), batch_size):
            rows = slice(start, start + batch_size)
            user, positive, negative = data.user[rows], data.positive[rows], data.negative[rows]
            known = (user >= 0) & (user < self.model.n_users)
            known[known] = self.model.known_users[user[known]]
            margin = self._margin(np.where(known, user, 0).astype(np.int32), positive, negative).numpy()
            if not known.all():
                # Unknown users: recompute without the user terms.
                margin[~known] = item_side_scores(self.model, features, positive[~known]) - item_side_scores(
                    self.model, features, negative[~known]
                )
            right += int((margin > 0).sum())
        return right / len(data)

    def scorer(self) -> VBPRScorer:
        """A scorer reading the current weights (the model is shared, not copied)."""
        return VBPRScorer(self.model, self.standardizer, self.embeddings, features=self._features)


def item_side_scores(model: VBPR, features: np.ndarray, items: np.ndarray) -> np.ndarray:
    """β_i + β′·f_i (β_i is 0 for items the model has never seen)."""
    items = np.asarray(items, dtype=np.int64)
    beta = np.zeros(len(items), np.float32)
    seen = items < model.n_items
    beta[seen] = model.beta_item.numpy()[items[seen]]
    return beta + features[items] @ model.beta_visual.numpy()


class VBPRScorer:
    """VBPR behind the :class:`~curatornet.models.base.Scorer` interface.

    A query's user must be the ``user`` index of training; a user unknown to
    the model (users = -1, outside the model, or never in a training triple)
    is scored with the item-side terms only, β_i + β′·f_i, the same ranking
    for everyone, since VBPR has no way to read a profile. Items beyond the
    training catalogue (cold start) get β_i = 0 and γ_i = 0: only their visual
    terms count. ``queries.profiles`` is unused.
    """

    name = "vbpr"

    def __init__(
        self, model: VBPR, standardizer: Standardizer, embeddings: np.ndarray, features: np.ndarray | None = None
    ):
        """``features``: ``embeddings`` already standardised (a trainer's copy)."""
        self.model = model
        self.features = standardizer.transform(embeddings, source="embeddings") if features is None else features

    @classmethod
    def load(cls, model_dir: str | Path, embeddings: np.ndarray) -> VBPRScorer:
        def build(meta: dict, dim: int) -> VBPR:
            hyper = meta["hyperparameters"]
            return VBPR(int(meta["n_users"]), int(meta["n_items"]), dim, hyper["latent_dim"], hyper["visual_dim"])

        model, meta = restore_model(model_dir, embeddings, build)
        return cls(model, Standardizer.load(Path(model_dir) / meta["standardizer"]), embeddings)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        items = check_item_indexes(items, len(self.features), None, "items")
        m = self.model
        seen = items < m.n_items
        gamma_item = np.zeros((len(items), m.latent_dim), np.float32)
        gamma_item[seen] = m.gamma_item.numpy()[items[seen]]
        visual = self.features[items] @ m.projection.numpy()  # (n_items, visual_dim)
        scores = np.broadcast_to(item_side_scores(m, self.features, items), (len(queries), len(items))).copy()
        users = queries.users
        known = (users >= 0) & (users < m.n_users)
        known[known] = m.known_users[users[known]]
        if known.any():
            u = users[known]
            scores[known] += m.gamma_user.numpy()[u] @ gamma_item.T + m.theta_user.numpy()[u] @ visual.T
        return scores.astype(np.float32, copy=False)


def build_trainer(inputs: TrainingInputs) -> tuple[VBPRTrainer, dict[str, Any]]:
    """VBPR of the run's hyperparameters (one row per user of the purchases, those of the training
    triples marked known) with its trainer, and the hyperparameters to record (its model record's
    ``trainer``, :mod:`curatornet.parts`)."""
    from curatornet.models.environment import configure_tensorflow

    settings = inputs.settings
    configure_tensorflow(threads=inputs.threads, seed=settings.seed)
    n_items, dim = inputs.embeddings.shape
    hyper = dict(settings.hyperparameters)
    model = VBPR(max(inputs.n_users, 1), n_items, dim, hyper["latent_dim"], hyper["visual_dim"], seed=settings.seed)
    model.mark_known_users(inputs.train.user)
    mode = choose_item_mode(n_items, settings.schedule.batch_size)
    trainer = VBPRTrainer(
        model, inputs.standardizer, inputs.embeddings, settings.l2, settings.schedule.learning_rate, mode
    )
    return trainer, {**hyper, "item_mode": mode}
