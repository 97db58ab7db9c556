# Training: one job per (model, sampling, λ) that the config's training.runs asks
# for (training_runs() in common.smk). Logic: curatornet.models.training.
#
# Threads, memory, wall time and GPUs are site resources: the values below are
# defaults for the default config on a workstation; profiles/<profile>/config.yaml
# overrides them (set-threads, set-resources), the config never does.

from curatornet.models.training import job_settings  # no TensorFlow import


rule train:
    input:
        unpack(training_triples),
        embeddings=rules.prepare_data.output.embedding_table,
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
        settings=lambda wildcards: job_settings(config, wildcards.model, wildcards.sampling, float(wildcards.l2)),
    script:
        "../scripts/train.py"


rule train_all:
    input:
        for_each_run(rules.train.output.model),
