"""Per-dimension standardisation of image embeddings, saved with each model.

The statistics are fitted once on the catalogue at training time and stored
beside the weights, so that items added later (cold start) are scaled exactly
as the items the model was trained on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from curatornet.errors import InputError
from curatornet.io import atomic_path

#: Dimensions whose spread is below this are only centred (avoids dividing by ~0).
MIN_SCALE = 1e-6


@dataclass
class Standardizer:
    mean: np.ndarray  # float32 (dim,)
    scale: np.ndarray  # float32 (dim,), standard deviation floored at MIN_SCALE

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(cls, embeddings: np.ndarray) -> Standardizer:
        x = np.asarray(embeddings, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] == 0:
            raise InputError(None, "embeddings", x.shape, "need a non-empty (n_items, dim) matrix")
        if not np.isfinite(x).all():
            raise InputError(None, "embeddings", "NaN/inf", "embeddings must be finite")
        mean = x.mean(axis=0)
        scale = np.maximum(x.std(axis=0), MIN_SCALE)
        return cls(mean.astype(np.float32), scale.astype(np.float32))

    def transform(self, embeddings: np.ndarray, source: str | None = None) -> np.ndarray:
        """float32 z-scores; ``source`` names the file in error messages."""
        x = np.asarray(embeddings, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise InputError(source, "embedding", x.shape, f"expected vectors of length {self.dim}")
        if not np.isfinite(x).all():
            raise InputError(source, "embedding", "NaN/inf", "embeddings must be finite")
        return (x - self.mean) / self.scale

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as handle:
                np.savez(handle, mean=self.mean, scale=self.scale)

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        path = Path(path)
        if not path.exists():
            raise InputError(path, None, str(path), "standardisation file does not exist")
        with np.load(path) as data:
            for key in ("mean", "scale"):
                if key not in data:
                    raise InputError(path, key, list(data.keys()), "array missing from standardisation file")
            return cls(data["mean"].astype(np.float32), data["scale"].astype(np.float32))
