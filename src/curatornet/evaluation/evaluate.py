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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from curatornet.artifacts import BASELINES
from curatornet.errors import InputError
from curatornet.evaluation import metrics
from curatornet.evaluation.protocol import Cases
from curatornet.evaluation.protocol import build_cases as replay_cases
from curatornet.io import read_frame, write_parquet
from curatornet.models.base import Queries, Scorer

log = logging.getLogger(__name__)

#: Names in Table 2, and the order of the baselines among themselves.
DISPLAY_NAMES = {
    "oracle": "Oracle",
    "curatornet": "CuratorNet",
    "vbpr": "VBPR",
    "visrank": "VisRank",
    "random": "Random",
}
#: What identifies a row of the evaluation files: the method run (baselines have
#: empty sampling, l2 and seed) and the split its users come from.
KEY_COLUMNS = ("method", "sampling", "l2", "seed", "split")
TOP_N = 10


def metric_columns(ks: Sequence[int]) -> list[str]:
    """The per-user metric columns in the order of per_user.parquet."""
    columns = ["auc"]
    for k in ks:
        columns += [f"recall@{k}", f"precision@{k}", f"ndcg@{k}", f"ndcg_paper@{k}"]
    return columns


@dataclass
class EvaluationResult:
    per_user: pd.DataFrame  # one row per (method run, test user)
    curves: pd.DataFrame  # mean Recall/Precision/nDCG at k = 1..curve_max_k per method run
    top: pd.DataFrame  # each run's top TOP_N per test user (for the example figure)
    seconds: dict[str, float] = field(default_factory=dict)


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
    all_items = np.arange(cases.n_items, dtype=np.int32)
    started = time.perf_counter()
    score_time = 0.0
    columns: dict[str, list[np.ndarray]] = {c: [] for c in metric_columns(ks)}
    curve_sums = {name: np.zeros(curve_max_k) for name in ("recall", "precision", "ndcg")}
    tops = []
    for start in range(0, len(cases), block):
        rows = slice(start, min(start + block, len(cases)))
        queries = Queries(cases.users[rows], cases.profiles[rows], cases.truth[rows])
        tick = time.perf_counter()
        scores = np.asarray(scorer.score(queries, all_items))
        score_time += time.perf_counter() - tick
        if scores.shape != (len(queries), len(all_items)):
            raise InputError(label, "scores", scores.shape, f"expected shape {(len(queries), len(all_items))}")
        candidates = cases.candidate_mask(rows)
        truth = cases.truth_mask(rows)
        n_truth = truth.sum(axis=1)
        columns["auc"].append(metrics.auc(scores, candidates, truth))
        ranking = metrics.top_k(scores, candidates, depth)
        hit = metrics.hits(ranking, truth)
        curves = {
            "recall": metrics.recall_curve(hit, n_truth),
            "precision": metrics.precision_curve(hit),
            "ndcg": metrics.ndcg_curve(hit, n_truth),
        }
        paper_ndcg = metrics.ndcg_paper_curve(hit)
        for k in ks:
            columns[f"recall@{k}"].append(curves["recall"][:, k - 1])
            columns[f"precision@{k}"].append(curves["precision"][:, k - 1])
            columns[f"ndcg@{k}"].append(curves["ndcg"][:, k - 1])
            columns[f"ndcg_paper@{k}"].append(paper_ndcg[:, k - 1])
        for name, values in curves.items():
            curve_sums[name] += values[:, :curve_max_k].sum(axis=0)
        tops.append((ranking[:, :top_n], hit[:, :top_n]))
    n = len(cases)
    per_user = pd.DataFrame({**key, "user": cases.users}, index=pd.RangeIndex(n))
    for column, parts in columns.items():
        per_user[column] = np.concatenate(parts) if parts else np.zeros(0)
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
    seconds = time.perf_counter() - started
    log.info(
        "%s: %d users, mean AUC %.4f, scoring %.2f s, total %.2f s",
        label,
        n,
        float(np.nanmean(per_user["auc"])) if n else float("nan"),
        score_time,
        seconds,
    )
    return EvaluationResult(per_user=per_user, curves=curves, top=top, seconds={label: seconds})


def gather_results(results: Sequence[EvaluationResult]) -> EvaluationResult:
    """The results of several runs as one, in the given order."""

    def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=[*KEY_COLUMNS, "user"])

    seconds: dict[str, float] = {}
    for result in results:
        seconds.update(result.seconds)
    return EvaluationResult(
        per_user=concat([r.per_user for r in results]),
        curves=concat([r.curves for r in results]),
        top=concat([r.top for r in results]),
        seconds=seconds,
    )


def evaluate_methods(
    runs: Sequence[tuple[Mapping[str, Any], Scorer]],
    cases: Cases,
    ks: Sequence[int] = (20, 100),
    curve_max_k: int = 200,
    top_n: int = TOP_N,
    block: int = 2048,
) -> EvaluationResult:
    """Evaluate each (key, scorer) on all cases, gathered in the given order."""
    return gather_results([evaluate_scorer(key, scorer, cases, ks, curve_max_k, top_n, block) for key, scorer in runs])


def summarise(per_user: pd.DataFrame, ks: Sequence[int] = (20, 100)) -> pd.DataFrame:
    """Mean metrics per method run, seed and split (the raw summary; Table 2 with seeds and
    selection is :func:`curatornet.stats.table2`), Oracle first, then by AUC, Random last."""
    columns = metric_columns(ks)
    grouped = per_user.groupby(list(KEY_COLUMNS), sort=False, dropna=False)
    table = grouped[columns].mean().reset_index()
    table["users"] = grouped.size().to_numpy()
    rank = table["method"].map({"oracle": 0, "random": 2}).fillna(1)
    table = table.assign(_rank=rank).sort_values(["_rank", "auc"], ascending=[True, False], kind="stable")
    renamed = {"auc": "AUC"}
    for k in ks:
        renamed.update(
            {
                f"recall@{k}": f"R@{k}",
                f"precision@{k}": f"P@{k}",
                f"ndcg@{k}": f"nDCG@{k}",
                f"ndcg_paper@{k}": f"nDCG@{k} (paper)",
            }
        )
    out = pd.DataFrame(
        {
            "Method": table["method"].map(lambda m: DISPLAY_NAMES.get(m, m)),
            "sampling": table["sampling"],
            "λ": table["l2"],
            "seed": table["seed"],
            "split": table["split"],
        }
    )
    for column in columns:
        out[renamed[column]] = table[column].to_numpy()
    out["users"] = table["users"].to_numpy()
    return out.reset_index(drop=True)


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


def baseline_scorer(name: str, embeddings: np.ndarray, evaluation_config: Mapping[str, Any]) -> Scorer:
    """VisRank, Random or Oracle, configured from the config's ``evaluation`` section."""
    from curatornet.models.baselines import Oracle, RandomScorer, VisRank

    if name == "visrank":
        visrank = evaluation_config.get("visrank", {})
        return VisRank(embeddings, visrank.get("aggregate", "max"), visrank.get("top_k", 2))
    if name == "random":
        return RandomScorer(evaluation_config.get("random_seed", 7))
    if name == "oracle":
        return Oracle()
    raise InputError(None, "baseline", name, f"unknown baseline (one of {', '.join(BASELINES)})")


def baseline_settings(name: str, evaluation_config: Mapping[str, Any]) -> dict[str, Any]:
    """The part of the ``evaluation`` section that one baseline's results depend on."""
    settings = {"ks": list(evaluation_config["ks"]), "curve_max_k": int(evaluation_config["curve_max_k"])}
    if name == "visrank":
        settings["visrank"] = dict(evaluation_config["visrank"])
    elif name == "random":
        settings["random_seed"] = int(evaluation_config["random_seed"])
    return settings


def build_cases(
    items: pd.DataFrame,
    purchases: pd.DataFrame,
    split: str = "test",
    items_source: str = "items.parquet",
    purchases_source: str = "purchases.parquet",
) -> Cases:
    """The evaluation cases of ``split`` (the inventory replay of the protocol).

    The test split must have users; the validation split may have none (no user
    with three baskets), and then model selection falls back to the validation
    triples (see curatornet.models.train).
    """
    cases = replay_cases(items, purchases, split, items_source, purchases_source)
    if len(cases) == 0 and split == "test":
        raise InputError(purchases_source, "split", split, f"no {split} user has a basket item in the inventory")
    return cases


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
