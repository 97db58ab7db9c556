"""CuratorNet and VBPR restored from a model directory and run in NumPy (no TensorFlow).

Both models score by an inner product between a query vector and an item
vector, which is what makes one matrix product per block of users, and an
inner-product index (:mod:`curatornet.serving.index`), possible:

- CuratorNet: item vector Φ(f_i) (the item tower on the standardised
  embedding), query vector Φ(P_u) (the head on the mean and the max of the
  profile's item vectors); score Φ(P_u)·Φ(f_i).
- VBPR: item vector [β_i + β′·f_i, γ_i, E f_i], query vector [1, γ_u, θ_u];
  their product is VBPR's score β_i + γ_u·γ_i + θ_u·(E f_i) + β′·f_i. A user
  without trained factors gets [1, 0, 0]: the item-side terms only, as in
  :class:`curatornet.models.vbpr.VBPRScorer`. Items beyond the training
  catalogue get β_i = 0 and γ_i = 0.

:class:`NumpyScorer` wraps any such model (:class:`NumpyModel`: these two,
or a plugin's) behind the :class:`~curatornet.models.base.Scorer` interface
over a catalogue of embeddings; item vectors are computed once, and only for
new items when the catalogue grows. Which class restores a directory is the
model's record (:class:`curatornet.registry.ModelSpec`, ``numpy``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from curatornet import parts
from curatornet.errors import InputError, check_item_indexes
from curatornet.models.base import PAPER_POOLING, Queries, pooling_parts
from curatornet.models.features import Standardizer
from curatornet.models.persistence import MODEL_FILE, load_weights_npz, read_model_meta
from curatornet.registry import resolve

#: SELU constants as Keras defines them (keras.activations.selu).
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

#: Rows pushed through the item tower at a time (bounds temporary memory).
TOWER_CHUNK = 8192


def selu(x: np.ndarray) -> np.ndarray:
    """scale * (x if x > 0 else alpha * (exp(x) - 1)), in the dtype of ``x``."""
    negative = np.expm1(np.minimum(x, 0))
    negative *= x.dtype.type(SELU_ALPHA)
    out = np.where(x > 0, x, negative)
    out *= x.dtype.type(SELU_SCALE)
    return out


@dataclass(frozen=True)
class Dense:
    """A dense layer with SELU activation, float32."""

    kernel: np.ndarray  # (inputs, units)
    bias: np.ndarray  # (units,)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        h = x @ self.kernel
        h += self.bias
        return selu(h)


def _model_files(model_dir: str | Path, meta: Mapping[str, Any] | None, expected: str):
    model_dir = Path(model_dir)
    meta = dict(meta) if meta is not None else read_model_meta(model_dir)
    if meta.get("model") != expected:
        raise InputError(model_dir / MODEL_FILE, "model", meta.get("model"), f"expected a {expected} model")
    weights_path = model_dir / meta.get("weights", "weights.npz")
    standardizer = Standardizer.load(model_dir / meta.get("standardizer", "standardizer.npz"))
    dim = int(meta.get("embedding_dim", standardizer.dim))
    if standardizer.dim != dim:
        raise InputError(model_dir / MODEL_FILE, "embedding_dim", dim, f"standardizer has dimension {standardizer.dim}")
    return model_dir, meta, load_weights_npz(weights_path), weights_path, standardizer


def _weight(weights: Mapping[str, np.ndarray], key: str, shape: tuple, source: Path, dtype=np.float32) -> np.ndarray:
    """``weights[key]`` checked against ``shape`` (None: any size along that axis)."""
    if key not in weights:
        raise InputError(source, key, sorted(weights), "weight missing")
    value = np.asarray(weights[key])
    if value.ndim != len(shape) or any(e is not None and e != s for e, s in zip(shape, value.shape)):
        raise InputError(source, key, value.shape, f"expected shape {shape}")
    if value.dtype != bool and not np.isfinite(value).all():
        raise InputError(source, key, "NaN/inf", "weights must be finite")
    return np.ascontiguousarray(value, dtype=dtype)


class NumpyModel(Protocol):
    """What serving needs from a model's NumPy twin (its record's ``numpy`` restores one from a directory).

    Scores are inner products of query vectors and item vectors. A model that
    cannot serve a user it never saw (its record's ``cold_start`` is False)
    also has ``has_vector(users)`` and ``user_vectors(users)``, and may have
    ``fold_in(item_vectors, profile, candidates, seed)``.
    """

    name: str
    meta: dict
    standardizer: Standardizer
    output_dim: int  # the length of an item (and a query) vector

    def item_vectors(self, embeddings: np.ndarray, items: np.ndarray, source: str | None = None) -> np.ndarray:
        """Item vectors of raw embeddings; ``items``: their item indexes."""
        ...

    def query_vectors(self, users: np.ndarray, item_vectors: np.ndarray, flat: np.ndarray, lengths: np.ndarray):
        """Query vectors of users whose profiles are given flat (profile q: the next ``lengths[q]`` items)."""
        ...


class NumpyCuratorNet:
    """CuratorNet's forward pass: item tower, pooling (the paper's mean+max, or one of them), profile head
    (all Dense + SELU)."""

    name = "curatornet"

    def __init__(self, tower: Sequence[Dense], head: Sequence[Dense], standardizer: Standardizer, meta: Mapping):
        self.tower, self.head = list(tower), list(head)
        self.standardizer = standardizer
        self.meta = dict(meta)
        self.pools = pooling_parts(self.meta.get("hyperparameters", {}).get("pooling", PAPER_POOLING))

    @property
    def input_dim(self) -> int:
        return self.standardizer.dim

    @property
    def output_dim(self) -> int:
        return int(self.tower[-1].kernel.shape[1])

    @classmethod
    def from_dir(cls, model_dir: str | Path, meta: Mapping[str, Any] | None = None) -> NumpyCuratorNet:
        model_dir, meta, weights, source, standardizer = _model_files(model_dir, meta, "curatornet")
        hyper = meta.get("hyperparameters", {})
        tower_units, head_units = list(hyper.get("tower_units", [])), list(hyper.get("head_units", []))
        if not tower_units or not head_units or tower_units[-1] != head_units[-1]:
            raise InputError(
                model_dir / MODEL_FILE,
                "hyperparameters",
                {"tower_units": tower_units, "head_units": head_units},
                "need tower and head sizes whose last sizes are equal",
            )

        def layers(prefix: str, inputs: int, units: Sequence[int]) -> list[Dense]:
            out = []
            for k, size in enumerate(units):
                kernel = _weight(weights, f"{prefix}_{k}/kernel", (inputs, int(size)), source)
                out.append(Dense(kernel, _weight(weights, f"{prefix}_{k}/bias", (int(size),), source)))
                inputs = int(size)
            return out

        tower = layers("tower", standardizer.dim, tower_units)
        pools = pooling_parts(hyper.get("pooling", PAPER_POOLING))
        head = layers("head", len(pools) * int(tower_units[-1]), head_units)
        return cls(tower, head, standardizer, meta)

    def item_vectors(
        self, embeddings: np.ndarray, items: np.ndarray | None = None, source: str | None = None
    ) -> np.ndarray:
        """Φ(f_i) of raw embeddings (rows), float32 (n, output_dim); the item indexes do not matter."""
        features = self.standardizer.transform(embeddings, source=source)
        out = np.empty((len(features), self.output_dim), np.float32)
        for start in range(0, len(features), TOWER_CHUNK):
            h = features[start : start + TOWER_CHUNK]
            for layer in self.tower:
                h = layer(h)
            out[start : start + len(h)] = h
        return out

    def profile_vectors(self, vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Φ(P) of profiles given their items' vectors, profile after profile (``lengths`` > 0 each)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        if len(lengths) == 0:
            return np.zeros((0, self.output_dim), np.float32)
        if (lengths <= 0).any():
            raise InputError(
                None, "profiles", int(np.flatnonzero(lengths <= 0)[0]), "CuratorNet needs at least one item per profile"
            )
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        statistics = {
            "mean": lambda: np.add.reduceat(vectors, starts, axis=0) / lengths[:, None].astype(np.float32),
            "max": lambda: np.maximum.reduceat(vectors, starts, axis=0),
        }
        pooled = np.concatenate([statistics[name]() for name in self.pools], axis=1)
        for layer in self.head:
            pooled = layer(pooled)
        return pooled

    def query_vectors(self, users: np.ndarray, item_vectors: np.ndarray, flat: np.ndarray, lengths: np.ndarray):
        """Φ(P_u) of every profile (the users do not matter)."""
        if len(lengths) and (np.asarray(lengths) == 0).any():
            raise InputError(
                None,
                "profiles",
                int(np.flatnonzero(np.asarray(lengths) == 0)[0]),
                "CuratorNet needs at least one item in every profile (query index shown)",
            )
        check_item_indexes(flat, len(item_vectors), None, "profiles")
        return self.profile_vectors(item_vectors[flat], lengths)

    def similarity_vectors(self, item_vectors: np.ndarray) -> np.ndarray:
        return item_vectors


class NumpyVBPR:
    """VBPR's parameters and its scores as inner products (see the module docstring)."""

    name = "vbpr"

    def __init__(self, weights: Mapping[str, np.ndarray], standardizer: Standardizer, meta: Mapping):
        self.beta_item = weights["beta_item"]
        self.gamma_user = weights["gamma_user"]
        self.gamma_item = weights["gamma_item"]
        self.theta_user = weights["theta_user"]
        self.projection = weights["projection"]
        self.beta_visual = weights["beta_visual"]
        self.known_users = weights["known_users"]
        self.standardizer = standardizer
        self.meta = dict(meta)
        #: λ of training; fold-in regularises the new user's factors with it.
        self.l2 = float(meta.get("l2", 0.0))

    @property
    def n_items(self) -> int:
        return len(self.beta_item)

    @property
    def n_users(self) -> int:
        return len(self.gamma_user)

    @property
    def latent_dim(self) -> int:
        return int(self.gamma_item.shape[1])

    @property
    def output_dim(self) -> int:
        return 1 + self.latent_dim + int(self.projection.shape[1])

    @classmethod
    def from_dir(cls, model_dir: str | Path, meta: Mapping[str, Any] | None = None) -> NumpyVBPR:
        model_dir, meta, weights, source, standardizer = _model_files(model_dir, meta, "vbpr")
        dim = standardizer.dim
        beta_item = _weight(weights, "beta_item", (None,), source)
        gamma_item = _weight(weights, "gamma_item", (len(beta_item), None), source)
        gamma_user = _weight(weights, "gamma_user", (None, gamma_item.shape[1]), source)
        theta_user = _weight(weights, "theta_user", (len(gamma_user), None), source)
        checked = {
            "beta_item": beta_item,
            "gamma_item": gamma_item,
            "gamma_user": gamma_user,
            "theta_user": theta_user,
            "projection": _weight(weights, "projection", (dim, theta_user.shape[1]), source),
            "beta_visual": _weight(weights, "beta_visual", (dim,), source),
        }
        if "known_users" in weights:
            checked["known_users"] = _weight(weights, "known_users", (len(gamma_user),), source, bool)
        else:  # older directories: every user index of the model was trained
            checked["known_users"] = np.ones(len(gamma_user), bool)
        return cls(checked, standardizer, meta)

    def item_vectors(self, embeddings: np.ndarray, items: np.ndarray, source: str | None = None) -> np.ndarray:
        """[β_i + β′·f_i, γ_i, E f_i] for raw embeddings of the item indexes ``items`` (float32)."""
        features = self.standardizer.transform(embeddings, source=source)
        items = np.asarray(items, dtype=np.int64)
        trained = (items >= 0) & (items < self.n_items)
        out = np.zeros((len(items), self.output_dim), np.float32)
        out[:, 0] = features @ self.beta_visual
        out[trained, 0] += self.beta_item[items[trained]]
        out[trained, 1 : 1 + self.latent_dim] = self.gamma_item[items[trained]]
        out[:, 1 + self.latent_dim :] = features @ self.projection
        return out

    def query_vectors(self, users: np.ndarray, item_vectors: np.ndarray, flat: np.ndarray, lengths: np.ndarray):
        """[1, γ_u, θ_u] per user (the profiles do not matter)."""
        return self.user_vectors(users)

    def similarity_vectors(self, item_vectors: np.ndarray) -> np.ndarray:
        """[γ_i, E f_i]: the first coordinate is the item bias, not a direction in taste space."""
        return item_vectors[:, 1:]

    def has_vector(self, users: np.ndarray) -> np.ndarray:
        """Whether each user index has trained factors (in range and in a training triple)."""
        users = np.asarray(users, dtype=np.int64)
        known = (users >= 0) & (users < self.n_users)
        known[known] = self.known_users[users[known]]
        return known

    def user_vectors(self, users: np.ndarray) -> np.ndarray:
        """[1, γ_u, θ_u] per user; [1, 0, 0] (item-side terms only) for users without factors."""
        users = np.asarray(users, dtype=np.int64)
        known = self.has_vector(users)
        out = np.zeros((len(users), self.output_dim), np.float32)
        out[:, 0] = 1.0
        out[known, 1 : 1 + self.latent_dim] = self.gamma_user[users[known]]
        out[known, 1 + self.latent_dim :] = self.theta_user[users[known]]
        return out

    def fold_in(
        self,
        item_vectors: np.ndarray,
        profile: np.ndarray,
        candidates: np.ndarray | None = None,
        seed: int = 0,
        negatives_per_item: int = 20,
        steps: int = 100,
    ) -> np.ndarray:
        """An approximate query vector [1, γ_u, θ_u] for a user VBPR never saw.

        Fits γ_u and θ_u to the profile with every item parameter fixed: BPR's
        loss −ln σ(x_ui − x_uj) over the profile items i, each against
        ``negatives_per_item`` items j drawn (seeded) from ``candidates`` minus
        the profile, plus λ‖(γ_u, θ_u)‖² with the model's λ. ``steps`` full-batch
        gradient steps of size 1/L, L the Lipschitz constant of the gradient,
        from zero (the item-side ranking). This is not what retraining would
        learn: the items' factors were fitted without this user.
        """
        profile = np.unique(np.asarray(profile, dtype=np.int64))
        pool = np.arange(len(item_vectors)) if candidates is None else np.asarray(candidates, dtype=np.int64)
        pool = np.setdiff1d(pool, profile)
        user = np.zeros(self.output_dim, np.float32)
        user[0] = 1.0
        if len(profile) == 0 or len(pool) == 0:
            return user
        rng = np.random.default_rng(seed)
        negatives = rng.choice(pool, size=len(profile) * negatives_per_item)
        positives = np.repeat(profile, negatives_per_item)
        diff = item_vectors[positives].astype(np.float64) - item_vectors[negatives].astype(np.float64)
        bias, directions = diff[:, 0], diff[:, 1:]
        n_pairs = len(diff)
        # σ' ≤ 1/4, so the mean loss's gradient is L-Lipschitz with this L.
        lipschitz = 0.25 * np.linalg.norm(directions, 2) ** 2 / n_pairs + 2 * self.l2
        if lipschitz <= 0:
            return user
        w = np.zeros(directions.shape[1])
        for _ in range(steps):
            margin = bias + directions @ w
            weight = 0.5 * (1.0 - np.tanh(0.5 * margin))  # σ(−margin), overflow-free
            gradient = -(directions.T @ weight) / n_pairs + 2 * self.l2 * w
            w -= gradient / lipschitz
        user[1:] = w
        return user


def similarity_vectors(model: NumpyModel, item_vectors: np.ndarray) -> np.ndarray:
    """The part of a model's item vectors whose cosine says how alike two items look: the model's
    ``similarity_vectors`` when it has one (VBPR leaves out the item bias), else all of them."""
    similar = getattr(model, "similarity_vectors", None)
    return item_vectors if similar is None else similar(item_vectors)


def load_numpy_model(model_dir: str | Path) -> NumpyModel:
    """The model of a trained model directory, in NumPy (the twin its record names)."""
    meta = read_model_meta(model_dir)
    spec = parts.model(meta.get("model"), Path(model_dir) / MODEL_FILE, "model")
    return resolve(spec.numpy)(model_dir, meta)


class GrowingMatrix:
    """Rows that can be appended, amortised O(1) per row; readers never see a half-written row.

    Appends (from one writer at a time) write the rows, then publish the new
    size; :meth:`view` reads the size first, so a concurrent reader sees
    either the old rows or all of the new ones.
    """

    def __init__(self, rows: np.ndarray):
        rows = np.asarray(rows)
        self._data = np.array(rows, copy=True)
        self._size = len(rows)

    def __len__(self) -> int:
        return self._size

    def view(self) -> np.ndarray:
        size = self._size
        return self._data[:size]

    def append(self, rows: np.ndarray) -> int:
        """Append ``rows``; returns the index of the first."""
        rows = np.asarray(rows, dtype=self._data.dtype)
        start = self._size
        needed = start + len(rows)
        data = self._data
        if needed > len(data):
            grown = np.empty((max(needed, 2 * len(data), 16),) + data.shape[1:], data.dtype)
            grown[:start] = data[:start]
            data = grown
        data[start:needed] = rows
        self._data = data
        self._size = needed
        return start


class FactorScorer(Protocol):
    """A scorer whose scores are query vectors times item vectors (fast paths use it)."""

    name: str

    def item_matrix(self) -> np.ndarray: ...

    def query_vectors(self, queries: Queries) -> np.ndarray: ...

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray: ...


class NumpyScorer:
    """A NumPy model over a catalogue of raw embeddings (row = item index), as a Scorer.

    Item vectors are computed once here; :meth:`add_items` computes them for
    new items only. The model decides what a query vector reads: for
    CuratorNet the profile and not the user, for VBPR the user and not the
    profile (as in the TensorFlow scorers), unless :meth:`fold_in_vectors` is
    asked for. ``cold_start`` is the model record's: whether a user the model
    never saw can be served.
    """

    def __init__(self, model: NumpyModel, embeddings: np.ndarray, source: str | None = None):
        self.model = model
        self.name = model.name
        self.cold_start = parts.model(model.name).cold_start
        embeddings = np.asarray(embeddings, dtype=np.float32)
        if embeddings.ndim != 2 or embeddings.shape[1] != model.standardizer.dim:
            raise InputError(
                source, "embedding", embeddings.shape, f"expected vectors of length {model.standardizer.dim}"
            )
        self._vectors = GrowingMatrix(self._compute(embeddings, 0, source))
        self._lock = threading.Lock()

    @property
    def embedding_dim(self) -> int:
        return self.model.standardizer.dim

    def __len__(self) -> int:
        return len(self._vectors)

    def _compute(self, embeddings: np.ndarray, first: int, source: str | None) -> np.ndarray:
        vectors = self.model.item_vectors(embeddings, np.arange(first, first + len(embeddings)), source=source)
        return np.asarray(vectors, dtype=np.float32)

    def add_items(self, embeddings: np.ndarray, source: str | None = None) -> np.ndarray:
        """Append new items (raw embeddings); returns their item indexes."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.embedding_dim)
        with self._lock:
            first = len(self._vectors)
            self._vectors.append(self._compute(embeddings, first, source))
        return np.arange(first, first + len(embeddings))

    def vectors_for(self, embeddings: np.ndarray, source: str | None = None) -> np.ndarray:
        """The item vectors of raw embeddings of items about to be added (nothing is added).

        Overflow is not an error here: a caller checks the vectors (an extreme
        embedding may give inf or NaN)."""
        embeddings = np.asarray(embeddings, dtype=np.float32).reshape(-1, self.embedding_dim)
        with np.errstate(all="ignore"):
            return self._compute(embeddings, len(self._vectors), source)

    def append_vectors(self, vectors: np.ndarray) -> np.ndarray:
        """Append item vectors made by :meth:`vectors_for`; returns their item indexes."""
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.model.output_dim)
        with self._lock:
            first = self._vectors.append(vectors)
        return np.arange(first, first + len(vectors))

    def item_matrix(self) -> np.ndarray:
        """Item vectors of every item, (n_items, d)."""
        return self._vectors.view()

    def query_vectors(self, queries: Queries) -> np.ndarray:
        profiles = [np.asarray(p, dtype=np.int64) for p in queries.profiles]
        lengths = np.array([len(p) for p in profiles], dtype=np.int64)
        flat = np.concatenate(profiles) if profiles else np.zeros(0, np.int64)
        return self.flat_query_vectors(queries.users, flat, lengths)

    def flat_query_vectors(self, users: np.ndarray, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Query vectors with the profiles given flat: profile q is the next ``lengths[q]`` items of ``flat``."""
        vectors = self.item_matrix()
        return np.asarray(self.model.query_vectors(users, vectors, flat, np.asarray(lengths)), dtype=np.float32)

    def similarity_vectors(self, item_vectors: np.ndarray) -> np.ndarray:
        return similarity_vectors(self.model, item_vectors)

    def fold_in_vectors(self, profiles: Sequence[np.ndarray], candidates: np.ndarray | None = None, seed: int = 0):
        """Folded-in query vectors for profiles of users the model never saw (see NumpyVBPR.fold_in)."""
        fold_in = getattr(self.model, "fold_in", None)
        if fold_in is None:
            raise InputError(None, "model", self.name, "this model has no fold-in (VBPR has)")
        vectors = self.item_matrix()
        return np.stack([fold_in(vectors, p, candidates, seed) for p in profiles])

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        vectors = self.item_matrix()
        items = check_item_indexes(items, len(vectors), None, "items")
        return (self.query_vectors(queries) @ vectors[items].T).astype(np.float32, copy=False)


def load_numpy_scorer(model_dir: str | Path, embeddings: np.ndarray) -> NumpyScorer:
    """Like :func:`curatornet.models.registry.load_scorer`, without TensorFlow."""
    return NumpyScorer(load_numpy_model(model_dir), embeddings)


def write_untrained_curatornet(
    out_dir: str | Path,
    embeddings: np.ndarray,
    tower_units: Sequence[int] = (200, 200),
    head_units: Sequence[int] = (300, 200, 200),
    seed: int = 0,
    item_ids: Sequence[str] | None = None,
    pooling: str = PAPER_POOLING,
) -> dict[str, Any]:
    """An untrained CuratorNet in the model-directory format, without TensorFlow.

    Weights are drawn as Keras initialises the network (LeCun normal kernels,
    standard deviation 1/√fan_in, zero biases); the standardisation is fitted
    on ``embeddings``. For benchmarks and tests of serving: the scores are
    those of an initial network, not of a trained one. With ``item_ids`` the
    catalogue fingerprint is recorded in model.json.
    """
    import pandas as pd

    from curatornet.artifacts import catalogue_fingerprint
    from curatornet.models.persistence import write_model_dir

    class _Weights:
        def weights_dict(self) -> dict[str, np.ndarray]:
            return weights

    rng = np.random.default_rng(seed)
    standardizer = Standardizer.fit(embeddings)
    weights: dict[str, np.ndarray] = {}
    head_inputs = len(pooling_parts(pooling)) * tower_units[-1]
    for prefix, inputs, units in (("tower", standardizer.dim, tower_units), ("head", head_inputs, head_units)):
        for k, size in enumerate(units):
            weights[f"{prefix}_{k}/kernel"] = (rng.standard_normal((inputs, size)) / np.sqrt(inputs)).astype(np.float32)
            weights[f"{prefix}_{k}/bias"] = np.zeros(size, np.float32)
            inputs = size
    meta: dict[str, Any] = {
        "model": "curatornet",
        "sampling": "none",
        "l2": 0.0,
        "n_items": len(embeddings),
        "n_users": 0,
        "hyperparameters": {"tower_units": list(tower_units), "head_units": list(head_units), "pooling": pooling},
        "training": {"untrained": True, "seed": int(seed)},
    }
    if item_ids is not None:
        meta["catalogue"] = {"n_items": len(item_ids), "fingerprint": catalogue_fingerprint(item_ids)}
    return write_model_dir(out_dir, _Weights(), standardizer, pd.DataFrame(), meta)
