"""Every input problem raises InputError naming file, column and value, and writes nothing."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from snakemake.utils import validate

from curatornet.config import check_config
from curatornet.data.embeddings import read_embeddings_npy, write_embeddings_npy
from curatornet.data.prepare import prepare_dataset, write_canonical
from curatornet.data.synthetic import generate, parameters_for, write_public_release
from curatornet.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
DIM = 8
SYNTHETIC = {
    "format": "synthetic",
    "path": None,
    "embeddings": "synthetic",
    "synthetic": {"preset": "tiny", "scale": 1.0, "embedding_dim": DIM},
}
OUTPUTS = ("items.parquet", "embeddings.parquet", "purchases.parquet", "stats.csv")


@pytest.fixture(scope="module")
def clean_raw(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("clean") / "raw"
    write_public_release(generate(parameters_for("tiny", embedding_dim=DIM), 11), folder=folder)
    return folder


@pytest.fixture
def raw(clean_raw, tmp_path) -> Path:
    """A private copy of a valid generated data set, for a test to break."""
    return Path(shutil.copytree(clean_raw, tmp_path / "raw"))


def run_prepare(raw: Path, dataset: dict | None = None) -> Path:
    out = raw.parent / "data"
    data = prepare_dataset(dataset or SYNTHETIC, 0, raw_dir=raw)
    write_canonical(data, *(out / name for name in OUTPUTS))
    return out


def expect_error(raw: Path, file_name: str, field: str | None, value, dataset: dict | None = None) -> InputError:
    with pytest.raises(InputError) as caught:
        run_prepare(raw, dataset)
    message = str(caught.value)
    assert file_name in message, message
    if field is not None:
        assert field in message, message
    assert str(value) in message, message
    out = raw.parent / "data"
    assert not out.exists() or not any(out.iterdir()), "half-written output left behind"
    return caught.value


def edit_csv(path: Path, change) -> None:
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False)


def test_the_clean_copy_prepares(raw):
    out = run_prepare(raw)
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)


def test_missing_file(raw):
    (raw / "ugallery_purchases.csv").unlink()
    expect_error(raw, "ugallery_purchases.csv", None, "does not exist")


def test_missing_column(raw):
    edit_csv(raw / "ugallery_inventory.csv", lambda f: f.drop(columns="upload_timestamp"))
    expect_error(raw, "ugallery_inventory.csv", "upload_timestamp", "required column is missing")


def test_unparseable_timestamp(raw):
    def spoil(frame):
        frame.loc[3, "purchase_timestamp"] = "2015-13-45 25:00"
        return frame

    edit_csv(raw / "ugallery_purchases.csv", spoil)
    expect_error(raw, "ugallery_purchases.csv", "purchase_timestamp", "2015-13-45 25:00")


def test_purchase_of_unknown_item(raw):
    def spoil(frame):
        frame.loc[0, "artwork_id_hash"] = "no-such-item"
        return frame

    edit_csv(raw / "ugallery_purchases.csv", spoil)
    expect_error(raw, "ugallery_purchases.csv", "item id", "no-such-item")


def test_duplicate_item_ids(raw):
    def spoil(frame):
        frame.loc[1, "artwork_id_hash"] = frame.loc[0, "artwork_id_hash"]
        return frame

    duplicate = pd.read_csv(raw / "ugallery_inventory.csv", dtype=str)["artwork_id_hash"][0]
    edit_csv(raw / "ugallery_inventory.csv", spoil)
    expect_error(raw, "ugallery_inventory.csv", "item id", duplicate)


def test_empty_purchases(raw):
    edit_csv(raw / "ugallery_purchases.csv", lambda f: f.iloc[:0])
    expect_error(raw, "ugallery_purchases.csv", None, "no purchases")


def test_bad_one_of_a_kind_flag(raw):
    def spoil(frame):
        frame.loc[2, "original"] = "maybe"
        return frame

    edit_csv(raw / "ugallery_inventory.csv", spoil)
    expect_error(raw, "ugallery_inventory.csv", "original", "maybe")


def rewrite_embeddings(raw: Path, change) -> str:
    rows = np.load(raw / "resnet50_embeddings.npy", allow_pickle=True)
    ids = [str(i) for i in rows[:, 0]]
    vectors = [np.asarray(v, dtype=np.float32) for v in rows[:, 1]]
    ids, vectors = change(ids, vectors)
    spoilt = np.empty((len(ids), 2), dtype=object)
    spoilt[:, 0] = ids
    spoilt[:, 1] = vectors
    with open(raw / "resnet50_embeddings.npy", "wb") as handle:
        np.save(handle, spoilt, allow_pickle=True)
    return ids[5] if ids else ""


def test_embedding_of_the_wrong_length(raw):
    def spoil(ids, vectors):
        vectors[5] = vectors[5][:-1]
        return ids, vectors

    item = rewrite_embeddings(raw, spoil)
    error = expect_error(raw, "resnet50_embeddings.npy", item, DIM - 1)
    assert "length" in error.problem


@pytest.mark.parametrize("bad_value", [np.nan, np.inf])
def test_embedding_with_nan_or_inf(raw, bad_value):
    def spoil(ids, vectors):
        vectors[5] = vectors[5].copy()
        vectors[5][2] = bad_value
        return ids, vectors

    item = rewrite_embeddings(raw, spoil)
    expect_error(raw, "resnet50_embeddings.npy", item, bad_value)


def test_item_without_an_embedding(raw):
    dropped = {}

    def spoil(ids, vectors):
        dropped["id"] = ids[7]
        return ids[:7] + ids[8:], vectors[:7] + vectors[8:]

    rewrite_embeddings(raw, spoil)
    expect_error(raw, "resnet50_embeddings.npy", "item_id", dropped["id"])


def test_configured_embeddings_file_must_cover_the_items(raw, tmp_path):
    path = tmp_path / "other.npy"
    write_embeddings_npy(path, ["someone-else"], np.ones((1, 4), dtype=np.float32))
    dataset = {**SYNTHETIC, "embeddings": str(path)}
    expect_error(raw, "other.npy", "item_id", "", dataset)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_unreadable_embeddings_file(raw, damage):
    path = raw / "resnet50_embeddings.npy"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else bytes(range(256)) * 40)
    error = expect_error(raw, "resnet50_embeddings.npy", "npy data", f"{path.stat().st_size} bytes")
    assert "not a readable NumPy .npy file" in error.problem and "\n" not in str(error)


def test_numeric_matrix_instead_of_id_vector_rows(raw):
    np.save(raw / "resnet50_embeddings.npy", np.random.default_rng(0).random((400, 2)))
    error = expect_error(raw, "resnet50_embeddings.npy", "dtype", "float64")
    assert "object array of [item_id, vector] rows" in error.problem


@pytest.mark.parametrize("value", [0.0, 0.25])
def test_embeddings_without_variation(raw, value):
    def spoil(ids, vectors):
        return ids, [np.full_like(v, value) for v in vectors]

    rewrite_embeddings(raw, spoil)
    n_items = len(pd.read_csv(raw / "ugallery_inventory.csv"))
    error = expect_error(
        raw, "resnet50_embeddings.npy", "embedding", f"[{value:g}, {value:g}, {value:g}, {value:g}, ...]"
    )
    assert f"for all {n_items} items" in str(error.value) and "same embedding vector" in error.problem


def test_new_items_file_is_checked_like_the_data_stage(tmp_path):
    """recommend --new-items reads its file with read_embeddings_npy, so it is refused the same way."""
    path = tmp_path / "new.npy"
    write_embeddings_npy(path, ["a", "b"], np.ones((2, DIM), dtype=np.float32))
    assert read_embeddings_npy(path, DIM)[0].tolist() == ["a", "b"]
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(InputError, match=r"new\.npy.*npy data.*not a readable NumPy \.npy file"):
        read_embeddings_npy(path, DIM)
    np.save(path, np.zeros((2, 2)))
    with pytest.raises(InputError, match=r"new\.npy.*'dtype'.*float64"):
        read_embeddings_npy(path, DIM)


def test_purchase_in_the_future(raw):
    def spoil(frame):
        frame.loc[4, "purchase_timestamp"] = "2999-01-01 00:00:00.000"
        return frame

    edit_csv(raw / "ugallery_purchases.csv", spoil)
    error = expect_error(raw, "ugallery_purchases.csv", "purchase_timestamp", "row 6: '2999-01-01 00:00:00.000'")
    assert "reference time" in error.problem


def test_upload_after_the_configured_reference_time(raw):
    inventory = pd.read_csv(raw / "ugallery_inventory.csv", dtype=str)
    first_late = inventory.index[pd.to_datetime(inventory["upload_timestamp"]) > pd.Timestamp("2016-01-01")][0]
    late_value = inventory.loc[first_late, "upload_timestamp"]
    dataset = {**SYNTHETIC, "reference_time": "2016-01-01"}
    error = expect_error(
        raw, "ugallery_inventory.csv", "upload_timestamp", f"row {first_late + 2}: {late_value!r}", dataset
    )
    assert "2016-01-01T00:00:00" in error.problem


def test_reference_time_with_a_zone_is_compared_in_utc(raw):
    purchases = pd.read_csv(raw / "ugallery_purchases.csv", dtype=str)
    last = pd.to_datetime(purchases["purchase_timestamp"]).max()
    uploads = pd.to_datetime(pd.read_csv(raw / "ugallery_inventory.csv", dtype=str)["upload_timestamp"]).max()
    moment = max(last, uploads)
    # In a zone one hour ahead, "last event + 2 h" is 1 h after it in UTC (accepted) and
    # "last event + 30 min" is 30 min before it (refused).
    accepted = (moment + pd.Timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S") + "+01:00"
    run_prepare(raw, {**SYNTHETIC, "reference_time": accepted})
    refused = (moment + pd.Timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S") + "+01:00"
    shutil.rmtree(raw.parent / "data")
    with pytest.raises(InputError, match="reference time"):
        run_prepare(raw, {**SYNTHETIC, "reference_time": refused})


def test_malformed_basket_list(tmp_path):
    folder = tmp_path / "public"
    folder.mkdir()
    pd.DataFrame(
        {"artwork_id_hash": ["a"], "artist_id_hash": ["x"], "upload_timestamp": ["2014-01-01 00:00:00"]}
    ).to_csv(folder / "inventory.csv", index=False)
    pd.DataFrame(
        {"user_id_hash": ["u"], "purchased_artwork_ids_hash": ["a, b"], "purchase_timestamp": ["2014-02-01 00:00:00"]}
    ).to_csv(folder / "purchases.csv", index=False)
    with pytest.raises(InputError, match=r"purchases\.csv.*purchased_artwork_ids_hash.*a, b"):
        prepare_dataset(
            {"format": "ugallery", "path": str(folder), "embeddings": "synthetic", "synthetic": {"embedding_dim": 4}}, 0
        )


def base_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda c: c["dataset"].update(fromat="ugallery"), "fromat"),
        (lambda c: c["dataset"]["synthetic"].update(scale="big"), "big"),
        (lambda c: c["dataset"].update(format="parquet"), "parquet"),
        (lambda c: c.update(sed=1), "sed"),
    ],
)
def test_schema_rejects_unknown_keys_and_wrong_types(change, key):
    config = copy.deepcopy(base_config())
    change(config)
    with pytest.raises(Exception, match=key):
        validate(config, str(SCHEMA))


def test_schema_accepts_the_shipped_configs():
    for name in ("config.yaml", "test.yaml"):
        validate(yaml.safe_load((REPO / "config" / name).read_text()), str(SCHEMA))


@pytest.mark.parametrize(
    ("dataset", "key", "value"),
    [
        ({"format": "ugallery", "path": None}, "dataset.path", "None"),
        ({"format": "ugallery", "path": "/no/such/folder"}, "dataset.path", "/no/such/folder"),
        ({"format": "synthetic", "embeddings": "/no/such/file.npy"}, "dataset.embeddings", "/no/such/file.npy"),
        ({"format": "synthetic", "reference_time": "next tuesday"}, "dataset.reference_time", "next tuesday"),
    ],
)
def test_check_config_names_the_key_and_value(dataset, key, value):
    with pytest.raises(InputError, match=key) as caught:
        check_config({"dataset": dataset})
    assert value in str(caught.value)


def _truncate_npy(raw: Path) -> str:
    path = raw / "resnet50_embeddings.npy"
    path.write_bytes(path.read_bytes()[:1000])
    return "not a readable NumPy .npy file"


def _numeric_npy(raw: Path) -> str:
    np.save(raw / "resnet50_embeddings.npy", np.random.default_rng(0).random((400, 2)))
    return "object array of [item_id, vector] rows"


def _constant_npy(raw: Path) -> str:
    rewrite_embeddings(raw, lambda ids, vectors: (ids, [np.zeros_like(v) for v in vectors]))
    return "same embedding vector"


def _future_purchase(raw: Path) -> str:
    edit_csv(raw / "ugallery_purchases.csv", lambda f: f.assign(purchase_timestamp=["2999-01-01 00:00:00"] * len(f)))
    return "reference time"


@pytest.mark.parametrize(
    "spoil", [_truncate_npy, _numeric_npy, _constant_npy, _future_purchase], ids=lambda f: f.__name__
)
def test_the_data_job_writes_the_one_line_error_to_its_log_and_nothing_else(raw, spoil):
    """Run as the workflow runs it (the script's main with the rule's files): the log says why."""
    from test_scripts import job, load_main

    problem = spoil(raw)
    log, out = raw.parent / "prepare_data.log", raw.parent / "data"
    outputs = {"item_table": out / "items.parquet", "embedding_table": out / "embeddings.parquet"}
    outputs |= {"purchase_table": out / "purchases.parquet", "stats": out / "stats.csv"}
    stub = job({}, outputs, log, {"dataset": SYNTHETIC, "seed": 0, "raw_dir": str(raw), "image_embeddings": None})
    with pytest.raises(SystemExit):
        load_main("prepare_data")(stub)
    text = log.read_text()
    assert problem in text and "InputError" not in text.split(problem)[0].splitlines()[-1]
    assert "Traceback" not in text  # a bad input is one line, not a traceback
    assert not any(path.exists() for path in outputs.values())
