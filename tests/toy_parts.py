"""A toy of each kind of part, registered from the tests alone: a plugin module (CURATORNET_PLUGINS, or the
workflow's config key ``plugins``) that no project file names.

- model ``toy``: a linear map W of the standardised embeddings, trained in NumPy by BPR; an item's vector is
  W f_i, a profile's the mean of its items' vectors, the score their inner product. The same class serves
  as its TensorFlow-free scorer and as its NumPy twin for serving. Its config block: ``training.toy.dim``.
- baseline ``toy_norm``: items ranked by the length of their embedding (``evaluation.toy_norm.sign`` flips it).
- metric ``top_hit`` (no cut-off): whether the best-ranked candidate is a ground-truth item.
- guideline ``toy_cluster``: profile {i}, positive another item of i's visual cluster, negative an item of
  another cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curatornet import parts
from curatornet.models.base import Queries
from curatornet.models.features import Standardizer
from curatornet.models.persistence import load_weights_npz, read_model_meta
from curatornet.registry import BaselineSpec, GuidelineSpec, MetricSpec, ModelSpec
from curatornet.sampling.guidelines import GuidelineSampler
from curatornet.sampling.triples import Triples
from curatornet.seeds import stream_rng

# --------------------------------------------------------------------------- the model


class ToyWeights:
    def __init__(self, w: np.ndarray):
        self.w = w

    def weights_dict(self) -> dict[str, np.ndarray]:
        return {"w": self.w.copy()}


class ToyModel:
    """Scores of W f: a scorer (evaluation, validation) and a NumPy twin (serving) in one."""

    name = "toy"

    def __init__(self, w: np.ndarray, standardizer: Standardizer, embeddings: np.ndarray | None = None, meta=None):
        self.w, self.standardizer, self.meta = w, standardizer, dict(meta or {})
        self.features = None if embeddings is None else standardizer.transform(embeddings)

    # Scorer: evaluation and validation.
    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        vectors = self.features @ self.w
        lengths = np.array([len(p) for p in queries.profiles])
        flat = np.concatenate([np.asarray(p, dtype=np.int64) for p in queries.profiles]) if len(lengths) else []
        return (self.query_vectors(queries.users, vectors, flat, lengths) @ vectors[items].T).astype(np.float32)

    # NumPy twin: serving.
    @classmethod
    def from_dir(cls, model_dir, meta=None) -> ToyModel:
        meta = meta or read_model_meta(model_dir)
        standardizer = Standardizer.load(Path(model_dir) / meta["standardizer"])
        return cls(load_weights_npz(Path(model_dir) / meta["weights"])["w"], standardizer, meta=meta)

    @classmethod
    def load(cls, model_dir, embeddings: np.ndarray) -> ToyModel:
        model = cls.from_dir(model_dir)
        model.features = model.standardizer.transform(embeddings)
        return model

    @property
    def output_dim(self) -> int:
        return self.w.shape[1]

    def item_vectors(self, embeddings: np.ndarray, items: np.ndarray, source: str | None = None) -> np.ndarray:
        return self.standardizer.transform(embeddings, source=source) @ self.w

    def query_vectors(self, users, item_vectors: np.ndarray, flat, lengths) -> np.ndarray:
        lengths = np.asarray(lengths, dtype=np.int64)
        out = np.zeros((len(lengths), self.w.shape[1]), np.float32)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        np.add.at(out, rows, item_vectors[np.asarray(flat, dtype=np.int64)])
        return out / np.maximum(lengths, 1)[:, None]


class ToyTrainer:
    """BPR on x = mean(W f_profile) · W (f_i − f_j) by plain gradient steps (the loop's Trainer)."""

    def __init__(self, inputs):
        settings = inputs.settings
        dim = int(settings.hyperparameters["dim"])
        rng = stream_rng(settings.seed, "toy/w")
        self.standardizer = inputs.standardizer
        self.embeddings = inputs.embeddings
        self.features = inputs.standardizer.transform(inputs.embeddings)
        self.model = ToyWeights(rng.normal(0, 1 / np.sqrt(self.features.shape[1]), (self.features.shape[1], dim)))
        self.l2 = settings.l2
        self.learning_rate = settings.schedule.learning_rate

    def _margins(self, batch):
        f = self.features
        profiles = np.zeros((batch.row_ids.max() + 1 if len(batch.row_ids) else 0, f.shape[1]))
        np.add.at(profiles, batch.row_ids, f[batch.values])
        profiles /= np.maximum(np.bincount(batch.row_ids, minlength=len(profiles)), 1)[:, None]
        p, d = profiles[batch.triple_profiles], f[batch.positive] - f[batch.negative]
        w = self.model.w
        return p, d, np.sum((p @ w) * (d @ w), axis=1)

    def train_step(self, batch) -> float:
        p, d, x = self._margins(batch)
        g = -0.5 * (1 - np.tanh(0.5 * x))  # d softplus(-x) / dx
        w = self.model.w
        gradient = ((p * g[:, None]).T @ (d @ w) + (d * g[:, None]).T @ (p @ w)) / len(x) + 2 * self.l2 * w
        self.model.w = w - 50 * self.learning_rate * gradient
        return float(np.mean(np.logaddexp(0, -x)))

    def pairwise_accuracy(self, data: Triples) -> float:
        right = 0
        for start in range(0, len(data), 4096):
            right += int((self._margins(data.batch(np.arange(start, min(start + 4096, len(data)))))[2] > 0).sum())
        return right / len(data)

    def scorer(self) -> ToyModel:
        return ToyModel(self.model.w, self.standardizer, self.embeddings)

    def get_weights(self) -> dict[str, np.ndarray]:
        return self.model.weights_dict()

    def set_weights(self, weights) -> None:
        self.model.w = np.array(weights["w"])


def build_toy_trainer(inputs):
    return ToyTrainer(inputs), {"dim": int(inputs.settings.hyperparameters["dim"])}


TOY_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "The toy model's size.",
    "default": {},
    "properties": {"dim": {"type": "integer", "minimum": 1, "default": 6, "description": "Columns of W."}},
}

# --------------------------------------------------------------------------- the baseline, metric and guideline


class NormScorer:
    name = "toy_norm"

    def __init__(self, embeddings: np.ndarray, sign: int):
        self.norms = sign * np.linalg.norm(embeddings, axis=1).astype(np.float32)

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.norms[items], (len(queries), len(items))).copy()


def build_norm(embeddings, purchases, settings):
    return NormScorer(embeddings, settings["toy_norm"]["sign"])


NORM_SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "description": "The toy baseline's direction.",
    "properties": {"sign": {"type": "integer", "enum": [-1, 1], "default": 1, "description": "1: longest first."}},
}


def top_hit(ranked) -> np.ndarray:
    return ranked.hits[:, 0].astype(np.float64)


@dataclass
class SameClusterSampler(GuidelineSampler):
    cluster: np.ndarray | None = None

    def draw(self, rng: np.random.Generator, n: int, max_profile: int | None) -> Triples:
        order = np.argsort(self.cluster, kind="stable")
        sizes = np.bincount(self.cluster)
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        anchor = order[rng.integers(0, len(order), n)]
        anchor = anchor[sizes[self.cluster[anchor]] >= 2]
        own = self.cluster[anchor]
        positive = order[starts[own] + rng.integers(0, sizes[own])]
        keep = positive != anchor
        anchor, positive, own = anchor[keep], positive[keep], own[keep]
        negative = rng.integers(0, len(self.cluster), len(anchor))
        keep = self.cluster[negative] != own
        return Triples.single_items(anchor[keep], positive[keep], negative[keep])


def build_same_cluster(data) -> SameClusterSampler:
    cluster = np.asarray(data.cluster, dtype=np.int64)
    usable = int((np.bincount(cluster)[cluster] >= 2).sum()) if len(np.unique(cluster)) > 1 else 0
    return SameClusterSampler("toy_cluster", usable, {}, cluster)


# --------------------------------------------------------------------------- registration

parts.register_model(
    ModelSpec(
        name="toy",
        display="ToyModel",
        trainer=build_toy_trainer,
        scorer=ToyModel.load,
        numpy=ToyModel.from_dir,
        guidelines=("d4_profile", "toy_cluster"),
        schema=TOY_SCHEMA,
    )
)
parts.register_baseline(BaselineSpec("toy_norm", "ToyNorm", build_norm, schema=NORM_SCHEMA))
parts.register_metric(MetricSpec("top_hit", "TopHit", top_hit))
parts.register_guideline(
    GuidelineSpec("toy_cluster", build_same_cluster, frozenset({"clusters"}), single_item_profiles=True)
)
