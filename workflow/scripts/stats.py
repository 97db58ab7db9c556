"""Snakemake adapter of rule `stats` (logic: curatornet.stats)."""

from curatornet import stats
from curatornet.io import read_frame, write_csv
from curatornet.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
sm = snakemake  # noqa: F821

per_user = read_frame(sm.input.per_user, ["method", "sampling", "l2", "user", "auc"])
selection = stats.select_runs(sm.params.model_dirs)
write_csv(stats.sampling_ttests(per_user, selection), sm.output.sampling)
write_csv(stats.visrank_tests(per_user), sm.output.visrank)
write_csv(selection, sm.output.selection)
log.info("selected runs:\n%s", selection.to_string(index=False))
