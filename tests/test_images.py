"""Images in: rule embed_images turns a folder of item images into the embeddings the loader reads."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image
from test_workflow import copy_project, snakemake

from curatornet.config import check_config
from curatornet.data.embeddings import read_embeddings_npy
from curatornet.data.images import (
    RANDOM_WEIGHTS,
    WEIGHTS_FILE_NAME,
    check_images,
    embed_images,
    list_images,
    load_image,
    match_inventory,
    resolve_weights,
)
from curatornet.data.layout import embeddings_file, expected_embedding_dim
from curatornet.errors import InputError
from curatornet.io import read_table

ITEMS = [f"art{k:02d}" for k in range(6)]
# Mixed formats, sizes and colour modes, as a store's folder would have.
#: Where the workflow puts the images' embeddings (workflow/rules/common.smk).
IMAGE_EMBEDDINGS = Path("results/data/images/resnet50_embeddings.npy")
IMAGE_KINDS = [("jpg", "RGB", (300, 200)), ("png", "RGBA", (64, 96)), ("jpg", "L", (150, 150))]


def write_images(folder: Path, items=ITEMS, seed: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for k, item in enumerate(items):
        suffix, mode, (width, height) = IMAGE_KINDS[k % len(IMAGE_KINDS)]
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, size=(height, width, channels), dtype=np.uint8)
        Image.fromarray(pixels.squeeze(), mode).save(folder / f"{item}.{suffix}")
    return folder


def write_store(folder: Path, items=ITEMS) -> Path:
    """A tiny shop in the public-release layout: inventory and purchases of ``items``."""
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "artwork_id_hash": items,
            "artist_id_hash": [f"artist{k % 3}" for k in range(len(items))],
            "upload_timestamp": "2015-01-01 00:00:00.000",
        }
    ).to_csv(folder / "ugallery_inventory.csv", index=False)
    users = ["u1", "u1", "u2", "u2", "u3", "u3"]
    times = ["2016-01-01", "2016-02-01", "2016-01-05", "2016-03-01", "2016-04-01", "2016-04-01"]
    pd.DataFrame({"user_id_hash": users, "purchase_timestamp": times, "artwork_id_hash": items[: len(users)]}).to_csv(
        folder / "ugallery_purchases.csv", index=False
    )
    return folder


# ----------------------------------------------------------------------------- bad input, no TensorFlow


def test_listing_sorts_by_item_and_skips_hidden_files(tmp_path):
    folder = write_images(tmp_path / "images")
    (folder / ".DS_Store").write_bytes(b"x")
    images = list_images(folder)
    assert [item for item, _ in images] == sorted(ITEMS)
    check_images(images)
    pixels = load_image(images[1][1])  # an RGBA png
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.float32 and 0 <= pixels.min() <= pixels.max() <= 255


@pytest.mark.parametrize(
    "make, field, value",
    [
        (lambda f: None, "dataset.images", "images"),  # missing folder
        (lambda f: f.mkdir(), "dataset.images", "images"),  # empty folder
        (lambda f: (write_images(f), (f / "notes.txt").write_text("hi")), "file name", "notes.txt"),
        (lambda f: (write_images(f), (f / "art00.png").write_bytes(b"")), "item_id", "art00"),  # two images
    ],
    ids=["missing folder", "empty folder", "not an image name", "two images of one item"],
)
def test_bad_folders_name_the_file_field_and_value(tmp_path, make, field, value):
    folder = tmp_path / "images"
    make(folder)
    with pytest.raises(InputError) as info:
        list_images(folder)
    assert info.value.field == field and value in str(info.value.value)
    assert str(info.value).count("\n") == 0


def test_images_and_inventory_must_match(tmp_path):
    folder = write_images(tmp_path / "images", ITEMS + ["stranger"])
    with pytest.raises(InputError) as info:
        match_inventory(list_images(folder), ITEMS, folder, "shop/inventory.csv")
    assert info.value.value == "stranger" and info.value.file.endswith("stranger.jpg")
    assert "no item of the inventory inventory.csv" in str(info.value)
    folder = write_images(tmp_path / "fewer", ITEMS[:4])
    with pytest.raises(InputError) as info:
        match_inventory(list_images(folder), ITEMS, folder, "shop/inventory.csv")
    assert info.value.value == "art04" and "2 items without one" in str(info.value)


def test_an_unreadable_image_is_named(tmp_path):
    folder = write_images(tmp_path / "images")
    (folder / "art03.jpg").write_bytes(b"\xff\xd8 this is no jpeg")
    with pytest.raises(InputError) as info:
        check_images(list_images(folder))
    assert info.value.file.endswith("art03.jpg") and info.value.field == "image"
    with pytest.raises(InputError):
        load_image(folder / "art03.jpg")


def test_weights_are_a_file_or_explicitly_random(tmp_path):
    assert resolve_weights(RANDOM_WEIGHTS) is None
    missing = tmp_path / WEIGHTS_FILE_NAME
    with pytest.raises(InputError) as info:
        resolve_weights(str(missing))
    assert info.value.field == "dataset.image_weights" and WEIGHTS_FILE_NAME in str(info.value)
    missing.write_bytes(b"h5")
    assert resolve_weights(str(missing)) == missing


def test_config_checks_images_weights_and_embeddings(tmp_path):
    folder = write_images(tmp_path / "images")
    base = {"dataset": {"format": "synthetic", "embeddings": "synthetic", "images": str(folder)}}
    check_config({"dataset": {**base["dataset"], "image_weights": RANDOM_WEIGHTS}})
    cases = [
        ({"images": str(tmp_path / "nowhere"), "image_weights": RANDOM_WEIGHTS}, "dataset.images"),
        ({"images": str(tmp_path / "empty"), "image_weights": RANDOM_WEIGHTS}, "dataset.images"),
        ({"image_weights": str(tmp_path / WEIGHTS_FILE_NAME)}, "dataset.image_weights"),
        ({"image_weights": RANDOM_WEIGHTS, "embeddings": str(tmp_path / "e.npy")}, "dataset.embeddings"),
    ]
    (tmp_path / "empty").mkdir()
    for change, field in cases:
        config = copy.deepcopy(base)
        config["dataset"].update(change)
        if field == "dataset.embeddings":
            Path(change["embeddings"]).write_bytes(b"")
        with pytest.raises(InputError) as info:
            check_config(config)
        assert info.value.field == field


def test_images_replace_the_embeddings_file(tmp_path):
    dataset = {"format": "synthetic", "embeddings": "synthetic", "images": str(tmp_path), "image_weights": "random"}
    assert embeddings_file(dataset, image_embeddings=IMAGE_EMBEDDINGS) == IMAGE_EMBEDDINGS
    assert expected_embedding_dim(dataset) == 2048
    with pytest.raises(InputError) as info:  # a caller that forgets where the images' embeddings are
        embeddings_file(dataset)
    assert info.value.field == "image_embeddings"


# ----------------------------------------------------------------------------- through Snakemake


def overlay(tmp_path: Path, **dataset) -> Path:
    path = tmp_path / "images.yaml"
    # A shop of 6 items: k must stay below the item count (checked with the config).
    path.write_text(yaml.safe_dump({"dataset": dataset, "clusters": {"k": 3}}))
    return path


def test_parsing_with_images_does_not_import_tensorflow(tmp_path, repo_root):
    config = overlay(tmp_path, images=str(write_images(tmp_path / "images")), image_weights=RANDOM_WEIGHTS)
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TF_LOADED=' + str('tensorflow' in sys.modules)))\n"
        "from snakemake.cli import main\n"
        f"sys.argv = ['snakemake', '-n', '--configfile', 'config/test.yaml', {str(config)!r}]\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=repo_root, capture_output=True, text=True, timeout=120)
    assert "TF_LOADED=False" in result.stdout, result.stdout + result.stderr
    assert "embed_images" in result.stdout + result.stderr  # the plan includes the rule


@pytest.mark.slow
def test_embed_images_rule_feeds_the_loader_and_is_deterministic(tmp_path):
    workdir = copy_project(tmp_path / "project")
    store = write_store(tmp_path / "store")
    images = write_images(tmp_path / "images")
    config = overlay(tmp_path, format="ugallery", path=str(store), images=str(images), image_weights=RANDOM_WEIGHTS)
    args = ("--cores", "2", "--configfile", "config/test.yaml", str(config))
    result = snakemake(workdir, "results/data/embeddings.parquet", *args)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    output = workdir / IMAGE_EMBEDDINGS
    ids, matrix = read_embeddings_npy(output, expected_dim=2048)
    assert sorted(ids) == sorted(ITEMS) and matrix.shape == (6, 2048) and matrix.dtype == np.float32
    assert np.isfinite(matrix).all() and len(np.unique(matrix, axis=0)) == 6  # one distinct vector per image
    log = (workdir / "logs/data/embed_images.log").read_text()
    assert "RANDOM weights" in log and "embedded 6/6 images (100%)" in log
    # the loader accepted it: one 2048-d row per item of the shop
    table = read_table(workdir / "results/data/embeddings.parquet")
    assert table.num_rows == 6 and table.column("embedding").type.list_size == 2048

    first = output.read_bytes()
    result = snakemake(workdir, str(IMAGE_EMBEDDINGS), "--forcerun", "embed_images", *args)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    _, again = read_embeddings_npy(output)
    np.testing.assert_array_equal(again, matrix)
    assert output.read_bytes() == first


@pytest.mark.slow
def test_an_image_of_no_item_stops_the_rule_with_one_line(tmp_path):
    workdir = copy_project(tmp_path / "project")
    store = write_store(tmp_path / "store")
    images = write_images(tmp_path / "images", ITEMS + ["stranger"])
    config = overlay(tmp_path, format="ugallery", path=str(store), images=str(images), image_weights=RANDOM_WEIGHTS)
    result = snakemake(workdir, str(IMAGE_EMBEDDINGS), "--cores", "1", "--configfile", "config/test.yaml", str(config))
    assert result.returncode != 0
    log = (workdir / "logs/data/embed_images.log").read_text() + result.stderr
    assert "stranger.jpg" in log and "image of no item of the inventory ugallery_inventory.csv" in log
    assert not (workdir / IMAGE_EMBEDDINGS).exists()


@pytest.mark.slow
def test_a_file_that_is_not_the_weights_is_named(tmp_path):
    images = write_images(tmp_path / "images")
    bogus = tmp_path / WEIGHTS_FILE_NAME
    bogus.write_bytes(b"not an HDF5 file")
    with pytest.raises(InputError) as info:
        embed_images(images, ITEMS, weights=str(bogus), inventory="inventory.csv")
    assert info.value.field == "dataset.image_weights" and info.value.file == str(bogus)


@pytest.mark.slow
def test_a_weights_file_in_the_imagenet_files_format_is_loaded(tmp_path):
    """The ImageNet file is a legacy Keras .h5 of ResNet50's weights: the same format, other values."""
    import h5py
    import keras
    from keras.applications.resnet50 import preprocess_input
    from keras.src.legacy.saving import legacy_h5_format

    images = write_images(tmp_path / "images")
    model = keras.applications.ResNet50(weights=None, include_top=False, pooling="avg", input_shape=(224, 224, 3))
    weights = tmp_path / WEIGHTS_FILE_NAME
    with h5py.File(weights, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, model)
    ids, matrix = embed_images(images, ITEMS, weights=str(weights), inventory="inventory.csv")
    batch = preprocess_input(np.stack([load_image(path) for _, path in list_images(images)]))
    np.testing.assert_allclose(matrix, model.predict_on_batch(batch), rtol=1e-4, atol=1e-5)
    assert ids == sorted(ITEMS)
