# Evaluation (paper section 4.2, Table 2), scattered: the cases once per split, one
# job per trained run and per baseline, then a gather. A new run in the config costs
# its own evaluation and the gather, nothing else.
# Logic: curatornet.evaluation; scripts only adapt.


rule cases:
    """The users of a split (test or valid): profile, ground truth and the inventory at their basket's instant."""
    input:
        catalogue=rules.prepare_data.output.item_table,
        purchases=rules.prepare_data.output.purchase_table,
    output:
        cases="results/evaluation/cases/{split}.parquet",
        inventory="results/evaluation/cases/{split}_inventory.parquet",
    log:
        "logs/evaluation/cases/{split}.log",
    benchmark:
        "benchmarks/results/evaluation/cases/{split}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    script:
        "../scripts/cases.py"


rule evaluate_run:
    """One trained run on the test and validation cases: per-user metrics, mean curves, top 10 per user."""
    input:
        **evaluation_cases(),
        embeddings=rules.prepare_data.output.embedding_table,
        model=rules.train.output.model,
    output:
        per_user=f"results/evaluation/runs/{RUN}/per_user.parquet",
        curves=f"results/evaluation/runs/{RUN}/curves.parquet",
        top=f"results/evaluation/runs/{RUN}/top10.parquet",
    log:
        f"logs/evaluation/evaluate_run/{RUN}.log",
    benchmark:
        f"benchmarks/results/evaluation/evaluate_run/{RUN}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(30),
    params:
        ks=config["evaluation"]["ks"],
        curve_max_k=config["evaluation"]["curve_max_k"],
    script:
        "../scripts/evaluate_run.py"


rule evaluate_baseline:
    """A baseline (VisRank, Random, Oracle, MostPopular, …) on the test and validation cases (same files as evaluate_run)."""
    input:
        unpack(baseline_inputs),
    output:
        per_user="results/evaluation/baselines/{baseline}/per_user.parquet",
        curves="results/evaluation/baselines/{baseline}/curves.parquet",
        top="results/evaluation/baselines/{baseline}/top10.parquet",
    log:
        "logs/evaluation/evaluate_baseline/{baseline}.log",
    benchmark:
        "benchmarks/results/evaluation/evaluate_baseline/{baseline}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(30),
    params:
        # Only what this baseline depends on: VisRank's settings rerun VisRank alone.
        settings=baseline_params,
    script:
        "../scripts/evaluate_baseline.py"


rule evaluate_refit:
    """A refit model (training.refit) on the test cases only: it trained on the validation baskets."""
    input:
        test_cases=rules.cases.output.cases.format(split=EVALUATION_SPLIT),
        test_inventory=rules.cases.output.inventory.format(split=EVALUATION_SPLIT),
        embeddings=rules.prepare_data.output.embedding_table,
        model=rules.refit.output.model,
    output:
        per_user=f"results/evaluation/refit/{REFIT}/per_user.parquet",
        curves=f"results/evaluation/refit/{REFIT}/curves.parquet",
        top=f"results/evaluation/refit/{REFIT}/top10.parquet",
    log:
        f"logs/evaluation/evaluate_refit/{REFIT}.log",
    benchmark:
        f"benchmarks/results/evaluation/evaluate_refit/{REFIT}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(3000),
        runtime=per_attempt(30),
    params:
        ks=config["evaluation"]["ks"],
        curve_max_k=config["evaluation"]["curve_max_k"],
    script:
        "../scripts/evaluate_run.py"


rule gather_evaluation:
    """Every evaluated run in one table each (the refit models in place of the runs they refit), the
    replaced rows, and the raw summary per run, seed and split."""
    input:
        per_user=evaluation_outputs("per_user"),
        curves=evaluation_outputs("curves"),
        top=evaluation_outputs("top"),
        refit_per_user=for_each_refit(rules.evaluate_refit.output.per_user),
        refit_curves=for_each_refit(rules.evaluate_refit.output.curves),
        refit_top=for_each_refit(rules.evaluate_refit.output.top),
    output:
        per_user="results/evaluation/per_user.parquet",
        # The test rows of the refit runs before refit (Table 2's AUC before refit).
        before_refit="results/evaluation/before_refit.parquet",
        summary=report(
            "results/evaluation/summary.csv",
            caption="../report/tables/summary.rst",
            category="Evaluation",
            labels={"table": "every run, seed and split"},
        ),
        curves="results/evaluation/curves.parquet",
        top="results/evaluation/top10.parquet",
    log:
        "logs/evaluation/gather_evaluation.log",
    benchmark:
        "benchmarks/results/evaluation/gather_evaluation.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    script:
        "../scripts/gather_evaluation.py"
