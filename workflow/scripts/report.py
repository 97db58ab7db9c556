"""Snakemake adapter of rule `report`: the self-contained HTML report.

Logic: curatornet.report.
"""

from pathlib import Path

import pandas as pd

from curatornet import report
from curatornet.io import read_frame, write_text
from curatornet.logs import logged_job

#: Columns read as text: keys (λ labels like "0.0001" must stay as written) and the statistics table.
TEXT_COLUMNS = {
    key: str
    for key in ("method", "model", "sampling", "l2", "l2_a", "l2_b", "l2_guidelines", "l2_random", "reference")
    + ("a", "b", "segment", "split", "monitor", "stop_reason", "statistic", "value", "set", "left_out", "pooling")
}


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, params = snakemake.input, snakemake.params
        figures = [
            report.Figure(name, title, Path(png), report.rst_to_text(Path(caption).read_text(encoding="utf-8")))
            for (name, title), png, caption in zip(params.figures.items(), inputs.figures, inputs.captions)
        ]

        def table(path):
            frame = pd.read_csv(path, dtype=TEXT_COLUMNS)
            keys = [c for c in frame.columns if c in TEXT_COLUMNS]
            frame[keys] = frame[keys].fillna("")  # empty keys (baselines' λ) stay empty text
            return frame

        columns = ["method", "sampling", "l2", "seed", "split", "user", "auc", "n_truth", "n_candidates"]
        content = report.ReportInputs(
            table2=table(inputs.table2),
            table2_valid=table(inputs.table2_valid),
            selection=table(inputs.selection),
            runs=table(inputs.runs),
            sampling_tests=table(inputs.sampling),
            verdict_tests=table(inputs.verdicts),
            reference_tests=table(inputs.reference),
            segments=table(inputs.segments),
            per_user=read_frame(inputs.per_user, columns),
            data_stats=pd.read_csv(inputs.data_stats, dtype=TEXT_COLUMNS),
            config=dict(params.config),
            figures=figures,
            benchmarks=report.read_benchmarks(list(inputs.benchmarks)),
            # The ablation's tables when it ran (config ablation): an empty input otherwise.
            ablation=table(inputs.ablation) if len(inputs.ablation) else None,
            ablation_pooling=table(inputs.ablation_pooling) if len(inputs.ablation_pooling) else None,
        )
        html = snakemake.output.html
        write_text(report.build_report(content), html)
        log.info("wrote %s (%d figures, %d benchmarked jobs)", html, len(figures), len(content.benchmarks))


if __name__ == "__main__":
    main(snakemake)
