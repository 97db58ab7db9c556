# Triples (paper section 3.5): one job per shard (the registered guidelines, D1-D6 and
# any plugin's; random sampling with profiles; plain BPR sampling for models without
# profiles), then one job that merges and deduplicates them by hash.
# Logic: curatornet.sampling; curatornet.sampling.plan says what each shard reads
# and depends on, so that editing one guideline's budget reruns only that shard,
# the random and bpr shards (their budget is the sum) and the merge.
#
# The shards are kept, not temp(): rerunning one shard (a changed budget) merges it
# with the shards already made, which must still be there.


rule sample_shard:
    input:
        unpack(shard_inputs),
    output:
        triples="results/triplets/shards/{shard}.parquet",
        # What the shard was asked for and got: cases, skipped cases by reason, triples per split.
        report="results/triplets/shards/{shard}.json",
    log:
        "logs/triplets/sample_shard/{shard}.log",
    benchmark:
        "benchmarks/results/triplets/sample_shard/{shard}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(lambda wildcards: triplet_plan.shard_mem_mb(config, wildcards.shard)),
        runtime=per_attempt(30),
    params:
        sampling=lambda wildcards: triplet_plan.shard_params(config, wildcards.shard),
    script:
        "../scripts/sample_shard.py"


rule dedup_triplets:
    input:
        guidelines=expand(rules.sample_shard.output.triples, shard=parts.guideline_names()),
        random=expand(rules.sample_shard.output.triples, shard=RANDOM_SHARD),
        bpr=expand(rules.sample_shard.output.triples, shard=BPR_SHARD),
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
        guidelines=list(parts.guideline_names()),
    script:
        "../scripts/dedup_triplets.py"


# training.refit: the same shards and merge, drawn from every purchase before the test baskets
# (the validation baskets become training purchases), the training budgets scaled in the job by
# how much the purchases grow, no validation triples. Each refit shard has its own seed.
use rule sample_shard as sample_refit_shard with:
    input:
        unpack(refit_shard_inputs),
    output:
        triples="results/triplets/refit/shards/{shard}.parquet",
        report="results/triplets/refit/shards/{shard}.json",
    log:
        "logs/triplets/sample_refit_shard/{shard}.log",
    benchmark:
        "benchmarks/results/triplets/sample_refit_shard/{shard}.tsv"
    params:
        sampling=lambda wildcards: triplet_plan.refit_shard_params(config, wildcards.shard),


use rule dedup_triplets as dedup_refit_triplets with:
    input:
        guidelines=expand(rules.sample_refit_shard.output.triples, shard=parts.guideline_names()),
        random=expand(rules.sample_refit_shard.output.triples, shard=RANDOM_SHARD),
        bpr=expand(rules.sample_refit_shard.output.triples, shard=BPR_SHARD),
    output:
        guidelines_train="results/triplets/refit/guidelines/train.parquet",
        guidelines_valid="results/triplets/refit/guidelines/valid.parquet",
        random_train="results/triplets/refit/random/train.parquet",
        random_valid="results/triplets/refit/random/valid.parquet",
        bpr_train="results/triplets/refit/bpr/train.parquet",
        bpr_valid="results/triplets/refit/bpr/valid.parquet",
        report="results/triplets/refit/dedup.csv",
    log:
        "logs/triplets/dedup_refit_triplets.log",
    benchmark:
        "benchmarks/results/triplets/dedup_refit_triplets.tsv"
