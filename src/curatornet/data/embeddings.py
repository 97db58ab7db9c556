"""Image embeddings: the style model that makes them up, and the .npy files that hold them.

The style model imitates pooled ResNet50 features. Every item has a small
latent vector: the centre of a visual style, plus its artist's personal
offset, plus the item's own variation. A fixed random projection lifts the
latent vector to ``dim`` channels; each channel then goes through a shifted
exponential and a ReLU, which gives what averaged post-ReLU activations look
like: non-negative, a share of exact zeros, mean near 0.45 and a long right
tail. Styles make k-means clusters, artist offsets make an artist's items lie
close together.

The release format is a NumPy object array of shape (N, 2) whose rows are
``[item_id, vector]``.
"""

from __future__ import annotations

import copy
import ctypes
import logging
import pickle
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from curatornet.artifacts import FINITE_CHECK_ROWS, first_non_finite_row
from curatornet.errors import InputError
from curatornet.io import atomic_path

log = logging.getLogger(__name__)

#: Rows rendered at a time, which bounds the temporary memory of the projection.
RENDER_CHUNK_ROWS = 4096
#: Vectors copied out of a loaded .npy between two hand-backs of the freed memory.
RELEASE_EVERY_ROWS = 50_000


@dataclass(frozen=True)
class StyleModel:
    """Parameters of the embedding model (see the module docstring and docs/synthetic_data.md)."""

    latent_dim: int = 32  #: size of the latent style space
    style_spread: float = 1.0  #: standard deviation of style centres
    artist_spread: float = 0.45  #: an artist's offset from its style centre
    item_spread: float = 0.35  #: an item's offset from its artist
    gain: float = 0.6  #: how strongly the latent vector drives each channel
    channel_bias_sd: float = 0.5  #: channels differ in their typical activation
    noise_sd: float = 0.4  #: per-item, per-channel noise (what the latent space does not explain)
    offset: float = -1.0  #: centre of the pre-activation
    floor: float = 0.12  #: activations below this become exact zeros


def style_centres(n_styles: int, rng: np.random.Generator, model: StyleModel) -> np.ndarray:
    return rng.normal(0.0, model.style_spread, size=(n_styles, model.latent_dim))


def item_latents(
    item_artist: np.ndarray,
    artist_style: np.ndarray,
    centres: np.ndarray,
    rng: np.random.Generator,
    model: StyleModel,
) -> np.ndarray:
    """Latent vector per item: style centre + artist offset + item offset."""
    artist_latent = centres[artist_style] + rng.normal(
        0.0, model.artist_spread, size=(len(artist_style), model.latent_dim)
    )
    return artist_latent[item_artist] + rng.normal(0.0, model.item_spread, size=(len(item_artist), model.latent_dim))


@dataclass(frozen=True)
class FeatureRenderer:
    """Lifts latent vectors to ``dim`` non-negative channels shaped like pooled CNN features.

    It keeps the state of its random stream, so the same features can be rendered
    twice: whole (:meth:`render`) or chunk by chunk (:meth:`chunks`, which never
    holds more than RENDER_CHUNK_ROWS rows, for data sets whose features do not
    fit in memory). Both give identical values.
    """

    dim: int
    model: StyleModel
    rng_state: dict

    @classmethod
    def from_rng(cls, dim: int, rng: np.random.Generator, model: StyleModel) -> FeatureRenderer:
        return cls(dim, model, copy.deepcopy(rng.bit_generator.state))

    def chunks(self, latents: np.ndarray) -> Iterator[np.ndarray]:
        rng = np.random.Generator(getattr(np.random, self.rng_state["bit_generator"])())
        rng.bit_generator.state = copy.deepcopy(self.rng_state)
        model, dim = self.model, self.dim
        gain = model.gain / np.sqrt(model.latent_dim)
        projection = (rng.standard_normal((model.latent_dim, dim)) * gain).astype(np.float32)
        channel_bias = (model.offset + rng.normal(0.0, model.channel_bias_sd, size=dim)).astype(np.float32)
        for start in range(0, latents.shape[0], RENDER_CHUNK_ROWS):
            stop = min(start + RENDER_CHUNK_ROWS, latents.shape[0])
            pre = latents[start:stop].astype(np.float32) @ projection
            pre += channel_bias
            pre += model.noise_sd * rng.standard_normal((stop - start, dim), dtype=np.float32)
            np.exp(pre, out=pre)
            pre -= model.floor
            np.maximum(pre, 0.0, out=pre)
            yield pre

    def render(self, latents: np.ndarray) -> np.ndarray:
        features = np.empty((latents.shape[0], self.dim), dtype=np.float32)
        start = 0
        for chunk in self.chunks(latents):
            features[start : start + len(chunk)] = chunk
            start += len(chunk)
        return features


def render_features(latents: np.ndarray, dim: int, rng: np.random.Generator, model: StyleModel) -> np.ndarray:
    """Lift latent vectors to ``dim`` non-negative channels shaped like pooled CNN features."""
    return FeatureRenderer.from_rng(dim, rng, model).render(latents)


def synthetic_embeddings(
    artist_ids: Sequence[str | None] | pd.Series,
    dim: int,
    seed: int,
    n_styles: int | None = None,
    model: StyleModel = StyleModel(),
) -> np.ndarray:
    """Made-up embeddings for real items, with the generator's style model.

    Items of one artist share the artist's style; an item without a known
    artist is an artist of its own. Artists get their styles in sorted id
    order, so the result depends only on the ids and ``seed``.
    """
    artists = pd.Series(artist_ids, dtype="object")
    codes, uniques = pd.factorize(artists, sort=True, use_na_sentinel=True)
    unknown = codes < 0
    codes = codes.copy()
    codes[unknown] = len(uniques) + np.arange(unknown.sum())
    n_artists = len(uniques) + int(unknown.sum())
    if n_styles is None:
        # About 18 artists per style, as in the generator's default preset.
        n_styles = int(np.clip(round(n_artists / 18), 2, 100))
    style_rng, latent_rng, render_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence([seed, 0xE3B]).spawn(3)
    )
    centres = style_centres(n_styles, style_rng, model)
    artist_style = style_rng.integers(0, n_styles, size=n_artists)
    latents = item_latents(codes, artist_style, centres, latent_rng, model)
    log.info("made up %d-d embeddings for %d items of %d artists in %d styles", dim, len(codes), n_artists, n_styles)
    return render_features(latents, dim, render_rng, model)


def write_embeddings_npy(path: str | Path, item_ids: Sequence[str], vectors: np.ndarray | Iterable[np.ndarray]) -> None:
    """Write the release format (object array of [item_id, float32 vector] rows) atomically.

    ``vectors`` is an (N, dim) matrix or an iterable of row chunks; chunks are
    written as they come, so the whole matrix never needs to be in memory.
    """
    with atomic_path(path) as tmp:
        write_embeddings_rows(tmp, item_ids, vectors)


def write_embeddings_rows(
    path: str | Path, item_ids: Sequence[str], vectors: np.ndarray | Iterable[np.ndarray]
) -> None:
    """Write the release format to ``path`` directly (callers make it atomic)."""
    n_rows = len(item_ids)
    chunks = [np.asarray(vectors, dtype=np.float32)] if isinstance(vectors, np.ndarray) else vectors
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, {"descr": "|O", "fortran_order": False, "shape": (n_rows, 2)})
        pickler = _StreamPickler(handle, protocol=4)
        # No memo: it would keep every row alive until the end (a second copy of the matrix).
        pickler.fast = True
        pickler.dump(_ObjectRows(n_rows, _row_items(item_ids, chunks)))
        if pickler.rows_written != n_rows:
            raise ValueError(f"{n_rows} item ids but {pickler.rows_written} embedding rows")


class _ObjectRows:
    """Stands for an (n, 2) object array whose items are produced while pickling."""

    def __init__(self, n_rows: int, items: Iterator):
        self.n_rows = n_rows
        self.items = items


class _ListItems:
    def __init__(self, items: Iterator):
        self.items = items


class _StreamPickler(pickle.Pickler):
    """Pickles :class:`_ObjectRows` exactly as NumPy pickles an object array, with the
    array's element list filled from an iterator (numpy's own reduction, so np.load reads it)."""

    rows_written = 0

    def reducer_override(self, obj):
        if isinstance(obj, _ObjectRows):
            rebuild, args, (version, _, dtype, fortran, _) = np.empty((0, 2), dtype=object).__reduce__()
            return rebuild, args, (version, (obj.n_rows, 2), dtype, fortran, _ListItems(self._count(obj.items)))
        if isinstance(obj, _ListItems):
            return list, (), None, obj.items
        return NotImplemented

    def _count(self, items: Iterator) -> Iterator:
        for position, item in enumerate(items):
            self.rows_written = position // 2 + 1
            yield item


def _row_items(item_ids: Sequence[str], chunks: Iterable[np.ndarray]) -> Iterator:
    """id, vector, id, vector, ... (the row-major elements of the object array)."""
    ids = iter(item_ids)
    for chunk in chunks:
        for vector in chunk:
            item_id = next(ids, None)
            if item_id is None:
                raise ValueError(f"more embedding rows than the {len(item_ids)} item ids")
            yield str(item_id)
            yield vector


def read_embeddings_npy(
    path: str | Path, expected_dim: int | None = None, item_ids: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a release-format .npy: returns (item ids as str, float32 matrix).

    Every vector must have the same length (``expected_dim`` when given,
    otherwise the most common length) and finite values; ids must be unique.
    A file that is not such an object array (truncated, garbage, a plain
    numeric matrix) is refused with an :class:`InputError`.
    With ``item_ids`` the rows come out in that order (see
    :func:`align_embeddings` for the rules); the matrix is filled row by row
    while each loaded vector is released, so the file's vectors are never held
    twice (at 100 times UGallery they are 6 GB).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, None, str(path), "embeddings file does not exist")
    try:
        rows = np.load(path, allow_pickle=True)
    except Exception as exc:  # a damaged file fails in the header parser or in pickle, in many ways
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise InputError(
            path, "npy data", f"{path.stat().st_size} bytes", f"not a readable NumPy .npy file ({detail})"
        ) from exc
    if not isinstance(rows, np.ndarray):
        raise InputError(path, "npy data", type(rows).__name__, "expected a NumPy array of [item_id, vector] rows")
    if rows.ndim != 2 or rows.shape[1] != 2:
        raise InputError(path, "shape", rows.shape, "expected an array of [item_id, vector] rows, shape (N, 2)")
    if rows.dtype != object:
        raise InputError(
            path,
            "dtype",
            str(rows.dtype),
            f"expected an object array of [item_id, vector] rows; this is a plain {rows.shape} matrix of numbers",
        )
    if rows.shape[0] == 0:
        raise InputError(path, "rows", 0, "embeddings file has no rows")
    ids = np.array([str(v) for v in rows[:, 0]], dtype=object)
    lengths = np.fromiter((np.size(v) for v in rows[:, 1]), dtype=np.int64, count=rows.shape[0])
    dim = int(expected_dim) if expected_dim is not None else int(np.bincount(lengths).argmax())
    wrong = np.flatnonzero(lengths != dim)
    if wrong.size:
        first = wrong[0]
        raise InputError(
            path,
            f"embedding of item {ids[first]}",
            int(lengths[first]),
            f"vector length differs from {dim} ({wrong.size} rows affected)",
        )
    duplicated = pd.Index(ids).duplicated()
    if duplicated.any():
        raise InputError(path, "item_id", ids[np.flatnonzero(duplicated)[0]], "item id appears more than once")
    source_rows = np.arange(len(ids)) if item_ids is None else _positions(ids, item_ids, path)
    vectors = rows[:, 1]
    matrix = np.empty((len(source_rows), dim), dtype=np.float32)
    release = _heap_release()
    for out_row, row in enumerate(source_rows):
        try:
            matrix[out_row] = np.asarray(vectors[row], dtype=np.float32).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InputError(
                path, f"embedding of item {ids[row]}", _short_repr(vectors[row]), "not a vector of numbers"
            ) from exc
        vectors[row] = None  # release the loaded copy as soon as it is in the matrix
        if out_row % RELEASE_EVERY_ROWS == RELEASE_EVERY_ROWS - 1:
            release()
    del rows, vectors
    release()
    bad = first_non_finite_row(matrix)
    if bad is not None:
        offending = matrix[bad][~np.isfinite(matrix[bad])][0]
        n_bad = sum(
            int((~np.isfinite(matrix[lo : lo + FINITE_CHECK_ROWS]).all(axis=1)).sum())
            for lo in range(bad, len(matrix), FINITE_CHECK_ROWS)
        )
        raise InputError(
            path,
            f"embedding of item {ids[source_rows[bad]]}",
            float(offending),
            f"vector holds NaN or inf ({n_bad} rows affected)",
        )
    log.info("read %d embeddings of dimension %d from %s", len(ids), dim, path)
    return ids[source_rows], matrix


def _short_repr(value, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_embeddings_vary(matrix: np.ndarray, item_ids: Sequence[str], source: str | Path) -> None:
    """Refuse embeddings that are the same vector for every item (all zeros, a constant):
    visual clusters and visual models would see one item."""
    if len(matrix) < 2:
        return
    spread = float((matrix.max(axis=0) - matrix.min(axis=0)).max())
    scale = max(1.0, float(np.abs(matrix[0]).max()))
    if spread <= 1e-6 * scale:
        first = np.asarray(matrix[0])
        shown = "[" + ", ".join(f"{v:g}" for v in first[:4]) + (", ...]" if first.size > 4 else "]")
        raise InputError(
            source,
            "embedding",
            f"{shown} for all {len(matrix)} items, e.g. {item_ids[0]}",
            "every item has the same embedding vector (no variation): visual clusters and models need distinct ones",
        )


def _heap_release():
    """A function that hands freed heap pages back to the system (glibc), or does nothing.

    The loaded vectors are small heap blocks: freeing them leaves holes that
    glibc keeps resident unless asked to give them back.
    """
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


def _positions(embedding_ids: np.ndarray, item_ids: Sequence[str], source: str | Path) -> np.ndarray:
    """Row of ``embedding_ids`` for each of ``item_ids``; every item needs one."""
    item_ids = np.asarray(item_ids, dtype=object)
    position = pd.Index(embedding_ids).get_indexer(pd.Index(item_ids))
    missing = np.flatnonzero(position < 0)
    if missing.size:
        raise InputError(
            source, "item_id", item_ids[missing[0]], f"item has no embedding ({missing.size} items without one)"
        )
    extra = len(embedding_ids) - len(item_ids)
    if extra > 0:
        log.info("ignored %d embeddings of items outside the inventory", extra)
    return position


def align_embeddings(
    item_ids: Sequence[str], embedding_ids: np.ndarray, matrix: np.ndarray, source: str | Path
) -> np.ndarray:
    """Rows of ``matrix`` in the order of ``item_ids``; every item needs an embedding.

    Embeddings of items outside the inventory are dropped (the public release
    has images of more items than were ever sold or listed).
    """
    return matrix[_positions(embedding_ids, item_ids, source)]
