"""The scattered evaluation: cases on disk, one scorer per job, a gather equal to one pass over all methods."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_protocol import _items, _purchases

from curatornet.errors import InputError
from curatornet.evaluation.cases import read_cases, write_cases
from curatornet.evaluation.evaluate import (
    baseline_scorer,
    baseline_settings,
    check_embeddings,
    evaluate_scorer,
    gather_results,
    read_result,
    summarise,
    to_table,
    write_result,
)
from curatornet.evaluation.protocol import build_cases

EVALUATION = {"ks": [1, 2], "curve_max_k": 4, "visrank": {"aggregate": "max", "top_k": 2}, "random_seed": 3}


def small_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Items and purchases of six test users (two training baskets and a test basket each)."""
    items = _items([(f"i{n}", f"a{n % 3}", "2020-01-01", n % 2 == 0) for n in range(12)])
    rows = []
    for user in range(6):
        rows += [(user, user, "2020-02-01", "train"), (user, user + 1, "2020-02-02", "train")]
        rows += [(user, user + 6, "2020-03-01", "test")]
    return items, _purchases(rows)


@pytest.fixture()
def frames():
    return small_frames()


def test_cases_read_back_as_written(frames, tmp_path):
    cases = build_cases(*frames)
    write_cases(cases, tmp_path / "test.parquet", tmp_path / "test_inventory.parquet")
    again = read_cases(tmp_path / "test.parquet", tmp_path / "test_inventory.parquet", "test")
    assert again.split == "test" and again.train_items.tolist() == cases.train_items.tolist() == [2] * len(cases)
    assert again.users.tolist() == cases.users.tolist()
    assert again.user_ids.tolist() == cases.user_ids.tolist()
    assert again.times.tolist() == cases.times.tolist()
    assert [p.tolist() for p in again.profiles] == [p.tolist() for p in cases.profiles]
    assert [t.tolist() for t in again.truth] == [t.tolist() for t in cases.truth]
    assert (again.candidate_mask() == cases.candidate_mask()).all()


def test_validation_cases_may_be_empty_test_cases_may_not(frames, tmp_path):
    # Nobody here has three baskets: no validation basket, and that is allowed (selection falls back).
    cases = build_cases(*frames, split="valid")
    assert len(cases) == 0 and cases.split == "valid"
    write_cases(cases, tmp_path / "valid.parquet", tmp_path / "valid_inventory.parquet")
    assert len(read_cases(tmp_path / "valid.parquet", tmp_path / "valid_inventory.parquet", "valid")) == 0
    items, purchases = frames
    with pytest.raises(InputError, match="split"):
        build_cases(items, purchases[purchases["split"] != "test"], split="test")
    with pytest.raises(InputError, match="split"):
        build_cases(items, purchases, split="train")


def test_one_job_per_scorer_then_a_gather_equals_one_pass(frames, tmp_path):
    cases = build_cases(*frames)
    embeddings = np.random.default_rng(0).random((cases.n_items, 4)).astype(np.float32)
    check_embeddings(embeddings, cases)
    items, purchases = frames
    names = ("visrank", "random", "oracle", "mostpopular")
    runs = [({"method": name}, baseline_scorer(name, embeddings, EVALUATION, purchases)) for name in names]
    one_pass = gather_results(
        [evaluate_scorer(key, scorer, cases, EVALUATION["ks"], EVALUATION["curve_max_k"]) for key, scorer in runs]
    )

    files = {"per_user": [], "curves": [], "top": []}
    for key, scorer in runs:
        result = evaluate_scorer(key, scorer, cases, EVALUATION["ks"], EVALUATION["curve_max_k"])
        paths = {kind: tmp_path / key["method"] / f"{kind}.parquet" for kind in files}
        write_result(result, paths["per_user"], paths["curves"], paths["top"])
        for kind, path in paths.items():
            files[kind].append(path)
    gathered = read_result(files["per_user"], files["curves"], files["top"])

    for name in ("per_user", "curves", "top"):
        expected = to_table(getattr(one_pass, name)).to_pandas()
        pd.testing.assert_frame_equal(getattr(gathered, name), expected, check_dtype=False)
    summary = summarise(gathered.per_user)
    assert summary["Method"].iloc[0] == "Oracle" and summary["Method"].iloc[-1] == "Random"
    assert summary.loc[summary["Method"] == "Oracle", ["AUC", "MRR"]].values.tolist() == [[1.0, 1.0]]
    assert list(summary.columns[5:]) == ["AUC", "MRR", "R@1", "P@1", "nDCG@1", "nDCG@1 (paper)"] + [
        "R@2",
        "P@2",
        "nDCG@2",
        "nDCG@2 (paper)",
        "users",
    ]


def test_embeddings_must_cover_the_cases_items(frames):
    cases = build_cases(*frames)
    with pytest.raises(InputError, match="embeddings"):
        check_embeddings(np.zeros((cases.n_items - 1, 4), dtype=np.float32), cases)


def test_each_baseline_depends_on_its_own_settings_only():
    assert baseline_settings("oracle", EVALUATION) == {"ks": [1, 2], "curve_max_k": 4}
    assert baseline_settings("random", EVALUATION)["random_seed"] == 3
    assert "random_seed" not in baseline_settings("visrank", EVALUATION)
    assert baseline_settings("visrank", EVALUATION)["visrank"] == {"aggregate": "max", "top_k": 2}
    assert baseline_settings("mostpopular", EVALUATION) == {"ks": [1, 2], "curve_max_k": 4}
    with pytest.raises(InputError, match="baseline"):
        baseline_scorer("popularity", np.zeros((2, 2), dtype=np.float32), EVALUATION)
    with pytest.raises(InputError, match="reads the purchases"):
        baseline_scorer("mostpopular", np.zeros((2, 2), dtype=np.float32), EVALUATION)
