# Training: one job per (model, sampling, λ, seed) that the config's training.runs
# and training.seeds ask for (see training_runs() in common.smk). The logic is
# curatornet.models.train.

from curatornet.models.settings import job_settings  # no TensorFlow import

MODEL_DIR = "results/models/{model}/{sampling}/l2_{l2}/seed_{seed}"


# A job's settings come from curatornet.models.settings.job_settings; as `params`
# they make Snakemake rerun a job when they change. The `gpu` resource is set
# only when the config asks for GPUs (resources must be integers).
TRAINING_RESOURCES = {
    "mem_mb": per_attempt(config["training"]["mem_mb"]),
    "runtime": per_attempt(config["training"]["runtime"]),
    **({"gpu": int(config["training"]["gpu"])} if int(config["training"]["gpu"]) > 0 else {}),
}


rule train:
    input:
        train=run_triplets("train"),
        valid=run_triplets("valid"),
        embeddings="results/data/embeddings.parquet",
        catalogue="results/data/items.parquet",
        purchases="results/data/purchases.parquet",
    output:
        weights=f"{MODEL_DIR}/weights.npz",
        standardizer=f"{MODEL_DIR}/standardizer.npz",
        history=f"{MODEL_DIR}/history.csv",
        # Written last: its presence means the directory is complete.
        model=f"{MODEL_DIR}/model.json",
    log:
        "logs/training/{model}_{sampling}_l2_{l2}_seed_{seed}.log",
    benchmark:
        "benchmarks/results/training/{model}_{sampling}_l2_{l2}_seed_{seed}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: config["training"]["threads"]
    resources:
        **TRAINING_RESOURCES,
    params:
        settings=lambda wildcards: job_settings(
            config, wildcards.model, wildcards.sampling, float(wildcards.l2), int(wildcards.seed)
        ),
    script:
        "../scripts/train.py"


rule train_all:
    input:
        [f"{d}/model.json" for d in model_dirs()],
