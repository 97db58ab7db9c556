"""Paired comparisons against direct scipy calls, Holm's adjustment by hand, selection on validation only."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from curatornet import stats


def test_paired_test_matches_scipy_and_reports_effect_sizes():
    rng = np.random.default_rng(1)
    a = rng.random(50)
    b = a - 0.05 + 0.1 * rng.standard_normal(50)
    got = stats.paired_test(a, b)
    direct = sps.ttest_rel(a, b)
    assert got["t"] == pytest.approx(direct.statistic)
    assert got["p"] == pytest.approx(direct.pvalue)
    assert got["wilcoxon_p"] == pytest.approx(sps.wilcoxon(a, b).pvalue)
    diff = a - b
    low, high = sps.t.interval(0.95, len(diff) - 1, loc=diff.mean(), scale=sps.sem(diff))
    assert (got["ci_low"], got["ci_high"]) == pytest.approx((low, high))
    assert got["mean_diff"] == pytest.approx(diff.mean())
    assert got["d_z"] == pytest.approx(diff.mean() / diff.std(ddof=1))
    # d_z and t agree: t = d_z * sqrt(n)
    assert got["t"] == pytest.approx(got["d_z"] * np.sqrt(50))
    assert got["n_users"] == 50 and got["mean_a"] == pytest.approx(a.mean())


def test_paired_test_identical_and_nan():
    a = np.array([0.5, 0.7, np.nan, 0.9])
    got = stats.paired_test(a, a.copy())
    assert got["n_users"] == 3 and got["p"] == 1.0 and got["wilcoxon_p"] == 1.0 and got["ci_low"] == 0.0
    assert np.isnan(stats.paired_test(np.array([0.1]), np.array([0.2]))["p"])


def test_holm_against_a_hand_computed_case():
    # Sorted: .005 x4 = .02, .01 x3 = .03, .03 x2 = .06, .04 x1 = .04 -> running max .06.
    np.testing.assert_allclose(stats.holm([0.01, 0.04, 0.03, 0.005]), [0.03, 0.06, 0.06, 0.02])
    # NaN is left out of the family: m = 2.
    np.testing.assert_allclose(stats.holm([0.01, np.nan, 0.04]), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(stats.holm([0.6, 0.7]), [1.0, 1.0])  # capped at 1


def write_run(root, model, sampling, l2, seed, valid_auc, best_check=12):
    path = root / model / sampling / f"l2_{l2}" / f"seed_{seed}"
    path.mkdir(parents=True)
    meta = {
        "model": model,
        "sampling": sampling,
        "l2": float(l2),
        "seed": seed,
        "valid_auc": valid_auc,
        "valid_accuracy": 0.99,
        "monitor": "valid_auc",
        "best_check": best_check,
        "best_step": 10 * best_check,
        "min_steps": 100,
        "checks_run": best_check + 8,
        "steps_run": 10 * (best_check + 8),
        "stop_reason": "patience",
    }
    (path / "model.json").write_text(json.dumps(meta))
    return path


def test_selection_reads_validation_auc_averaged_over_seeds(tmp_path):
    dirs = [
        write_run(tmp_path, "curatornet", "guidelines", "0", 0, 0.70),
        write_run(tmp_path, "curatornet", "guidelines", "0", 1, 0.60),  # mean .65
        write_run(tmp_path, "curatornet", "guidelines", "0.001", 0, 0.66),
        write_run(tmp_path, "curatornet", "guidelines", "0.001", 1, 0.67),  # mean .665: selected
        write_run(tmp_path, "curatornet", "random", "0.0001", 0, 0.61),
        write_run(tmp_path, "curatornet", "random", "0.0001", 1, 0.62),
        write_run(tmp_path, "vbpr", "guidelines", "0.01", 0, 0.64),
        write_run(tmp_path, "vbpr", "guidelines", "0.01", 1, 0.65),
    ]
    runs = stats.read_runs(dirs)
    assert list(runs.columns) == stats.RUN_COLUMNS and runs["l2"].tolist()[:3] == ["0", "0", "0.001"]
    selection = stats.select_runs(runs)
    chosen = selection[selection["selected"]].set_index(["model", "sampling"])["l2"].to_dict()
    assert chosen == {
        ("curatornet", "guidelines"): "0.001",
        ("curatornet", "random"): "0.0001",
        ("vbpr", "guidelines"): "0.01",
    }
    row = selection[(selection["model"] == "curatornet") & (selection["l2"] == "0")].iloc[0]
    assert row["valid_auc"] == pytest.approx(0.65) and (row["valid_auc_min"], row["valid_auc_max"]) == (0.6, 0.7)
    assert row["best_seed"] == 0 and row["seeds"] == 2
    assert stats.selected_l2(selection, "vbpr", "random") is None
    # A job that needs one selection (refit, ablation) reads only that model and sampling's runs: the same λ
    own = [d for d in dirs if "curatornet/guidelines" in str(d)]
    assert stats.selected_l2_among(own, "curatornet", "guidelines") == "0.001"


def per_user_frame(rng, runs, users, seeds=(0, 1), split="test"):
    frames = []
    for method, sampling, l2, mean in runs:
        for seed in seeds if sampling else ("",):
            frames.append(
                pd.DataFrame(
                    {
                        "method": method,
                        "sampling": sampling,
                        "l2": l2,
                        "seed": str(seed),
                        "split": split,
                        "user": users,
                        "auc": np.clip(mean + 0.05 * rng.standard_normal(len(users)), 0, 1),
                        "recall@20": rng.random(len(users)),
                        "train_items": (users % 7) + 1,
                    }
                )
            )
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def evaluated():
    rng = np.random.default_rng(0)
    runs = [
        ("curatornet", "guidelines", "0", 0.70),
        ("curatornet", "guidelines", "0.001", 0.72),
        ("curatornet", "random", "0.001", 0.65),
        ("vbpr", "guidelines", "0.01", 0.66),
        ("vbpr", "random", "0.01", 0.60),
        ("visrank", "", "", 0.69),
        ("random", "", "", 0.5),
        ("oracle", "", "", 1.0),
    ]
    per_user = per_user_frame(rng, runs, np.arange(40))
    selection = pd.DataFrame(
        [
            ("curatornet", "guidelines", "0", 2, 0.7, 0.7, 0.7, True, 0),  # chosen on validation, not the test's best
            ("curatornet", "guidelines", "0.001", 2, 0.6, 0.6, 0.6, False, 0),
            ("curatornet", "random", "0.001", 2, 0.6, 0.6, 0.6, True, 1),
            ("vbpr", "guidelines", "0.01", 2, 0.6, 0.6, 0.6, True, 0),
            ("vbpr", "random", "0.01", 2, 0.6, 0.6, 0.6, True, 0),
        ],
        columns=stats.SELECTION_COLUMNS,
    )
    return per_user, selection


def test_table2_means_over_seeds_with_spread_and_marks_the_selected_lambda(evaluated):
    per_user, selection = evaluated
    table = stats.table2(per_user, selection)
    assert table["method"].iloc[0] == "oracle" and table["method"].iloc[-1] == "random"
    row = table[(table["method"] == "curatornet") & (table["l2"] == "0")].iloc[0]
    runs = per_user[(per_user["method"] == "curatornet") & (per_user["l2"] == "0")]
    per_seed = runs.groupby("seed")["auc"].mean()
    assert row["auc"] == pytest.approx(per_seed.mean())
    assert (row["auc_min"], row["auc_max"]) == pytest.approx((per_seed.min(), per_seed.max()))
    assert row["selected"] and row["seeds"] == 2 and row["users"] == 40
    assert not table[(table["method"] == "curatornet") & (table["l2"] == "0.001")]["selected"].iloc[0]
    assert table[table["method"] == "visrank"]["selected"].iloc[0]


def test_sampling_and_reference_tests_use_seed_averaged_users(evaluated):
    per_user, selection = evaluated
    averaged = stats.seed_average(per_user)
    table2 = stats.table2(per_user, selection)
    sampling = stats.sampling_tests(averaged, selection, table2)
    assert sampling["model"].tolist() == ["curatornet", "vbpr"]
    assert sampling[["l2_guidelines", "l2_random"]].values.tolist() == [["0", "0.001"], ["0.01", "0.01"]]

    def mean_auc(method, sampling, l2):
        rows = per_user[(per_user["method"] == method) & (per_user["sampling"] == sampling) & (per_user["l2"] == l2)]
        return rows.groupby("user")["auc"].mean().to_numpy()

    g, r = mean_auc("curatornet", "guidelines", "0"), mean_auc("curatornet", "random", "0.001")
    first = sampling.iloc[0]
    assert first["p"] == pytest.approx(sps.ttest_rel(g, r).pvalue)
    assert first["mean_diff"] == pytest.approx((g - r).mean())
    np.testing.assert_allclose(sampling["p_holm"], stats.holm(sampling["p"]))

    versus = stats.reference_tests(averaged)
    assert len(versus) == 5 and "p_holm" in versus.columns and set(versus["reference"]) == {"visrank"}
    np.testing.assert_allclose(versus["p_holm"], stats.holm(versus["p"]))
    verdicts = stats.verdict_tests(averaged, selection, table2)
    # Every registered model against the reference baseline, then against each other.
    assert verdicts[["a", "b"]].values.tolist() == [
        ["curatornet", "visrank"],
        ["vbpr", "visrank"],
        ["curatornet", "vbpr"],
    ]
    assert verdicts["l2_a"].tolist()[0] == "0"  # the selected λ, not the test's best (0.001)


def test_verdicts_say_when_a_difference_lies_within_the_seed_range():
    rng = np.random.default_rng(3)
    users = np.arange(300)
    # CuratorNet's two seeds differ by about .06 while it trails VisRank by about .01; VBPR's seeds agree.
    per_user = pd.concat(
        [
            per_user_frame(rng, [("curatornet", "guidelines", "0", 0.65)], users, seeds=(0,)),
            per_user_frame(rng, [("curatornet", "guidelines", "0", 0.71)], users, seeds=(1,)),
            per_user_frame(rng, [("vbpr", "guidelines", "0", 0.55), ("visrank", "", "", 0.69)], users),
        ],
        ignore_index=True,
    )
    selection = pd.DataFrame(
        [
            ("curatornet", "guidelines", "0", 2, 0.7, 0.7, 0.7, True, 0),
            ("vbpr", "guidelines", "0", 2, 0.6, 0.6, 0.6, True, 0),
        ],
        columns=stats.SELECTION_COLUMNS,
    )
    table2 = stats.table2(per_user, selection)
    verdicts = stats.verdict_tests(stats.seed_average(per_user), selection, table2).set_index(["a", "b"])
    near = verdicts.loc[("curatornet", "visrank")]
    assert near["seeds_a"] == 2 and near["seeds_b"] == 1
    assert near["seed_range"] == pytest.approx(near["auc_a_max"] - near["auc_a_min"]) and near["seed_range"] > 0.04
    assert abs(near["mean_diff"]) < near["seed_range"] and near["within_seed_range"]
    far = verdicts.loc[("vbpr", "visrank")]
    assert far["mean_diff"] < -0.1 and not far["within_seed_range"]
    # With one seed the spread is unknown: neither within nor beyond.
    one = per_user[per_user["seed"].isin(["0", ""])]
    single = stats.verdict_tests(stats.seed_average(one), selection, stats.table2(one, selection))
    assert single["within_seed_range"].isna().all() and single["seed_range"].isna().all()


def test_segments_by_training_items(evaluated):
    per_user, selection = evaluated
    table = stats.segments(stats.seed_average(per_user), selection)
    assert set(table["segment"]) == {"1", "2-4", "5+"}
    # user % 7 + 1 training items: segment sizes over 40 users
    counts = pd.Series(stats.segment_of(np.arange(40) % 7 + 1)).value_counts()
    visrank = table[table["method"] == "visrank"].set_index("segment")["users"]
    assert visrank.to_dict() == counts.to_dict()
    assert set(table["l2"]) == {"", "0", "0.001", "0.01"}  # selected runs and baselines only
    assert len(table[(table["method"] == "curatornet") & (table["sampling"] == "guidelines")]) == 3
    assert stats.segment_of(np.array([0, 1, 2, 4, 5, 90])).tolist() == ["0", "1", "2-4", "2-4", "5+", "5+"]
