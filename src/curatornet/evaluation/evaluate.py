"""Score methods on the evaluated users (test and validation) and compute the metrics of Table 2.

The workflow evaluates one method run per job (:func:`evaluate_scorer`, once
per split) and gathers them (:func:`gather_results`, :func:`summarise`), so
that a new run costs one evaluation. Scoring is matrix work: a scorer ranks a block of test
users against all items at once, then the block is masked to each user's
candidates (the inventory at that user's test instant) and the metrics are
computed for the whole block.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet import parts
from curatornet.errors import InputError
from curatornet.evaluation.metrics import Ranked
from curatornet.evaluation.protocol import Cases
from curatornet.io import read_frame, write_parquet
from curatornet.models.base import Queries, Scorer
from curatornet.registry import resolve

log = logging.getLogger(__name__)

#: What identifies a row of the evaluation files: the method run (baselines have
#: empty sampling, l2 and seed) and the split its users come from.
KEY_COLUMNS = ("method", "sampling", "l2", "seed", "split")
TOP_N = 10


@dataclass
class EvaluationResult:
    per_user: pd.DataFrame  # one row per (method run, user): every metric of the metric table
    curves: pd.DataFrame  # mean of every cut-off metric at k = 1..curve_max_k per method run
    top: pd.DataFrame  # each run's top TOP_N per user (for the example figure)


def _key(run: Mapping[str, Any], split: str) -> dict[str, str]:
    def text(name: str) -> str:
        value = run.get(name, "")
        return "" if value is None else str(value)

    return {
        "method": str(run["method"]),
        "sampling": text("sampling"),
        "l2": text("l2"),
        "seed": text("seed"),
        "split": split,
    }


def _label(key: Mapping[str, str]) -> str:
    parts = (
        key["method"],
        key["sampling"],
        key["l2"] and f"l2_{key['l2']}",
        key["seed"] and f"seed_{key['seed']}",
        key["split"],
    )
    return "/".join(v for v in parts if v)


def evaluate_scorer(
    key: Mapping[str, Any],
    scorer: Scorer,
    cases: Cases,
    ks: Sequence[int] = (20, 100),
    curve_max_k: int = 200,
    top_n: int = TOP_N,
    block: int = 2048,
) -> EvaluationResult:
    """Evaluate one scorer on all test cases: its per-user metrics, mean curves and top ``top_n``.

    ``key`` holds ``method`` and, for trained models, ``sampling``, ``l2`` and
    ``seed``; with the cases' split it labels every row, so that results of
    separate runs and splits can be gathered.
    """
    key = _key(key, cases.split)
    label = _label(key)
    ks = [int(k) for k in ks]
    depth = max([curve_max_k, top_n, *ks])
    table = parts.metrics()
    all_items = np.arange(cases.n_items, dtype=np.int32)
    started = time.perf_counter()
    score_time = 0.0
    columns: dict[str, list[np.ndarray]] = {c: [] for c in parts.metric_columns(ks)}
    curve_sums = {m.name: np.zeros(curve_max_k) for m in table if m.cutoff}
    tops = []
    for start in range(0, len(cases), block):
        rows = slice(start, min(start + block, len(cases)))
        queries = Queries(cases.users[rows], cases.profiles[rows], cases.truth[rows], cases.times[rows])
        tick = time.perf_counter()
        scores = np.asarray(scorer.score(queries, all_items))
        score_time += time.perf_counter() - tick
        if scores.shape != (len(queries), len(all_items)):
            raise InputError(label, "scores", scores.shape, f"expected shape {(len(queries), len(all_items))}")
        ranked = Ranked(scores, cases.candidate_mask(rows), cases.truth_mask(rows), depth)
        for spec in table:
            values = np.asarray(resolve(spec.compute)(ranked), dtype=np.float64)
            if not spec.cutoff:
                columns[spec.name].append(values)
                continue
            for k in ks:
                columns[f"{spec.name}@{k}"].append(values[:, k - 1])
            curve_sums[spec.name] += values[:, :curve_max_k].sum(axis=0)
        tops.append((ranked.ranking[:, :top_n], ranked.hits[:, :top_n]))
    n = len(cases)
    per_user = pd.DataFrame({**key, "user": cases.users}, index=pd.RangeIndex(n))
    for column, pieces in columns.items():
        per_user[column] = np.concatenate(pieces) if pieces else np.zeros(0)
    per_user["n_truth"] = np.array([len(t) for t in cases.truth], dtype=np.int32)
    per_user["n_candidates"] = cases.n_candidates()
    per_user["train_items"] = cases.train_items if cases.train_items is not None else np.zeros(n, dtype=np.int32)
    curves = pd.DataFrame(
        {
            **key,
            "k": np.arange(1, curve_max_k + 1, dtype=np.int32),
            **{name: total / max(n, 1) for name, total in curve_sums.items()},
        }
    )
    ranks = np.concatenate([r for r, _ in tops]) if tops else np.zeros((0, top_n), dtype=np.int32)
    hit_top = np.concatenate([h for _, h in tops]) if tops else np.zeros((0, top_n), dtype=bool)
    top = pd.DataFrame(
        {
            **key,
            "user": np.repeat(cases.users, top_n),
            "rank": np.tile(np.arange(1, top_n + 1, dtype=np.int32), n),
            "item": ranks.reshape(-1).astype(np.int32),
            "hit": hit_top.reshape(-1),
        }
    )
    log.info(
        "%s: %d users, mean AUC %.4f, scoring %.2f s, total %.2f s",
        label,
        n,
        float(np.nanmean(per_user["auc"])) if n else float("nan"),
        score_time,
        time.perf_counter() - started,
    )
    return EvaluationResult(per_user=per_user, curves=curves, top=top)


def gather_results(results: Sequence[EvaluationResult]) -> EvaluationResult:
    """The results of several runs as one, in the given order."""

    def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*KEY_COLUMNS, "user"])

    return EvaluationResult(
        per_user=concat([r.per_user for r in results]),
        curves=concat([r.curves for r in results]),
        top=concat([r.top for r in results]),
    )


def summarise(per_user: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per method run, seed and split: the raw summary, without the seed averaging and
    the selected λ of Table 2 (:func:`curatornet.stats.table2`). Rows in Table 2's order: an upper
    bound (the Oracle) first, then by AUC, a lower bound (Random) last."""
    columns = parts.metric_columns_in(per_user.columns)
    refit = "refit" in per_user.columns  # the gathered evaluation marks the refit models' rows
    grouped = per_user.groupby([*KEY_COLUMNS, *(["refit"] if refit else [])], sort=False, dropna=False)
    table = grouped[columns].mean().reset_index()
    table["users"] = grouped.size().to_numpy()
    table = order_rows(table)
    out = pd.DataFrame(
        {
            "Method": table["method"].map(parts.display_name),
            "sampling": table["sampling"],
            "λ": table["l2"],
            "seed": table["seed"],
            "split": table["split"],
        }
    )
    if refit:
        out["refit"] = table["refit"].to_numpy()
    for column in columns:
        out[parts.metric_label(column)] = table[column].to_numpy()
    out["users"] = table["users"].to_numpy()
    return out.reset_index(drop=True)


def run_key(meta: Mapping[str, Any], sampling: str | None = None) -> dict[str, str]:
    """The evaluation key of a trained model directory from its model.json: ``method``, ``sampling``
    (or the one given: an ablation's set), ``l2`` (the label of the run's directory) and ``seed``."""
    from curatornet.artifacts import l2_label

    return {
        "method": str(meta["model"]),
        "sampling": str(meta["sampling"] if sampling is None else sampling),
        "l2": l2_label(float(meta["l2"])),
        "seed": str(int(meta["seed"])),
    }


def apply_refit(result: EvaluationResult, refit: EvaluationResult) -> tuple[EvaluationResult, pd.DataFrame]:
    """The evaluation with the refit models in place of the runs they refit (``training.refit``).

    Each refit model is evaluated on the test baskets only (it trained on the validation baskets)
    under the key of the run it refits (method, sampling, λ, seed). Its rows replace that run's test
    rows in ``per_user``, ``curves`` and ``top``; the validation rows stay the run's. Every table gets
    a column ``refit`` (True on the refit model's rows). Returns the new result and the replaced
    per-user rows (the AUC before refit).
    """
    keys = list(KEY_COLUMNS)

    def replaced(frame: pd.DataFrame, new: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
        if new.empty:
            return frame.assign(refit=False), frame.iloc[:0]
        taken = frame.set_index(keys).index.isin(new[keys].drop_duplicates().set_index(keys).index)
        merged = pd.concat([frame[~taken].assign(refit=False), new.assign(refit=True)], ignore_index=True)
        return merged, frame[taken].reset_index(drop=True)

    per_user, before = replaced(result.per_user, refit.per_user)
    curves, _ = replaced(result.curves, refit.curves)
    top, _ = replaced(result.top, refit.top)
    missing = refit.per_user[keys].drop_duplicates().merge(before[keys].drop_duplicates(), how="left", indicator=True)
    if (missing["_merge"] == "left_only").any():
        key = missing[missing["_merge"] == "left_only"].iloc[0][keys].to_dict()
        raise InputError("refit", "key", key, "a refit model has no evaluated run of the same key")
    return EvaluationResult(per_user=per_user, curves=curves, top=top), before


def order_rows(table: pd.DataFrame) -> pd.DataFrame:
    """Rows of a table of methods in Table 2's order: an upper bound first, then by AUC (best first),
    a lower bound last (:func:`curatornet.parts.table_rank`)."""
    rank = table["method"].map(parts.table_rank)
    return (
        table.assign(_rank=rank)
        .sort_values(["_rank", "auc"], ascending=[True, False], kind="stable")
        .drop(columns="_rank")
    )


def to_table(frame: pd.DataFrame) -> pa.Table:
    """Arrow table with plain ``string`` columns and millisecond timestamps
    (pandas 3 would write ``large_string`` and microseconds)."""
    table = pa.Table.from_pandas(frame, preserve_index=False)
    fields = []
    for f in table.schema:
        if pa.types.is_large_string(f.type):
            f = f.with_type(pa.string())
        elif pa.types.is_timestamp(f.type):
            f = f.with_type(pa.timestamp("ms"))
        fields.append(f)
    return table.cast(pa.schema(fields))


def baseline_scorer(
    name: str, embeddings: np.ndarray, settings: Mapping[str, Any], purchases: pd.DataFrame | None = None
) -> Scorer:
    """The baseline ``name`` (a registered one) with its settings (:func:`baseline_settings`); a baseline
    that reads the purchases gets purchases.parquet's rows."""
    spec = parts.baseline(name)
    if spec.purchases and purchases is None:
        raise InputError(None, "purchases", None, f"baseline {name} reads the purchases: pass purchases.parquet")
    return resolve(spec.build)(embeddings, purchases if spec.purchases else None, settings)


def baseline_settings(name: str, evaluation_config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the ``evaluation`` section that one baseline's results depend on."""
    settings = {"ks": list(evaluation_config["ks"]), "curve_max_k": int(evaluation_config["curve_max_k"])}
    return settings | parts.baseline(name).config_settings(evaluation_config)


def check_embeddings(embeddings: np.ndarray, cases: Cases, source: str = "embeddings.parquet") -> None:
    """The embeddings must cover exactly the items the cases were built on."""
    if len(embeddings) != cases.n_items:
        raise InputError(source, "item", len(embeddings), f"{cases.n_items} items but {len(embeddings)} embeddings")


def write_result(result: EvaluationResult, per_user: str | Path, curves: str | Path, top: str | Path) -> None:
    """Write a result's three tables (each atomically)."""
    write_parquet(to_table(result.per_user), per_user)
    write_parquet(to_table(result.curves), curves)
    write_parquet(to_table(result.top), top)


def read_result(
    per_user: Sequence[str | Path], curves: Sequence[str | Path], top: Sequence[str | Path]
) -> EvaluationResult:
    """The results written by :func:`write_result` for several runs, gathered in the given order."""
    if not len(per_user) == len(curves) == len(top):
        raise InputError(None, "runs", (len(per_user), len(curves), len(top)), "one file of each kind per run")
    return gather_results(
        [
            EvaluationResult(
                per_user=read_frame(u, [*KEY_COLUMNS, "user", "auc"]),
                curves=read_frame(c, [*KEY_COLUMNS, "k"]),
                top=read_frame(t, [*KEY_COLUMNS, "user", "rank", "item", "hit"]),
            )
            for u, c, t in zip(per_user, curves, top)
        ]
    )
