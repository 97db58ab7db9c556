"""Restore a trained model from its directory as a :class:`~curatornet.models.base.Scorer`.

TensorFlow is imported only when a model is actually loaded, so importing
this module (or ``curatornet.models``) stays cheap.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from curatornet.errors import InputError
from curatornet.models.base import Scorer
from curatornet.models.persistence import MODEL_FILE, read_model_meta


def load_scorer(model_dir: str | Path, embeddings: np.ndarray) -> Scorer:
    """The model in ``model_dir`` (written by training) scoring items of ``embeddings``.

    ``embeddings`` are the raw vectors by item index (the training catalogue,
    optionally followed by new items); the saved standardisation is applied.
    """
    meta = read_model_meta(model_dir)
    kind = meta.get("model")
    if kind == "curatornet":
        from curatornet.models.curatornet import CuratorNetScorer

        return CuratorNetScorer.load(model_dir, embeddings)
    if kind == "vbpr":
        from curatornet.models.vbpr import VBPRScorer

        return VBPRScorer.load(model_dir, embeddings)
    raise InputError(Path(model_dir) / MODEL_FILE, "model", kind, "unknown model type (curatornet or vbpr)")
