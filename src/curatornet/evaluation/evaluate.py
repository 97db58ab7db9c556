"""Score every method on every test user and compute the metrics of Table 2.

Scoring is matrix work: each method scores a block of test users against all
items at once, then the block is masked to each user's candidates (the
inventory at that user's test instant) and the metrics are computed for the
whole block.
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

from curatornet.errors import InputError
from curatornet.evaluation import metrics
from curatornet.evaluation.protocol import TestCases, build_test_cases
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
KEY_COLUMNS = ("method", "sampling", "l2")
TOP_N = 10


def metric_columns(ks: Sequence[int]) -> list[str]:
    """The per-user metric columns in the order of per_user.parquet."""
    columns = ["auc"]
    for k in ks:
        columns += [f"recall@{k}", f"precision@{k}", f"ndcg@{k}"]
    return columns


@dataclass
class EvaluationResult:
    per_user: pd.DataFrame  # one row per (method run, test user)
    curves: pd.DataFrame  # mean Recall/Precision/nDCG at k = 1..curve_max_k per method run
    top: pd.DataFrame  # each run's top TOP_N per test user (for the example figure)
    seconds: dict[str, float] = field(default_factory=dict)


def _key(run: Mapping[str, Any]) -> dict[str, str]:
    return {
        "method": str(run["method"]),
        "sampling": str(run.get("sampling", "") or ""),
        "l2": str(run.get("l2", "") or ""),
    }


def _label(key: Mapping[str, str]) -> str:
    return "/".join(v for v in (key["method"], key["sampling"], key["l2"] and f"l2_{key['l2']}") if v)


def evaluate_methods(
    runs: Sequence[tuple[Mapping[str, Any], Scorer]],
    cases: TestCases,
    ks: Sequence[int] = (20, 100),
    curve_max_k: int = 200,
    top_n: int = TOP_N,
    block: int = 2048,
) -> EvaluationResult:
    """Evaluate each (key, scorer) on all test cases.

    ``key`` holds ``method`` and, for trained models, ``sampling`` and ``l2``.
    """
    ks = [int(k) for k in ks]
    depth = max([curve_max_k, top_n, *ks])
    all_items = np.arange(cases.n_items, dtype=np.int32)
    per_user_parts, curve_parts, top_parts, seconds = [], [], [], {}
    for run, scorer in runs:
        key = _key(run)
        label = _label(key)
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
            for k in ks:
                columns[f"recall@{k}"].append(curves["recall"][:, k - 1])
                columns[f"precision@{k}"].append(curves["precision"][:, k - 1])
                columns[f"ndcg@{k}"].append(curves["ndcg"][:, k - 1])
            for name, values in curves.items():
                curve_sums[name] += values[:, :curve_max_k].sum(axis=0)
            tops.append((ranking[:, :top_n], hit[:, :top_n]))
        n = len(cases)
        frame = pd.DataFrame({**key, "user": cases.users}, index=pd.RangeIndex(n))
        for column, parts in columns.items():
            frame[column] = np.concatenate(parts) if parts else np.zeros(0)
        frame["n_truth"] = np.array([len(t) for t in cases.truth], dtype=np.int32)
        frame["n_candidates"] = cases.n_candidates()
        per_user_parts.append(frame)
        curve_parts.append(
            pd.DataFrame(
                {
                    **key,
                    "k": np.arange(1, curve_max_k + 1, dtype=np.int32),
                    **{name: total / max(n, 1) for name, total in curve_sums.items()},
                }
            )
        )
        if tops:
            ranks = np.concatenate([r for r, _ in tops])
            hit_top = np.concatenate([h for _, h in tops])
            top_parts.append(
                pd.DataFrame(
                    {
                        **key,
                        "user": np.repeat(cases.users, top_n),
                        "rank": np.tile(np.arange(1, top_n + 1, dtype=np.int32), n),
                        "item": ranks.reshape(-1).astype(np.int32),
                        "hit": hit_top.reshape(-1),
                    }
                )
            )
        seconds[label] = time.perf_counter() - started
        log.info(
            "%s: %d users, mean AUC %.4f, scoring %.2f s, total %.2f s",
            label,
            n,
            float(np.nanmean(frame["auc"])) if n else float("nan"),
            score_time,
            seconds[label],
        )
    empty = pd.DataFrame(columns=[*KEY_COLUMNS, "user"])
    return EvaluationResult(
        per_user=pd.concat(per_user_parts, ignore_index=True) if per_user_parts else empty,
        curves=pd.concat(curve_parts, ignore_index=True) if curve_parts else empty,
        top=pd.concat(top_parts, ignore_index=True) if top_parts else empty,
        seconds=seconds,
    )


def summarise(per_user: pd.DataFrame, ks: Sequence[int] = (20, 100)) -> pd.DataFrame:
    """Table 2: mean metrics per method run, Oracle first, then by AUC, Random last."""
    columns = metric_columns(ks)
    grouped = per_user.groupby(list(KEY_COLUMNS), sort=False, dropna=False)
    table = grouped[columns].mean().reset_index()
    table["users"] = grouped.size().to_numpy()
    rank = table["method"].map({"oracle": 0, "random": 2}).fillna(1)
    table = table.assign(_rank=rank).sort_values(["_rank", "auc"], ascending=[True, False], kind="stable")
    renamed = {"auc": "AUC"}
    for k in ks:
        renamed.update({f"recall@{k}": f"R@{k}", f"precision@{k}": f"P@{k}", f"ndcg@{k}": f"nDCG@{k}"})
    out = pd.DataFrame(
        {
            "Method": table["method"].map(lambda m: DISPLAY_NAMES.get(m, m)),
            "sampling": table["sampling"],
            "λ": table["l2"],
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


def parse_model_dir(model_dir: str | Path) -> dict[str, str]:
    """results/models/{model}/{sampling}/l2_{l2} -> its key."""
    path = Path(model_dir)
    if path.name.startswith("seed_"):  # one run per seed: the key is the (model, sampling, λ) above it
        path = path.parent
    if not path.name.startswith("l2_") or len(path.parts) < 3:
        raise InputError(path, "model_dir", str(path), "expected .../{model}/{sampling}/l2_{l2}")
    return {"method": path.parent.parent.name, "sampling": path.parent.name, "l2": path.name[len("l2_") :]}


def build_runs(
    embeddings: np.ndarray,
    model_dirs: Sequence[str | Path],
    evaluation_config: Mapping[str, Any],
) -> list[tuple[dict[str, str], Scorer]]:
    """Every trained model run plus VisRank, Random and Oracle."""
    from curatornet.models.baselines import Oracle, RandomScorer, VisRank

    runs: list[tuple[dict[str, str], Scorer]] = []
    if model_dirs:
        from curatornet.models.registry import load_scorer  # imports TensorFlow: only when needed

        for model_dir in model_dirs:
            runs.append((parse_model_dir(model_dir), load_scorer(model_dir, embeddings)))
    visrank = evaluation_config.get("visrank", {})
    runs.append(({"method": "visrank"}, VisRank(embeddings, visrank.get("aggregate", "max"), visrank.get("top_k", 2))))
    runs.append(({"method": "random"}, RandomScorer(evaluation_config.get("random_seed", 7))))
    runs.append(({"method": "oracle"}, Oracle()))
    return runs


def run_evaluation(
    items: pd.DataFrame,
    embeddings: np.ndarray,
    purchases: pd.DataFrame,
    model_dirs: Sequence[str | Path],
    evaluation_config: Mapping[str, Any],
) -> tuple[EvaluationResult, pd.DataFrame, TestCases]:
    """The whole evaluation stage: test cases, all methods, Table 2."""
    if len(embeddings) != len(items):
        raise InputError(
            "embeddings.parquet", "item", len(embeddings), f"{len(items)} items but {len(embeddings)} embeddings"
        )
    cases = build_test_cases(items, purchases)
    if len(cases) == 0:
        raise InputError("purchases.parquet", "split", "test", "no test user has a ground-truth item in the inventory")
    ks = list(evaluation_config.get("ks", [20, 100]))
    runs = build_runs(embeddings, model_dirs, evaluation_config)
    result = evaluate_methods(runs, cases, ks, int(evaluation_config.get("curve_max_k", 200)))
    return result, summarise(result.per_user, ks), cases
