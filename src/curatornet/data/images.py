"""Image embeddings from a folder of item images, with Keras' ResNet50 (rule ``embed_images``).

A folder of ``<item_id>.jpg`` (or ``.jpeg``, ``.png``) files, one per item of
the inventory, becomes the embeddings file the loader reads (the release
format of :func:`curatornet.data.embeddings.write_embeddings_npy`): for every
image the 2048 channels of ResNet50's last convolutional block averaged over
the image (``include_top=False, pooling="avg"``), the features the paper used.
Every image is turned upright (EXIF), converted to RGB, resized whole to
224 x 224 (no crop: a painting keeps its edges) and preprocessed as ResNet50
expects (``keras.applications.resnet50.preprocess_input``), in batches.

Weights: the ImageNet file ``WEIGHTS_FILE_NAME``, given by path (config
``dataset.image_weights``); nothing is ever downloaded. The value
``RANDOM_WEIGHTS`` builds the network with seeded random weights instead: an
explicit choice for tests, logged as such, whose vectors carry no meaning.

Everything that can be wrong with the input (folder, file names, unreadable
images, weights file) raises :class:`~curatornet.errors.InputError` before the
network runs. TensorFlow is imported only inside :func:`embed_images`, so the
workflow can list the images while it is parsed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curatornet.data.layout import IMAGE_EMBEDDING_DIM, input_files
from curatornet.errors import InputError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
#: The ImageNet weights of ResNet50 without its classifier, as Keras names the file.
WEIGHTS_FILE_NAME = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"
#: dataset.image_weights value for seeded random weights (tests only).
RANDOM_WEIGHTS = "random"
IMAGE_SIZE = 224
#: Images per forward pass: large enough to keep two cores busy, small enough for 1 GB of activations.
BATCH_SIZE = 32
#: Seconds between two progress lines in the log.
PROGRESS_SECONDS = 10.0


def list_images(folder: str | Path) -> list[tuple[str, Path]]:
    """(item_id, path) of every image in ``folder``, sorted by item id.

    Hidden files are ignored; any other file must be ``<item_id>`` plus one of
    ``IMAGE_SUFFIXES`` (any case), and an item may have only one image.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "dataset.images", str(folder), "image folder does not exist")
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES or not path.stem:
            raise InputError(path, "file name", path.name, f"expected <item_id> with one of {IMAGE_SUFFIXES}")
        if path.stem in found:
            raise InputError(path, "item_id", path.stem, f"item has two images ({found[path.stem].name}, {path.name})")
        found[path.stem] = path
    if not found:
        suffixes = ", ".join(IMAGE_SUFFIXES)
        raise InputError(folder, "dataset.images", str(folder), f"no images ({suffixes}) in the folder")
    return sorted(found.items())


def embed_images_inputs(dataset: Mapping[str, Any], raw_dir: str | Path | None = None) -> dict[str, Any]:
    """Named inputs of rule ``embed_images``: the inventory, every image file and the weights file.

    Lists the folder ``dataset.images`` (an InputError when it is missing or
    holds no image); the weights file is an input unless weights are random.
    """
    if not dataset.get("images"):
        raise InputError("config", "dataset.images", None, "rule embed_images needs the folder of the item images")
    files: dict[str, Any] = {
        "inventory": input_files({**dataset, "images": None}, raw_dir)["inventory"],
        "images": [str(path) for _, path in list_images(dataset["images"])],
    }
    weights = dataset["image_weights"]  # the schema fills it: never a silent choice of random weights
    if weights != RANDOM_WEIGHTS:
        files["weights"] = str(Path(weights).expanduser())
    return files


def match_inventory(
    images: Sequence[tuple[str, Path]], item_ids: Sequence[str], folder: str | Path, inventory: str | Path
) -> None:
    """Every image names an item of the inventory, and every item has an image."""
    known = set(map(str, item_ids))
    unknown = [(item, path) for item, path in images if item not in known]
    if unknown:
        item, path = unknown[0]
        problem = f"image of no item of the inventory {Path(inventory).name} ({len(unknown)} such files)"
        raise InputError(path, "item_id", item, problem)
    have = {item for item, _ in images}
    missing = sorted(known - have)
    if missing:
        problem = f"item of {Path(inventory).name} has no image ({len(missing)} items without one)"
        raise InputError(folder, "item_id", missing[0], problem)


def check_images(images: Sequence[tuple[str, Path]]) -> None:
    """Open every file's header and verify its data, so a bad image stops the job before the network runs."""
    from PIL import Image

    for _, path in images:
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:  # PIL raises many types for broken files
            raise InputError(path, "image", path.name, f"not a readable image ({type(exc).__name__}: {exc})") from exc


def load_image(path: Path) -> np.ndarray:
    """float32 (IMAGE_SIZE, IMAGE_SIZE, 3) RGB values 0..255 of one image, upright and resized whole."""
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as image:
            upright = ImageOps.exif_transpose(image).convert("RGB")
            resized = upright.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BILINEAR)
            return np.asarray(resized, dtype=np.float32)
    except Exception as exc:  # PIL raises many types for broken files
        raise InputError(path, "image", path.name, f"not a readable image ({type(exc).__name__}: {exc})") from exc


def resolve_weights(weights: str) -> Path | None:
    """The weights file to load, or None for ``RANDOM_WEIGHTS``."""
    if weights == RANDOM_WEIGHTS:
        return None
    path = Path(weights).expanduser()
    if not path.is_file():
        raise InputError(
            path,
            "dataset.image_weights",
            weights,
            f"weights file does not exist; get {WEIGHTS_FILE_NAME} once as the README says "
            f"(or '{RANDOM_WEIGHTS}' for tests)",
        )
    return path


def build_resnet50(weights: Path | None, seed: int, threads: int):
    """ResNet50 without its classifier, averaged over the image (2048 outputs)."""
    import keras

    from curatornet.models.environment import configure_tensorflow

    configure_tensorflow(threads, seed)
    if weights is None:
        log.warning(
            "ResNet50 with RANDOM weights (seed %d), as dataset.image_weights asks: for tests only, "
            "these vectors carry no image semantics",
            seed,
        )
    try:
        model = keras.applications.ResNet50(
            weights=None if weights is None else str(weights),
            include_top=False,
            pooling="avg",
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
        )
    except (ValueError, OSError) as exc:
        raise InputError(
            weights, "dataset.image_weights", str(weights), f"not the ResNet50 {WEIGHTS_FILE_NAME} weights ({exc})"
        ) from exc
    if weights is not None:
        log.info("ResNet50 with the ImageNet weights of %s", weights)
    return model


def embed_images(
    folder: str | Path,
    item_ids: Sequence[str],
    weights: str,
    seed: int = 0,
    threads: int = 1,
    inventory: str | Path = "inventory",
    batch_size: int = BATCH_SIZE,
) -> tuple[list[str], np.ndarray]:
    """(item ids, float32 (n, 2048) matrix) of the images in ``folder``, in item id order.

    ``item_ids`` are the inventory's (named ``inventory`` in errors); ``weights``
    a weights file or ``RANDOM_WEIGHTS`` (then ``seed`` seeds them).
    """
    images = list_images(folder)
    match_inventory(images, item_ids, folder, inventory)
    weights_file = resolve_weights(weights)
    check_images(images)
    log.info("%d images in %s, one per item of %s", len(images), folder, Path(inventory).name)
    model = build_resnet50(weights_file, seed, threads)
    from keras.applications.resnet50 import preprocess_input

    n = len(images)
    matrix = np.empty((n, IMAGE_EMBEDDING_DIM), dtype=np.float32)
    began = last_report = time.perf_counter()
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        batch = np.stack([load_image(path) for _, path in images[start:stop]])
        matrix[start:stop] = np.asarray(model.predict_on_batch(preprocess_input(batch)), dtype=np.float32)
        now = time.perf_counter()
        if now - last_report >= PROGRESS_SECONDS or stop == n:
            rate = stop / max(now - began, 1e-9)
            log.info(
                "embedded %d/%d images (%.0f%%), %.1f images/s, about %.0f s left",
                stop,
                n,
                100 * stop / n,
                rate,
                (n - stop) / rate,
            )
            last_report = now
    if not np.isfinite(matrix).all():
        row = int(np.flatnonzero(~np.isfinite(matrix).all(axis=1))[0])
        raise InputError(images[row][1], "embedding", images[row][0], "ResNet50 gave NaN or inf for this image")
    return [item for item, _ in images], matrix
