"""The workflow as a user runs it: lint, parse without TensorFlow, a tiny end-to-end run.

The end-to-end run works in a copy of the project so that it never touches the
user's own results/ folder.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import REPO, TOY_OVERLAY, copy_project, snakemake, tiny_config

from curatornet import parts


def planned(output: str) -> Counter:
    """(rule, wildcards) of every job a dry run lists, e.g. ("plot", "figure=example")."""
    jobs = Counter()
    for block in re.split(r"\n(?=\[[^\]\n]+\]\n)", output):
        rule = re.search(r"^(?:local)?rule (\w+):", block, flags=re.M)
        if rule:
            wildcards = re.search(r"^\s+wildcards: (.*)$", block, flags=re.M)
            jobs[(rule.group(1), wildcards.group(1) if wildcards else "")] += 1
    return jobs


def dry_run(workdir: Path, config: dict, tmp_path: Path) -> Counter:
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    result = snakemake(workdir, "-n", "--configfile", str(changed), timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return planned(result.stdout + result.stderr)


def test_lint_is_clean():
    result = snakemake(REPO, "--lint", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_parsing_the_workflow_does_not_import_tensorflow(tmp_path):
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TF_LOADED=' + str('tensorflow' in sys.modules)))\n"
        "from snakemake.cli import main\n"
        "sys.argv = ['snakemake', '-n', '--quiet', '--configfile', 'config/test.yaml']\n"
        "main()\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert "TF_LOADED=False" in result.stdout, result.stdout + result.stderr


def config_error(tmp_path: Path, overlay: dict) -> str:
    """What `snakemake -n` prints for config/test.yaml with ``overlay`` merged over it."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(overlay))
    result = snakemake(REPO, "-n", "--configfile", "config/test.yaml", str(bad), timeout=120)
    assert result.returncode != 0
    return result.stdout + result.stderr


def test_an_unknown_config_key_is_one_line_with_the_allowed_keys(tmp_path):
    output = config_error(tmp_path, {"clusters": {"k": 5, "restars": 3}})
    assert (
        f"file 'config/config.yaml + config/test.yaml + {tmp_path / 'bad.yaml'}', "
        "field 'clusters.restars': unknown key; allowed here: "
        "k, pca_dim, restarts, seed, map_method, exact_max_items, sample_size (value: 3)"
    ) in output
    # ...and not the schema: no descriptions, no JSON-schema vocabulary.
    assert "additionalProperties" not in output and "description" not in output
    assert len(output.splitlines()) < 15, output


def test_clusters_k_above_the_item_count_fails_before_anything_runs(tmp_path):
    output = config_error(tmp_path, {"clusters": {"k": 500}})
    assert "field 'clusters.k': must be below the number of items (400 in the generated data set" in output


@pytest.mark.slow
def test_tiny_run_produces_the_report_and_every_method(tiny_run):
    summary = pd.read_csv(tiny_run / "results/evaluation/summary.csv")
    methods = set(summary["Method"])
    assert {"CuratorNet", "VBPR", "VisRank", "Random", "Oracle", "MostPopular"} <= methods
    assert {"AUC", "MRR", "R@20", "nDCG@100 (paper)"} <= set(summary.columns)
    html = (tiny_run / "results/report/report.html").read_text()
    answer = html[html.index('id="answer"') : html.index('id="figures"')]
    assert "<h3>Table 2 at the λ selected on validation</h3>" in answer
    for method in ("CuratorNet", "VBPR", "VisRank", "Oracle", "Random", "MostPopular"):
        assert f'<td class="text">{method}</td>' in answer, method
    for column in ("AUC", "MRR", "R@20", "nDCG@20 (paper)"):
        assert f">{column}</th>" in answer, column
    # The run-time table shows every stage that ran (the report cannot time itself).
    runtimes = html[html.index('id="runtime"') :]
    stages = {path.name for path in (tiny_run / "benchmarks/results").iterdir()} - {"report"}
    assert stages == {"data", "clusters", "triplets", "models", "evaluation", "stats", "plots", "recommendations"}
    for stage in stages:
        assert f'<td class="text">{stage}</td>' in runtimes, stage


@pytest.mark.slow
def test_batch_recommendations_follow_the_rules(tiny_run):
    """k rows per user of the log, no item the user bought, no one-of-a-kind item already sold."""
    recommendations = pd.read_parquet(tiny_run / "results/recommendations/curatornet.parquet")
    items = pd.read_parquet(tiny_run / "results/data/items.parquet")
    purchases = pd.read_parquet(tiny_run / "results/data/purchases.parquet")
    k = yaml.safe_load((REPO / "config/config.yaml").read_text())["recommendations"]["k"]
    assert list(recommendations.columns) == ["user_id", "rank", "item_id", "artist_id", "score", "model"]
    assert set(recommendations["user_id"]) == set(purchases["user_id"])
    per_user = recommendations.groupby("user_id")
    assert (per_user.size() == k).all()
    assert (per_user["rank"].apply(list) == pd.Series([list(range(1, k + 1))] * per_user.ngroups).values).all()
    assert (per_user["score"].apply(lambda s: bool((s.diff().dropna() <= 0).all()))).all()
    bought = purchases.merge(items[["item", "item_id"]], on="item")
    owned = set(zip(bought["user_id"], bought["item_id"]))
    assert not any((u, i) in owned for u, i in zip(recommendations["user_id"], recommendations["item_id"]))
    sold_unique = set(bought.loc[bought["item"].isin(items.loc[items["one_of_a_kind"], "item"]), "item_id"])
    assert sold_unique and not sold_unique & set(recommendations["item_id"])
    artists = dict(zip(items["item_id"], items["artist_id"]))
    assert (recommendations["artist_id"] == recommendations["item_id"].map(artists)).all()
    assert set(recommendations["model"]) == {"curatornet"}


@pytest.mark.slow
def test_every_job_left_a_log_and_a_benchmark_and_nothing_is_left_to_do(tiny_run):
    configs = ("--configfile", "config/test.yaml", str(TOY_OVERLAY))
    result = snakemake(tiny_run, "-n", "--forceall", *configs, timeout=120)
    jobs = sum(planned(result.stdout + result.stderr).values()) - 1  # all but `all`, which runs nothing
    assert len(list((tiny_run / "logs").rglob("*.log"))) == jobs
    assert len(list((tiny_run / "benchmarks/results").rglob("*.tsv"))) == jobs
    result = snakemake(tiny_run, "-n", *configs, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_changing_one_guideline_budget_reruns_only_its_shard_and_downstream(tiny_run, tmp_path):
    config = tiny_config()
    config["sampling"]["budgets"]["d5_single_item"]["train"] += 10
    jobs = dry_run(tiny_run, config, tmp_path)
    # The random shard's budget is the sum over the guidelines, so it follows the change.
    shards = {wildcards for rule, wildcards in jobs if rule == "sample_shard"}
    assert shards == {"shard=d5_single_item", "shard=random", "shard=bpr"}, jobs
    assert ("dedup_triplets", "") in jobs
    upstream_rules = ("generate_data", "prepare_data", "pca_points", "kmeans_restart", "select_restart", "clusters")
    for upstream in (*upstream_rules, "cases", "evaluate_baseline"):
        assert upstream not in {rule for rule, _ in jobs}, f"{upstream} would rerun: {jobs}"


@pytest.mark.slow
def test_max_profile_reruns_only_the_shards_whose_profiles_it_cuts(tiny_run, tmp_path):
    config = tiny_config()
    assert config["sampling"]["max_profile"] is None
    config["sampling"]["max_profile"] = 3
    jobs = dry_run(tiny_run, config, tmp_path)
    # Single-item profiles (D5, D6, the toy guideline) and the profile-free bpr shard do not depend on it.
    cut = {name for name in parts.shard_names() if not parts.shard(name).single_item_profiles}
    assert "bpr" not in cut and {"d5_single_item", "d6_same_artist"}.isdisjoint(cut)
    assert {w for rule, w in jobs if rule == "sample_shard"} == {f"shard={name}" for name in cut}, jobs
    assert {w for rule, w in jobs if rule == "sample_refit_shard"} == {f"shard={name}" for name in cut}, jobs
    for upstream in ("prepare_data", "kmeans_restart", "select_restart", "cases", "evaluate_baseline"):
        assert upstream not in {rule for rule, _ in jobs}, f"{upstream} would rerun: {jobs}"


@pytest.mark.slow
def test_the_random_shards_draw_the_sum_of_the_guideline_budgets(tiny_run):
    dedup = pd.read_csv(tiny_run / "results/triplets/dedup.csv").set_index(["guideline", "split"])["before"]
    budgets = tiny_config()["sampling"]["budgets"]
    for split in ("train", "valid"):
        total = sum(int(budget[split]) for budget in budgets.values())
        assert dedup[("random", split)] == total and dedup[("bpr", split)] == total


@pytest.mark.slow
def test_adding_a_restart_runs_one_restart_job_and_keeps_the_others(tiny_run, tmp_path):
    config = tiny_config()
    restarts = config["clusters"]["restarts"]
    config["clusters"]["restarts"] = restarts + 1
    jobs = dry_run(tiny_run, config, tmp_path)
    assert [w for rule, w in jobs if rule == "kmeans_restart"] == [f"restart={restarts}"], jobs
    assert ("select_restart", "") in jobs  # the new restart may win
    for upstream in ("generate_data", "prepare_data", "pca_points", "cluster_map", "cases", "evaluate_baseline"):
        assert upstream not in {rule for rule, _ in jobs}, f"{upstream} would rerun: {jobs}"


@pytest.mark.slow
def test_the_clusters_jobs_write_what_the_one_call_stage_writes(tiny_run, tmp_path):
    """Locally the restarts as jobs give the bytes of the whole stage run in one process."""
    from curatornet.artifacts import read_embeddings_matrix
    from curatornet.clusters import cluster_matrix
    from curatornet.io import write_parquet

    clusters = tiny_config()["clusters"]
    defaults = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    options = defaults["properties"]["clusters"]["properties"]
    restarts, items = cluster_matrix(
        read_embeddings_matrix(tiny_run / "results/data/embeddings.parquet"),
        k=clusters["k"],
        pca_dim=clusters["pca_dim"],
        restarts=clusters["restarts"],
        seed=clusters["seed"],
        map_method=clusters["map_method"],
        threads=2,
        exact_max_items=clusters.get("exact_max_items", options["exact_max_items"]["default"]),
        sample_size=clusters.get("sample_size", options["sample_size"]["default"]),
    )
    write_parquet(restarts, tmp_path / "restarts.parquet")
    write_parquet(items, tmp_path / "items.parquet")
    for name in ("restarts.parquet", "items.parquet"):
        assert (tiny_run / "results/clusters" / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.slow
def test_adding_a_lambda_runs_one_training_one_evaluation_and_what_reads_them(tiny_run, tmp_path):
    config = tiny_config()
    config["training"]["runs"]["curatornet"]["guidelines"].append(0.01)
    run = "model=curatornet, sampling=guidelines, l2=0.01, seed=0"
    refit = "model=curatornet, sampling=guidelines, seed=0"
    assert dry_run(tiny_run, config, tmp_path) == Counter(
        {
            ("train", run): 1,
            ("evaluate_run", run): 1,
            ("select_runs", ""): 1,
            # the selected λ may change, and with it the run that is refit on every purchase before the test
            ("refit", refit): 1,
            ("evaluate_refit", refit): 1,
            # the selection may change, and with it the run that serves CuratorNet's batch recommendations
            ("recommend_batch", "recommender=curatornet"): 1,
            ("gather_evaluation", ""): 1,
            ("stats", ""): 1,
            ("plot", "figure=learning_curves"): 1,
            ("plot", "figure=topk_curves"): 1,
            ("plot", "figure=sampling_auc"): 1,
            ("plot", "figure=example"): 1,
            ("report", ""): 1,
            ("all", ""): 1,
        }
    )


ABLATION_OVERLAY = yaml.safe_load((REPO / "config/ablation.yaml").read_text())


@pytest.mark.slow
def test_adding_the_ablation_reruns_no_job_and_covers_every_registered_guideline(tiny_run, tmp_path):
    config = tiny_config() | ABLATION_OVERLAY
    jobs = dry_run(tiny_run, config, tmp_path)
    guidelines = yaml.safe_load(TOY_OVERLAY.read_text())["sampling"]["budgets"] | tiny_config()["sampling"]["budgets"]
    sets = [f"without_{name}" for name in guidelines]  # the toy plugin's guideline too
    variants = [*sets, "pool_mean", "pool_max"]
    assert jobs == Counter(
        {("sample_headroom_shard", f"shard={name}"): 1 for name in guidelines}
        | {("ablation_set", f"ablation={name}"): 1 for name in sets}
        | {("train_ablation", f"ablation={name}, seed=0"): 1 for name in variants}
        | {("evaluate_ablation", f"ablation={name}, seed=0"): 1 for name in variants}
        # new: the ablation's statistics and figure; the report shows them (and every config change)
        | {("ablation_stats", ""): 1, ("plot", "figure=ablation"): 1, ("report", ""): 1, ("all", ""): 1}
    )


@pytest.mark.slow
def test_the_ablation_sets_are_as_large_as_the_full_set_and_the_tables_have_the_issues_columns(tiny_run, tmp_path):
    workdir = tmp_path / "ablation"
    shutil.copytree(tiny_run, workdir, symlinks=True)  # the tiny run's results and metadata, times kept
    overlay = tmp_path / "ablation.yaml"
    overlay.write_text(yaml.safe_dump({"ablation": {"guidelines": True, "poolings": ["max"]}}))
    configs = ("--configfile", "config/test.yaml", str(TOY_OVERLAY), str(overlay))
    result = snakemake(workdir, "--cores", "2", *configs)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    dedup = pd.read_csv(workdir / "results/triplets/dedup.csv")
    full = dedup[~dedup["guideline"].isin(["random", "bpr"])].groupby("split")["after"].sum()
    table = pd.read_csv(workdir / "results/stats/ablation.csv")
    assert list(table.columns) == [
        "set", "left_out", "n_triples", "auc", "mean_diff", "ci_low", "ci_high", "d_z", "p", "wilcoxon_p", "p_holm"
    ]  # fmt: skip
    assert set(table["left_out"]) == set(dedup["guideline"]) - {"random", "bpr"}
    assert (table["n_triples"] == full["train"]).all() and table["p_holm"].ge(table["p"]).all()
    for name in table["set"]:
        sizes = pd.read_csv(workdir / f"results/triplets/ablation/{name}/sizes.csv")
        assert sizes.groupby("split")["quota"].sum().to_dict() == full.to_dict()
        assert name.removeprefix("without_") not in set(sizes["guideline"])
    pooling = pd.read_csv(workdir / "results/stats/ablation_pooling.csv")
    assert pooling["pooling"].tolist() == ["max"] and pooling.columns[1] == "pooling"
    html = (workdir / "results/report/report.html").read_text()
    assert '<h2 id="ablation">Which guidelines matter</h2>' in html and "Which parts matter: test AUC change" in html


@pytest.mark.slow
def test_a_setting_of_one_figure_redraws_that_figure_only(tiny_run, tmp_path):
    config = tiny_config()
    users = pd.read_parquet(tiny_run / "results/evaluation/cases/test.parquet")["user_id"]
    config["report"]["example_user"] = str(users.iloc[1])
    assert dry_run(tiny_run, config, tmp_path) == Counter(
        {("plot", "figure=example"): 1, ("report", ""): 1, ("all", ""): 1}
    )


@pytest.mark.slow
def test_the_snakemake_report_holds_the_figures_and_tables(tiny_run, tmp_path):
    archive = tmp_path / "report.zip"
    result = snakemake(
        tiny_run, "--configfile", "config/test.yaml", str(TOY_OVERLAY), "--report", str(archive), timeout=300
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    with zipfile.ZipFile(archive) as bundle:
        names = {Path(name).name for name in bundle.namelist()}
        html = bundle.read("report/report.html").decode("utf-8")
    figures = {f"{figure}.png" for figure in ("clusters", "restarts", "sampling_auc", "learning_curves")}
    figures |= {"topk_curves.png", "example.png"}
    assert figures | {"summary.csv", "table2.csv", "sampling_ttest.csv", "vs_reference.csv"} <= names, names
    assert "Purchases and image embeddings go in" in html  # workflow/report/workflow.rst
    assert "Colours repeat every 60 clusters" in html  # a figure's own caption, through figure.rst


@pytest.mark.slow
def test_a_job_failing_on_bad_input_says_why_in_its_log(tmp_path):
    workdir = copy_project(tmp_path / "project")
    garbage = tmp_path / "garbage.npy"
    np.save(garbage, np.zeros((4, 3)))  # a readable .npy, but not [item_id, vector] rows
    overlay = tmp_path / "corrupt.yaml"
    overlay.write_text(yaml.safe_dump({"dataset": {"embeddings": str(garbage)}}))
    result = snakemake(
        workdir, "results/data/items.parquet", "--cores", "2", "--configfile", "config/test.yaml", str(overlay)
    )
    assert result.returncode != 0
    log = (workdir / "logs/data/prepare_data.log").read_text()
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert len(errors) == 1 and f"file '{garbage}'" in errors[0], log
    assert "Traceback" not in log
    # --show-failed-logs (profiles/default) prints it where Snakemake reports the failure.
    assert errors[0].split(" ERROR ", 1)[1] in result.stdout + result.stderr
    assert not list((workdir / "results/data").glob("*.parquet"))


@pytest.mark.slow
@pytest.mark.ugallery
def test_real_ugallery_transactions_reproduce_the_oracle_row(ugallery_dir, tmp_path):
    """The whole workflow on the real purchases with made-up embeddings (tiny training)."""
    workdir = copy_project(tmp_path / "project")
    overlay = tmp_path / "ugallery.yaml"
    overlay.write_text(
        yaml.safe_dump({"dataset": {"format": "ugallery", "path": str(ugallery_dir), "embeddings": "synthetic"}})
    )
    result = snakemake(
        workdir,
        "results/evaluation/summary.csv",
        "--cores",
        "2",
        "--configfile",
        "config/test.yaml",
        str(overlay),
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    summary = pd.read_csv(workdir / "results/evaluation/summary.csv")
    test = summary[summary["split"] == "test"].set_index("Method")
    valid = summary[summary["split"] == "valid"].set_index("Method")
    assert (test["users"] == 728).all()
    # 338 users have a validation basket; every one of them still finds an item of it in the inventory.
    assert (valid["users"] == 338).all()
    oracle = test.loc["Oracle"]
    assert round(oracle["P@20"], 4) == 0.0655
    assert round(oracle["P@100"], 4) == 0.0131
    assert abs(test.loc["Random", "AUC"] - 0.5) < 0.03
