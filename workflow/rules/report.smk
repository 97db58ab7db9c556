# The self-contained HTML report (results/report/report.html).
# Logic: curatornet.report; the script only adapts.


rule report:
    """One offline page: the answer (Table 2 at the selected λ, verdicts), figures, every run, tests, data, run times."""
    input:
        table2=rules.stats.output.table2,
        table2_valid=rules.stats.output.table2_valid,
        selection=rules.select_runs.output.selection,
        runs=rules.select_runs.output.runs,
        sampling=rules.stats.output.sampling,
        verdicts=rules.stats.output.verdicts,
        reference=rules.stats.output.reference,
        segments=rules.stats.output.segments,
        per_user=rules.gather_evaluation.output.per_user,
        data_stats=rules.prepare_data.output.stats,
        figures=expand(rules.plot.output.png, figure=list(report_figures())),
        captions=expand(REPORT_DIR / "figures" / "{figure}.rst", figure=list(report_figures())),
        # The ablation's tables (config ablation), when it runs.
        ablation=rules.ablation_stats.output.guidelines if ablation_variants() else [],
        ablation_pooling=rules.ablation_stats.output.poolings if ablation_variants() else [],
        # Declared, so that the run-time table is never older than the jobs it shows.
        benchmarks=benchmark_files(),
    output:
        html="results/report/report.html",
    log:
        "logs/report/report.log",
    benchmark:
        "benchmarks/results/report/report.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(1000),
        runtime=per_attempt(5),
    params:
        config=config,
        figures=report_figures(),
    script:
        "../scripts/report.py"
