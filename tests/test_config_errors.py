"""Config errors a user can act on: the one failing key, its value and what is allowed there."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from curatornet.config import validate_config
from curatornet.errors import InputError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
TEST_CONFIG = yaml.safe_load((REPO / "config" / "test.yaml").read_text())


def error_for(change) -> str:
    config = copy.deepcopy(TEST_CONFIG)
    change(config)
    with pytest.raises(InputError) as caught:
        validate_config(config, SCHEMA, "config/test.yaml + mine.yaml")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 320, message
    assert message.startswith("file 'config/test.yaml + mine.yaml', field ")
    return message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["clusters"].update(restars=3),
            "field 'clusters.restars': unknown key; allowed here: "
            "k, pca_dim, restarts, seed, map_method, exact_max_items, sample_size (value: 3)",
        ),
        (
            lambda c: c["dataset"].update(format="parquet"),
            "field 'dataset.format': must be one of: synthetic, ugallery (value: 'parquet')",
        ),
        (
            lambda c: c["dataset"]["synthetic"].update(scale="big"),
            "field 'dataset.synthetic.scale': must be of type number (value: 'big')",
        ),
        (lambda c: c["clusters"].update(k=1), "field 'clusters.k': must be >= 2 (value: 1)"),
        (
            lambda c: c["training"]["runs"]["vbpr"].update(random=[0.1, "x"]),
            "field 'training.runs.vbpr.random[1]': must be of type number (value: 'x')",
        ),
        (
            lambda c: c["sampling"]["budgets"].update(d1_basket={"train": 5}),
            "field 'sampling.budgets.d1_basket.valid': required key is missing",
        ),
        (lambda c: c.update(sed=1), "field 'sed': unknown key; allowed here: seed, dataset,"),
        (lambda c: c["training"].update(seeds=[0, 0]), "field 'training.seeds': [0, 0] has non-unique elements"),
        (
            lambda c: c["training"]["runs"].update(popular={"guidelines": [0.0]}),
            "field 'training.runs.popular': unknown key; allowed here: curatornet, vbpr (value:",
        ),
        (
            lambda c: c.update(recommendations={"recommenders": ["oracle"]}),
            "field 'recommendations.recommenders[0]': must be one of: curatornet, vbpr, visrank (value: 'oracle')",
        ),
        (lambda c: c.update(plugins=["no_such_plugin"]), "field 'plugins': cannot import this plugin module"),
    ],
)
def test_a_schema_error_names_the_key_its_value_and_what_is_allowed(change, expected):
    assert expected in error_for(change)


def test_site_resources_in_the_config_point_to_the_profiles():
    message = error_for(lambda c: c["training"].update(threads=4))
    assert "field 'training.threads'" in message and "set-threads" in message and "profiles/" in message


def test_the_old_epoch_keys_name_their_step_replacements():
    message = error_for(lambda c: c["training"].update(max_epochs=10))
    assert "field 'training.max_epochs': replaced by training.max_steps" in message
    message = error_for(lambda c: c["training"].update(epoch_triples=2000000))
    assert "field 'training.epoch_triples': replaced by training.check_every_steps" in message


def test_min_steps_must_not_exceed_max_steps():
    message = error_for(lambda c: c["training"].update(min_steps=50, max_steps=40))
    assert "field 'training.min_steps': must not exceed max_steps (40) (value: 50)" in message


def test_clusters_k_must_be_below_the_number_of_generated_items():
    message = error_for(lambda c: c["clusters"].update(k=400))  # the tiny preset has 400 items
    assert "field 'clusters.k': must be below the number of items (400 in the generated data set" in message
    assert "preset 'tiny', scale 1" in message
    config = copy.deepcopy(TEST_CONFIG)
    config["clusters"]["k"] = 399
    validate_config(config, SCHEMA)


def test_clusters_k_is_checked_against_the_rows_of_a_real_inventory(tmp_path):
    (tmp_path / "ugallery_inventory.csv").write_text(
        "artwork_id_hash,artist_id_hash,upload_timestamp\n" + "".join(f"a{i},x,2014-01-01\n" for i in range(6))
    )
    (tmp_path / "ugallery_purchases.csv").write_text("user_id_hash,purchase_timestamp,artwork_id_hash\n")
    dataset = {"format": "ugallery", "path": str(tmp_path), "embeddings": "synthetic"}
    message = error_for(lambda c: c.update(dataset=dataset))  # test.yaml asks for k = 8
    assert f"must be below the number of items (6 in {tmp_path / 'ugallery_inventory.csv'})" in message


def test_validation_fills_the_defaults_and_sorts_the_keys():
    config = {"training": {"max_steps": 300}, "seed": 1}
    validate_config(config, SCHEMA)
    assert list(config) == sorted(config) and config["clusters"]["k"] == 100
    assert list(config["training"]) == sorted(config["training"]) and config["training"]["max_steps"] == 300
