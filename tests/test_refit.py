"""Refit after selection (training.refit) without Snakemake: the purchases it samples from, its steps and
learning rates, a real refit of a trained run, and how its evaluation replaces the run's test rows."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from planted import N_ITEMS, planted_triples, settings, train_paths, write_data_folder, write_triplets

from curatornet.errors import InputError
from curatornet.evaluation.evaluate import EvaluationResult, apply_refit, summarise
from curatornet.models.loop import STOP_REFIT, fit_steps, rate_schedule
from curatornet.models.train import refit_steps
from curatornet.sampling.data import refit_view
from curatornet.stats import table2


def test_the_refit_samples_every_purchase_before_the_test_and_says_how_much_more_that_is():
    purchases = pd.DataFrame(
        {"user": [0, 0, 0, 1, 1], "item": [1, 2, 3, 4, 5], "basket": [0, 1, 2, 0, 1]}
        | {"split": ["train", "valid", "test", "train", "train"]}
    )
    table, ratio = refit_view(purchases)
    assert table.column("split").to_pylist() == ["train", "train", "test", "train", "train"]
    assert ratio == pytest.approx(4 / 3)
    with pytest.raises(InputError) as info:
        refit_view(purchases.assign(split="test"))
    assert info.value.field == "split"


def test_refit_steps_keep_the_passes_of_the_kept_check():
    assert refit_steps({"best_step": 150, "n_train_triples": 360_000}, 396_000) == 165
    assert refit_steps({"best_step": 0, "n_train_triples": 10}, 11) == 0
    with pytest.raises(InputError):
        refit_steps({"best_step": 10}, 11)


def test_the_learning_rate_follows_the_runs_checks():
    history = pd.DataFrame({"step": [5, 10, 15], "learning_rate": [1.0, 0.5, 0.25]})
    rate = rate_schedule(history, 9.0)
    assert [rate(s) for s in (1, 5, 5.5, 10, 11, 15, 40)] == [1.0, 1.0, 0.5, 0.5, 0.25, 0.25, 0.25]
    assert rate_schedule(history.iloc[:0], 9.0)(3) == 9.0


class CountingTrainer:
    """Counts steps and records the learning rate of each (no TensorFlow, never validated)."""

    def __init__(self):
        self.learning_rate = 0.0
        self.rates = []

    def train_step(self, batch):
        self.rates.append(self.learning_rate)
        return 1.0


def test_fit_steps_trains_exactly_the_steps_at_the_scheduled_rates():
    from test_training import schedule

    trainer = CountingTrainer()
    data = planted_triples(10, seed=0)
    result = fit_steps(trainer, data, schedule(check_every_steps=3), 7, lambda step: 1.0 if step <= 4 else 0.1)
    assert trainer.rates == [1.0] * 4 + [0.1] * 3
    assert result.history["step"].tolist() == [3, 6, 7] and result.history["valid_auc"].isna().all()
    assert result.stop_reason == STOP_REFIT and result.best_check == 3
    assert result.history["kept"].tolist() == [False, False, True]


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("refit")
    write_triplets(planted_triples(3000, seed=1), root / "train.parquet", "train")
    write_triplets(planted_triples(600, seed=2), root / "valid.parquet", "valid")
    write_triplets(planted_triples(3300, seed=3), root / "refit.parquet", "train")
    write_data_folder(root / "data")
    from curatornet.models.train import train_model

    train_model(settings("curatornet", l2=0.001, seed=3), **train_paths(root, root / "data"), out_dir=root / "run")
    return root


def test_a_refit_trains_the_runs_steps_scaled_to_the_larger_set_and_scores_like_a_run(trained_run):
    from curatornet.models.registry import load_scorer
    from curatornet.models.train import read_embeddings, refit_model

    root = trained_run
    run = json.loads((root / "run/model.json").read_text())
    data = root / "data"
    meta = refit_model(
        settings("curatornet", l2=0.001, seed=3),
        root / "run",
        root / "refit.parquet",
        data / "embeddings.parquet",
        data / "items.parquet",
        data / "purchases.parquet",
        root / "refitted",
    )
    assert meta["refit"]["ratio"] == pytest.approx(1.1) and meta["n_train_triples"] == 3300
    assert meta["steps_run"] == meta["best_step"] == round(run["best_step"] * 1.1)
    assert meta["l2"] == 0.001 and meta["stop_reason"] == STOP_REFIT and "valid_auc" not in meta
    history = pd.read_csv(root / "refitted/history.csv")
    assert history["step"].iloc[-1] == meta["steps_run"] and history["kept"].iloc[-1]
    scorer = load_scorer(root / "refitted", read_embeddings(data / "embeddings.parquet"))
    from curatornet.models.base import Queries

    scores = scorer.score(Queries(np.array([0]), [np.array([1, 2])]), np.arange(N_ITEMS))
    assert scores.shape == (1, N_ITEMS) and np.isfinite(scores).all()


def _result(rows) -> EvaluationResult:
    frame = pd.DataFrame(rows, columns=["method", "sampling", "l2", "seed", "split", "user", "auc"])
    curves = frame.drop_duplicates(["method", "sampling", "l2", "seed", "split"])[
        ["method", "sampling", "l2", "seed", "split"]
    ].assign(k=1)
    return EvaluationResult(frame, curves, frame.assign(rank=1, item=0, hit=False))


def test_the_refit_replaces_the_test_rows_of_the_run_it_refits_and_keeps_the_validation_rows():
    runs = _result(
        [
            ("m", "guidelines", "0.01", "0", "test", 1, 0.6),
            ("m", "guidelines", "0.01", "0", "test", 2, 0.7),
            ("m", "guidelines", "0.01", "0", "valid", 1, 0.5),
            ("m", "guidelines", "0.1", "0", "test", 1, 0.55),
            ("visrank", "", "", "", "test", 1, 0.65),
        ]
    )
    refit = _result(
        [("m", "guidelines", "0.01", "0", "test", 1, 0.8), ("m", "guidelines", "0.01", "0", "test", 2, 0.9)]
    )
    result, before = apply_refit(runs, refit)
    final = result.per_user
    test = final[(final["l2"] == "0.01") & (final["split"] == "test")]
    assert test["auc"].tolist() == [0.8, 0.9] and test["refit"].all()
    assert final.loc[final["split"] == "valid", "auc"].tolist() == [0.5]
    assert not final.loc[final["l2"] != "0.01", "refit"].any() and len(final) == 5
    assert before["auc"].tolist() == [0.6, 0.7]
    assert result.curves["refit"].sum() == 1 and result.top["refit"].sum() == 2
    assert "refit" in summarise(final).columns
    selection = pd.DataFrame(
        {"model": ["m", "m"], "sampling": ["guidelines"] * 2, "l2": ["0.01", "0.1"], "selected": [True, False]}
    )
    table = table2(final, selection, "test", before).set_index("l2")
    assert table.loc["0.01", "refit"] and table.loc["0.01", "auc"] == pytest.approx(0.85)
    assert table.loc["0.01", "auc_before_refit"] == pytest.approx(0.65)
    assert not table.loc["0.1", "refit"] and np.isnan(table.loc["0.1", "auc_before_refit"])
    unchanged, none = apply_refit(runs, _result([]))
    assert len(none) == 0 and not unchanged.per_user["refit"].any()
    with pytest.raises(InputError):
        apply_refit(runs, _result([("m", "random", "0.01", "0", "test", 1, 0.8)]))
