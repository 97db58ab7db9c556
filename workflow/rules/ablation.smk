# Which parts of CuratorNet matter (config `ablation`; config/ablation.yaml turns it on): the model
# `ablation.model` trained at its λ selected with guidelines, with every seed, on one triplet set per
# guideline left out (as large as the full set: the other guidelines fill the budget from their shards
# and one headroom shard each) and with other profile poolings on the full set; then each variant
# against the full set's selected runs (before refit: trained the same way) on the test baskets.
# Only new jobs: the shards, the merge, the runs and their evaluations are read, never rerun.
# Logic: curatornet.ablation, curatornet.sampling.ablation, curatornet.stats.ablation_tests.

from curatornet.ablation import variant_settings


rule sample_headroom_shard:
    """A guideline's triples beyond its shard, for the leave-one-out sets: its own seed, none of its shard's."""
    input:
        unpack(shard_inputs),
        shard=rules.sample_shard.output.triples,
    output:
        triples="results/triplets/headroom/{shard}.parquet",
        report="results/triplets/headroom/{shard}.json",
    log:
        "logs/triplets/sample_headroom_shard/{shard}.log",
    benchmark:
        "benchmarks/results/triplets/sample_headroom_shard/{shard}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(lambda wildcards: triplet_plan.shard_mem_mb(config, wildcards.shard)),
        runtime=per_attempt(30),
    params:
        sampling=lambda wildcards: triplet_plan.headroom_params(config, wildcards.shard),
    script:
        "../scripts/sample_headroom_shard.py"


rule ablation_set:
    """The guidelines set less one guideline, as large as the full set, from the shards and headroom shards."""
    input:
        unpack(ablation_set_inputs),
        dedup=rules.dedup_triplets.output.report,
    output:
        train="results/triplets/ablation/{ablation}/train.parquet",
        valid="results/triplets/ablation/{ablation}/valid.parquet",
        report="results/triplets/ablation/{ablation}/sizes.csv",
    log:
        "logs/triplets/ablation_set/{ablation}.log",
    benchmark:
        "benchmarks/results/triplets/ablation_set/{ablation}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(triplet_plan.dedup_mem_mb(config)),
        runtime=per_attempt(30),
    params:
        # The full set's guidelines (its size is the target), and those this set keeps, in merge order.
        full=list(parts.guideline_names()),
        guidelines=ablation_kept_guidelines,
        budgets=lambda wildcards: {g: triplet_plan.shard_budget(config, g) for g in ablation_kept_guidelines(wildcards)},
    script:
        "../scripts/ablation_set.py"


rule train_ablation:
    """One variant and seed, at the λ selected for the model with guidelines (validation baskets)."""
    input:
        unpack(ablation_triples),
        embeddings=rules.prepare_data.output.embedding_table,
        catalogue=rules.prepare_data.output.item_table,
        purchases=rules.prepare_data.output.purchase_table,
        # Every run its λ is selected among (not selection.csv: another model's new run reruns nothing here).
        selection=selection_models(config["ablation"]["model"], "guidelines"),
    output:
        weights=f"results/ablation/models/{ABLATION_RUN}/weights.npz",
        standardizer=f"results/ablation/models/{ABLATION_RUN}/standardizer.npz",
        history=f"results/ablation/models/{ABLATION_RUN}/history.csv",
        model=f"results/ablation/models/{ABLATION_RUN}/model.json",
    log:
        f"logs/ablation/train_ablation/{ABLATION_RUN}.log",
    benchmark:
        f"benchmarks/results/ablation/train_ablation/{ABLATION_RUN}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(8000),
        runtime=per_attempt(120),
    params:
        settings=lambda wildcards: variant_settings(config, wildcards.ablation, int(wildcards.seed)),
    script:
        "../scripts/train_ablation.py"


rule evaluate_ablation:
    """One variant and seed on the test cases."""
    input:
        test_cases=rules.cases.output.cases.format(split=EVALUATION_SPLIT),
        test_inventory=rules.cases.output.inventory.format(split=EVALUATION_SPLIT),
        embeddings=rules.prepare_data.output.embedding_table,
        model=rules.train_ablation.output.model,
    output:
        per_user=f"results/ablation/evaluation/{ABLATION_RUN}/per_user.parquet",
        curves=f"results/ablation/evaluation/{ABLATION_RUN}/curves.parquet",
        top=f"results/ablation/evaluation/{ABLATION_RUN}/top10.parquet",
    log:
        f"logs/ablation/evaluate_ablation/{ABLATION_RUN}.log",
    benchmark:
        f"benchmarks/results/ablation/evaluate_ablation/{ABLATION_RUN}.tsv"
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


rule ablation_stats:
    """Each variant against the full set's selected runs before refit: paired tests, Holm over each table."""
    input:
        unpack(ablation_stats_inputs),
        selection=rules.select_runs.output.selection,
    output:
        guidelines=report(
            "results/stats/ablation.csv",
            caption="../report/tables/ablation.rst",
            category="Ablation",
            labels={"table": "guidelines left out"},
        ),
        poolings=report(
            "results/stats/ablation_pooling.csv",
            caption="../report/tables/ablation_pooling.rst",
            category="Ablation",
            labels={"table": "profile poolings"},
        ),
    log:
        "logs/stats/ablation_stats.log",
    benchmark:
        "benchmarks/results/stats/ablation_stats.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        model=config["ablation"]["model"],
        full_runs=lambda wildcards: ablation_full_runs(),
        variants=lambda wildcards: [[v.name, v.left_out, v.pooling] for v in ablation_variants()],
        seeds=[str(seed) for seed in config["training"]["seeds"]],
    script:
        "../scripts/ablation_stats.py"
