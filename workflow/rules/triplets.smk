# Triples (paper section 3.5): one rule per shard (guidelines D1-D6 and plain
# random BPR sampling), then one rule that merges and deduplicates them by hash.
# The logic is curatornet.sampling; curatornet.sampling.plan says what each
# shard reads and depends on, so that editing one guideline's budget reruns
# only that shard, the random shard (its budget is the sum) and the merge.

from curatornet.sampling import plan as triplet_plan

for _shard in SHARDS:

    rule:
        name:
            f"sample_{_shard}"
        input:
            **triplet_plan.shard_inputs(_shard),
        output:
            f"results/triplets/shards/{_shard}.parquet",
        log:
            f"logs/triplets/sample_{_shard}.log",
        benchmark:
            f"benchmarks/results/triplets/sample_{_shard}.tsv"
        conda:
            "../../envs/curatornet.yaml"
        threads: 1
        resources:
            mem_mb=per_attempt(triplet_plan.shard_mem_mb(config, _shard)),
            runtime=per_attempt(30),
        params:
            **triplet_plan.shard_params(config, _shard),
        script:
            "../scripts/sample_triplets.py"


rule dedup_triplets:
    input:
        guidelines=expand("results/triplets/shards/{guideline}.parquet", guideline=GUIDELINES),
        random=f"results/triplets/shards/{RANDOM_SHARD}.parquet",
        bpr=f"results/triplets/shards/{BPR_SHARD}.parquet",
    output:
        guidelines_train="results/triplets/guidelines/train.parquet",
        guidelines_valid="results/triplets/guidelines/valid.parquet",
        random_train="results/triplets/random/train.parquet",
        random_valid="results/triplets/random/valid.parquet",
        bpr_train="results/triplets/bpr/train.parquet",
        bpr_valid="results/triplets/bpr/valid.parquet",
        report="results/triplets/dedup.csv",
    log:
        "logs/triplets/dedup_triplets.log",
    benchmark:
        "benchmarks/results/triplets/dedup_triplets.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(triplet_plan.dedup_mem_mb(config)),
        runtime=per_attempt(30),
    params:
        guidelines=list(GUIDELINES),
    script:
        "../scripts/dedup_triplets.py"
