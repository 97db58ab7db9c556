"""Snakemake adapter of rule `report` (logic: curatornet.report)."""

from pathlib import Path

import pandas as pd

from curatornet import report
from curatornet.io import read_frame, write_text
from curatornet.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
sm = snakemake  # noqa: F821

text_columns = {"model": str, "sampling": str, "l2": str, "λ": str, "statistic": str, "value": str}
figures = []
for (name, title), png, caption in zip(sm.params.figures.items(), sm.input.figures, sm.input.captions):
    figures.append(report.Figure(name, title, Path(png), report.rst_to_text(Path(caption).read_text(encoding="utf-8"))))
inputs = report.ReportInputs(
    summary=pd.read_csv(sm.input.summary, dtype={"sampling": str, "λ": str}, keep_default_na=False),
    per_user=read_frame(sm.input.per_user, ["method", "sampling", "l2", "user", "auc", "n_truth", "n_candidates"]),
    sampling_ttest=pd.read_csv(sm.input.sampling, dtype=text_columns),
    vs_visrank=pd.read_csv(sm.input.visrank, dtype=text_columns, keep_default_na=False, na_values=[""]),
    selection=pd.read_csv(sm.input.selection, dtype=text_columns),
    data_stats=pd.read_csv(sm.input.data_stats, dtype=text_columns),
    config=dict(sm.params.config),
    figures=figures,
    benchmarks=report.read_benchmarks(sm.params.benchmarks),
)
write_text(report.build_report(inputs), sm.output[0])
log.info("report written: %s (%d figures, %d benchmark files)", sm.output[0], len(figures), len(inputs.benchmarks))
