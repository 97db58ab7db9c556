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

import ctypes
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

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


def render_features(latents: np.ndarray, dim: int, rng: np.random.Generator, model: StyleModel) -> np.ndarray:
    """Lift latent vectors to ``dim`` non-negative channels shaped like pooled CNN features."""
    n_rows = latents.shape[0]
    projection = (rng.standard_normal((model.latent_dim, dim)) * (model.gain / np.sqrt(model.latent_dim))).astype(
        np.float32
    )
    channel_bias = (model.offset + rng.normal(0.0, model.channel_bias_sd, size=dim)).astype(np.float32)
    features = np.empty((n_rows, dim), dtype=np.float32)
    for start in range(0, n_rows, RENDER_CHUNK_ROWS):
        stop = min(start + RENDER_CHUNK_ROWS, n_rows)
        pre = latents[start:stop].astype(np.float32) @ projection
        pre += channel_bias
        pre += model.noise_sd * rng.standard_normal((stop - start, dim), dtype=np.float32)
        np.exp(pre, out=pre)
        pre -= model.floor
        np.maximum(pre, 0.0, out=pre)
        features[start:stop] = pre
    return features


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


def write_embeddings_npy(path: str | Path, item_ids: Sequence[str], matrix: np.ndarray) -> None:
    """Write the release format (object array of [item_id, float32 vector] rows) atomically."""
    rows = np.empty((len(item_ids), 2), dtype=object)
    rows[:, 0] = list(item_ids)
    rows[:, 1] = list(np.asarray(matrix, dtype=np.float32))
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.save(handle, rows, allow_pickle=True)


def read_embeddings_npy(
    path: str | Path, expected_dim: int | None = None, item_ids: Sequence[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Read and check a release-format .npy: returns (item ids as str, float32 matrix).

    Every vector must have the same length (``expected_dim`` when given,
    otherwise the most common length) and finite values; ids must be unique.
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
    except (OSError, ValueError, EOFError) as exc:
        raise InputError(path, None, str(path), f"not a readable .npy file ({exc})") from exc
    if rows.ndim != 2 or rows.shape[1] != 2:
        raise InputError(path, "shape", rows.shape, "expected an array of [item_id, vector] rows, shape (N, 2)")
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
            raise InputError(path, f"embedding of item {ids[row]}", str(vectors[row])[:40], "not numbers") from exc
        vectors[row] = None  # release the loaded copy as soon as it is in the matrix
        if out_row % RELEASE_EVERY_ROWS == RELEASE_EVERY_ROWS - 1:
            release()
    del rows, vectors
    release()
    bad = _first_non_finite_row(matrix)
    if bad is not None:
        offending = matrix[bad][~np.isfinite(matrix[bad])][0]
        n_bad = sum(int((~np.isfinite(chunk).all(axis=1)).sum()) for chunk in _row_chunks(matrix))
        raise InputError(
            path,
            f"embedding of item {ids[source_rows[bad]]}",
            float(offending),
            f"vector holds NaN or inf ({n_bad} rows affected)",
        )
    log.info("read %d embeddings of dimension %d from %s", len(ids), dim, path)
    return ids[source_rows], matrix


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


def _row_chunks(matrix: np.ndarray):
    """Views of ``RENDER_CHUNK_ROWS`` rows: checks without a full-size temporary."""
    for start in range(0, len(matrix), RENDER_CHUNK_ROWS):
        yield matrix[start : start + RENDER_CHUNK_ROWS]


def _first_non_finite_row(matrix: np.ndarray) -> int | None:
    for index, chunk in enumerate(_row_chunks(matrix)):
        bad = ~np.isfinite(chunk).all(axis=1)
        if bad.any():
            return index * RENDER_CHUNK_ROWS + int(np.flatnonzero(bad)[0])
    return None


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
