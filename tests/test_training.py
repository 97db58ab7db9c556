"""The shared training loop: reading and batching triples, the schedule, end-to-end runs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curatornet.artifacts import embeddings_schema
from curatornet.errors import InputError
from curatornet.io import write_parquet
from curatornet.models.training import (
    HISTORY_COLUMNS,
    Schedule,
    TrainSettings,
    TripletArrays,
    fit,
    iterate_batches,
    planted_preference,
    read_triplets,
    train_model,
    write_triplets,
)

SMALL = dict(tower_units=(16, 16), head_units=(24, 16, 16))


def write_embeddings(embeddings: np.ndarray, path) -> None:
    table = pa.table(
        {
            "item": pa.array(np.arange(len(embeddings), dtype=np.int32)),
            "embedding": pa.FixedSizeListArray.from_arrays(pa.array(embeddings.reshape(-1)), embeddings.shape[1]),
        }
    )
    write_parquet(table, path, embeddings_schema(embeddings.shape[1]))


@pytest.fixture(scope="module")
def planted_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    embeddings, train, _ = planted_preference(n_triples=3000, seed=1)
    _, valid, _ = planted_preference(n_triples=600, seed=2)
    write_embeddings(embeddings, root / "embeddings.parquet")
    write_triplets(train, root / "train.parquet", "train")
    write_triplets(valid, root / "valid.parquet", "valid")
    return root


def test_batch_rebuilds_profiles():
    data = TripletArrays.from_lists([[1, 2], [3], [4, 5, 6], [1, 2]], [7, 8, 9, 7], [0, 0, 0, 1])
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
    data = TripletArrays.from_lists([[3, 1, 2], [2, 3, 1], [1, 2]], [0, 0, 0], [4, 4, 4]).add_profile_keys()
    assert data.profile_key[0] == data.profile_key[1] != data.profile_key[2]


def test_batches_cover_every_triple_once():
    data = TripletArrays.from_lists([[k] for k in range(10)], list(range(10)), [0] * 10)
    seen = np.concatenate([b.positive for b in iterate_batches(data, 3, np.random.default_rng(0))])
    assert sorted(seen.tolist()) == list(range(10))


def test_bad_item_index_names_file_and_field(tmp_path):
    data = TripletArrays.from_lists([[1], [2]], [3, 99], [4, 5])
    write_triplets(data, tmp_path / "t.parquet")
    with pytest.raises(InputError) as err:
        read_triplets(tmp_path / "t.parquet", n_items=10)
    assert "t.parquet" in str(err.value) and "positive" in str(err.value) and "99" in str(err.value)


def test_empty_file_and_empty_profile(tmp_path):
    data = TripletArrays.from_lists([[1], []], [3, 4], [4, 5])
    write_triplets(data, tmp_path / "e.parquet")
    with pytest.raises(InputError, match="empty profile"):
        read_triplets(tmp_path / "e.parquet", n_items=10)
    write_triplets(data.subset(np.zeros(2, bool)), tmp_path / "none.parquet")
    with pytest.raises(InputError, match="no triples"):
        read_triplets(tmp_path / "none.parquet", n_items=10)


def test_missing_column(tmp_path):
    pq.write_table(pa.table({"positive": [1]}), tmp_path / "m.parquet")
    with pytest.raises(InputError, match="profile"):
        read_triplets(tmp_path / "m.parquet", n_items=10)


class ScriptedTrainer:
    """Fake model whose validation accuracy follows a script (no TensorFlow)."""

    def __init__(self, accuracies):
        self.accuracies = list(accuracies)
        self.learning_rate = 0.0
        self.epoch = 0
        self.weights = {"w": np.zeros(1)}

    def train_step(self, batch):
        return 1.0

    def pairwise_accuracy(self, data):
        self.epoch += 1
        self.weights = {"w": np.array([self.epoch])}
        return self.accuracies[self.epoch - 1]

    def get_weights(self):
        return dict(self.weights)

    def set_weights(self, weights):
        self.weights = dict(weights)


def test_schedule_decays_stops_and_restores_best():
    data = TripletArrays.from_lists([[1]] * 4, [2] * 4, [3] * 4)
    trainer = ScriptedTrainer([0.6, 0.7, 0.65, 0.66, 0.69, 0.9])
    result = fit(
        trainer,
        data,
        data,
        Schedule(batch_size=2, max_epochs=6, learning_rate=1.0, lr_decay=0.5, lr_patience=1, early_stop_patience=3),
    )
    history = result.history
    assert list(history.columns) == HISTORY_COLUMNS
    assert history["epoch"].tolist() == [1, 2, 3, 4, 5]  # stops after 3 epochs without improvement
    assert history["learning_rate"].tolist() == [1.0, 1.0, 1.0, 0.5, 0.25]
    assert result.best_epoch == 2 and trainer.weights["w"].tolist() == [2]


def test_curatornet_learns_planted_preference_and_writes_dir(planted_files, tmp_path):
    settings = TrainSettings(model="curatornet", batch_size=256, max_epochs=4, seed=3, **SMALL)
    out = tmp_path / "model"
    meta = train_model(
        settings,
        planted_files / "train.parquet",
        planted_files / "valid.parquet",
        planted_files / "embeddings.parquet",
        out,
    )
    assert meta["valid_accuracy"] > 0.8
    assert sorted(p.name for p in out.iterdir()) == ["history.csv", "model.json", "standardizer.npz", "weights.npz"]
    on_disk = json.loads((out / "model.json").read_text())
    assert on_disk["model"] == "curatornet" and on_disk["n_items"] == 300 and on_disk["best_epoch"] >= 1
    history = pd.read_csv(out / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS and (history["triples_per_second"] > 0).all()


def test_run_is_repeatable(planted_files, tmp_path):
    settings = TrainSettings(model="curatornet", batch_size=512, max_epochs=2, seed=5, **SMALL)
    runs = []
    for name in ("a", "b"):
        train_model(
            settings,
            planted_files / "train.parquet",
            planted_files / "valid.parquet",
            planted_files / "embeddings.parquet",
            tmp_path / name,
        )
        runs.append(pd.read_csv(tmp_path / name / "history.csv")[["loss", "valid_accuracy", "learning_rate"]])
    pd.testing.assert_frame_equal(runs[0], runs[1])
    a, b = np.load(tmp_path / "a" / "weights.npz"), np.load(tmp_path / "b" / "weights.npz")
    assert all(np.array_equal(a[k], b[k]) for k in a.files)
