# Visual clusters (paper section 3.5): standardise, PCA, k-means with restarts,
# keep the best silhouette; plus a 2-D map of the items for the cluster figure.
# Logic: curatornet.clusters. Above clusters.exact_max_items items, one seeded sample scores
# the restarts and feeds t-SNE.


# Memory: the float32 embeddings once plus the PCA's workspace, about 1.5 times the matrix
# (9.3 GB measured at 100 times UGallery); time: the 20 k-means restarts grow with the items.
_SYNTHETIC = config["dataset"]["synthetic"]
CLUSTERS_MEM_MB = max(4000, int(1500 + 1.5 * 7742 * _SYNTHETIC["scale"] * _SYNTHETIC["embedding_dim"] * 4 / 1e6))
CLUSTERS_RUNTIME_MIN = int(30 + 0.5 * _SYNTHETIC["scale"])


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
        mem_mb=per_attempt(CLUSTERS_MEM_MB),
        runtime=per_attempt(CLUSTERS_RUNTIME_MIN),
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
