"""A trained model's directory: weights as ``.npz``, the standardiser, the history, ``model.json``.

Everything here is plain NumPy and JSON, so reading a model directory needs no
TensorFlow; rebuilding the Keras model is left to a ``build`` function.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curatornet.errors import InputError
from curatornet.io import atomic_path, write_csv, write_text

MODEL_FILE = "model.json"
HISTORY_FILE = "history.csv"
STANDARDIZER_FILE = "standardizer.npz"
WEIGHTS_FILE = "weights.npz"
#: Version of the directory layout, stored in model.json.
FORMAT = 2


def write_model_dir(
    out_dir: str | Path, model: Any, standardizer: Any, history: pd.DataFrame, meta: Mapping[str, Any]
) -> dict[str, Any]:
    """Write weights.npz, standardizer.npz, history.csv and, last, model.json.

    ``model`` is anything with ``weights_dict()`` (CuratorNet, VBPR); ``meta``
    must hold at least ``model``, ``n_items``, ``n_users`` and
    ``hyperparameters``. model.json is written last: its presence means the
    directory is complete. Returns the contents of model.json.
    """
    out_dir = Path(out_dir)
    save_weights_npz(model.weights_dict(), out_dir / WEIGHTS_FILE)
    standardizer.save(out_dir / STANDARDIZER_FILE)
    write_csv(history, out_dir / HISTORY_FILE)
    full = {
        "format": FORMAT,
        **meta,
        "embedding_dim": int(standardizer.dim),
        "weights": WEIGHTS_FILE,
        "standardizer": STANDARDIZER_FILE,
        "history": HISTORY_FILE,
    }
    write_text(json.dumps(full, indent=2) + "\n", out_dir / MODEL_FILE)
    return full


def read_model_meta(model_dir: str | Path) -> dict[str, Any]:
    path = Path(model_dir) / MODEL_FILE
    if not path.exists():
        raise InputError(path, None, str(path), "model directory has no model.json (training incomplete?)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(path, None, str(path), f"not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise InputError(path, None, type(meta).__name__, "model.json must hold an object")
    return meta


def load_weights_npz(path: str | Path) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.exists():
        raise InputError(path, None, str(path), "weights file does not exist")
    try:
        with np.load(path) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise InputError(path, None, str(path), f"not a readable .npz file ({exc})") from exc


def save_weights_npz(weights: Mapping[str, np.ndarray], path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            np.savez(handle, **weights)


def assign_weight(variable: Any, weights: Mapping[str, np.ndarray], key: str, source: str | None) -> None:
    """Set ``variable`` to ``weights[key]``, failing clearly when it is missing or of another shape."""
    if key not in weights:
        raise InputError(source, key, sorted(weights), "weight missing")
    value = np.asarray(weights[key])
    if tuple(value.shape) != tuple(variable.shape):
        raise InputError(source, key, value.shape, f"expected shape {tuple(variable.shape)}")
    variable.assign(value)


def restore_model(
    model_dir: str | Path, embeddings: np.ndarray, build: Callable[[dict[str, Any], int], Any]
) -> tuple[Any, dict[str, Any]]:
    """Rebuild a trained model from its directory.

    ``build(meta, dim)`` makes the empty model, whose weights are then loaded.
    ``embeddings`` must have the model's dimension. Returns the model and its metadata.
    """
    model_dir = Path(model_dir)
    meta = read_model_meta(model_dir)
    dim = int(meta["embedding_dim"])
    if np.ndim(embeddings) != 2 or np.shape(embeddings)[1] != dim:
        raise InputError(
            model_dir / MODEL_FILE,
            "embedding_dim",
            np.shape(embeddings),
            f"embeddings do not match the model's dimension {dim}",
        )
    model = build(meta, dim)
    weights_path = model_dir / meta["weights"]
    model.load_weights_dict(load_weights_npz(weights_path), source=str(weights_path))
    return model, meta
