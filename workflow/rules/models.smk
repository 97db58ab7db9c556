# Training: one job per (model, sampling, λ, seed) that the config's training.runs and
# training.seeds ask for (training_runs() in common.smk), then the selection of λ on
# the validation baskets. Logic: curatornet.models.train, curatornet.stats.
#
# Threads, memory, wall time and GPUs are site resources: the values below are
# defaults for the default config on a workstation; profiles/<profile>/config.yaml
# overrides them (set-threads, set-resources), the config never does.

from curatornet.models.settings import job_settings, refit_settings  # no TensorFlow import


rule train:
    input:
        unpack(training_triples),
        embeddings=rules.prepare_data.output.embedding_table,
        # The validation baskets, scored at every check (early stopping and the kept check).
        catalogue=rules.prepare_data.output.item_table,
        purchases=rules.prepare_data.output.purchase_table,
    output:
        weights=f"results/models/{RUN}/weights.npz",
        standardizer=f"results/models/{RUN}/standardizer.npz",
        history=f"results/models/{RUN}/history.csv",
        # Written last: its presence means the directory is complete.
        model=f"results/models/{RUN}/model.json",
    log:
        f"logs/models/train/{RUN}.log",
    benchmark:
        f"benchmarks/results/models/train/{RUN}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(8000),
        runtime=per_attempt(120),
    params:
        # The job's settings from the config; as params they rerun exactly the runs they concern.
        settings=lambda wildcards: job_settings(
            config, wildcards.model, wildcards.sampling, float(wildcards.l2), int(wildcards.seed)
        ),
    script:
        "../scripts/train.py"


rule train_all:
    input:
        for_each_run(rules.train.output.model),


rule select_runs:
    """λ per (model, sampling) by validation AUC averaged over seeds; every run's stopping."""
    input:
        models=for_each_run(rules.train.output.model),
    output:
        selection=report(
            "results/models/selection.csv",
            caption="../report/tables/selection.rst",
            category="Model selection",
            labels={"table": "validation AUC per λ"},
        ),
        runs="results/models/runs.csv",
    log:
        "logs/models/select_runs.log",
    benchmark:
        "benchmarks/results/models/select_runs.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    script:
        "../scripts/select_runs.py"


rule refit:
    """training.refit: the selected (model, sampling, λ) of one seed trained again on every purchase before
    the test baskets, for the kept run's steps scaled to the larger set, without checks or early stopping."""
    input:
        unpack(refit_inputs),
        embeddings=rules.prepare_data.output.embedding_table,
        catalogue=rules.prepare_data.output.item_table,
        purchases=rules.prepare_data.output.purchase_table,
    output:
        weights=f"results/models/{REFIT}/weights.npz",
        standardizer=f"results/models/{REFIT}/standardizer.npz",
        history=f"results/models/{REFIT}/history.csv",
        model=f"results/models/{REFIT}/model.json",
    log:
        f"logs/models/refit/{REFIT}.log",
    benchmark:
        f"benchmarks/results/models/refit/{REFIT}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(8000),
        runtime=per_attempt(120),
    params:
        # The runs' settings but λ (the selection's), and the λ labels in the order of input.runs.
        settings=lambda wildcards: refit_settings(config, wildcards.model, wildcards.sampling, int(wildcards.seed)),
        l2=lambda wildcards: [run["l2"] for run in selected_candidates(wildcards)],
    script:
        "../scripts/refit.py"
