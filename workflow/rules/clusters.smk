# Visual clusters (paper section 3.5): standardise and PCA once, then one job per k-means
# restart, a job that keeps the restart with the best silhouette, and the 2-D map of the
# items for the cluster figure in a job of its own; on a cluster the restarts spread over
# nodes. Logic: curatornet.clusters (cluster_matrix runs the same steps in one call).
# Above clusters.exact_max_items items, one seeded sample scores the restarts and feeds t-SNE.


# Memory of the PCA: the float32 embeddings once plus its workspace, about 1.5 times the
# matrix (9.3 GB measured at 100 times UGallery). The PCA points are items x pca_dim float32
# (620 MB at 100 times); a restart holds them, k-means' workspace and the silhouette's
# distances (at most 16,000 scored items: 1 GB).
_SYNTHETIC = config["dataset"]["synthetic"]
_ITEMS = 7742 * _SYNTHETIC["scale"]
PCA_MEM_MB = max(4000, int(1500 + 1.5 * _ITEMS * _SYNTHETIC["embedding_dim"] * 4 / 1e6))
POINTS_MB = _ITEMS * config["clusters"]["pca_dim"] * 4 / 1e6
RESTART_MEM_MB = max(2000, int(1500 + 3 * POINTS_MB))
RESTART_RUNTIME_MIN = int(10 + 0.2 * _SYNTHETIC["scale"])
RESTARTS = range(config["clusters"]["restarts"])


rule pca_points:
    input:
        embeddings=rules.prepare_data.output.embedding_table,
    output:
        points="results/clusters/points.npy",
    log:
        "logs/clusters/pca_points.log",
    benchmark:
        "benchmarks/results/clusters/pca_points.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(PCA_MEM_MB),
        runtime=per_attempt(int(10 + 0.1 * _SYNTHETIC["scale"])),
    params:
        pca_dim=config["clusters"]["pca_dim"],
        seed=config["clusters"]["seed"],
    script:
        "../scripts/pca_points.py"


rule kmeans_restart:
    """One k-means restart (seed clusters.seed + restart) over every item, and its silhouette."""
    input:
        points=rules.pca_points.output.points,
    output:
        labels="results/clusters/restarts/{restart}.parquet",
    log:
        "logs/clusters/restarts/{restart}.log",
    benchmark:
        "benchmarks/results/clusters/restarts/{restart}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(RESTART_MEM_MB),
        runtime=per_attempt(RESTART_RUNTIME_MIN),
    params:
        k=config["clusters"]["k"],
        seed=config["clusters"]["seed"],
        exact_max_items=config["clusters"]["exact_max_items"],
        sample_size=config["clusters"]["sample_size"],
    script:
        "../scripts/kmeans_restart.py"


rule select_restart:
    """The restart with the highest silhouette (ties: the earliest) gives every item its cluster."""
    input:
        restarts=expand(rules.kmeans_restart.output.labels, restart=RESTARTS),
    output:
        restarts="results/clusters/restarts.parquet",
        assignment="results/clusters/assignment.parquet",
    log:
        "logs/clusters/select_restart.log",
    benchmark:
        "benchmarks/results/clusters/select_restart.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(max(1000, int(500 + 0.05 * _ITEMS * len(RESTARTS) / 1000))),
        runtime=per_attempt(10),
    script:
        "../scripts/select_restart.py"


rule cluster_map:
    """The 2-D map of the items (PCA or t-SNE) for the cluster figure."""
    input:
        points=rules.pca_points.output.points,
    output:
        map="results/clusters/map.parquet",
    log:
        "logs/clusters/cluster_map.log",
    benchmark:
        "benchmarks/results/clusters/cluster_map.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(RESTART_MEM_MB),
        runtime=per_attempt(30),
    params:
        map_method=config["clusters"]["map_method"],
        seed=config["clusters"]["seed"],
        exact_max_items=config["clusters"]["exact_max_items"],
        sample_size=config["clusters"]["sample_size"],
    script:
        "../scripts/cluster_map.py"


rule clusters:
    """clusters/items.parquet: each item's cluster and map position (the figures read it; the
    triplet shards read the assignment alone, so they need not wait for the map)."""
    input:
        assignment=rules.select_restart.output.assignment,
        map=rules.cluster_map.output.map,
    output:
        cluster_items="results/clusters/items.parquet",
    log:
        "logs/clusters/clusters.log",
    benchmark:
        "benchmarks/results/clusters/clusters.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(max(1000, int(500 + 0.05 * _ITEMS / 1000))),
        runtime=per_attempt(10),
    script:
        "../scripts/clusters.py"
