# Data stage: generate the UGallery-like data set (synthetic format only) and build
# the canonical artifacts from it or from the real UGallery files.
# Logic: curatornet.data.
from curatornet.data.images import RANDOM_WEIGHTS  # no TensorFlow: that waits for the job

DATA_SCALE = float(config["dataset"]["synthetic"]["scale"])


rule generate_data:
    output:
        # Only prepare_data reads these, and they are quick to make again from the seed.
        inventory=temp(f"{RAW_DIR}/{data_layout.RAW_INVENTORY}"),
        purchases=temp(f"{RAW_DIR}/{data_layout.RAW_PURCHASES}"),
        embeddings=temp(f"{RAW_DIR}/{data_layout.RAW_EMBEDDINGS}"),
    log:
        "logs/data/generate_data.log",
    benchmark:
        "benchmarks/results/data/generate_data.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        # Measured: 0.4 GB and 5 s at scale 1, 0.84 GB and 100 s at scale 100 (embeddings are streamed).
        mem_mb=per_attempt(int(1000 + 10 * DATA_SCALE)),
        runtime=per_attempt(int(10 + 0.2 * DATA_SCALE)),
    params:
        synthetic=config["dataset"]["synthetic"],
        seed=config["seed"],
    script:
        "../scripts/generate_data.py"


rule embed_images:
    """ResNet50 embeddings of the item images in dataset.images (runs only when that key is set)."""
    input:
        unpack(embed_images_inputs),
    output:
        embeddings=IMAGE_EMBEDDINGS,
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
        unpack(prepare_data_inputs),
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
        raw_dir=RAW_DIR,
        image_embeddings=IMAGE_EMBEDDINGS,
    script:
        "../scripts/prepare_data.py"
