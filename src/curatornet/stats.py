"""Model selection on the validation baskets, Table 2, and the paired tests a reviewer expects.

- **Selection** reads only the validation baskets: per (model, sampling) the λ
  with the highest validation AUC (mean over seeds) is *selected*; the test
  set never chooses anything.
- **Table 2**: every run's mean metrics (every metric of the metric table,
  :mod:`curatornet.parts`) on the test baskets, as the mean over seeds of the
  per-seed means, with the spread (min and max of the per-seed means of the
  AUC) and a mark on the selected λ.
- **Paired tests** compare two methods on the users they share, each user's
  AUC averaged over seeds first: paired t-test (scipy's ``ttest_rel``),
  Wilcoxon signed-rank, the mean paired difference with its t-based 95%
  confidence interval, and Cohen's d_z (mean difference / its standard
  deviation). Within a family of tests the p-values are also given
  Holm–Bonferroni adjusted.
- **Segments**: the same metrics for users with 1, 2–4 and 5 or more
  training items.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from curatornet import parts
from curatornet.artifacts import l2_label
from curatornet.errors import InputError
from curatornet.evaluation.evaluate import order_rows

log = logging.getLogger(__name__)

#: Columns that identify a method run (baselines have empty sampling and l2).
RUN_KEY = ["method", "sampling", "l2"]
#: What every paired comparison reports, after the names of the two sides.
TEST_COLUMNS = ["n_users", "mean_a", "mean_b", "mean_diff", "ci_low", "ci_high", "d_z", "t", "p", "wilcoxon_p"]
RUN_COLUMNS = [
    "model",
    "sampling",
    "l2",
    "seed",
    "valid_auc",
    "valid_accuracy",
    "monitor",
    "best_step",
    "min_steps",
    "steps_run",
    "best_check",
    "checks_run",
    "stop_reason",
]
SELECTION_COLUMNS = [
    "model",
    "sampling",
    "l2",
    "seeds",
    "valid_auc",
    "valid_auc_min",
    "valid_auc_max",
    "selected",
    "best_seed",
]
#: Training items per user that make the segments (lower bounds; the last is open).
SEGMENTS = ((1, 1, "1"), (2, 4, "2-4"), (5, None, "5+"))


# --------------------------------------------------------------------------- tests


def holm(pvalues: Iterable[float]) -> np.ndarray:
    """Holm–Bonferroni adjusted p-values (same order; NaN stays NaN and is not counted).

    Sorted ascending, the i-th smallest of m p-values is multiplied by
    (m − i + 1), a running maximum keeps the order, and values are capped at 1.
    """
    p = np.asarray(list(pvalues), dtype=np.float64)
    out = np.full(len(p), np.nan)
    valid = np.flatnonzero(~np.isnan(p))
    m = len(valid)
    if m == 0:
        return out
    order = valid[np.argsort(p[valid], kind="stable")]
    adjusted = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out[order] = np.minimum(adjusted, 1.0)
    return out


def paired_test(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Compare paired samples ``a`` and ``b`` (pairs with a NaN are left out); differences are a − b."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    out = dict.fromkeys(TEST_COLUMNS, math.nan)
    out.update(n_users=n, mean_a=float(a.mean()) if n else math.nan, mean_b=float(b.mean()) if n else math.nan)
    if n == 0:
        return out
    diff = a - b
    out["mean_diff"] = float(diff.mean())
    if n < 2:
        return out
    if np.all(diff == 0):
        # Identical runs: no evidence of a difference (scipy would return NaN).
        out.update(t=0.0, p=1.0, wilcoxon_p=1.0, ci_low=0.0, ci_high=0.0, d_z=0.0)
        return out
    t_result = sps.ttest_rel(a, b)
    out["t"], out["p"] = float(t_result.statistic), float(t_result.pvalue)
    out["wilcoxon_p"] = float(sps.wilcoxon(a, b).pvalue)
    spread = diff.std(ddof=1)
    half_width = sps.t.ppf(0.5 + confidence / 2, n - 1) * spread / math.sqrt(n)
    out["ci_low"], out["ci_high"] = out["mean_diff"] - half_width, out["mean_diff"] + half_width
    out["d_z"] = out["mean_diff"] / spread if spread > 0 else math.nan
    return out


# --------------------------------------------------------------------------- runs and selection


def read_run(model_dir: str | Path) -> dict[str, object]:
    """One training run's selection figures from its model.json."""
    path = Path(model_dir) / "model.json"
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(path, None, str(path), "model directory has no model.json") from exc
    except json.JSONDecodeError as exc:
        raise InputError(path, None, str(exc), "not valid JSON") from exc
    missing = [k for k in ("model", "sampling", "l2", "seed", "best_check") if k not in meta]
    if missing:
        raise InputError(path, missing[0], sorted(meta), "model.json lacks what selection needs")

    def number(key: str) -> float:
        value = meta.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else math.nan

    return {
        "model": meta["model"],
        "sampling": meta["sampling"],
        "l2": l2_label(float(meta["l2"])),
        "seed": int(meta["seed"]),
        "valid_auc": number("valid_auc"),
        "valid_accuracy": number("valid_accuracy"),
        "monitor": meta.get("monitor", "valid_auc"),
        "best_step": int(meta.get("best_step", 0)),
        "min_steps": int(meta.get("min_steps", 0)),
        "steps_run": int(meta.get("steps_run", 0)),
        "best_check": int(meta["best_check"]),
        "checks_run": int(meta.get("checks_run", 0)),
        "stop_reason": meta.get("stop_reason", ""),
    }


def read_runs(model_dirs: Sequence[str | Path]) -> pd.DataFrame:
    return pd.DataFrame([read_run(d) for d in model_dirs], columns=RUN_COLUMNS)


def select_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (model, sampling, λ): the validation AUC over seeds; ``selected`` marks the best λ.

    The figure is each run's ``valid_auc`` (its kept check's mean AUC on the
    validation baskets), averaged over seeds. Runs that had no validation
    baskets selected on validation pairwise accuracy instead, and so does this.
    ``best_seed`` is the seed with the highest figure, the one to serve.
    """
    rows = []
    for (model, sampling, l2), group in runs.groupby(["model", "sampling", "l2"], sort=True):
        figure = group["valid_auc"] if group["valid_auc"].notna().any() else group["valid_accuracy"]
        best = group.loc[figure.fillna(-np.inf).idxmax()]
        rows.append(
            {
                "model": model,
                "sampling": sampling,
                "l2": l2,
                "seeds": len(group),
                "valid_auc": float(figure.mean()),
                "valid_auc_min": float(figure.min()),
                "valid_auc_max": float(figure.max()),
                "selected": False,
                "best_seed": int(best["seed"]),
            }
        )
    table = pd.DataFrame(rows, columns=SELECTION_COLUMNS)
    for _, group in table.groupby(["model", "sampling"], sort=False):
        table.loc[group["valid_auc"].fillna(-np.inf).idxmax(), "selected"] = True
    return table


def selected_l2_among(model_dirs: Sequence[str | Path], model: str, sampling: str) -> str | None:
    """The λ label :func:`select_runs` chooses for (model, sampling) from these runs alone (every λ and
    seed of that model and sampling): what a job that needs one selection reads, so that it reruns
    only when those runs change, not when another model's do."""
    return selected_l2(select_runs(read_runs(model_dirs)), model, sampling)


def selected_l2(selection: pd.DataFrame, model: str, sampling: str) -> str | None:
    """The λ label chosen on validation for (model, sampling), or None when not trained."""
    rows = selection[(selection["model"] == model) & (selection["sampling"] == sampling) & selection["selected"]]
    return str(rows["l2"].iloc[0]) if len(rows) else None


def serving_run(selection: pd.DataFrame, model: str) -> dict[str, str]:
    """The run of ``model`` a store should serve: the (sampling, λ) with the best validation
    AUC among the model's selected runs, at its best seed (keys: sampling, l2, seed)."""
    rows = selection[(selection["model"] == model) & selection["selected"]]
    if rows.empty:
        raise InputError("selection.csv", "model", model, "no trained run of this model to serve")
    best = rows.loc[rows["valid_auc"].fillna(-np.inf).idxmax()]
    return {"sampling": str(best["sampling"]), "l2": str(best["l2"]), "seed": str(int(best["best_seed"]))}


# --------------------------------------------------------------------------- Table 2


def metric_columns(per_user: pd.DataFrame) -> list[str]:
    """The per-user metric columns of an evaluation frame (every registered metric it holds), AUC first."""
    return parts.metric_columns_in(per_user.columns)


def _is_baseline(methods: pd.Series) -> pd.Series:
    return methods.map(parts.is_baseline).astype(bool)


def seed_average(per_user: pd.DataFrame) -> pd.DataFrame:
    """Each user's metrics averaged over the seeds of a run (baselines have one 'seed')."""
    columns = metric_columns(per_user)
    keys = [*RUN_KEY, "split", "user"]
    extra = [c for c in ("n_truth", "n_candidates", "train_items") if c in per_user.columns]
    grouped = per_user.groupby(keys, sort=False, dropna=False)
    out = grouped[columns].mean()
    if extra:
        out = out.join(grouped[extra].first())
    return out.reset_index()


def table2(
    per_user: pd.DataFrame, selection: pd.DataFrame, split: str = "test", before_refit: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Mean metrics of every run on ``split``: mean over seeds of the per-seed means, with the AUC's spread.

    Rows: an upper bound (the Oracle) first, then by AUC, a lower bound (Random)
    last. ``selected`` is True for the λ chosen on validation (and for the
    baselines, which have no λ). ``before_refit``: the per-user rows that refit
    models replaced in ``per_user`` (``training.refit``); their runs are marked
    ``refit`` and ``auc_before_refit`` gives the AUC the run had before (the
    same seeds' mean); NaN for every other row.
    """
    frame = per_user[per_user["split"] == split]
    columns = metric_columns(frame)
    per_seed = frame.groupby([*RUN_KEY, "seed"], sort=False, dropna=False)[columns].mean()
    users = frame.groupby(RUN_KEY, sort=False, dropna=False)["user"].nunique()
    grouped = per_seed.groupby(level=RUN_KEY, sort=False, dropna=False)
    table = grouped.mean()
    table["auc_min"] = grouped["auc"].min()
    table["auc_max"] = grouped["auc"].max()
    table["seeds"] = grouped.size()
    table["users"] = users
    table = table.reset_index()
    chosen = {(r.model, r.sampling, r.l2) for r in selection.itertuples() if r.selected}
    table["selected"] = [
        parts.is_baseline(m) or (m, s, lam) in chosen
        for m, s, lam in zip(table["method"], table["sampling"], table["l2"])
    ]
    before = pd.Series(dtype=np.float64)
    if before_refit is not None and len(before_refit):
        old = before_refit[before_refit["split"] == split]
        before = old.groupby([*RUN_KEY, "seed"], sort=False)["auc"].mean().groupby(level=RUN_KEY).mean()
    keys = pd.MultiIndex.from_frame(table[RUN_KEY])
    table["refit"] = keys.isin(before.index) if len(before) else False
    table["auc_before_refit"] = before.reindex(keys).to_numpy() if len(before) else np.nan
    table = order_rows(table)
    ordered = [*RUN_KEY, "selected", "refit", "seeds", "users", "auc", "auc_before_refit", "auc_min", "auc_max"]
    return table[ordered + columns[1:]].reset_index(drop=True)


# --------------------------------------------------------------------------- paired tests


def _auc_by_user(averaged: pd.DataFrame, method: str, sampling: str = "", l2: str = "") -> pd.Series:
    rows = averaged[(averaged["method"] == method) & (averaged["sampling"] == sampling) & (averaged["l2"] == l2)]
    return rows.set_index("user")["auc"]


def compare(averaged: pd.DataFrame, a: tuple[str, str, str], b: tuple[str, str, str]) -> dict[str, float]:
    """Paired test of run ``a`` against run ``b`` (keys: method, sampling, l2) on their shared users."""
    joined = pd.concat(
        [_auc_by_user(averaged, *a).rename("a"), _auc_by_user(averaged, *b).rename("b")], axis=1, join="inner"
    )
    return paired_test(joined["a"].to_numpy(), joined["b"].to_numpy())


def _family(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)
    if len(table):
        table["p_holm"] = holm(table["p"])
    return table


#: What the seed-spread columns add to a comparison of two runs: each side's seeds and the range of its
#: per-seed mean AUC, the larger of the two ranges, and whether the difference lies within it.
SEED_COLUMNS = [
    "seeds_a",
    "auc_a_min",
    "auc_a_max",
    "seeds_b",
    "auc_b_min",
    "auc_b_max",
    "seed_range",
    "within_seed_range",
]


def seed_spread(table2: pd.DataFrame, a: tuple[str, str, str], b: tuple[str, str, str], diff: float) -> dict:
    """The seed-spread columns of ``a`` vs ``b`` from Table 2's per-seed AUC range (baselines have none).

    ``within_seed_range`` is True when the difference of the seed-averaged AUCs is no larger than the
    wider side's range of per-seed means, so another draw of seeds could reverse it; None when neither
    side has more than one seed, since one seed says nothing about the spread.
    """

    def side(key: tuple[str, str, str]) -> tuple[int, float, float]:
        rows = table2[(table2["method"] == key[0]) & (table2["sampling"] == key[1]) & (table2["l2"] == key[2])]
        if rows.empty:
            return 0, math.nan, math.nan
        row = rows.iloc[0]
        return int(row["seeds"]), float(row["auc_min"]), float(row["auc_max"])

    (n_a, lo_a, hi_a), (n_b, lo_b, hi_b) = side(a), side(b)
    ranges = [hi - lo for n, lo, hi, key in ((n_a, lo_a, hi_a, a), (n_b, lo_b, hi_b, b)) if n > 1 and key[1]]
    spread = max(ranges) if ranges else math.nan
    within = None if not ranges or math.isnan(diff) else bool(abs(diff) <= spread)
    return dict(
        seeds_a=n_a,
        auc_a_min=lo_a,
        auc_a_max=hi_a,
        seeds_b=n_b,
        auc_b_min=lo_b,
        auc_b_max=hi_b,
        seed_range=spread,
        within_seed_range=within,
    )


def sampling_tests(averaged: pd.DataFrame, selection: pd.DataFrame, table2: pd.DataFrame) -> pd.DataFrame:
    """Guidelines vs random sampling per model, each at its λ selected on validation (section 5.1)."""
    rows = []
    for model in sorted(selection["model"].unique()):
        l2_g, l2_r = selected_l2(selection, model, "guidelines"), selected_l2(selection, model, "random")
        if l2_g is None or l2_r is None:
            continue
        a, b = (model, "guidelines", l2_g), (model, "random", l2_r)
        result = compare(averaged, a, b)
        rows.append(
            {"model": model, "l2_guidelines": l2_g, "l2_random": l2_r, **result}
            | seed_spread(table2, a, b, result["mean_diff"])
        )
        log.info("%s guidelines (λ %s) vs random (λ %s): %s", model, l2_g, l2_r, result)
    columns = ["model", "l2_guidelines", "l2_random", *TEST_COLUMNS, "p_holm", *SEED_COLUMNS]
    return _family(rows).reindex(columns=columns)


def reference_tests(averaged: pd.DataFrame) -> pd.DataFrame:
    """Every trained run against each reference baseline (VisRank); Holm's adjustment over this whole family."""
    rows = []
    trained = averaged[~_is_baseline(averaged["method"])]
    for reference in parts.reference_baselines():
        for (method, sampling, l2), _ in trained.groupby(RUN_KEY, sort=True):
            result = compare(averaged, (method, sampling, l2), (reference, "", ""))
            rows.append({"model": method, "sampling": sampling, "l2": l2, "reference": reference, **result})
    columns = ["model", "sampling", "l2", "reference", *TEST_COLUMNS, "p_holm"]
    return _family(rows).reindex(columns=columns)


def verdict_pairs(models: Sequence[str], references: Sequence[str]) -> list[tuple[str, str]]:
    """The comparisons behind the verdicts: every model against every reference baseline, then every
    two models (in registry order)."""
    pairs = [(m, r) for m in models for r in references]
    return pairs + [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]


def verdict_tests(averaged: pd.DataFrame, selection: pd.DataFrame, table2: pd.DataFrame) -> pd.DataFrame:
    """The comparisons behind the report's verdict on Table 2's ordering, at the selected λ.

    Every registered model trained with sampling guidelines (as in Table 2)
    against the reference baseline (VisRank) and against each other model;
    Holm's adjustment over these comparisons. Each row also carries both sides'
    per-seed AUC range (``table2``: Table 2 of the same split) and whether the
    difference lies within it.
    """
    runs = {reference: (reference, "", "") for reference in parts.reference_baselines()}
    models = []
    for model in parts.model_names():
        l2 = selected_l2(selection, model, "guidelines")
        if l2 is not None:
            runs[model] = (model, "guidelines", l2)
            models.append(model)
    rows = []
    for a, b in verdict_pairs(models, parts.reference_baselines()):
        result = compare(averaged, runs[a], runs[b])
        rows.append(
            {"a": a, "l2_a": runs[a][2], "b": b, "l2_b": runs[b][2], **result}
            | seed_spread(table2, runs[a], runs[b], result["mean_diff"])
        )
    return _family(rows).reindex(columns=["a", "l2_a", "b", "l2_b", *TEST_COLUMNS, "p_holm", *SEED_COLUMNS])


# --------------------------------------------------------------------------- segments


def segment_of(train_items: np.ndarray) -> np.ndarray:
    """The segment label ('1', '2-4', '5+') of each count of training items ('0' for none)."""
    counts = np.asarray(train_items)
    labels = np.full(len(counts), "0", dtype=object)
    for low, high, label in SEGMENTS:
        inside = (counts >= low) if high is None else ((counts >= low) & (counts <= high))
        labels[inside] = label
    return labels


def segments(averaged: pd.DataFrame, selection: pd.DataFrame) -> pd.DataFrame:
    """Mean metrics per split, user segment and method (the selected runs and the baselines)."""
    chosen = {(r.model, r.sampling, r.l2) for r in selection.itertuples() if r.selected}
    keep = _is_baseline(averaged["method"]) | pd.Series(
        [k in chosen for k in zip(averaged["method"], averaged["sampling"], averaged["l2"])], index=averaged.index
    )
    frame = averaged[keep].assign(segment=segment_of(averaged.loc[keep, "train_items"]))
    columns = metric_columns(frame)
    grouped = frame.groupby(["split", "segment", *RUN_KEY], sort=True, dropna=False)
    table = grouped[columns].mean()
    table.insert(0, "users", grouped.size())
    return table.reset_index()


# --------------------------------------------------------------------------- ablation

#: results/stats/ablation.csv (one row per guideline left out) and ablation_pooling.csv (one per pooling).
ABLATION_TEST_COLUMNS = ["n_triples", "auc", "mean_diff", "ci_low", "ci_high", "d_z", "p", "wilcoxon_p", "p_holm"]
ABLATION_COLUMNS = ["set", "left_out", *ABLATION_TEST_COLUMNS]
POOLING_COLUMNS = ["set", "pooling", *ABLATION_TEST_COLUMNS]


def _seed_mean_auc(per_user: pd.DataFrame) -> float:
    """Mean over seeds of the per-seed mean AUC (Table 2's figure)."""
    return float(per_user.groupby("seed")["auc"].mean().mean()) if len(per_user) else math.nan


def ablation_tests(
    full: pd.DataFrame, variants: pd.DataFrame, sets: pd.DataFrame, column: str, columns: Sequence[str]
) -> pd.DataFrame:
    """Each ablation variant against the full set on the test baskets; Holm's adjustment over the table.

    ``full``: per-user test rows (``user``, ``seed``, ``auc``) of the full set's runs, every seed;
    ``variants``: the same of every variant, its name in ``sampling``; ``sets``: one row per variant
    (``set``, ``column`` (what it changes: the guideline left out, or the pooling), ``n_triples``), in
    the table's order. ``auc`` is the variant's mean over seeds of the per-seed mean test AUC; the paired
    tests (:func:`paired_test`) compare each user's AUC averaged over seeds, variant minus full set.
    """
    full_by_user = full.groupby("user")["auc"].mean()
    rows = []
    for spec in sets.itertuples(index=False):
        own = variants[variants["sampling"] == spec.set]
        joined = pd.concat(
            [own.groupby("user")["auc"].mean().rename("a"), full_by_user.rename("b")], axis=1, join="inner"
        )
        result = paired_test(joined["a"].to_numpy(), joined["b"].to_numpy())
        rows.append(
            {
                "set": spec.set,
                column: getattr(spec, column),
                "n_triples": int(spec.n_triples),
                "auc": _seed_mean_auc(own),
            }
            | {key: result[key] for key in ("mean_diff", "ci_low", "ci_high", "d_z", "p", "wilcoxon_p")}
        )
    return _family(rows).reindex(columns=list(columns))
