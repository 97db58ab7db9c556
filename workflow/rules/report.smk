# Figures (one rule each, PNG and SVG) and the self-contained HTML report.
# Logic: curatornet.plots and curatornet.report; scripts only adapt.

#: name -> title of every figure; captions live in workflow/report/<name>.rst.
FIGURES = {
    "clusters": "Visual clusters on the 2-D map (paper Figure 3)",
    "sampling_auc": "AUC with sampling guidelines vs random sampling (paper Figure 4)",
    "learning_curves": "Learning curves of every trained run",
    "topk_curves": "Recall@k and nDCG@k for all methods",
    "restarts": "Silhouette of the k-means restarts",
    "example": "Example recommendations for one test user (paper Figure 5)",
}
REPORT_CAPTIONS = Path(workflow.basedir) / "workflow" / "report"


rule plot_clusters:
    input:
        clusters="results/clusters/items.parquet",
    output:
        png=report(
            "results/plots/clusters.png",
            caption="../report/clusters.rst",
            category="Figures",
            labels={"figure": FIGURES["clusters"]},
        ),
        svg="results/plots/clusters.svg",
    log:
        "logs/report/plot_clusters.log",
    benchmark:
        "benchmarks/results/report/plot_clusters.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        figure="clusters",
    script:
        "../scripts/plots.py"


rule plot_restarts:
    input:
        restarts="results/clusters/restarts.parquet",
    output:
        png=report(
            "results/plots/restarts.png",
            caption="../report/restarts.rst",
            category="Figures",
            labels={"figure": FIGURES["restarts"]},
        ),
        svg="results/plots/restarts.svg",
    log:
        "logs/report/plot_restarts.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        figure="restarts",
    script:
        "../scripts/plots.py"


rule plot_sampling_auc:
    input:
        sampling="results/stats/sampling_ttest.csv",
        per_user="results/evaluation/per_user.parquet",
    output:
        png=report(
            "results/plots/sampling_auc.png",
            caption="../report/sampling_auc.rst",
            category="Figures",
            labels={"figure": FIGURES["sampling_auc"]},
        ),
        svg="results/plots/sampling_auc.svg",
    log:
        "logs/report/plot_sampling_auc.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        figure="sampling_auc",
    script:
        "../scripts/plots.py"


rule plot_learning_curves:
    input:
        models=[f"{d}/model.json" for d in model_dirs()],
    output:
        png=report(
            "results/plots/learning_curves.png",
            caption="../report/learning_curves.rst",
            category="Figures",
            labels={"figure": FIGURES["learning_curves"]},
        ),
        svg="results/plots/learning_curves.svg",
    log:
        "logs/report/plot_learning_curves.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        figure="learning_curves",
        model_dirs=model_dirs(),
    script:
        "../scripts/plots.py"


rule plot_topk_curves:
    input:
        curves="results/evaluation/curves.parquet",
    output:
        png=report(
            "results/plots/topk_curves.png",
            caption="../report/topk_curves.rst",
            category="Figures",
            labels={"figure": FIGURES["topk_curves"]},
        ),
        svg="results/plots/topk_curves.svg",
    log:
        "logs/report/plot_topk_curves.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        figure="topk_curves",
        curve_max_k=config["evaluation"]["curve_max_k"],
    script:
        "../scripts/plots.py"


rule plot_example:
    input:
        cases="results/evaluation/cases.parquet",
        top="results/evaluation/top10.parquet",
        catalogue="results/data/items.parquet",
        clusters="results/clusters/items.parquet",
        selection="results/stats/selection.csv",
    output:
        png=report(
            "results/plots/example.png",
            caption="../report/example.rst",
            category="Figures",
            labels={"figure": FIGURES["example"]},
        ),
        svg="results/plots/example.svg",
    log:
        "logs/report/plot_example.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        figure="example",
        report=config["report"],
        seed=config["seed"],
    script:
        "../scripts/plots.py"


rule report:
    """results/report/report.html: one self-contained offline page."""
    input:
        summary="results/evaluation/summary.csv",
        per_user="results/evaluation/per_user.parquet",
        sampling="results/stats/sampling_ttest.csv",
        visrank="results/stats/vs_visrank.csv",
        selection="results/stats/selection.csv",
        data_stats="results/data/stats.csv",
        figures=expand("results/plots/{name}.png", name=list(FIGURES)),
        captions=expand("workflow/report/{name}.rst", name=list(FIGURES)),
    output:
        "results/report/report.html",
    log:
        "logs/report/report.log",
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        config=config,
        figures=FIGURES,
        benchmarks="benchmarks/results",
    script:
        "../scripts/report.py"
