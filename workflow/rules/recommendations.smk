# Batch recommendations for a store: every user of the purchase log, as of its end, by
# the run of a model selected on the validation baskets (its refit with training.refit),
# or by a baseline that can (VisRank). Logic: curatornet.serving.topk.


rule recommend_batch:
    """Top k for every user: profile = all their purchases; candidates = the inventory at the end of the log."""
    input:
        unpack(recommender_models),
        catalogue=rules.prepare_data.output.item_table,
        embeddings=rules.prepare_data.output.embedding_table,
        purchases=rules.prepare_data.output.purchase_table,
    output:
        recommendations="results/recommendations/{recommender}.parquet",
    log:
        "logs/recommendations/{recommender}.log",
    benchmark:
        "benchmarks/results/recommendations/{recommender}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    params:
        # The runs of the recommender, in the order of input.models (keys for the selection).
        runs=recommender_runs,
        # Its refit models (training.refit), in the order of input.refits: served in place of the runs they refit.
        refits=recommender_refits,
        k=config["recommendations"]["k"],
        index=config["recommendations"]["index"],
        # A baseline's settings (recommender_settings in common.smk); empty for a model.
        settings=recommender_settings,
    script:
        "../scripts/recommend_batch.py"
