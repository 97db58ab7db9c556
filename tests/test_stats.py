"""Paired comparisons against direct scipy calls; λ selection on validation accuracy."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

from curatornet import stats


def test_paired_test_matches_scipy():
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
    assert got["n_users"] == 50 and got["mean_a"] == pytest.approx(a.mean())


def test_paired_test_identical_and_nan():
    a = np.array([0.5, 0.7, np.nan, 0.9])
    got = stats.paired_test(a, a.copy())
    assert got["n_users"] == 3 and got["p"] == 1.0 and got["wilcoxon_p"] == 1.0 and got["ci_low"] == 0.0
    assert np.isnan(stats.paired_test(np.array([0.1]), np.array([0.2]))["p"])


def _model_dir(root, model, sampling, l2, accuracy, in_json=True):
    path = root / "results" / "models" / model / sampling / f"l2_{l2}"
    path.mkdir(parents=True)
    meta = {"valid_accuracy": accuracy} if in_json else {"name": model}
    (path / "model.json").write_text(json.dumps(meta))
    if not in_json:
        pd.DataFrame({"epoch": [1, 2], "valid_accuracy": [accuracy - 0.1, accuracy]}).to_csv(
            path / "history.csv", index=False
        )
    return path


def test_selection_and_sampling_ttest(tmp_path):
    dirs = [
        _model_dir(tmp_path, "curatornet", "guidelines", "0", 0.70),
        _model_dir(tmp_path, "curatornet", "guidelines", "0.001", 0.80, in_json=False),
        _model_dir(tmp_path, "curatornet", "random", "0.0001", 0.60),
        _model_dir(tmp_path, "vbpr", "guidelines", "0.01", 0.65),
        _model_dir(tmp_path, "vbpr", "random", "0.01", 0.55),
        _model_dir(tmp_path, "vbpr", "random", "0.1", 0.75),
    ]
    selection = stats.select_runs(dirs)
    chosen = selection[selection["selected"]].set_index(["model", "sampling"])["l2"].to_dict()
    # CuratorNet: best guidelines λ 0.001 (from history.csv); no random run at it -> best random.
    # VBPR: random at the same λ as the chosen guidelines run, although another is better.
    assert chosen == {
        ("curatornet", "guidelines"): "0.001",
        ("curatornet", "random"): "0.0001",
        ("vbpr", "guidelines"): "0.01",
        ("vbpr", "random"): "0.01",
    }
    rng = np.random.default_rng(0)
    users = np.arange(30)
    runs = [
        ("curatornet", "guidelines", "0"),
        ("curatornet", "guidelines", "0.001"),
        ("curatornet", "random", "0.0001"),
        ("vbpr", "guidelines", "0.01"),
        ("vbpr", "random", "0.01"),
        ("vbpr", "random", "0.1"),
        ("visrank", "", ""),
        ("random", "", ""),
    ]
    frames = [
        pd.DataFrame({"method": m, "sampling": s, "l2": lam, "user": users, "auc": rng.random(30)})
        for m, s, lam in runs
    ]
    per_user = pd.concat(frames, ignore_index=True)
    table = stats.sampling_ttests(per_user, selection)
    assert list(table.columns) == stats.SAMPLING_COLUMNS
    assert table["model"].tolist() == ["curatornet", "vbpr"]
    assert table["l2"].tolist() == ["0.001/0.0001", "0.01"]
    g = frames[1]["auc"].to_numpy()
    r = frames[2]["auc"].to_numpy()
    assert table.loc[0, "p"] == pytest.approx(sps.ttest_rel(g, r).pvalue)
    assert table.loc[0, "mean_auc_random"] == pytest.approx(r.mean())
    versus = stats.visrank_tests(per_user)
    assert len(versus) == 6 and list(versus.columns) == stats.VISRANK_COLUMNS
    row = versus[(versus["model"] == "vbpr") & (versus["l2"] == "0.1")].iloc[0]
    assert row["t"] == pytest.approx(sps.ttest_rel(frames[5]["auc"], frames[6]["auc"]).statistic)
