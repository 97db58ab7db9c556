"""Paired comparisons of per-user AUC (paper section 5.1, Figure 4).

Two runs are compared on the test users they share: a paired t-test
(scipy's ``ttest_rel``), the Wilcoxon signed-rank test, and the t-based 95%
confidence interval of the mean difference (first minus second).
The λ of each trained model is chosen on validation accuracy, never on test.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats as sps

from curatornet.errors import InputError

log = logging.getLogger(__name__)

SAMPLING_COLUMNS = [
    "model",
    "l2",
    "mean_auc_guidelines",
    "mean_auc_random",
    "n_users",
    "t",
    "p",
    "wilcoxon_p",
    "ci_low",
    "ci_high",
]
VISRANK_COLUMNS = [
    "model",
    "sampling",
    "l2",
    "mean_auc_model",
    "mean_auc_visrank",
    "n_users",
    "t",
    "p",
    "wilcoxon_p",
    "ci_low",
    "ci_high",
]
SELECTION_COLUMNS = ["model", "sampling", "l2", "valid_accuracy", "selected"]


def paired_test(a: np.ndarray, b: np.ndarray, confidence: float = 0.95) -> dict[str, float]:
    """Compare paired samples ``a`` and ``b`` (pairs with a NaN are left out)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired samples differ in length: {a.shape} vs {b.shape}")
    keep = ~(np.isnan(a) | np.isnan(b))
    a, b = a[keep], b[keep]
    n = len(a)
    out = {"mean_a": float(a.mean()) if n else math.nan, "mean_b": float(b.mean()) if n else math.nan, "n_users": n}
    out.update(t=math.nan, p=math.nan, wilcoxon_p=math.nan, ci_low=math.nan, ci_high=math.nan)
    if n < 2:
        return out
    diff = a - b
    mean = float(diff.mean())
    if np.all(diff == 0):
        # Identical runs: no evidence of a difference (scipy would return NaN).
        out.update(t=0.0, p=1.0, wilcoxon_p=1.0, ci_low=0.0, ci_high=0.0)
        return out
    t_result = sps.ttest_rel(a, b)
    out["t"], out["p"] = float(t_result.statistic), float(t_result.pvalue)
    out["wilcoxon_p"] = float(sps.wilcoxon(a, b).pvalue)
    half_width = sps.t.ppf(0.5 + confidence / 2, n - 1) * diff.std(ddof=1) / math.sqrt(n)
    out["ci_low"], out["ci_high"] = mean - half_width, mean + half_width
    return out


def read_valid_accuracy(model_dir: str | Path) -> float:
    """Best validation accuracy of a run: model.json's ``valid_accuracy``, else
    the maximum of history.csv's ``valid_accuracy``; NaN when neither says."""
    model_dir = Path(model_dir)
    meta_path = model_dir / "model.json"
    if meta_path.exists():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(meta_path, None, str(exc), "not valid JSON") from exc
        value = meta.get("valid_accuracy") if isinstance(meta, dict) else None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
    history_path = model_dir / "history.csv"
    if history_path.exists():
        history = pd.read_csv(history_path)
        if "valid_accuracy" in history.columns and history["valid_accuracy"].notna().any():
            return float(history["valid_accuracy"].max())
    return math.nan


def select_runs(model_dirs: Sequence[str | Path]) -> pd.DataFrame:
    """Every trained run with its validation accuracy; ``selected`` marks, per
    model, the guidelines run with the best validation accuracy and the random
    run it is compared with (same λ when trained, else the best random run)."""
    from curatornet.evaluation.evaluate import parse_model_dir

    rows = []
    for model_dir in model_dirs:
        key = parse_model_dir(model_dir)
        rows.append(
            {
                "model": key["method"],
                "sampling": key["sampling"],
                "l2": key["l2"],
                "valid_accuracy": read_valid_accuracy(model_dir),
            }
        )
    table = pd.DataFrame(rows, columns=SELECTION_COLUMNS[:-1])
    table["selected"] = False
    for model in table["model"].unique():
        best = {}
        for sampling in ("guidelines", "random"):
            runs = table[(table["model"] == model) & (table["sampling"] == sampling)]
            if len(runs):
                best[sampling] = runs["valid_accuracy"].fillna(-np.inf).idxmax()
        if len(best) < 2:
            continue
        chosen_l2 = table.loc[best["guidelines"], "l2"]
        same = table[(table["model"] == model) & (table["sampling"] == "random") & (table["l2"] == chosen_l2)]
        random_index = same.index[0] if len(same) else best["random"]
        table.loc[[best["guidelines"], random_index], "selected"] = True
    return table


def _auc_by_user(per_user: pd.DataFrame, method: str, sampling: str = "", l2: str = "") -> pd.Series:
    rows = per_user[(per_user["method"] == method) & (per_user["sampling"] == sampling) & (per_user["l2"] == l2)]
    return rows.set_index("user")["auc"]


def _compare(a: pd.Series, b: pd.Series) -> dict[str, float]:
    joined = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner")
    return paired_test(joined["a"].to_numpy(), joined["b"].to_numpy())


def sampling_ttests(per_user: pd.DataFrame, selection: pd.DataFrame) -> pd.DataFrame:
    """Guidelines vs random sampling per model, at the runs marked in ``selection``.

    ``l2`` is the λ of the guidelines run; when the random run was trained at
    another λ, it reads ``<guidelines λ>/<random λ>``.
    """
    rows = []
    for model in selection["model"].unique():
        chosen = selection[(selection["model"] == model) & selection["selected"]]
        if set(chosen["sampling"]) != {"guidelines", "random"}:
            continue
        g_l2 = chosen.loc[chosen["sampling"] == "guidelines", "l2"].iloc[0]
        r_l2 = chosen.loc[chosen["sampling"] == "random", "l2"].iloc[0]
        result = _compare(
            _auc_by_user(per_user, model, "guidelines", g_l2), _auc_by_user(per_user, model, "random", r_l2)
        )
        rows.append(
            {
                "model": model,
                "l2": g_l2 if g_l2 == r_l2 else f"{g_l2}/{r_l2}",
                "mean_auc_guidelines": result["mean_a"],
                "mean_auc_random": result["mean_b"],
                **{k: result[k] for k in ("n_users", "t", "p", "wilcoxon_p", "ci_low", "ci_high")},
            }
        )
        log.info("%s guidelines (l2 %s) vs random (l2 %s): %s", model, g_l2, r_l2, result)
    return pd.DataFrame(rows, columns=SAMPLING_COLUMNS)


def visrank_tests(per_user: pd.DataFrame) -> pd.DataFrame:
    """Every trained run against VisRank on per-user AUC."""
    visrank = _auc_by_user(per_user, "visrank")
    rows = []
    trained = per_user[~per_user["method"].isin(["visrank", "random", "oracle"])]
    for (method, sampling, l2), _ in trained.groupby(["method", "sampling", "l2"], sort=True):
        result = _compare(_auc_by_user(per_user, method, sampling, l2), visrank)
        rows.append(
            {
                "model": method,
                "sampling": sampling,
                "l2": l2,
                "mean_auc_model": result["mean_a"],
                "mean_auc_visrank": result["mean_b"],
                **{k: result[k] for k in ("n_users", "t", "p", "wilcoxon_p", "ci_low", "ci_high")},
            }
        )
    return pd.DataFrame(rows, columns=VISRANK_COLUMNS)
