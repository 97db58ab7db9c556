# Table 2 with seeds and the selected λ, and the paired tests a reviewer expects
# (paper section 5.1 and beyond): guidelines vs random sampling, the ordering of the
# methods (every model against the reference baseline, VisRank, and against each other),
# every run vs the reference baseline (Holm-adjusted), results by user segment.
# Logic: curatornet.stats; the script only adapts.


rule stats:
    """Table 2 (test and validation), paired tests with effect sizes and Holm's adjustment, user segments."""
    input:
        per_user=rules.gather_evaluation.output.per_user,
        before_refit=rules.gather_evaluation.output.before_refit,
        selection=rules.select_runs.output.selection,
    output:
        table2=report(
            "results/stats/table2.csv",
            caption="../report/tables/table2.rst",
            category="Evaluation",
            labels={"table": "Table 2"},
        ),
        table2_valid="results/stats/table2_valid.csv",
        sampling=report(
            "results/stats/sampling_ttest.csv",
            caption="../report/tables/sampling_ttest.rst",
            category="Paired tests",
            labels={"table": "guidelines vs random"},
        ),
        verdicts=report(
            "results/stats/verdicts.csv",
            caption="../report/tables/verdicts.rst",
            category="Paired tests",
            labels={"table": "Table 2's ordering"},
        ),
        reference=report(
            "results/stats/vs_reference.csv",
            caption="../report/tables/vs_reference.rst",
            category="Paired tests",
            labels={"table": "runs vs the reference baseline"},
        ),
        segments=report(
            "results/stats/segments.csv",
            caption="../report/tables/segments.rst",
            category="Evaluation",
            labels={"table": "user segments"},
        ),
    log:
        "logs/stats/stats.log",
    benchmark:
        "benchmarks/results/stats/stats.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    script:
        "../scripts/stats.py"
