"""Snakemake adapter of rule `evaluate` (logic: curatornet.evaluation)."""

from curatornet.artifacts import embeddings_matrix
from curatornet.evaluation.evaluate import run_evaluation, to_table
from curatornet.io import read_frame, read_table, write_csv, write_parquet
from curatornet.logs import setup_logging

log = setup_logging(snakemake.log[0])  # noqa: F821 (injected by Snakemake)
sm = snakemake  # noqa: F821

items = read_frame(sm.input.catalogue, ["item", "item_id", "artist_id", "upload_time", "one_of_a_kind"])
purchases = read_frame(sm.input.purchases, ["user", "user_id", "item", "time", "basket", "split"])
embeddings = embeddings_matrix(read_table(sm.input.embeddings, ["item", "embedding"]))
result, summary, cases = run_evaluation(items, embeddings, purchases, sm.params.model_dirs, sm.params.evaluation)
write_parquet(to_table(result.per_user), sm.output.per_user)
write_csv(summary, sm.output.summary)
write_parquet(to_table(result.curves), sm.output.curves)
write_parquet(to_table(cases.to_frame()), sm.output.cases)
write_parquet(to_table(result.top), sm.output.top)
log.info("evaluation seconds per method: %s", {k: round(v, 2) for k, v in result.seconds.items()})
