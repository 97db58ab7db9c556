"""Snakemake adapter of rule `ablation_stats`: every ablation variant against the full set on the test baskets.

Logic: curatornet.stats.ablation_tests; the full set's λ: curatornet.stats.selected_l2.
"""

import json

import pandas as pd

from curatornet import stats
from curatornet.io import read_frame, write_csv
from curatornet.logs import logged_job

COLUMNS = ["method", "sampling", "l2", "seed", "split", "user", "auc"]


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, params = snakemake.input, snakemake.params
        selection = pd.read_csv(inputs.selection, dtype={"model": str, "sampling": str, "l2": str})
        l2 = stats.selected_l2(selection, params.model, "guidelines")
        full_paths = [path for path, run in zip(inputs.full, params.full_runs) if run["l2"] == l2]
        full = pd.concat([read_frame(path, COLUMNS) for path in full_paths], ignore_index=True)
        full = full[full["split"] == "test"]
        variants = pd.concat([read_frame(path, COLUMNS) for path in inputs.variants], ignore_index=True)
        sizes = {}
        for path in inputs.models:  # one model.json per variant and seed: every seed trains on the same set
            meta = json.loads(open(path, encoding="utf-8").read())
            sizes[meta["ablation"]] = int(meta["n_train_triples"])
        sets = pd.DataFrame(
            [
                {"set": name, "left_out": left_out, "pooling": pooling, "n_triples": sizes[name]}
                for name, left_out, pooling in params.variants
            ],
            columns=["set", "left_out", "pooling", "n_triples"],
        )
        guidelines = stats.ablation_tests(
            full, variants, sets[sets["left_out"] != ""], "left_out", stats.ABLATION_COLUMNS
        )
        poolings = stats.ablation_tests(full, variants, sets[sets["pooling"] != ""], "pooling", stats.POOLING_COLUMNS)
        write_csv(guidelines, snakemake.output.guidelines)
        write_csv(poolings, snakemake.output.poolings)
        log.info(
            "full set: %s with guidelines, λ %s, seeds %s, test AUC %.4f\n%s\n%s",
            params.model,
            l2,
            ", ".join(params.seeds),
            full.groupby("seed")["auc"].mean().mean(),
            guidelines.to_string(index=False),
            poolings.to_string(index=False),
        )


if __name__ == "__main__":
    main(snakemake)
