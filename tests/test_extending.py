"""The workbench takes new parts from a test alone (issue 16, item 5).

tests/toy_parts.py registers a toy model, baseline, metric and guideline; no
project file names them. The tiny run (conftest.tiny_run) imports that plugin
through the config key ``plugins`` and runs the tiny workflow: the model
trains, is evaluated and appears in Table 2, the verdicts and the report; the
baseline and the metric appear in Table 2; the guideline's shard is sampled
and deduplicated. Then the trained toy model is served over HTTP.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from contextlib import ExitStack, contextmanager

import numpy as np
import pandas as pd
import pytest
from conftest import TESTS
from serving_helpers import call, service_in_thread

from curatornet import parts, registry
from curatornet.errors import InputError
from curatornet.registry import BaselineSpec, GuidelineSpec, MetricSpec, ModelSpec

TEXT = {"method": str, "sampling": str, "l2": str, "a": str, "b": str, "guideline": str}


@contextmanager
def toy_parts_registered(monkeypatch):
    """The toy plugin imported here as the workflow's jobs import it (CURATORNET_PLUGINS); every
    registration is undone on leaving, so that no other test sees the toy parts."""
    with ExitStack() as stack:
        for kind in (registry.MODELS, registry.BASELINES, registry.METRICS, registry.GUIDELINES):
            stack.enter_context(kind.scope())
        patch = stack.enter_context(monkeypatch.context())
        patch.syspath_prepend(str(TESTS))
        patch.setenv(registry.PLUGINS_VARIABLE, "toy_parts")
        sys.modules.pop("toy_parts", None)
        registry._imported.discard("toy_parts")
        try:
            yield
        finally:
            sys.modules.pop("toy_parts", None)
            registry._imported.discard("toy_parts")


def read_csv(path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=TEXT, keep_default_na=False, na_values=[""])


@pytest.mark.slow
def test_the_toy_model_baseline_and_metric_reach_table_2_and_the_segments(tiny_run):
    for name in ("table2.csv", "table2_valid.csv"):
        table = read_csv(tiny_run / "results/stats" / name)
        assert {"toy", "toy_norm", "mostpopular"} <= set(table["method"]), name
        toy = table[table["method"] == "toy"].iloc[0]
        assert toy["sampling"] == "guidelines" and toy["selected"] and toy["users"] > 0
        assert {"top_hit", "mrr"} <= set(table.columns)
        assert table[["top_hit", "mrr"]].notna().all().all()
        assert ((table["mrr"] > 0) & (table["mrr"] <= 1)).all()
        oracle = table[table["method"] == "oracle"].iloc[0]
        assert oracle["top_hit"] == 1 and oracle["mrr"] == 1  # a perfect ranking
    segments = read_csv(tiny_run / "results/stats/segments.csv")
    assert {"toy", "toy_norm", "mostpopular"} <= set(segments["method"])
    assert {"top_hit", "mrr"} <= set(segments.columns)
    per_user = pd.read_parquet(tiny_run / "results/evaluation/per_user.parquet")
    assert {"top_hit", "mrr"} <= set(per_user.columns)


@pytest.mark.slow
def test_the_toy_model_trains_and_is_in_the_verdicts_and_the_report(tiny_run):
    meta = json.loads((tiny_run / "results/models/toy/guidelines/l2_0/seed_0/model.json").read_text())
    assert meta["model"] == "toy" and meta["hyperparameters"] == {"dim": 6}  # the default of its schema block
    assert meta["checks_run"] >= 1 and meta["best_check"] >= 1
    # It trained on its own guidelines only (its record's): D4 and the toy guideline.
    merged = pd.read_parquet(tiny_run / "results/triplets/guidelines/train.parquet", columns=["guideline"])
    assert meta["n_train_triples"] == merged["guideline"].isin(["d4_profile", "toy_cluster"]).sum()
    verdicts = read_csv(tiny_run / "results/stats/verdicts.csv")
    pairs = set(zip(verdicts["a"], verdicts["b"]))
    assert {("toy", "visrank"), ("curatornet", "toy"), ("vbpr", "toy"), ("curatornet", "vbpr")} <= pairs
    assert verdicts["p_holm"].notna().all()
    references = read_csv(tiny_run / "results/stats/vs_reference.csv")
    assert "toy" in set(references["model"])
    html = (tiny_run / "results/report/report.html").read_text()
    answer = html[html.index('id="answer"') : html.index('id="figures"')]
    for name in ("ToyModel", "ToyNorm", "MostPopular"):
        assert f'<td class="text">{name}</td>' in answer, name
    assert ">TopHit</th>" in answer and ">MRR</th>" in answer
    assert "ToyModel (λ 0) vs VisRank" in answer


@pytest.mark.slow
def test_the_toy_guideline_is_sampled_and_deduplicated(tiny_run):
    shard = pd.read_parquet(tiny_run / "results/triplets/shards/toy_cluster.parquet")
    report = json.loads((tiny_run / "results/triplets/shards/toy_cluster.json").read_text())
    assert report["requested"] == {"train": 600, "valid": 60}
    assert report["produced"] == report["requested"] and len(shard) == 660
    clusters = pd.read_parquet(tiny_run / "results/clusters/items.parquet").set_index("item")["cluster"]
    profile = shard["profile"].map(lambda p: p[0])
    assert (clusters[profile].to_numpy() == clusters[shard["positive"]].to_numpy()).all()
    assert (clusters[profile].to_numpy() != clusters[shard["negative"]].to_numpy()).all()
    dedup = read_csv(tiny_run / "results/triplets/dedup.csv")
    toy = dedup[dedup["guideline"] == "toy_cluster"]
    assert set(toy["split"]) == {"train", "valid"} and (toy["after"] > 0).all()
    merged = pd.read_parquet(tiny_run / "results/triplets/guidelines/train.parquet")
    assert (merged["guideline"] == "toy_cluster").sum() == int(toy.loc[toy["split"] == "train", "after"].iloc[0])


@pytest.mark.slow
def test_the_trained_toy_model_is_served_over_http(tiny_run, tmp_path, monkeypatch):
    from curatornet.serving.recommender import Recommender

    with toy_parts_registered(monkeypatch):
        recommender = Recommender(
            tiny_run / "results/models/toy/guidelines/l2_0/seed_0", tiny_run / "results/data", tmp_path / "db.sqlite"
        )
        items = pd.read_parquet(tiny_run / "results/data/items.parquet")["item_id"].astype(str).tolist()
        with service_in_thread(recommender) as url:
            status, health = call("GET", f"{url}/health")
            assert status == 200 and health["model"] == "toy"
            status, body = call("POST", f"{url}/recommendations", {"items": items[:2], "k": 5})
            assert status == 200, body
            chosen = [row["item_id"] for row in body["items"]]
            assert len(chosen) == 5 and not set(chosen) & set(items[:2])
            scores = [row["score"] for row in body["items"]]
            assert scores == sorted(scores, reverse=True)
        recommender.close()


def test_a_plugin_named_in_the_environment_is_imported_on_the_first_read(monkeypatch):
    with toy_parts_registered(monkeypatch):
        assert "toy_parts" not in sys.modules  # named in CURATORNET_PLUGINS, not imported yet
        assert "toy" in parts.model_names()
        assert "toy_parts" in sys.modules
        assert parts.display_name("toy_norm") == "ToyNorm"
        assert parts.metric_columns([20])[:3] == ["auc", "mrr", "top_hit"]
        assert parts.metric_label("top_hit") == "TopHit"
        assert "toy_cluster" in parts.shard_names() and parts.shard("toy_cluster").needs == {"clusters"}
        from curatornet.config import effective_schema, schema_defaults

        schema = effective_schema()["properties"]
        assert schema["training"]["properties"]["runs"]["properties"]["toy"] == {"$ref": "#/$defs/run_grid"}
        assert schema_defaults()["training"]["toy"] == {"dim": 6}
        assert schema_defaults()["evaluation"]["toy_norm"] == {"sign": 1}
        assert "toy_cluster" in schema["sampling"]["properties"]["budgets"]["properties"]
    assert "toy" not in parts.model_names() and "top_hit" not in [m.name for m in parts.metrics()]


def test_a_plugin_that_cannot_be_imported_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv(registry.PLUGINS_VARIABLE, "no_such_plugin_module")
    with pytest.raises(InputError) as info:
        parts.model_names()
    assert info.value.field == "plugins" and info.value.value == "no_such_plugin_module"


def test_names_are_checked_when_a_part_is_registered():
    spec = ModelSpec("visrank", "Clash", trainer="x:y", scorer="x:y", numpy="x:y")
    with registry.MODELS.scope(), pytest.raises(ValueError, match="already registered as a baseline"):
        parts.register_model(spec)
    with registry.METRICS.scope(), pytest.raises(InputError, match="lower case"):
        parts.register_metric(MetricSpec("Top@1", "x", lambda ranked: None))
    with registry.BASELINES.scope(), pytest.raises(InputError, match="already registered"):
        parts.register_baseline(BaselineSpec("oracle", "Another", build=lambda *a: None))
    with pytest.raises(InputError, match="unknown model; registered"):
        parts.model("nope")
    with pytest.raises(ValueError, match="may need"):
        GuidelineSpec("d9_images", build=lambda data: None, needs=frozenset({"images"}))


def test_a_metric_registered_from_a_test_is_evaluated_and_labelled():
    from curatornet.evaluation.evaluate import evaluate_scorer, summarise
    from curatornet.evaluation.protocol import Cases
    from curatornet.models.baselines import Oracle

    cases = Cases(
        users=np.array([0, 1], dtype=np.int32),
        user_ids=np.array(["u0", "u1"], dtype=object),
        times=np.array([10, 10], dtype=np.int64),
        profiles=[np.array([0]), np.array([1])],
        truth=[np.array([2]), np.array([3, 4])],
        available_from=np.zeros(6, dtype=np.int64),
        removed_after=np.full(6, np.iinfo(np.int64).max),
    )
    with registry.METRICS.scope():
        parts.register_metric(MetricSpec("truth_size", "|truth|", lambda ranked: ranked.n_truth.astype(float)))
        result = evaluate_scorer({"method": "oracle"}, Oracle(), cases, ks=(2,), curve_max_k=3)
        assert result.per_user["truth_size"].tolist() == [1, 2]
        assert summarise(result.per_user)["|truth|"].tolist() == [1.5]
    assert "truth_size" not in parts.metric_columns([2])


def test_a_fresh_process_lists_the_built_in_parts_before_a_plugin_s():
    """What every job sees: the plugin named in CURATORNET_PLUGINS, imported on the first read of a registry,
    registers after the built-in parts (the order of Table 2's tests and of the merge of the guidelines)."""
    probe = "from curatornet import parts; print(parts.model_names(), parts.guideline_names()[-1])"
    path = os.pathsep.join(p for p in (str(TESTS), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, registry.PLUGINS_VARIABLE: "toy_parts", "PYTHONPATH": path}
    done = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "('curatornet', 'vbpr', 'toy') toy_cluster"
