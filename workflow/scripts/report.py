"""Snakemake adapter of rule `report`: the self-contained HTML report.

Logic: curatornet.report.
"""

from pathlib import Path

import pandas as pd

from curatornet import report
from curatornet.io import read_frame, write_text
from curatornet.logs import logged_job

TEXT_COLUMNS = {"model": str, "sampling": str, "l2": str, "λ": str, "statistic": str, "value": str}


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, params = snakemake.input, snakemake.params
        figures = [
            report.Figure(name, title, Path(png), report.rst_to_text(Path(caption).read_text(encoding="utf-8")))
            for (name, title), png, caption in zip(params.figures.items(), inputs.figures, inputs.captions)
        ]
        columns = ["method", "sampling", "l2", "user", "auc", "n_truth", "n_candidates"]
        content = report.ReportInputs(
            summary=pd.read_csv(inputs.summary, dtype={"sampling": str, "λ": str}, keep_default_na=False),
            per_user=read_frame(inputs.per_user, columns),
            sampling_ttest=pd.read_csv(inputs.sampling, dtype=TEXT_COLUMNS),
            vs_visrank=pd.read_csv(inputs.visrank, dtype=TEXT_COLUMNS, keep_default_na=False, na_values=[""]),
            selection=pd.read_csv(inputs.selection, dtype=TEXT_COLUMNS),
            data_stats=pd.read_csv(inputs.data_stats, dtype=TEXT_COLUMNS),
            config=dict(params.config),
            figures=figures,
            benchmarks=report.read_benchmarks(list(inputs.benchmarks)),
        )
        html = snakemake.output.html
        write_text(report.build_report(content), html)
        log.info("wrote %s (%d figures, %d benchmarked jobs)", html, len(figures), len(content.benchmarks))


if __name__ == "__main__":
    main(snakemake)
