# Data stage: generate the UGallery-like data set (synthetic format only) and build
# the canonical artifacts from it or from the real UGallery files.
# Logic: curatornet.data.

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
    script:
        "../scripts/prepare_data.py"
