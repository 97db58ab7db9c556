"""The ablation's parts without Snakemake: headroom budgets, quotas, leave-one-out sets of the full set's
size, the variants a config asks for, the statistics against the full set and the report's answer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curatornet import ablation, parts
from curatornet.config import schema_defaults
from curatornet.errors import InputError
from curatornet.report import _ablation_seeds_caveat, guidelines_answer
from curatornet.sampling import SamplingData, Triples, sample_shard
from curatornet.sampling.ablation import fill_quotas, full_set_targets, headroom_budget, leave_one_out
from curatornet.stats import ABLATION_COLUMNS, POOLING_COLUMNS, ablation_tests


def test_headroom_covers_the_largest_leave_one_out_set_plus_the_share():
    budgets = {name: {"train": 60_000, "valid": 3_000} for name in ("a", "b", "c", "d", "e", "f")}
    extra = headroom_budget(budgets, "a", 0.05)
    # without one of six equal guidelines the five others give 6/5 of their budget each, plus 5 %
    assert extra == {"train": int(np.ceil(72_000 * 1.05 - 60_000)), "valid": int(np.ceil(3_600 * 1.05 - 3_000))}
    uneven = {"a": {"train": 100, "valid": 0}, "b": {"train": 300, "valid": 0}, "c": {"train": 600, "valid": 0}}
    # a's largest need is when c (the largest other) is left out: 100 * 1000 / 400
    assert headroom_budget(uneven, "a", 0.0)["train"] == 150
    assert headroom_budget(uneven, "c", 0.0)["train"] == int(np.ceil(600 * 1000 / 700 - 600))
    assert headroom_budget(uneven, "a", 0.0)["valid"] == 0


def test_quotas_sum_to_the_target_in_proportion_and_pass_on_what_a_short_part_lacks():
    quotas = fill_quotas(100, [1, 1, 2], [1000, 1000, 1000])
    assert quotas.tolist() == [25, 25, 50]
    quotas = fill_quotas(100, [1, 1, 2], [10, 1000, 1000])
    assert quotas.sum() == 100 and quotas[0] == 10 and abs(quotas[2] - 2 * quotas[1]) <= 1
    assert fill_quotas(7, [1, 1, 1], [2, 2, 2]).tolist() == [2, 2, 2]  # all there is
    assert fill_quotas(10, [1, 0], [3, 100]).tolist() == [3, 7]  # an unweighted part takes the rest last


def _shard(rng: np.random.Generator, n_train: int, n_valid: int, offset: int) -> pa.Table:
    """A shard-schema table of distinct single-item triples (positive = offset + row)."""
    n = n_train + n_valid
    triples = Triples.single_items(rng.integers(0, 50, n), offset + np.arange(n), rng.integers(0, 50, n))
    train = triples.take(np.arange(n_train)).to_arrow("train")
    valid = triples.take(np.arange(n_train, n)).to_arrow("valid")
    return pa.concat_tables([train, valid])


def test_a_leave_one_out_set_has_the_full_sets_size_and_takes_each_shard_before_its_headroom():
    rng = np.random.default_rng(0)
    budgets = {name: {"train": 100, "valid": 10} for name in ("a", "b", "c")}
    streams = {
        name: [_shard(rng, 100, 10, 10_000 * k), _shard(rng, 40, 4, 10_000 * k + 5_000)]
        for k, name in enumerate(("a", "b"))
    }
    merged, report = leave_one_out(streams, budgets, {"train": 270, "valid": 26})
    assert merged["train"].num_rows == 270 and merged["valid"].num_rows == 26
    assert set(merged["train"].column("guideline").to_pylist()) == {"a", "b"}
    hashes = np.concatenate([merged[s].column("hash").to_numpy() for s in ("train", "valid")])
    assert len(np.unique(hashes)) == len(hashes)
    # each guideline gives its whole shard, then the first of its headroom
    for k, name in enumerate(("a", "b")):
        train = merged["train"].to_pandas()
        positives = train.loc[train["guideline"] == name, "positive"].to_numpy()
        assert set(range(10_000 * k, 10_000 * k + 100)) <= set(positives.tolist())
        assert positives.max() == 10_000 * k + 5_000 + 34
    assert report.set_index(["guideline", "split"]).loc[("a", "train"), "quota"] == 135
    with pytest.raises(InputError) as info:
        leave_one_out(streams, budgets, {"train": 300, "valid": 28})
    assert info.value.field == "ablation.headroom" and info.value.value == 280


def test_a_duplicate_across_guidelines_is_kept_once_and_replaced_from_the_headroom():
    rng = np.random.default_rng(1)
    a, b = _shard(rng, 50, 0, 0), _shard(rng, 50, 0, 20_000)
    b = pa.concat_tables([a.slice(0, 1), b.slice(0, 49)])  # b's first triple repeats a's first
    streams = {"a": [a, _shard(rng, 20, 0, 40_000)], "b": [b, _shard(rng, 20, 0, 60_000)]}
    budgets = {"a": {"train": 50, "valid": 0}, "b": {"train": 50, "valid": 0}}
    merged, report = leave_one_out(streams, budgets, {"train": 120, "valid": 0})
    assert merged["train"].num_rows == 120
    assert len(np.unique(merged["train"].column("hash").to_numpy())) == 120
    assert report.set_index(["guideline", "split"]).loc[("b", "train"), "distinct"] == 69


def test_full_set_targets_add_up_the_guidelines_of_the_merge_report():
    report = pd.DataFrame(
        [("a", "train", 10, 9), ("a", "valid", 2, 2), ("b", "train", 10, 10), ("random", "train", 20, 20)],
        columns=["guideline", "split", "before", "after"],
    )
    assert full_set_targets(report, ["a", "b"]) == {"train": 19, "valid": 2}


def test_a_headroom_shard_repeats_none_of_its_shards_triples():
    items = pd.DataFrame({"item": np.arange(30), "artist_id": [f"a{i % 6}" for i in range(30)]})
    data = SamplingData.from_tables(items)
    shard, _ = sample_shard(data, "d5_single_item", 200, 20, seed=1, max_profile=None)
    more, report = sample_shard(
        data, "d5_single_item", 100, 10, seed=2, max_profile=None, exclude=shard.column("hash").to_numpy()
    )
    assert report.produced == {"train": 100, "valid": 10}
    assert not set(more.column("hash").to_pylist()) & set(shard.column("hash").to_pylist())


def config_with(**ablation_keys) -> dict:
    config = schema_defaults()
    config["ablation"].update(ablation_keys)
    return config


def test_the_variants_follow_the_registry_and_skip_the_configured_pooling():
    config = config_with(guidelines=True, poolings=["mean+max", "mean", "max"])
    names = [v.name for v in ablation.variants(config)]
    assert names == [f"without_{g}" for g in parts.guideline_names()] + ["pool_mean", "pool_max"]
    assert ablation.variants(schema_defaults()) == []
    settings = ablation.variant_settings(config, "pool_max", 2)
    assert "l2" not in settings and settings["seed"] == 2 and settings["sampling"] == "guidelines"
    assert settings["hyperparameters"]["pooling"] == "max"
    assert ablation.variant_settings(config, "without_d3_artist_cluster", 0)["hyperparameters"]["pooling"] == "mean+max"


def _per_user(sampling: str, values: dict[int, list[float]]) -> pd.DataFrame:
    rows = [(sampling, str(seed), user, auc) for seed, aucs in values.items() for user, auc in enumerate(aucs)]
    return pd.DataFrame(rows, columns=["sampling", "seed", "user", "auc"])


def test_ablation_tests_compare_each_variant_with_the_full_set_user_by_user():
    rng = np.random.default_rng(3)
    full_auc = rng.uniform(0.4, 0.9, 60)
    full = _per_user("guidelines", {0: list(full_auc), 1: list(full_auc + 0.01)})
    noise = rng.normal(0, 0.01, 60)
    worse = _per_user("without_a", {0: list(full_auc - 0.1 + noise), 1: list(full_auc - 0.08 + noise)})
    same = _per_user("without_b", {s: list(full_auc + 0.01 * s + rng.normal(0, 0.01, 60)) for s in (0, 1)})
    sets = pd.DataFrame({"set": ["without_a", "without_b"], "left_out": ["a", "b"], "n_triples": [100, 100]})
    table = ablation_tests(full, pd.concat([worse, same]), sets, "left_out", ABLATION_COLUMNS)
    assert list(table.columns) == ABLATION_COLUMNS
    a, b = table.iloc[0], table.iloc[1]
    # each user's AUC averaged over seeds: (x - .1 + x - .08) / 2 + noise - (x + x + .01) / 2
    assert (
        a["mean_diff"] == pytest.approx(-0.095 + noise.mean(), abs=1e-9) and a["ci_low"] < a["mean_diff"] < a["ci_high"]
    )
    assert a["auc"] == pytest.approx(full_auc.mean() - 0.09 + noise.mean(), abs=1e-9)
    assert a["p_holm"] < 0.001 and b["p_holm"] > 0.05 and a["p_holm"] >= a["p"]
    assert list(POOLING_COLUMNS[:2]) == ["set", "pooling"]


def test_the_answer_names_the_guidelines_that_matter_or_says_none_does():
    row = dict(set="", n_triples=1, auc=0.6, ci_low=0, ci_high=0, d_z=0, p=0.5, wilcoxon_p=0.5)
    none = pd.DataFrame([row | dict(left_out=g, mean_diff=d, p_holm=0.9) for g, d in (("d1", -0.004), ("d2", 0.002))])
    assert guidelines_answer(none).startswith("No single guideline matters on its own")
    assert ".0040 (d1)" in guidelines_answer(none)
    some = pd.DataFrame(
        [row | dict(left_out="d3", mean_diff=-0.02, p_holm=0.001), row | dict(left_out="d1", mean_diff=0.0, p_holm=1)]
    )
    answer = guidelines_answer(some)
    assert answer.startswith("Leaving out d3") and "it matters" in answer and "the other 1 make no" in answer


def test_the_ablation_section_warns_when_one_seed_is_each_side():
    one = _ablation_seeds_caveat({"training": {"seeds": [0]}})
    assert "One seed" in one and "training.seeds" in one
    three = _ablation_seeds_caveat({"training": {"seeds": [0, 1, 2]}})
    assert "One seed" not in three and "3 seeds" in three
