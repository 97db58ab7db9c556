# Visual clusters (paper section 3.5): standardise, PCA, k-means with restarts,
# keep the best silhouette; plus a 2-D map of the items for the cluster figure.
# Above clusters.exact_max_items items, one seeded sample scores the restarts and feeds t-SNE.
# The logic is curatornet.clusters.


rule clusters:
    input:
        embeddings="results/data/embeddings.parquet",
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
        exact_max_items=config["clusters"]["exact_max_items"],
        sample_size=config["clusters"]["sample_size"],
    script:
        "../scripts/clusters.py"
