# Data stage: generate the UGallery-like data set (synthetic format only) and build
# the canonical artifacts from it or from the real UGallery files.
from curatornet.data import layout as data_layout
from curatornet.data.images import RANDOM_WEIGHTS  # no TensorFlow: that waits for the job

DATA_SCALE = float(config["dataset"]["synthetic"]["scale"])


rule generate_data:
    output:
        inventory="results/raw/ugallery_inventory.csv",
        purchases="results/raw/ugallery_purchases.csv",
        embeddings="results/raw/resnet50_embeddings.npy",
    log:
        "logs/data/generate_data.log",
    benchmark:
        "benchmarks/results/data/generate_data.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(int(1500 + 1500 * DATA_SCALE)),
        runtime=per_attempt(int(10 + 5 * DATA_SCALE)),
    params:
        synthetic=config["dataset"]["synthetic"],
        seed=config["seed"],
    script:
        "../scripts/generate_data.py"


rule embed_images:
    """ResNet50 embeddings of the item images in dataset.images (runs only when that key is set)."""
    input:
        unpack(lambda wildcards: data_layout.embed_images_inputs(config["dataset"], data_layout.RAW_DIR)),
    output:
        str(data_layout.IMAGE_EMBEDDINGS),
    log:
        "logs/data/embed_images.log",
    benchmark:
        "benchmarks/results/data/embed_images.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 4
    resources:
        mem_mb=per_attempt(4000),
        # ResNet50 embedded 12 images/s on two busy cores: 300 a minute leaves a margin
        runtime=lambda wildcards, input, attempt: attempt * (10 + len(input.images) // 300),
    params:
        images=config["dataset"]["images"],
        weights=config["dataset"]["image_weights"],
        # Only random weights depend on the seed: a new seed must not recompute ImageNet features.
        random_seed=config["seed"] if config["dataset"]["image_weights"] == RANDOM_WEIGHTS else None,
    script:
        "../scripts/embed_images.py"


rule prepare_data:
    input:
        # The generator's files, or the configured folder's files (+ a configured embeddings .npy).
        unpack(lambda wildcards: data_layout.input_files(config["dataset"], data_layout.RAW_DIR)),
    output:
        # ("items" is a name Snakemake reserves, hence the *_table names.)
        item_table="results/data/items.parquet",
        embedding_table="results/data/embeddings.parquet",
        purchase_table="results/data/purchases.parquet",
        stats="results/data/stats.csv",
    log:
        "logs/data/prepare_data.log",
    benchmark:
        "benchmarks/results/data/prepare_data.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(int(2000 + 2000 * DATA_SCALE)),
        runtime=per_attempt(int(10 + 5 * DATA_SCALE)),
    params:
        dataset=config["dataset"],
        seed=config["seed"],
    script:
        "../scripts/prepare_data.py"
