# Paired tests (paper section 5.1): guidelines vs random sampling, every run vs
# VisRank, with the λ of each model chosen on validation accuracy.
# Logic: curatornet.stats; the script only adapts.


rule stats:
    """Paired t-test, Wilcoxon and 95% CI: guidelines vs random sampling, and every run vs VisRank."""
    input:
        per_user=rules.gather_evaluation.output.per_user,
        models=for_each_run(rules.train.output.model),
    output:
        sampling=report(
            "results/stats/sampling_ttest.csv",
            caption="../report/tables/sampling_ttest.rst",
            category="Paired tests",
            labels={"table": "guidelines vs random"},
        ),
        visrank=report(
            "results/stats/vs_visrank.csv",
            caption="../report/tables/vs_visrank.rst",
            category="Paired tests",
            labels={"table": "runs vs VisRank"},
        ),
        selection="results/stats/selection.csv",
    log:
        "logs/stats/stats.log",
    benchmark:
        "benchmarks/results/stats/stats.tsv"
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
