"""The scripts of workflow/scripts/: one shape for all, and callable from a test with a stand-in job.

Each script defines ``main(snakemake)`` and calls it only when Snakemake runs
the file, so a test imports the file and passes an object built from
Snakemake's own containers instead.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from snakemake.iocontainers import InputFiles, Log, OutputFiles, Params, ResourceList, Snakemake, Wildcards
from test_evaluation_jobs import small_frames
from test_plots import fake_artifacts

from curatornet.clusters import cluster_matrix
from curatornet.data.prepare import embeddings_table
from curatornet.evaluation.cases import write_cases
from curatornet.evaluation.protocol import build_cases
from curatornet.io import write_parquet

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
SCRIPT_FILES = sorted(SCRIPTS.glob("*.py"))


def load_main(name: str):
    spec = importlib.util.spec_from_file_location(f"workflow_script_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def files(named: dict, kind=InputFiles):
    """Snakemake's file list: a name per file, or one name over several (a list)."""
    flat, names = kind(), []
    for name, value in named.items():
        paths = [str(v) for v in value] if isinstance(value, list) else [str(value)]
        names.append((name, (len(flat), len(flat) + len(paths) if isinstance(value, list) else None)))
        flat.extend(paths)
    flat._take_names(names)
    return flat


def job(inputs: dict, outputs: dict, log: Path, params: dict | None = None, wildcards: dict | None = None):
    """What Snakemake hands a script, from plain values."""
    return Snakemake(
        files(inputs),
        files(outputs, OutputFiles),
        Params(fromdict=params or {}),
        Wildcards(fromdict=wildcards or {}),
        1,
        ResourceList(),
        Log([str(log)]),
        {},
        "test",
        None,
    )


@pytest.mark.parametrize("path", SCRIPT_FILES, ids=lambda p: p.name)
def test_every_script_has_the_same_shape(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert ast.get_docstring(tree), "a docstring naming its rule and the package code it calls"
    assert "noqa" not in source and "globals()" not in source
    mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
    assert len(mains) == 1 and [a.arg for a in mains[0].args.args] == ["snakemake"]
    body = [n for n in mains[0].body if not isinstance(n, ast.Expr)]
    assert len(body) == 1 and isinstance(body[0], ast.With), "main's body is `with logged_job(snakemake.log[0])`"
    assert ast.unparse(body[0].items[0].context_expr) == "logged_job(snakemake.log[0])"
    guard = tree.body[-1]
    assert isinstance(guard, ast.If) and ast.unparse(guard.test) == "__name__ == '__main__'"
    assert [ast.unparse(s) for s in guard.body] == ["main(snakemake)"]
    # Nothing else runs at import: only imports, constants, functions and the guard.
    for node in tree.body[:-1]:
        assert isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.Assign | ast.Expr), ast.dump(node)


def test_plot_draws_the_figure_its_wildcard_names(tmp_path):
    data = fake_artifacts()
    restarts = tmp_path / "restarts.parquet"
    write_parquet(data["restarts"], restarts)
    png, svg, log = tmp_path / "restarts.png", tmp_path / "restarts.svg", tmp_path / "plot.log"
    load_main("plot")(
        job({"restarts": restarts}, {"png": png, "svg": svg}, log, {"options": {}}, {"figure": "restarts"})
    )
    assert png.read_bytes()[:4] == b"\x89PNG" and svg.exists()
    assert "restarts" in log.read_text()


def test_plot_takes_list_inputs_and_options(tmp_path):
    histories = []
    for history in fake_artifacts()["histories"].values():
        histories.append(tmp_path / f"{len(histories)}.csv")
        history.to_csv(histories[-1], index=False)
    runs = [
        {"model": "curatornet", "sampling": "guidelines", "l2": "0.001"},
        {"model": "vbpr", "sampling": "random", "l2": "0.01"},
    ]
    png, svg = tmp_path / "lc.png", tmp_path / "lc.svg"
    stub = job(
        {"histories": histories},
        {"png": png, "svg": svg},
        tmp_path / "lc.log",
        {"options": {"runs": runs}},
        {"figure": "learning_curves"},
    )
    load_main("plot")(stub)
    assert "CuratorNet (guidelines, λ=0.001)" in svg.read_text()


def test_evaluate_baseline_scores_the_cases_it_is_given(tmp_path):
    cases = build_cases(*small_frames())
    paths = {"test_cases": tmp_path / "test.parquet", "test_inventory": tmp_path / "test_inventory.parquet"}
    write_cases(cases, paths["test_cases"], paths["test_inventory"])
    embeddings = tmp_path / "embeddings.parquet"
    write_parquet(embeddings_table(np.ones((cases.n_items, 3), dtype=np.float32)), embeddings)
    outputs = {kind: tmp_path / f"{kind}.parquet" for kind in ("per_user", "curves", "top")}
    settings = {"ks": [1, 2], "curve_max_k": 3}
    stub = job({**paths, "embeddings": embeddings}, outputs, tmp_path / "oracle.log", {"settings": settings})
    stub.wildcards = Wildcards(fromdict={"baseline": "oracle"})
    load_main("evaluate_baseline")(stub)
    per_user = pd.read_parquet(outputs["per_user"])
    assert set(per_user["method"]) == {"oracle"} and (per_user["auc"] == 1.0).all()
    assert len(per_user) == len(cases)


def test_a_failing_job_says_why_in_its_log_and_writes_nothing(tmp_path):
    log = tmp_path / "cases.log"
    outputs = {"cases": tmp_path / "test.parquet", "inventory": tmp_path / "test_inventory.parquet"}
    missing = tmp_path / "no" / "purchases.parquet"
    stub = job({"catalogue": missing, "purchases": missing}, outputs, log, wildcards={"split": "test"})
    with pytest.raises(SystemExit):
        load_main("cases")(stub)
    assert f"file '{missing}'" in log.read_text() and "does not exist" in log.read_text()
    assert not any(path.exists() for path in outputs.values())


@pytest.mark.parametrize(
    ("map_method", "exact_max_items"),
    [("pca-tsne", 16000), ("pca-tsne", 200)],  # every item scored, and a 150-item sample above 200 items
    ids=["exact", "sampled"],
)
def test_the_clusters_jobs_give_the_one_call_results_byte_for_byte(tmp_path, map_method, exact_max_items):
    """The PCA job, one job per restart (in any order), the selection, the map and the join write exactly the
    bytes that cluster_matrix, the whole stage in one process, writes."""
    rng = np.random.default_rng(4)
    centres = rng.normal(scale=4.0, size=(6, 24))
    x = (centres[rng.integers(0, 6, 400)] + rng.normal(size=(400, 24))).astype(np.float32)
    embeddings = tmp_path / "embeddings.parquet"
    write_parquet(embeddings_table(x), embeddings)
    options = {"k": 6, "seed": 3, "exact_max_items": exact_max_items, "sample_size": 150}
    restarts, items = cluster_matrix(
        x.copy(), pca_dim=8, restarts=5, map_method=map_method, threads=2, source=str(embeddings), **options
    )
    write_parquet(restarts, tmp_path / "one_restarts.parquet")
    write_parquet(items, tmp_path / "one_items.parquet")

    jobs = tmp_path / "jobs"
    points = jobs / "points.npy"
    load_main("pca_points")(
        job({"embeddings": embeddings}, {"points": points}, jobs / "pca.log", {"pca_dim": 8, "seed": 3})
    )
    labels = [jobs / "restarts" / f"{r}.parquet" for r in range(5)]
    for r in (4, 0, 2, 1, 3):
        load_main("kmeans_restart")(
            job({"points": points}, {"labels": labels[r]}, jobs / f"{r}.log", options, {"restart": str(r)})
        )
    selected = {"restarts": jobs / "restarts.parquet", "assignment": jobs / "assignment.parquet"}
    load_main("select_restart")(job({"restarts": labels}, selected, jobs / "select.log"))
    map_params = {"map_method": map_method, **{k: options[k] for k in ("seed", "exact_max_items", "sample_size")}}
    load_main("cluster_map")(job({"points": points}, {"map": jobs / "map.parquet"}, jobs / "map.log", map_params))
    inputs = {"assignment": selected["assignment"], "map": jobs / "map.parquet"}
    load_main("clusters")(job(inputs, {"cluster_items": jobs / "items.parquet"}, jobs / "clusters.log"))

    assert (jobs / "restarts.parquet").read_bytes() == (tmp_path / "one_restarts.parquet").read_bytes()
    assert (jobs / "items.parquet").read_bytes() == (tmp_path / "one_items.parquet").read_bytes()
    assert "silhouette" in (jobs / "3.log").read_text() and "selected restart" in (jobs / "select.log").read_text()
