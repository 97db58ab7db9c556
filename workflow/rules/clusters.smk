# Visual clusters (paper section 3.5): standardise, PCA, k-means with restarts,
# keep the best silhouette; plus a 2-D map of the items for the cluster figure.
# Logic: curatornet.clusters.


rule clusters:
    input:
        embeddings=rules.prepare_data.output.embedding_table,
    output:
        restarts="results/clusters/restarts.parquet",
        cluster_items="results/clusters/items.parquet",
    log:
        "logs/clusters/clusters.log",
    benchmark:
        "benchmarks/results/clusters/clusters.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 4
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    params:
        k=config["clusters"]["k"],
        pca_dim=config["clusters"]["pca_dim"],
        restarts=config["clusters"]["restarts"],
        seed=config["clusters"]["seed"],
        map_method=config["clusters"]["map_method"],
    script:
        "../scripts/clusters.py"
