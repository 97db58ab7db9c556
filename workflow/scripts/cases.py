"""Snakemake adapter of rule `cases`: the evaluation cases of one split (the protocol's inventory replay).

Logic: curatornet.evaluation (protocol.build_cases, cases.write_cases).
"""

from curatornet.evaluation.cases import write_cases
from curatornet.evaluation.protocol import ITEM_COLUMNS, PURCHASE_COLUMNS, build_cases
from curatornet.io import read_frame
from curatornet.logs import logged_job


def main(snakemake) -> None:
    with logged_job(snakemake.log[0]) as log:
        inputs, split = snakemake.input, snakemake.wildcards.split
        items = read_frame(inputs.catalogue, ITEM_COLUMNS)
        purchases = read_frame(inputs.purchases, PURCHASE_COLUMNS)
        cases = build_cases(items, purchases, split, str(inputs.catalogue), str(inputs.purchases))
        write_cases(cases, snakemake.output.cases, snakemake.output.inventory)
        log.info("%s: %d users with cases, %d dropped", split, len(cases), len(cases.dropped_users))


if __name__ == "__main__":
    main(snakemake)
