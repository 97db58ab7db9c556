"""The validation figure that model selection reads: mean AUC over the validation baskets.

The validation baskets are scored exactly like the test baskets (same
inventory replay, same AUC), at their own instant, so the number that picks
the epoch and λ measures what the test measures, on baskets the models never
trained on and that the test never sees.
"""

from __future__ import annotations

import math

import numpy as np

from curatornet.evaluation import metrics
from curatornet.evaluation.protocol import Cases
from curatornet.models.base import Queries, Scorer


def per_user_auc(scorer: Scorer, cases: Cases, block: int = 1024) -> np.ndarray:
    """AUC of every case's user (NaN where a user has no other candidate)."""
    all_items = np.arange(cases.n_items, dtype=np.int32)
    parts = []
    for start in range(0, len(cases), block):
        rows = slice(start, min(start + block, len(cases)))
        queries = Queries(cases.users[rows], cases.profiles[rows], cases.truth[rows], cases.times[rows])
        scores = np.asarray(scorer.score(queries, all_items))
        parts.append(metrics.auc(scores, cases.candidate_mask(rows), cases.truth_mask(rows)))
    return np.concatenate(parts) if parts else np.zeros(0)


def mean_auc(scorer: Scorer, cases: Cases) -> float:
    """Mean AUC over the cases' users; NaN when there are none."""
    if len(cases) == 0:
        return math.nan
    values = per_user_auc(scorer, cases)
    return float(np.nanmean(values)) if np.isfinite(values).any() else math.nan
