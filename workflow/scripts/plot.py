"""Snakemake adapter of rule `plot`: one figure of the report, as PNG and SVG.

Logic: curatornet.plots.FIGURES, which maps the figure's name (the job's wildcard)
to the function drawing it from the rule's named inputs and params.options.
"""

from curatornet import plots
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        figure, output = snakemake.wildcards.figure, snakemake.output
        inputs = {name: value if isinstance(value, str) else list(value) for name, value in snakemake.input.items()}
        summary = plots.FIGURES[figure](output.png, output.svg, **inputs, **snakemake.params.options)
        log.info("%s: %s; wrote %s and %s", figure, summary, output.png, output.svg)


if __name__ == "__main__":
    main(snakemake)
