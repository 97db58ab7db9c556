"""The shared training loop: reading and batching triples, the schedule, end-to-end runs."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from planted import N_ITEMS, planted_triples, settings, train_paths, write_data_folder, write_triplets

from curatornet.errors import InputError
from curatornet.models.loop import HISTORY_COLUMNS, STOP_MAX_EPOCHS, STOP_PATIENCE, Schedule, fit, iterate_batches
from curatornet.models.train import train_model
from curatornet.sampling.triples import Triples, read_triplets


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    write_triplets(planted_triples(3000, seed=1), root / "train.parquet", "train")
    write_triplets(planted_triples(600, seed=2), root / "valid.parquet", "valid")
    write_data_folder(root / "data")
    return root


def test_batch_rebuilds_profiles():
    data = Triples.from_lists([[1, 2], [3], [4, 5, 6], [1, 2]], [7, 8, 9, 7], [0, 0, 0, 1])
    batch = data.batch(np.array([2, 0, 3]))
    assert batch.values.tolist() == [4, 5, 6, 1, 2, 1, 2]
    assert batch.row_ids.tolist() == [0, 0, 0, 1, 1, 2, 2]
    data.add_profile_keys()
    assert data.profile_key[0] == data.profile_key[3] != data.profile_key[1]
    shared = data.batch(np.array([2, 0, 3]), distinct_profiles=True)
    assert len(np.unique(shared.row_ids)) == 2  # [1, 2] sent once
    rebuilt = [sorted(shared.values[shared.row_ids == r].tolist()) for r in shared.profile_rows]
    assert rebuilt == [[4, 5, 6], [1, 2], [1, 2]]
    assert shared.positive.tolist() == [9, 7, 7]


def test_profile_key_ignores_order():
    data = Triples.from_lists([[3, 1, 2], [2, 3, 1], [1, 2]], [0, 0, 0], [4, 4, 4]).add_profile_keys()
    assert data.profile_key[0] == data.profile_key[1] != data.profile_key[2]


def test_batches_cover_every_triple_once():
    data = Triples.from_lists([[k] for k in range(10)], list(range(10)), [0] * 10)
    seen = np.concatenate([b.positive for b in iterate_batches(data, 3, np.random.default_rng(0))])
    assert sorted(seen.tolist()) == list(range(10))


def test_bad_item_index_names_file_and_field(tmp_path):
    data = Triples.from_lists([[1], [2]], [3, 99], [4, 5])
    write_triplets(data, tmp_path / "t.parquet")
    with pytest.raises(InputError) as err:
        read_triplets(tmp_path / "t.parquet", n_items=10)
    assert "t.parquet" in str(err.value) and "positive" in str(err.value) and "99" in str(err.value)


def test_empty_file_and_empty_profile(tmp_path):
    data = Triples.from_lists([[1], []], [3, 4], [4, 5])
    write_triplets(data, tmp_path / "e.parquet")
    with pytest.raises(InputError, match="empty profile"):
        read_triplets(tmp_path / "e.parquet", n_items=10)
    assert len(read_triplets(tmp_path / "e.parquet", n_items=10, allow_empty_profiles=True)) == 2
    write_triplets(data.take(np.zeros(2, bool)), tmp_path / "none.parquet")
    with pytest.raises(InputError, match="no triples"):
        read_triplets(tmp_path / "none.parquet", n_items=10)


def test_missing_column(tmp_path):
    pq.write_table(pa.table({"positive": [1]}), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="profile"):
        read_triplets(tmp_path / "m.parquet", n_items=10)


class ScriptedTrainer:
    """Fake model whose validation figures follow a script (no TensorFlow)."""

    def __init__(self, aucs, accuracies=None):
        self.aucs = list(aucs)
        self.accuracies = list(accuracies) if accuracies is not None else [0.5] * len(self.aucs)
        self.learning_rate = 0.0
        self.epoch = 0
        self.weights = {"w": np.zeros(1)}

    def train_step(self, batch):
        self.weights = {"w": np.array([self.epoch + 1])}
        return 1.0

    def validate(self):
        self.epoch += 1
        return {"valid_auc": self.aucs[self.epoch - 1], "valid_accuracy": self.accuracies[self.epoch - 1]}

    def get_weights(self):
        return dict(self.weights)

    def set_weights(self, weights):
        self.weights = dict(weights)


def schedule(**changes) -> Schedule:
    values = dict(batch_size=2, max_epochs=6, learning_rate=1.0, lr_decay=0.5, lr_patience=1, early_stop_patience=3)
    return Schedule(**{**values, "seed": 0, **changes})


def test_schedule_follows_validation_auc_decays_stops_and_restores_best():
    data = Triples.from_lists([[1]] * 4, [2] * 4, [3] * 4)
    # The pairwise accuracy keeps rising while the AUC peaks at epoch 2: the AUC decides.
    trainer = ScriptedTrainer([0.6, 0.7, 0.65, 0.66, 0.69, 0.9], [0.9, 0.95, 0.97, 0.98, 0.99, 0.995])
    result = fit(trainer, data, schedule(), trainer.validate, "valid_auc")
    history = result.history
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]  # stops after 3 epochs without improvement
    assert history["learning_rate"].tolist() == [1.0, 1.0, 1.0, 0.5, 0.25]
    assert result.stop_reason == STOP_PATIENCE
    assert result.best_epoch == int(history.loc[history["valid_auc"].idxmax(), "epoch"]) == 2
    assert trainer.weights["w"].tolist() == [2]
    assert result.at_best("valid_accuracy") == 0.95


def test_schedule_can_follow_pairwise_accuracy_and_reports_max_epochs():
    data = Triples.from_lists([[1]] * 4, [2] * 4, [3] * 4)
    trainer = ScriptedTrainer([math.nan] * 3, [0.7, 0.8, 0.9])
    result = fit(trainer, data, schedule(max_epochs=3), trainer.validate, "valid_accuracy")
    assert result.best_epoch == 3 and result.stop_reason == STOP_MAX_EPOCHS


def test_an_epoch_can_be_part_of_a_pass():
    data = Triples.from_lists([[k] for k in range(10)], list(range(10)), [0] * 10)
    trainer = ScriptedTrainer([0.5, 0.6, 0.7, 0.8])
    seen = []
    trainer.train_step = lambda batch: seen.append(batch.positive.tolist()) or 1.0
    fit(trainer, data, schedule(batch_size=2, max_epochs=4, epoch_triples=4), trainer.validate, "valid_auc")
    # 4 epochs of 2 batches of 2: the first five batches are one shuffled pass, then a new pass starts.
    assert len(seen) == 8
    assert sorted(sum(seen[:5], [])) == list(range(10))
    assert sorted(sum(seen[5:], [])) != list(range(10))


def test_curatornet_learns_planted_preference_and_writes_dir(planted_files, tmp_path):
    out = tmp_path / "model"
    meta = train_model(
        settings("curatornet", seed=3), **train_paths(planted_files, planted_files / "data"), out_dir=out
    )
    assert meta["monitor"] == "valid_auc" and meta["validation_users"] == 40
    assert meta["valid_auc"] > 0.8
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.json", "standardizer.npz", "weights.npz"]
    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk["model"] == "curatornet" and on_disk["n_items"] == N_ITEMS
    assert on_disk["catalogue"]["n_items"] == N_ITEMS and len(on_disk["catalogue"]["fingerprint"]) == 16
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS and (history["triples_per_second"] > 0).all()
    # The kept epoch is the one with the best validation AUC, and model.json says why training ended.
    assert on_disk["best_epoch"] == int(history.loc[history["valid_auc"].idxmax(), "epoch"])
    assert on_disk["valid_auc"] == pytest.approx(history["valid_auc"].max())
    assert on_disk["stop_reason"] in (STOP_PATIENCE, STOP_MAX_EPOCHS)
    assert on_disk["epochs_run"] == len(history)


def test_run_is_repeatable(planted_files, tmp_path):
    runs = []
    for name in ("a", "b"):
        train_model(
            settings("curatornet", seed=5, batch_size=512, max_epochs=2),
            **train_paths(planted_files, planted_files / "data"),
            out_dir=tmp_path / name,
        )
        runs.append(pd.read_csv(tmp_path / name / "history.csv")[["loss", "valid_auc", "learning_rate"]])
    pd.testing.assert_frame_equal(runs[0], runs[1])
    a, b = np.load(tmp_path / "a" / "weights.npz"), np.load(tmp_path / "b" / "weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)


def test_seeds_give_different_runs(planted_files, tmp_path):
    weights = []
    for seed in (0, 1):
        train_model(
            settings("curatornet", seed=seed, max_epochs=1),
            **train_paths(planted_files, planted_files / "data"),
            out_dir=tmp_path / str(seed),
        )
        weights.append(np.load(tmp_path / str(seed) / "weights.npz")["tower_0/kernel"])
    assert not np.allclose(weights[0], weights[1])
