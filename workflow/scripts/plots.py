"""Snakemake adapter of the plot_* rules (logic: curatornet.plots); params.figure picks the figure."""

from pathlib import Path

import pandas as pd

from curatornet import plots
from curatornet.evaluation.evaluate import parse_model_dir
from curatornet.io import read_frame
from curatornet.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
sm = snakemake  # noqa: F821
figure = sm.params.figure
png, svg = sm.output.png, sm.output.svg

if figure == "clusters":
    plots.plot_clusters(read_frame(sm.input.clusters, ["item", "cluster", "x", "y"]), png, svg)
elif figure == "restarts":
    plots.plot_restarts(read_frame(sm.input.restarts, ["restart", "seed", "silhouette", "selected"]), png, svg)
elif figure == "sampling_auc":
    table = pd.read_csv(sm.input.sampling, dtype={"model": str, "l2": str})
    per_user = read_frame(sm.input.per_user, ["method", "sampling", "l2", "user", "auc"])
    plots.plot_sampling_auc(table, per_user, png, svg)
elif figure == "learning_curves":
    histories = {}
    for model_dir in sm.params.model_dirs:
        path = Path(model_dir) / "history.csv"
        if path.exists():
            key = parse_model_dir(model_dir)
            histories[plots.run_label(key["method"], key["sampling"], key["l2"])] = pd.read_csv(path)
        else:
            log.warning("no history.csv in %s", model_dir)
    plots.plot_learning_curves(histories, png, svg)
elif figure == "topk_curves":
    plots.plot_topk_curves(read_frame(sm.input.curves, ["method", "sampling", "l2", "k", "recall", "ndcg"]), png, svg)
elif figure == "example":
    cases = read_frame(sm.input.cases, ["user", "user_id", "profile", "truth"])
    top = read_frame(sm.input.top, ["method", "sampling", "l2", "user", "rank", "item", "hit"])
    items = read_frame(sm.input.catalogue, ["item", "item_id", "artist_id"])
    clusters = read_frame(sm.input.clusters, ["item", "cluster"])
    selection = pd.read_csv(sm.input.selection, dtype={"model": str, "sampling": str, "l2": str})
    runs = plots.example_runs(selection, top)
    user = plots.pick_example_user(cases, sm.params.report.get("example_user"), sm.params.seed)
    user_id = cases.loc[cases["user"] == user, "user_id"].iloc[0]
    rows = plots.example_rows(cases, top, user, runs)
    plots.plot_example(
        rows,
        items,
        clusters,
        png,
        svg,
        title=f"Test user {user_id}: profile, top 10 per method, ground truth (black frame: a hit)",
        images=sm.params.report.get("images"),
    )
    log.info("example user %s, runs %s", user_id, runs)
else:
    raise ValueError(f"unknown figure {figure!r}")
log.info("wrote %s and %s", png, svg)
