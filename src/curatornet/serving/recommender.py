"""The recommendation service's state and operations, independent of HTTP.

The catalogue is the inventory at the end of the purchase log, plus items
added since, minus items removed since (the changes live in a
:class:`~curatornet.serving.store.CatalogueStore`). Every item ever known
(sold and removed ones included) keeps its vector, so that it can be part of
a profile; only catalogue items are candidates.

Reads run concurrently; changes are serialised by one lock and become
visible in a fixed order (vector, then catalogue membership, then the id), so
that a request sees an item either completely or not at all.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curatornet.models.persistence import read_model_meta
from curatornet.serving.data import check_model_matches_data, load_data, training_hash
from curatornet.serving.index import Exclusions, make_index, sorted_top_k
from curatornet.serving.models import GrowingMatrix, NumpyScorer, NumpyVBPR, load_numpy_model
from curatornet.serving.store import AlreadyExists, CatalogueStore

#: Largest k a request may ask for, and most items in a request's profile.
MAX_K = 1000
MAX_PROFILE = 1000
DB_FILE = "catalogue.sqlite"


class ServiceError(Exception):
    """A request the service cannot honour: HTTP status, the field, its value and what is wrong."""

    def __init__(self, status: int, field: str, value: Any, problem: str):
        super().__init__(f"{field}: {problem} (value: {value!r})")
        self.status, self.field, self.value, self.problem = status, field, value, problem


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    artist_id: str | None
    score: float


class Recommender:
    """A model, its catalogue and the changes made to it; see the module docstring.

    ``vbpr_fold_in``: serve users VBPR was not trained on with a folded-in
    vector (:meth:`curatornet.serving.models.NumpyVBPR.fold_in`, an
    approximation) instead of refusing them.
    """

    def __init__(
        self,
        model_dir: str | Path,
        data_dir: str | Path,
        db_path: str | Path | None = None,
        index: str = "exact",
        vbpr_fold_in: bool = False,
        fold_in_seed: int = 0,
        index_options: dict | None = None,
    ):
        self.model_dir = Path(model_dir)
        self.meta = read_model_meta(self.model_dir)
        model = load_numpy_model(self.model_dir)
        data = load_data(data_dir)
        check_model_matches_data(self.meta, self.model_dir, data)
        self.data = data
        self.vbpr_fold_in, self.fold_in_seed = bool(vbpr_fold_in), int(fold_in_seed)
        self.training_hash = training_hash(self.meta)
        self.scorer = NumpyScorer(model, data.embeddings, source=str(data.embeddings_path))
        self.item_ids: list[str] = [str(i) for i in data.item_ids]
        self.artist_ids: list[str | None] = list(data.artist_ids)
        self._position = {item_id: k for k, item_id in enumerate(self.item_ids)}
        self._users = {
            user_id: u
            for u, user_id in enumerate(data.user_ids)
            if user_id is not None and data.history_offsets[u + 1] > data.history_offsets[u]
        }
        active = np.zeros(data.n_items, bool)
        active[data.inventory()] = True
        self.db_path = Path(db_path) if db_path is not None else self.model_dir / DB_FILE
        self.store = CatalogueStore(self.db_path, data.fingerprint, data.embedding_dim)
        active = self._replay(active)
        self._active = GrowingMatrix(active)
        self._norms = GrowingMatrix(self._similarity_norms(self.scorer.item_matrix()))
        vectors = self.scorer.item_matrix()
        self.index = make_index(index, vectors.shape[1], **(index_options or {}))
        self.index.train(vectors)  # on every known item, so that an empty catalogue still trains
        self.index.add(np.flatnonzero(active), vectors[active])
        self._write_lock = threading.Lock()

    # ------------------------------------------------------------------ start-up

    def _replay(self, active: np.ndarray) -> np.ndarray:
        """Apply the stored changes to the base catalogue; returns the catalogue mask."""
        added = [item for item in self.store.added_items() if item.item_id not in self._position]
        if added:
            indexes = self.scorer.add_items(np.stack([item.embedding for item in added]), source=str(self.db_path))
            for index, item in zip(indexes, added):
                self.item_ids.append(item.item_id)
                self.artist_ids.append(item.artist_id)
                self._position[item.item_id] = int(index)
            active = np.concatenate([active, np.ones(len(added), bool)])
        for item_id in self.store.removed_ids():
            if item_id in self._position:
                active[self._position[item_id]] = False
        return active

    def _similarity_vectors(self, vectors: np.ndarray) -> np.ndarray:
        # VBPR's first coordinate is the item bias, not a direction in taste space.
        return vectors[:, 1:] if isinstance(self.scorer.model, NumpyVBPR) else vectors

    def _similarity_norms(self, vectors: np.ndarray) -> np.ndarray:
        return np.linalg.norm(self._similarity_vectors(vectors), axis=1).astype(np.float32)

    # ------------------------------------------------------------------ reads

    @property
    def embedding_dim(self) -> int:
        return self.scorer.embedding_dim

    @property
    def model_name(self) -> str:
        return self.scorer.name

    def catalogue_size(self) -> int:
        return int(self._active.view().sum())

    def _profile(self, item_ids: Sequence[str], field: str) -> np.ndarray:
        if len(item_ids) == 0:
            raise ServiceError(422, field, [], "empty profile: give at least one item id")
        unknown = [item_id for item_id in item_ids if item_id not in self._position]
        if unknown:
            raise ServiceError(422, field, unknown[:20], f"{len(unknown)} unknown item id(s)")
        return np.unique([self._position[item_id] for item_id in item_ids])

    def _check_k(self, k: int) -> None:
        if not 1 <= k <= MAX_K:
            raise ServiceError(422, "k", k, f"must be between 1 and {MAX_K}")

    def _query(self, profile: np.ndarray, user: int | None, field: str, value: Any) -> np.ndarray:
        model = self.scorer.model
        if isinstance(model, NumpyVBPR):
            if user is not None and model.has_vector(np.array([user]))[0]:
                return model.user_vectors(np.array([user]))[0]
            if not self.vbpr_fold_in:
                raise ServiceError(
                    422,
                    field,
                    value,
                    "this is a VBPR model, which has no vector for a user it was not trained on and cannot serve "
                    "one without retraining; start the service with --vbpr-fold-in for an approximate vector "
                    "fitted to the profile, or serve a CuratorNet model",
                )
            return self.scorer.fold_in_vectors([profile], seed=self.fold_in_seed)[0]
        return self.scorer.flat_query_vectors(np.array([-1]), profile, np.array([len(profile)]))[0]

    def _top(self, query: np.ndarray, k: int, exclude: np.ndarray) -> list[Recommendation]:
        scores, ids = self.index.search(query[None, :], k, Exclusions.for_one_query(exclude))
        return [
            Recommendation(self.item_ids[i], self.artist_ids[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0
        ]

    def recommend_for_items(self, item_ids: Sequence[str], k: int = 20) -> list[Recommendation]:
        """Cold start: the top ``k`` catalogue items for a new user who likes ``item_ids`` (never recommended)."""
        self._check_k(k)
        profile = self._profile(item_ids, "items")
        return self._top(self._query(profile, None, "items", list(item_ids)[:20]), k, profile)

    def recommend_for_user(self, user_id: str, k: int = 20) -> list[Recommendation]:
        """A user of the purchase log: profile = their purchases, which are never recommended."""
        self._check_k(k)
        user = self._users.get(user_id)
        if user is None:
            raise ServiceError(404, "user_id", user_id, "unknown user (no purchase in the purchase log)")
        profile = self.data.history(user)
        return self._top(self._query(profile, user, "user_id", user_id), k, profile)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Catalogue items nearest to ``item_id`` by cosine similarity of the item vectors (exact)."""
        self._check_k(k)
        position = self._position.get(item_id)
        if position is None:
            raise ServiceError(404, "item_id", item_id, "unknown item id")
        norms = self._norms.view()
        n = len(norms)
        vectors = self._similarity_vectors(self.scorer.item_matrix()[:n])
        active = self._active.view()[:n]
        denominator = norms * norms[position]
        similarity = (vectors @ vectors[position]) / np.where(denominator > 0, denominator, 1.0)
        similarity[~active] = -np.inf
        similarity[position] = -np.inf
        scores, ids = sorted_top_k(similarity[None, :].astype(np.float32), np.arange(n), k)
        return [
            Recommendation(self.item_ids[i], self.artist_ids[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0
        ]

    def health(self) -> dict[str, Any]:
        return {
            "status": "ok",
            "model": self.model_name,
            "model_dir": str(self.model_dir.resolve()),
            "training_sha256": self.training_hash,
            "catalogue_size": self.catalogue_size(),
            "catalogue_fingerprint": self.data.fingerprint,
            "items_known": len(self._norms),
            "index": self.index.kind,
            "database": str(self.db_path.resolve()),
            "vbpr_fold_in": self.vbpr_fold_in,
        }

    # ------------------------------------------------------------------ changes

    def add_item(
        self, item_id: str, embedding: Sequence[float], artist_id: str | None = None, one_of_a_kind: bool = True
    ) -> int:
        """A new upload: a candidate from the next request on. Returns the catalogue size."""
        vector = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if len(vector) != self.embedding_dim:
            raise ServiceError(422, "embedding", len(vector), f"expected {self.embedding_dim} values (its length)")
        if not np.isfinite(vector).all():
            bad = int(np.flatnonzero(~np.isfinite(vector))[0])
            raise ServiceError(422, f"embedding.{bad}", str(vector[bad]), "values must be finite numbers")
        with self._write_lock:
            if item_id in self._position:
                state = "in the catalogue" if self._active.view()[self._position[item_id]] else "sold or removed"
                raise ServiceError(409, "item_id", item_id, f"an item with this id already exists ({state})")
            try:
                self.store.add_item(item_id, artist_id, one_of_a_kind, vector)
            except AlreadyExists as exc:
                raise ServiceError(409, "item_id", item_id, "an item with this id is already in the database") from exc
            self.item_ids.append(item_id)
            self.artist_ids.append(artist_id)
            index = int(self.scorer.add_items(vector[None, :])[0])
            new_vector = self.scorer.item_matrix()[index : index + 1]
            self._norms.append(self._similarity_norms(new_vector))
            self._active.append(np.ones(1, bool))
            self.index.add(np.array([index]), new_vector)
            self._position[item_id] = index
            return self.catalogue_size()

    def remove_item(self, item_id: str) -> int:
        """Sold or withdrawn: never recommended again. Returns the catalogue size."""
        with self._write_lock:
            position = self._position.get(item_id)
            if position is None:
                raise ServiceError(404, "item_id", item_id, "unknown item id")
            if not self._active.view()[position]:
                raise ServiceError(404, "item_id", item_id, "the item is not in the catalogue (sold or removed)")
            try:
                self.store.remove_item(item_id)
            except AlreadyExists as exc:
                raise ServiceError(404, "item_id", item_id, "the item was already removed") from exc
            self._active.view()[position] = False
            self.index.remove(np.array([position]))
            return self.catalogue_size()

    def close(self) -> None:
        self.store.close()
