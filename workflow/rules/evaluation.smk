# Evaluation (paper section 4.2, Table 2) and the paired tests (section 5.1).
# Logic: curatornet.evaluation and curatornet.stats; scripts only adapt.


rule evaluate:
    """Every trained run, VisRank, Random and Oracle on every test user (inventory replay)."""
    input:
        catalogue="results/data/items.parquet",
        embeddings="results/data/embeddings.parquet",
        purchases="results/data/purchases.parquet",
        models=[f"{d}/model.json" for d in model_dirs()],
    output:
        per_user="results/evaluation/per_user.parquet",
        summary=report(
            "results/evaluation/summary.csv",
            caption="../report/summary.rst",
            category="Evaluation",
            labels={"table": "Table 2"},
        ),
        curves="results/evaluation/curves.parquet",
        cases="results/evaluation/cases.parquet",
        top="results/evaluation/top10.parquet",
    log:
        "logs/evaluation/evaluate.log",
    benchmark:
        "benchmarks/results/evaluation/evaluate.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 2
    resources:
        mem_mb=per_attempt(4000),
        runtime=per_attempt(30),
    params:
        evaluation=config["evaluation"],
        model_dirs=model_dirs(),
    script:
        "../scripts/evaluate.py"


rule stats:
    """Paired t-test, Wilcoxon and 95% CI: guidelines vs random sampling, and every run vs VisRank."""
    input:
        per_user="results/evaluation/per_user.parquet",
        models=[f"{d}/model.json" for d in model_dirs()],
    output:
        sampling=report(
            "results/stats/sampling_ttest.csv",
            caption="../report/sampling_ttest.rst",
            category="Paired tests",
            labels={"table": "guidelines vs random"},
        ),
        visrank=report(
            "results/stats/vs_visrank.csv",
            caption="../report/vs_visrank.rst",
            category="Paired tests",
            labels={"table": "runs vs VisRank"},
        ),
        selection="results/stats/selection.csv",
    log:
        "logs/evaluation/stats.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(10),
    params:
        model_dirs=model_dirs(),
    script:
        "../scripts/stats.py"
