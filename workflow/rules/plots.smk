# Figures, one job per figure (PNG and SVG): FIGURES in common.smk names them,
# figure_inputs() says what each reads, curatornet.plots.FIGURES draws them.


rule plot:
    input:
        unpack(figure_inputs),
    output:
        png=report(
            "results/plots/{figure}.png",
            caption="../report/figure.rst",
            category="Figures",
            labels=lambda wildcards: {"figure": FIGURES[wildcards.figure]},
        ),
        svg="results/plots/{figure}.svg",
    log:
        "logs/plots/{figure}.log",
    benchmark:
        "benchmarks/results/plots/{figure}.tsv"
    conda:
        "../../envs/curatornet.yaml"
    threads: 1
    resources:
        mem_mb=per_attempt(2000),
        runtime=per_attempt(10),
    params:
        options=figure_options,
        # Read by workflow/report/figure.rst (the caption in `snakemake --report`), not by the script.
        caption=figure_caption,
    script:
        "../scripts/plot.py"
