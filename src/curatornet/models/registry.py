"""Restore a trained model from its directory as a :class:`~curatornet.models.base.Scorer`.

Which loader runs is the model's record (:class:`curatornet.registry.ModelSpec`,
``scorer``), named by model.json's ``model``. TensorFlow is imported only
when a model that needs it is actually loaded.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curatornet import parts
from curatornet.models.base import Scorer
from curatornet.models.persistence import MODEL_FILE, read_model_meta
from curatornet.registry import resolve


def load_scorer(model_dir: str | Path, embeddings: np.ndarray) -> Scorer:
    """The model in ``model_dir`` (written by training) scoring items of ``embeddings``.

    ``embeddings`` are the raw vectors by item index (the training catalogue,
    optionally followed by new items); the saved standardisation is applied.
    """
    meta = read_model_meta(model_dir)
    spec = parts.model(meta.get("model"), Path(model_dir) / MODEL_FILE, "model")
    return resolve(spec.scorer)(model_dir, embeddings)
