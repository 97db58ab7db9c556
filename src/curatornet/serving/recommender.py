"""The recommendation service's state and operations, independent of HTTP.

The catalogue is the inventory at the end of the purchase log, plus items
added since, minus items removed since (the changes live in a
:class:`~curatornet.serving.store.CatalogueStore`). Every item ever known
(sold and removed ones included) keeps its vector, so that it can be part of
a profile; only catalogue items are candidates.

**Snapshots.** Every request reads one :class:`Snapshot`, taken when it
starts: the model, how many items are known, their vectors and similarity
norms, and the catalogue. Snapshots are never changed; a change builds the
next one and publishes it with a single reference assignment, so a request
sees an item completely or not at all, and never a catalogue flag without
its vector. Changes are serialised by one lock, which a change waits for at
most ``lock_wait`` seconds (then: 503). A change asked not to wait
(``wait=False``) raises :class:`WouldWait` instead of waiting for that lock or
the database's, having changed nothing: the service tries a change on its
event loop that way and hands it to a worker thread only when it would wait.

**Reloading.** :meth:`Recommender.reload` loads the model now selected (a
retrained run, say), computes the vectors of every item with it, re-applies
the database's changes and swaps it in the same way: requests in flight
finish on the old model. A model of another catalogue, or one that does not
load, is refused and the old one keeps serving.

**New items' vectors.** A new item is refused (422) when the model's vector
for its embedding is not finite, or longer than :data:`VECTOR_LIMIT` times
the longest vector among the data folder's items. A score is the inner
product of a query vector with the item's vector, so an item whose vector is
k times longer than any other gets k times the scores and tops most lists:
an embedding scaled by mistake (100 times an existing one) would outrank the
whole catalogue for many users. Items of the catalogue's own distribution
stay close to its range: in the generated catalogue of the tests, items held
out of it reach at most 1.08 times its longest vector, so a factor of 2
refuses none of them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from curatornet import parts
from curatornet.errors import InputError
from curatornet.models.persistence import MODEL_FILE, STANDARDIZER_FILE, WEIGHTS_FILE, read_model_meta
from curatornet.serving.data import ServingData, check_model_matches_data, load_data, training_hash
from curatornet.serving.index import Exclusions, make_index, sorted_top_k
from curatornet.serving.models import GrowingMatrix, NumpyModel, NumpyScorer, load_numpy_model, similarity_vectors
from curatornet.serving.store import LOCK_WAIT_S, AlreadyExists, CatalogueStore, Changes, StoreError

log = logging.getLogger(__name__)

#: Largest k a request may ask for, and most items in a request's profile.
MAX_K = 1000
MAX_PROFILE = 1000
DB_FILE = "catalogue.sqlite"
#: A new item's vector may be at most this many times as long as the longest vector of the data folder's items.
VECTOR_LIMIT = 2.0
#: Seconds a client is asked to wait (Retry-After) when the database is locked by another connection.
RETRY_AFTER_S = 2


class ServiceError(Exception):
    """A request the service cannot honour: HTTP status, the field, its value, what is wrong (and headers)."""

    def __init__(self, status: int, field: str, value: Any, problem: str, headers: dict[str, str] | None = None):
        super().__init__(f"{field}: {problem} (value: {value!r})")
        self.status, self.field, self.value, self.problem = status, field, value, problem
        self.headers = headers or {}


class WouldWait(Exception):
    """A change asked not to wait found the write lock or the database's lock held; nothing changed."""


@dataclass(frozen=True)
class Recommendation:
    item_id: str
    artist_id: str | None
    score: float


@dataclass(frozen=True)
class LoadedModel:
    """A model read from a run directory, with what identifies it."""

    run_dir: Path
    meta: dict
    model: NumpyModel  # the twin its record names (serving.models)
    model_id: str  # sha256 of model.json, the weights and the standardisation, first 16 hex digits
    training_hash: str

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def run(self) -> dict[str, Any]:
        """Sampling, λ and seed as model.json records them (what a store's operator recognises)."""
        seed = self.meta.get("seed", self.meta.get("training", {}).get("seed"))
        return {"sampling": self.meta.get("sampling"), "l2": self.meta.get("l2"), "seed": seed}


def model_id(run_dir: str | Path, meta: dict) -> str:
    """A model's identity: its files' bytes (a retrained run gets a new id even with the same settings)."""
    run_dir = Path(run_dir)
    digest = hashlib.sha256()
    for name in (MODEL_FILE, meta.get("weights", WEIGHTS_FILE), meta.get("standardizer", STANDARDIZER_FILE)):
        path = run_dir / str(name)
        digest.update(str(name).encode() + b"\0")
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def load_model(run_dir: str | Path, data: ServingData | None = None) -> LoadedModel:
    """The model of a run directory in NumPy; with ``data``, refused unless made for that catalogue."""
    run_dir = Path(run_dir)
    meta = read_model_meta(run_dir)
    model = load_numpy_model(run_dir)
    if data is not None:
        check_model_matches_data(meta, run_dir, data)
    return LoadedModel(run_dir, meta, model, model_id(run_dir, meta), training_hash(meta))


@dataclass(frozen=True)
class Snapshot:
    """What one request reads: never changed once published (the lists and the dict only grow,
    and entries at or past ``n`` are not part of this snapshot)."""

    model: LoadedModel
    n: int  # items known
    vectors: np.ndarray  # (n, d) item vectors
    norms: np.ndarray  # (n,) lengths of the similarity vectors
    active: np.ndarray  # (n,) bool: the catalogue
    size: int  # items in the catalogue
    item_ids: list[str]
    artist_ids: list[str | None]
    position: dict[str, int]
    index: Any
    vector_limit: float

    def find(self, item_id: str) -> int | None:
        position = self.position.get(item_id)
        return position if position is not None and position < self.n else None

    def similarity_vectors(self) -> np.ndarray:
        # The model's choice: VBPR's first coordinate is the item bias, not a direction in taste space.
        return similarity_vectors(self.model.model, self.vectors)


class _ModelState:
    """One model's view of every item; changed only by the writer (or a reload not yet published)."""

    def __init__(self, loaded: LoadedModel, data: ServingData, inventory: np.ndarray, index: str, options: dict):
        self.loaded = loaded
        self.scorer = NumpyScorer(loaded.model, data.embeddings, source=str(data.embeddings_path))
        base = self.scorer.item_matrix()
        longest = float(np.linalg.norm(base, axis=1).max()) if len(base) else math.inf
        self.vector_limit = VECTOR_LIMIT * longest
        self.item_ids: list[str] = [str(i) for i in data.item_ids]
        self.artist_ids: list[str | None] = list(data.artist_ids)
        self.position = {item_id: k for k, item_id in enumerate(self.item_ids)}
        self.norms = GrowingMatrix(self._similarity_norms(base))
        self.active = inventory.copy()
        self.index_kind, self.index_options = index, dict(options or {})
        self.index = None
        self.added_until = self.removed_until = 0

    def _similarity_norms(self, vectors: np.ndarray) -> np.ndarray:
        vectors = similarity_vectors(self.loaded.model, vectors)
        return np.linalg.norm(vectors, axis=1).astype(np.float32)

    def vector_problem(self, vector: np.ndarray) -> tuple[Any, str] | None:
        """(value, problem) when the model's vector of a new item is refused; see the module docstring."""
        if not np.isfinite(vector).all():
            return "not finite", (
                "the model's vector for this embedding is not finite (the values are too large for the model): "
                "check the embedding's scale"
            )
        length = float(np.linalg.norm(vector.astype(np.float64)))
        if length > self.vector_limit:
            return round(length, 3), (
                f"the model's vector for this embedding has length {length:.4g}, more than {VECTOR_LIMIT:g} times "
                f"the longest vector of the catalogue's items (limit {self.vector_limit:.4g}): an embedding this far "
                "outside the catalogue's range would outrank every item; check the embedding's scale"
            )
        return None

    def apply(self, changes: Changes) -> None:
        """Add the recorded items not known yet and remove the recorded removals."""
        new = [item for item in changes.added if item.item_id not in self.position]
        if new:
            vectors = self.scorer.vectors_for(np.stack([item.embedding for item in new]))
            finite = np.isfinite(vectors).all(axis=1)
            if not finite.all():
                vectors[~finite] = 0.0
                left_out = [item.item_id for item, ok in zip(new, finite) if not ok]
                log.warning(
                    "%d stored item(s) left out of the catalogue: this model's vectors for them are not finite "
                    "(first: %r)",
                    len(left_out),
                    left_out[0],
                )
            first = int(self.scorer.append_vectors(vectors)[0])
            self.norms.append(self._similarity_norms(vectors))
            for k, item in enumerate(new):
                self.item_ids.append(item.item_id)
                self.artist_ids.append(item.artist_id)
                self.position[item.item_id] = first + k
            self.active = np.concatenate([self.active, finite])
            if self.index is not None and finite.any():
                self.index.add(first + np.flatnonzero(finite), vectors[finite])
        gone = np.array([self.position[i] for i in changes.removed if i in self.position], dtype=np.int64)
        gone = gone[self.active[gone]] if len(gone) else gone
        if len(gone):
            active = self.active.copy()
            active[gone] = False
            self.active = active
            if self.index is not None:
                self.index.remove(gone)
        self.added_until, self.removed_until = changes.added_until, changes.removed_until

    def build_index(self) -> None:
        vectors = self.scorer.item_matrix()
        index = make_index(self.index_kind, vectors.shape[1], **self.index_options)
        index.train(vectors)  # on every known item, so that an empty catalogue still trains
        index.add(np.flatnonzero(self.active), vectors[self.active])
        self.index = index

    def add(self, item_id: str, artist_id: str | None, vector: np.ndarray) -> None:
        position = int(self.scorer.append_vectors(vector[None, :])[0])
        self.norms.append(self._similarity_norms(vector[None, :]))
        self.item_ids.append(item_id)
        self.artist_ids.append(artist_id)
        self.active = np.append(self.active, True)
        self.index.add(np.array([position]), vector[None, :])
        self.position[item_id] = position

    def remove(self, position: int) -> None:
        active = self.active.copy()
        active[position] = False
        self.active = active
        self.index.remove(np.array([position]))

    def snapshot(self) -> Snapshot:
        n = len(self.active)
        return Snapshot(
            model=self.loaded,
            n=n,
            vectors=self.scorer.item_matrix()[:n],
            norms=self.norms.view()[:n],
            active=self.active,
            size=int(self.active.sum()),
            item_ids=self.item_ids,
            artist_ids=self.artist_ids,
            position=self.position,
            index=self.index,
            vector_limit=self.vector_limit,
        )


class Recommender:
    """A model, its catalogue and the changes made to it; see the module docstring.

    ``model_dir`` is what :meth:`reload` selects from again: ``select_model``
    maps it to the run directory to load (default: ``model_dir`` itself).
    ``vbpr_fold_in``: serve users VBPR was not trained on with a folded-in
    vector (:meth:`curatornet.serving.models.NumpyVBPR.fold_in`, an
    approximation) instead of refusing them. ``read_only``: open the database
    without writing to it, and refuse every change (403).
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
        read_only: bool = False,
        lock_wait: float = LOCK_WAIT_S,
        select_model: Callable[[Path], Path] | None = None,
    ):
        self.model_source = Path(model_dir)
        self._select = select_model or (lambda path: Path(path))
        run_dir = Path(self._select(self.model_source))
        loaded = load_model(run_dir)  # a bad model directory is named before a bad data folder
        self.data = load_data(data_dir)
        check_model_matches_data(loaded.meta, run_dir, self.data)
        self.vbpr_fold_in, self.fold_in_seed = bool(vbpr_fold_in), int(fold_in_seed)
        self.index_kind, self.index_options = index, dict(index_options or {})
        self.read_only, self.lock_wait = bool(read_only), float(lock_wait)
        data = self.data
        self._users = {
            user_id: u
            for u, user_id in enumerate(data.user_ids)
            if user_id is not None and data.history_offsets[u + 1] > data.history_offsets[u]
        }
        self._inventory = np.zeros(data.n_items, bool)
        self._inventory[data.inventory()] = True
        self.db_path = Path(db_path) if db_path is not None else run_dir / DB_FILE
        self.store = CatalogueStore(
            self.db_path, data.fingerprint, data.embedding_dim, read_only=self.read_only, lock_wait=self.lock_wait
        )
        try:
            state = self._new_state(loaded)
        except BaseException:
            self.store.close()
            raise
        self._state = state
        self._snapshot = state.snapshot()
        self._write_lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self.loaded_at = time.time()
        #: Reloads by outcome, for the metrics.
        self.reloads = {"done": 0, "refused": 0}

    def _new_state(self, loaded: LoadedModel) -> _ModelState:
        state = _ModelState(loaded, self.data, self._inventory, self.index_kind, self.index_options)
        state.apply(self.store.changes())
        state.build_index()
        return state

    # ------------------------------------------------------------------ reads

    def snapshot(self) -> Snapshot:
        """What a request reads (see the module docstring)."""
        return self._snapshot

    @property
    def model(self) -> LoadedModel:
        return self._snapshot.model

    @property
    def model_dir(self) -> Path:
        return self._snapshot.model.run_dir

    @property
    def embedding_dim(self) -> int:
        return self.data.embedding_dim

    @property
    def model_name(self) -> str:
        return self._snapshot.model.name

    def catalogue_size(self) -> int:
        return self._snapshot.size

    def items_known(self) -> int:
        return self._snapshot.n

    @staticmethod
    def _profile(snap: Snapshot, item_ids: Sequence[str], field: str) -> np.ndarray:
        if len(item_ids) == 0:
            raise ServiceError(422, field, [], "empty profile: give at least one item id")
        positions = [snap.find(item_id) for item_id in item_ids]
        unknown = [item_id for item_id, p in zip(item_ids, positions) if p is None]
        if unknown:
            raise ServiceError(422, field, unknown[:20], f"{len(unknown)} unknown item id(s)")
        return np.unique(np.array(positions, dtype=np.int64))

    @staticmethod
    def _check_k(k: int) -> None:
        if not 1 <= k <= MAX_K:
            raise ServiceError(422, "k", k, f"must be between 1 and {MAX_K}")

    def _query(self, snap: Snapshot, profile: np.ndarray, user: int | None, field: str, value: Any) -> np.ndarray:
        model = snap.model.model
        if not parts.model(model.name).cold_start:  # a vector per training user, none for others (VBPR)
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
            return model.fold_in(snap.vectors, profile, seed=self.fold_in_seed)
        return model.query_vectors(np.array([-1]), snap.vectors, profile, np.array([len(profile)]))[0]

    @staticmethod
    def _top(snap: Snapshot, query: np.ndarray, k: int, exclude: np.ndarray) -> list[Recommendation]:
        scores, ids = snap.index.search(query[None, :], k, Exclusions.for_one_query(exclude), allowed=snap.active)
        return [
            Recommendation(snap.item_ids[i], snap.artist_ids[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0
        ]

    def recommend_for_items(self, item_ids: Sequence[str], k: int = 20) -> list[Recommendation]:
        """Cold start: the top ``k`` catalogue items for a new user who likes ``item_ids`` (never recommended)."""
        self._check_k(k)
        snap = self._snapshot
        profile = self._profile(snap, item_ids, "items")
        return self._top(snap, self._query(snap, profile, None, "items", list(item_ids)[:20]), k, profile)

    def recommend_for_user(self, user_id: str, k: int = 20) -> list[Recommendation]:
        """A user of the purchase log: profile = their purchases, which are never recommended."""
        self._check_k(k)
        snap = self._snapshot
        user = self._users.get(user_id)
        if user is None:
            raise ServiceError(404, "user_id", user_id, "unknown user (no purchase in the purchase log)")
        profile = self.data.history(user)
        return self._top(snap, self._query(snap, profile, user, "user_id", user_id), k, profile)

    def similar_items(self, item_id: str, k: int = 10) -> list[Recommendation]:
        """Catalogue items nearest to ``item_id`` by cosine similarity of the item vectors (exact)."""
        self._check_k(k)
        snap = self._snapshot
        position = snap.find(item_id)
        if position is None:
            raise ServiceError(404, "item_id", item_id, "unknown item id")
        vectors, norms = snap.similarity_vectors(), snap.norms
        denominator = norms * norms[position]
        similarity = (vectors @ vectors[position]) / np.where(denominator > 0, denominator, 1.0)
        similarity[~snap.active] = -np.inf
        similarity[position] = -np.inf
        scores, ids = sorted_top_k(similarity[None, :].astype(np.float32), np.arange(snap.n), k)
        return [
            Recommendation(snap.item_ids[i], snap.artist_ids[i], float(s)) for s, i in zip(scores[0], ids[0]) if i >= 0
        ]

    def health(self) -> dict[str, Any]:
        """The served model and catalogue; no file paths (anyone may read it)."""
        snap = self._snapshot
        return {
            "status": "ok",
            "model": snap.model.name,
            "model_id": snap.model.model_id,
            "run": snap.model.run,
            "training_sha256": snap.model.training_hash,
            "catalogue_size": snap.size,
            "catalogue_fingerprint": self.data.fingerprint,
            "items_known": snap.n,
            "index": snap.index.kind,
            "vbpr_fold_in": self.vbpr_fold_in,
            "read_only": self.read_only,
        }

    # ------------------------------------------------------------------ changes

    @contextmanager
    def _changing(self, wait: bool) -> Iterator[float]:
        """The write lock, waited for at most ``lock_wait`` s (not at all unless ``wait``: then
        :class:`WouldWait`); yields the deadline for the database."""
        if self.read_only:
            raise ServiceError(
                403, "read_only", True, "the service was started with --read-only: the catalogue cannot change"
            )
        if not wait:
            if not self._write_lock.acquire(blocking=False):
                raise WouldWait()
            try:
                yield time.monotonic()  # the database's lock is not waited for either
            finally:
                self._write_lock.release()
            return
        deadline = time.monotonic() + self.lock_wait
        if not self._write_lock.acquire(timeout=self.lock_wait):
            raise ServiceError(
                503,
                "database",
                "busy",
                f"other changes kept the catalogue busy for {self.lock_wait:g} s; retry",
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        try:
            yield deadline
        finally:
            self._write_lock.release()

    def _record(self, action: Callable, *args: Any, deadline: float, wait: bool) -> None:
        """A change in the database, its failures as the HTTP statuses a client can act on."""
        try:
            action(*args, deadline=deadline)
        except StoreError as exc:
            if exc.kind == "busy" and not wait:
                raise WouldWait() from exc
            log.warning("change not recorded: %s", exc)
            if exc.kind == "busy":
                raise ServiceError(
                    503,
                    "database",
                    "locked",
                    f"the change was not recorded: {exc.detail}, for {self.lock_wait:g} s; retry",
                    headers={"Retry-After": str(RETRY_AFTER_S)},
                ) from exc
            if exc.kind == "full":
                raise ServiceError(507, "database", "full", f"the change was not recorded: {exc.detail}") from exc
            if exc.kind == "read_only":
                raise ServiceError(403, "read_only", True, "the database was opened read-only") from exc
            raise ServiceError(503, "database", "failed", f"the change was not recorded: {exc.detail}") from exc

    def add_item(
        self,
        item_id: str,
        embedding: Sequence[float],
        artist_id: str | None = None,
        one_of_a_kind: bool = True,
        wait: bool = True,
    ) -> int:
        """A new upload: a candidate from the next request on. Returns the catalogue size.
        ``wait=False``: :class:`WouldWait` rather than wait for a lock (see the module docstring)."""
        values = np.asarray(embedding, dtype=np.float64).reshape(-1)
        if len(values) != self.embedding_dim:
            raise ServiceError(422, "embedding", len(values), f"expected {self.embedding_dim} values (its length)")
        with np.errstate(over="ignore"):
            vector = values.astype(np.float32)
        if not np.isfinite(vector).all():
            bad = int(np.flatnonzero(~np.isfinite(vector))[0])
            raise ServiceError(
                422, f"embedding.{bad}", str(values[bad]), "values must be finite numbers within ±3.4e38 (float32)"
            )
        with self._changing(wait) as deadline:
            state = self._state
            position = state.position.get(item_id)
            if position is not None:
                status = "in the catalogue" if state.active[position] else "sold or removed"
                raise ServiceError(409, "item_id", item_id, f"an item with this id already exists ({status})")
            item_vector = state.scorer.vectors_for(vector[None, :])[0]
            refused = state.vector_problem(item_vector)
            if refused is not None:
                raise ServiceError(422, "embedding", *refused)
            try:
                record = (item_id, artist_id, one_of_a_kind, vector)
                self._record(self.store.add_item, *record, deadline=deadline, wait=wait)
            except AlreadyExists as exc:
                raise ServiceError(409, "item_id", item_id, "an item with this id is already in the database") from exc
            state.add(item_id, artist_id, item_vector)
            self._snapshot = state.snapshot()
            return self._snapshot.size

    def remove_item(self, item_id: str, wait: bool = True) -> int:
        """Sold or withdrawn: never recommended again. Returns the catalogue size. ``wait``: as for
        :meth:`add_item`."""
        with self._changing(wait) as deadline:
            state = self._state
            position = state.position.get(item_id)
            if position is None:
                raise ServiceError(404, "item_id", item_id, "unknown item id")
            if not state.active[position]:
                raise ServiceError(404, "item_id", item_id, "the item is not in the catalogue (sold or removed)")
            try:
                self._record(self.store.remove_item, item_id, deadline=deadline, wait=wait)
            except AlreadyExists as exc:
                raise ServiceError(404, "item_id", item_id, "the item was already removed") from exc
            state.remove(position)
            self._snapshot = state.snapshot()
            return self._snapshot.size

    # ------------------------------------------------------------------ reload

    def reload(self) -> dict[str, Any]:
        """Load the model now selected and swap it in (see the module docstring); a summary of the swap.

        The new model's state is built while the old one serves (changes too),
        then the changes recorded meanwhile are applied under the write lock
        and the new snapshot is published. Refused (409, the old model keeps
        serving) when the model does not load or belongs to another catalogue."""
        with self._reload_lock:
            before = self._snapshot.model
            started = time.monotonic()
            run_dir = None
            try:
                run_dir = Path(self._select(self.model_source))
                state = self._new_state(load_model(run_dir, self.data))
                with self._write_lock:
                    state.apply(self.store.changes(state.added_until, state.removed_until))
                    self._state = state
                    self.loaded_at = time.time()
                    self.reloads["done"] += 1
                    self._snapshot = state.snapshot()  # the swap
            except Exception as exc:  # whatever went wrong, the old model keeps serving
                if not isinstance(exc, InputError):
                    log.exception("reload failed")
                problem = str(exc) if isinstance(exc, InputError) else f"{type(exc).__name__}: {exc}"
                self.reloads["refused"] += 1
                raise ServiceError(
                    409,
                    "model",
                    None if run_dir is None else str(run_dir),
                    f"the selected model was not loaded, model {before.model_id} keeps serving: {problem}",
                ) from exc
            after = self._snapshot
            return {
                "model": after.model.name,
                "model_id": after.model.model_id,
                "previous_model_id": before.model_id,
                "run": after.model.run,
                "catalogue_size": after.size,
                "items_known": after.n,
                "seconds": round(time.monotonic() - started, 3),
            }

    def close(self) -> None:
        self.store.close()
