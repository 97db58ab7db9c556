"""The final report: one self-contained, offline HTML page.

Everything is inlined (CSS, figures as base64 PNG) and the page names no
external address, so it can be mailed or archived as a single file. Every
number on it is read from the run's artifacts; the only constants are the
published UGallery statistics, shown for comparison.
"""

from __future__ import annotations

import base64
import html
import importlib.metadata
import json
import math
import os
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curatornet import parts

#: Statistics of the real UGallery transactions, as published in the data
#: folder's README (../shared/ugallery/README.md, "Statistics" and "How the
#: paper's Table 2 was evaluated") or computed from its files (the validation
#: split and the artist-loyalty shares); names follow curatornet.data.stats.
#: tests/test_report.py checks them against the real files when present.
UGALLERY_REFERENCE_SOURCE = (
    "UGallery transactions (valid_sales.csv, valid_artworks.csv) as described in the README of the "
    "shared UGallery folder; the paper reports 2,378 users, 6,040 items and 5,336 purchases for the "
    "one-of-a-kind subset."
)
UGALLERY_REFERENCE: dict[str, float | str] = {
    "purchase_rows": 6535,
    "users": 2919,
    "purchased_items": 6030,
    "inventory_items": 7742,
    "artists": 735,
    "artists_purchased": 685,
    "items_per_artist_mean": 10.5,
    "items_per_artist_median": 5,
    "items_per_artist_max": 182,
    "artists_single_item": 155,
    "one_of_a_kind_items": 6040,
    "one_of_a_kind_item_share": 0.780,
    "one_of_a_kind_purchase_rows": 5336,
    "one_of_a_kind_purchase_share": 0.817,
    "one_of_a_kind_sold_more_than_once": 0,
    "other_items_sold_more_than_once": 272,
    "baskets": 4897,
    **{f"basket_size_{k}": v for k, v in zip(range(1, 11), (4013, 526, 199, 73, 34, 22, 9, 7, 7, 2))},
    "basket_size_max": 21,
    **{f"baskets_per_user_{k}": v for k, v in zip(range(1, 11), (2191, 390, 147, 81, 40, 25, 9, 4, 8, 4))},
    "baskets_per_user_max": 212,
    **{f"items_per_user_{k}": v for k, v in zip(range(1, 11), (1856, 468, 212, 131, 78, 51, 25, 18, 16, 12))},
    "items_per_user_max": 271,
    "users_with_test_basket": 728,
    "users_with_valid_basket": 338,
    "first_sale": "2014-01-01",
    "last_sale": "2018-05-31",
    "first_upload": "2007-01-01",
    "last_upload": "2018-06-01",
    "median_basket_gap_days": 40,
    "median_upload_to_sale_days": 144,
    # Artist loyalty: same-artist share of item pairs inside one basket and across a user's
    # whole history, and the share of items in later baskets by an artist bought from before.
    "same_artist_pair_share_basket": 0.288,
    "same_artist_pair_share_user": 0.0682,
    "later_basket_known_artist_share": 0.317,
    # The evaluation protocol on the same files.
    "test_users": 728,
    "mean_ground_truth": 1.3104,
    "median_inventory": 2233,
}

PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "matplotlib", "snakemake", "jinja2")
TENSORFLOW_DISTRIBUTIONS = ("tensorflow", "tensorflow-cpu")

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;max-width:1150px;margin:2em auto;
  padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #bbb}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:right}th{background:#eee}
td.text,th.text{text-align:left}td.top{font-weight:bold;background:#fff3c4}
figure{margin:1.5em 0}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.9em;color:#444}pre{background:#f6f6f6;padding:1em;overflow-x:auto;font-size:.85em}
.note{color:#555;font-size:.9em}nav a{margin-right:1em}
"""


@dataclass
class Figure:
    key: str  # anchor name
    title: str
    png: Path
    caption: str


@dataclass
class ReportInputs:
    table2: pd.DataFrame  # stats.table2 on the test baskets (every run, selected λ marked)
    table2_valid: pd.DataFrame  # the same on the validation baskets
    selection: pd.DataFrame  # stats.select_runs: validation AUC per (model, sampling, λ)
    runs: pd.DataFrame  # stats.read_runs: every training run (seed) with its stopping
    sampling_tests: pd.DataFrame  # stats.sampling_tests
    verdict_tests: pd.DataFrame  # stats.verdict_tests
    reference_tests: pd.DataFrame  # stats.reference_tests: every trained run vs the reference baseline
    segments: pd.DataFrame  # stats.segments
    per_user: pd.DataFrame  # the test users of one run (protocol figures)
    data_stats: pd.DataFrame | None  # results/data/stats.csv (statistic, value)
    config: Mapping[str, Any]
    figures: Sequence[Figure]
    benchmarks: pd.DataFrame  # from read_benchmarks()
    versions: Mapping[str, str] = field(default_factory=dict)
    ablation: pd.DataFrame | None = None  # stats.ablation_tests of the guidelines left out (config ablation)
    ablation_pooling: pd.DataFrame | None = None  # the same of the poolings


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 4, fixed: bool = False) -> str:
    """Numbers as in Table 2 (.7204); integers plainly; missing as an en dash.

    ``fixed``: always ``digits`` decimals (metric columns: 1.0000, .0006)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA or value == "":
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)) and fixed:
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("0.") else text.replace("-0.", "-.")
    if isinstance(value, (float, np.floating)):
        if float(value).is_integer():
            return f"{int(value):,}"
        if abs(value) < 1e-3 and value != 0:
            return f"{value:.2e}"
        text = f"{value:.{digits}f}"
        return text[1:] if text.startswith("0.") else text.replace("-0.", "-.")
    return str(value)


def fmt_p(p: float) -> str:
    if p is None or math.isnan(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def rst_to_text(text: str) -> str:
    """Plain text of a short reStructuredText caption (markup characters removed)."""
    text = re.sub(r"``([^`]*)``", r"\1", text)
    text = re.sub(r":\w+:`([^`]*)`", r"\1", text)
    text = re.sub(r"`([^`]*)`_?", r"\1", text)
    text = re.sub(r"\*\*([^*]*)\*\*|\*([^*]*)\*", lambda m: m.group(1) or m.group(2), text)
    return " ".join(text.split())


def software_versions() -> dict[str, str]:
    """Versions of Python and the packages, from installed metadata (no heavy imports)."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["tensorflow"] = "not installed"
    for name in TENSORFLOW_DISTRIBUTIONS:
        try:
            versions["tensorflow"] = f"{importlib.metadata.version(name)} ({name})"
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def read_benchmarks(files: Sequence[str | Path], root: str | Path | None = None) -> pd.DataFrame:
    """Snakemake benchmark files (``root/<stage>/...tsv``): one row per job with its
    stage, seconds and peak memory (MB). ``root`` defaults to the files' common
    folder. Unreadable files are left out."""
    if not files:
        return pd.DataFrame(columns=["stage", "job", "seconds", "max_rss_mb"])
    root = Path(root if root is not None else os.path.commonpath([Path(f).parent for f in files]))
    rows = []
    for path in sorted(Path(f) for f in files):
        try:
            frame = pd.read_csv(path, sep="\t")
        except (FileNotFoundError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        if "s" not in frame.columns or frame.empty:
            continue
        relative = path.relative_to(root) if path.is_relative_to(root) else Path(path.name)
        rss = pd.to_numeric(frame.get("max_rss", pd.Series([np.nan])), errors="coerce")
        rows.append(
            {
                "stage": relative.parts[0] if len(relative.parts) > 1 else "(top)",
                "job": str(relative.with_suffix("")),
                "seconds": float(pd.to_numeric(frame["s"], errors="coerce").mean()),
                "max_rss_mb": float(rss.max()) if rss.notna().any() else math.nan,
            }
        )
    return pd.DataFrame(rows, columns=["stage", "job", "seconds", "max_rss_mb"])


def _table(
    frame: pd.DataFrame,
    text_columns: Sequence[str] = (),
    highlight: Mapping[str, set[int]] | None = None,
    fixed_columns: Sequence[str] = (),
) -> str:
    head = "".join(f'<th class="{"text" if c in text_columns else ""}">{esc(c)}</th>' for c in frame.columns)
    body = []
    for position, (_, row) in enumerate(frame.iterrows()):
        cells = []
        for column in frame.columns:
            classes = []
            if column in text_columns:
                classes.append("text")
            if highlight and position in highlight.get(column, set()):
                classes.append("top")
            value = row[column]
            shown = esc(value) if column in text_columns else esc(fmt(value, fixed=column in fixed_columns))
            cells.append(f'<td class="{" ".join(classes)}">{shown}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def top_five(summary: pd.DataFrame, columns: Sequence[str], n: int = 5) -> dict[str, set[int]]:
    """Row positions of the n best values per column (ties with the n-th included)."""
    marks = {}
    for column in columns:
        values = pd.to_numeric(summary[column], errors="coerce").to_numpy(dtype=float)
        finite = values[~np.isnan(values)]
        if not len(finite):
            continue
        threshold = np.sort(finite)[::-1][min(n, len(finite)) - 1]
        marks[column] = set(np.flatnonzero(values >= threshold).tolist())
    return marks


def _protocol_numbers(per_user: pd.DataFrame) -> dict[str, float]:
    test = per_user[per_user["split"] == "test"] if "split" in per_user.columns else per_user
    one_run = test.drop_duplicates("user")
    return {
        "test_users": float(len(one_run)),
        "mean_ground_truth": float(one_run["n_truth"].mean()) if len(one_run) else math.nan,
        "median_inventory": float(one_run["n_candidates"].median()) if len(one_run) else math.nan,
    }


def _dataset_section(inputs: ReportInputs) -> str:
    dataset = inputs.config.get("dataset", {})
    if dataset.get("format") == "ugallery":
        source = f"the UGallery-layout files read from {dataset.get('path')}"
    else:
        synthetic = dataset.get("synthetic", {})
        source = (
            f"a generated UGallery-like data set (preset {synthetic.get('preset', 'default')}, "
            f"scale {synthetic.get('scale', 1.0)}, seed {inputs.config.get('seed')})"
        )
    embeddings = dataset.get("embeddings", "synthetic")
    emb_text = (
        "made-up embeddings (generator's style model)" if embeddings == "synthetic" else f"embeddings from {embeddings}"
    )
    run_stats: dict[str, Any] = {}
    if inputs.data_stats is not None and len(inputs.data_stats):
        run_stats = dict(zip(inputs.data_stats["statistic"].astype(str), inputs.data_stats["value"]))
    for key, value in _protocol_numbers(inputs.per_user).items():
        run_stats.setdefault(key, value)
    names = list(run_stats) + [k for k in UGALLERY_REFERENCE if k not in run_stats]
    rows = []
    for name in names:
        value = run_stats.get(name, "")
        number = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
        rows.append(
            {
                "statistic": name,
                "this run": value if pd.isna(number) else float(number),
                "UGallery": UGALLERY_REFERENCE.get(name, ""),
            }
        )
    table = pd.DataFrame(rows, columns=["statistic", "this run", "UGallery"])
    return (
        f"<p>Source: {esc(source)}; {esc(emb_text)}.</p>"
        f'<p class="note">UGallery column: {esc(UGALLERY_REFERENCE_SOURCE)} '
        "The last three rows come from the evaluation protocol "
        "(test users, mean ground-truth size, median inventory).</p>" + _table(table, text_columns=("statistic",))
    )


#: Published figures the run is compared with: Table 2 and section 5.1 of the paper
#: (CuratorNet, Messina et al.), all trained with the guidelines.
PAPER_AUC = {"curatornet": 0.7204, "visrank": 0.7151, "vbpr": 0.6641, "random": 0.4973}
#: Section 5.1: AUC with guidelines vs random sampling, and the paired t-test's p.
PAPER_SAMPLING = {"curatornet": (0.7204, 0.6602, 7.7e-5), "vbpr": (0.6641, 0.5899, 1.6e-6)}
SIGNIFICANCE = 0.05

#: A method's name in tables ('CuratorNet'), and a metric column's ('R@20'): from the registries.
display_name = parts.display_name
metric_label = parts.metric_label


def selected_rows(table2: pd.DataFrame) -> pd.DataFrame:
    """Table 2 restricted to the λ selected on validation (sampling guidelines) and the baselines."""
    keep = table2["selected"] & table2["sampling"].isin(["", "guidelines"])
    return table2[keep].reset_index(drop=True)


def _table2_html(table2: pd.DataFrame, compact: bool) -> str:
    """Table 2 as HTML: the paper's columns, the seed spread, the selected λ marked with ✓."""
    metric = parts.metric_columns_in(table2.columns)
    shown = pd.DataFrame(
        {
            "Method": table2["method"].map(display_name),
            "sampling": table2["sampling"].replace("", "–"),
            "λ": [(lam or "–") + (" ✓" if sel and lam else "") for lam, sel in zip(table2["l2"], table2["selected"])],
        }
    )
    for column in metric:
        shown[metric_label(column)] = table2[column].to_numpy()
        if column == "auc":
            spread = [
                "–" if seeds <= 1 or not lam else f"{fmt(low, fixed=True)}–{fmt(high, fixed=True)}"
                for seeds, lam, low, high in zip(table2["seeds"], table2["l2"], table2["auc_min"], table2["auc_max"])
            ]
            shown["AUC over seeds"] = spread
            if "refit" in table2.columns and table2["refit"].any():
                shown["AUC before refit"] = [
                    fmt(before, fixed=True) if refit else "–"
                    for refit, before in zip(table2["refit"], table2["auc_before_refit"])
                ]
    if not compact:
        shown["seeds"] = table2["seeds"].to_numpy()
    shown["users"] = table2["users"].to_numpy()
    numeric = [metric_label(c) for c in metric]
    if compact:
        # Few rows: mark the best method of each column (an upper bound aside: the Oracle is perfect by construction).
        others = shown[~table2["method"].map(parts.is_upper_bound).to_numpy(dtype=bool)]
        highlight = {column: {int(others.index[others[column].argmax()])} for column in numeric if len(others)}
    else:
        highlight = top_five(shown, numeric)
    return _table(
        shown,
        text_columns=("Method", "sampling", "λ", "AUC over seeds", "AUC before refit"),
        highlight=highlight,
        fixed_columns=numeric,
    )


def _ordering(table: pd.DataFrame) -> list[str]:
    """Methods of the compared set (CuratorNet, VisRank, VBPR, Random) by AUC, best first."""
    rows = table[table["method"].isin(PAPER_AUC)]
    return rows.sort_values("auc", ascending=False)["method"].tolist()


def _test_phrase(row: Any) -> str:
    """'higher by .0123 (95% CI [.0050, .0196], d_z = 0.21; t-test p = 1.2e-03, Holm 3.6e-03; Wilcoxon …)'."""
    direction = "higher" if row.mean_diff > 0 else "lower"
    return (
        f"{direction} by {fmt(abs(row.mean_diff), fixed=True)} (95% CI of the difference "
        f"[{fmt(row.ci_low, fixed=True)}, {fmt(row.ci_high, fixed=True)}], d<sub>z</sub> = {row.d_z:.2f}; "
        f"paired t-test p = {fmt_p(row.p)}, Holm-adjusted {fmt_p(row.p_holm)}; Wilcoxon p = {fmt_p(row.wilcoxon_p)}; "
        f"{int(row.n_users):,} users)"
    )


def _significant(row: Any) -> bool:
    return bool(row.p_holm < SIGNIFICANCE) if not pd.isna(row.p_holm) else False


def _within_seed_range(row: Any) -> bool | None:
    """The stats table's ``within_seed_range`` as read back from CSV (True, False or unknown)."""
    value = getattr(row, "within_seed_range", None)
    if isinstance(value, str):
        value = {"true": True, "false": False}.get(value.strip().lower())
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else bool(value)


def _seed_range_text(name: str, trained: bool, seeds: Any, low: Any, high: Any) -> str:
    """'CuratorNet .5910–.6290 over 3 seeds' (or 'VisRank .6270 (no seed)' for a baseline)."""
    seeds = 0 if pd.isna(seeds) else int(seeds)
    if not trained:
        return f"{esc(name)} {fmt(low, fixed=True)} (no seed)"
    if seeds > 1:
        return f"{esc(name)} {fmt(low, fixed=True)}–{fmt(high, fixed=True)} over {seeds} seeds"
    return f"{esc(name)} {fmt(low, fixed=True)} (one seed)"


def _seed_phrase(row: Any, a: tuple[str, bool], b: tuple[str, bool]) -> str:
    """What the seeds say about a comparison of ``a`` and ``b`` (display name, trained?): the per-seed
    ranges, and whether the difference lies within them."""
    ranges = (
        f"per-seed mean test AUC: {_seed_range_text(*a, row.seeds_a, row.auc_a_min, row.auc_a_max)}; "
        f"{_seed_range_text(*b, row.seeds_b, row.auc_b_min, row.auc_b_max)}"
    )
    within = _within_seed_range(row)
    if within is None:
        return (
            f" Seeds: {ranges}. <b>One seed</b>: how far another seed would move this difference is unknown "
            "(set <code>training.seeds</code> to three or more)."
        )
    if within:
        return (
            f" Seeds: {ranges}. The difference ({fmt(abs(row.mean_diff), fixed=True)}) lies <b>within the seed "
            f"range</b> ({fmt(row.seed_range, fixed=True)}): another draw of seeds could reverse it."
        )
    return (
        f" Seeds: {ranges}. The difference ({fmt(abs(row.mean_diff), fixed=True)}) is larger than the seed "
        f"range ({fmt(row.seed_range, fixed=True)})."
    )


def _verdicts(inputs: ReportInputs) -> tuple[str, str]:
    """(HTML list of the verdicts with their tests, a one-paragraph reading)."""
    chosen = selected_rows(inputs.table2)
    ours = _ordering(chosen)
    paper = sorted(PAPER_AUC, key=PAPER_AUC.get, reverse=True)
    same_order = [m for m in paper if m in ours] == ours
    unsettled = [
        f"{display_name(row.a)} vs {display_name(row.b)}"
        for row in inputs.verdict_tests.itertuples(index=False)
        if _within_seed_range(row)
    ]
    items = [
        f"<li><b>Ordering (Table 2).</b> At the λ selected on validation, this run ranks "
        f"{esc(' > '.join(display_name(m) for m in ours))} by mean test AUC (averaged over seeds); the paper ranks "
        f"{esc(' > '.join(display_name(m) for m in paper))}. "
        + ("The ordering <b>is reproduced</b>." if same_order else "The ordering is <b>not</b> reproduced.")
        + (
            f" Not settled by these seeds: {esc(', '.join(unsettled))} differ by less than the seed range."
            if unsettled
            else ""
        )
        + "</li>"
    ]
    for row in inputs.verdict_tests.itertuples(index=False):
        verdict = "significant" if _significant(row) else "not significant"
        items.append(
            f"<li>{esc(display_name(row.a))} (λ {esc(row.l2_a or '–')}) vs {esc(display_name(row.b))}"
            f"{f' (λ {esc(row.l2_b)})' if row.l2_b else ''}: AUC {_test_phrase(row)}: <b>{verdict}</b> "
            f"after Holm's adjustment over these {len(inputs.verdict_tests)} comparisons."
            + _seed_phrase(
                row,
                (display_name(row.a), not parts.is_baseline(row.a)),
                (display_name(row.b), not parts.is_baseline(row.b)),
            )
            + "</li>"
        )
    sampling_sentences = []
    for row in inputs.sampling_tests.itertuples(index=False):
        helps = row.mean_diff > 0 and _significant(row)
        paper_g, paper_r, paper_p = PAPER_SAMPLING.get(row.model, (math.nan, math.nan, math.nan))
        name = display_name(row.model)
        items.append(
            f"<li><b>Sampling guidelines vs random sampling, {esc(name)}</b> "
            f"(λ {esc(row.l2_guidelines)} vs {esc(row.l2_random)}, each selected on validation): mean test AUC "
            f"{fmt(row.mean_a, fixed=True)} vs {fmt(row.mean_b, fixed=True)}, {_test_phrase(row)}. "
            f"The paper (section 5.1): {fmt(paper_g, fixed=True)} vs {fmt(paper_r, fixed=True)}, "
            f"p = {fmt_p(paper_p)}. "
            + ("The improvement <b>is reproduced</b>." if helps else "The improvement is <b>not</b> reproduced.")
            + _seed_phrase(row, (f"{name} guidelines", True), (f"{name} random", True))
            + "</li>"
        )
        sampling_sentences.append(f"the guidelines {'help' if helps else 'do not significantly help'} {name}")
    if inputs.sampling_tests.empty:
        items.append("<li>No model was trained with both sampling schemes: no guidelines-vs-random comparison.</li>")
    stops = inputs.runs["stop_reason"].value_counts()
    seeds = sorted(inputs.runs["seed"].unique()) if len(inputs.runs) else []
    reading = (
        f"<p><b>Reading.</b> Every λ and every kept check was chosen on the validation baskets (the last training "
        f"basket of users with at least three), never on the test. With that choice, "
        f"{esc(' > '.join(display_name(m) for m in ours))} is this run's order by test AUC, "
        + ("as in the paper" if same_order else "which differs from the paper's")
        + (f"; {'; '.join(sampling_sentences)}" if sampling_sentences else "")
        + ". "
        + _seeds_sentence(len(seeds), unsettled)
        + _stopping_sentence(stops, len(inputs.runs))
        + _data_caveat(inputs.config)
        + "</p>"
    )
    return "<ul>" + "".join(items) + "</ul>", reading


def refit_sentence(table2: pd.DataFrame) -> str:
    """What the report says about refit (training.refit), or nothing when the selected runs were not refit."""
    if "refit" not in table2.columns or not table2["refit"].any():
        return ""
    refit = table2[table2["refit"]]
    changes = refit["auc"] - refit["auc_before_refit"]
    return (
        "<p><b>Refit.</b> Once λ was selected on the validation baskets, each selected (model, sampling, λ) was "
        "trained once more per seed on every purchase before the test baskets, the validation baskets included "
        "(<code>training.refit</code>): new triples drawn from those purchases, the kept run's number of steps "
        "scaled to the larger set, no checks and no early stopping. Table 2, the verdicts, the paired tests, the "
        "figures and the batch recommendations use these refit models; <i>AUC before refit</i> is the selected "
        f"run's test AUC as validation kept it. Refit changed the test AUC by {fmt(changes.min(), fixed=True)} to "
        f"{fmt(changes.max(), fixed=True)} over the {len(refit)} refit runs.</p>"
    )


def guidelines_answer(ablation: pd.DataFrame, alpha: float = 0.05) -> str:
    """The one-sentence answer to "which guidelines matter" from the ablation table."""
    if ablation is None or ablation.empty:
        return "The guideline ablation did not run."
    worse = ablation[(ablation["p_holm"] < alpha) & (ablation["mean_diff"] < 0)].sort_values("mean_diff")
    better = ablation[(ablation["p_holm"] < alpha) & (ablation["mean_diff"] > 0)].sort_values("mean_diff")

    def listed(rows: pd.DataFrame) -> str:
        return ", ".join(
            f"{row.left_out} ({fmt(row.mean_diff, fixed=True)}, Holm p = {fmt_p(row.p_holm)})"
            for row in rows.itertuples(index=False)
        )

    if worse.empty and better.empty:
        largest = ablation.loc[ablation["mean_diff"].abs().idxmax()]
        return (
            "No single guideline matters on its own here: with the set kept at the full set's size, leaving any one "
            f"out changes the test AUC by at most {fmt(abs(largest['mean_diff']), fixed=True)} "
            f"({largest['left_out']}), and no change is significant after Holm's adjustment over the "
            f"{len(ablation)} guidelines."
        )
    text = ""
    if not worse.empty:
        matter = "it matters" if len(worse) == 1 else "they matter"
        text = f"Leaving out {listed(worse)} significantly lowers the test AUC, so {matter}"
    if not better.empty:
        text += ("; leaving out " if text else "Leaving out ") + f"{listed(better)} significantly raises it"
    rest = len(ablation) - len(worse) - len(better)
    return text + (f"; the other {rest} make no significant difference." if rest else ".")


def _ablation_section(inputs: ReportInputs) -> str:
    """The section "Which guidelines matter" (config ablation), or nothing when the ablation did not run."""
    if inputs.ablation is None:
        return ""
    text = ("set", "left_out", "pooling")
    html = (
        '<h2 id="ablation">Which guidelines matter</h2>'
        f"<p><b>{esc(guidelines_answer(inputs.ablation))}</b></p>"
        "<p>The model was trained at the λ selected for it with the guidelines, with every seed, on triplet sets "
        "that each leave one guideline out and are as large as the full set (the other guidelines fill the budget "
        "from their shards and one headroom shard each: the full set is never resampled). Each variant is compared "
        "with the full set's selected runs before refit, which were trained the same way (on the training baskets, "
        "stopped on the validation baskets): the mean per-user difference of the test AUC (variant minus full set), "
        "paired t-test, Wilcoxon and Holm's adjustment over the guidelines.</p>"
        + _ablation_seeds_caveat(inputs.config)
        + _table(inputs.ablation, text_columns=text)
    )
    if inputs.ablation_pooling is not None and len(inputs.ablation_pooling):
        html += (
            "<h3>Profile pooling</h3><p>The same model on the full set with another pooling of the profile's item "
            "vectors than the paper's mean and max concatenated; Holm's adjustment over the poolings.</p>"
            + _table(inputs.ablation_pooling, text_columns=text)
        )
    return html


def _ablation_seeds_caveat(config: Mapping[str, Any]) -> str:
    """With one seed both sides of every ablation test are one training draw each: the tests cover the users,
    not the training noise (other triples of the same budgets move a run by about as much as these differences)."""
    seeds = len(config.get("training", {}).get("seeds", []))
    if seeds > 1:
        return f"<p>Both sides average each user's AUC over the {seeds} seeds.</p>"
    return (
        "<p><b>One seed:</b> each side is one training run, and the tests cover the test users, not the "
        "training noise; other triples of the same budgets alone can move a run by a few hundredths. Run "
        "several seeds (<code>training.seeds</code>) before reading a guideline's effect from this table.</p>"
    )


def _seeds_sentence(seeds: int, unsettled: Sequence[str]) -> str:
    if seeds <= 1:
        return (
            "Each trained method ran with <b>one seed</b>: on small logs a single seed can decide a verdict, so "
            "read these as one draw. "
        )
    text = f"Each trained method ran with {seeds} seeds; the tests read each user's AUC averaged over them. "
    if unsettled:
        text += f"{esc('; '.join(unsettled))}: the difference lies within the seed range. "
    return text


def _stopping_sentence(stops: pd.Series, runs: int) -> str:
    patience = int(stops.get("patience", 0))
    text = (
        f"{patience} of {runs} training runs stopped because the smoothed validation AUC stopped improving after "
        "the minimum number of steps"
    )
    others = {str(reason): int(count) for reason, count in stops.items() if reason != "patience"}
    if others:
        text += "; " + ", ".join(f"{count} for {reason.replace('_', ' ')}" for reason, count in others.items())
    return text + " (see the training runs table). "


def _data_caveat(config: Mapping[str, Any]) -> str:
    dataset = config.get("dataset", {})
    if dataset.get("embeddings", "synthetic") == "synthetic":
        return (
            "The embeddings are generated, not the paper's ResNet50 features: they fix the purchase statistics, not "
            "how informative real images are, so absolute numbers are not the paper's."
        )
    return ""


def _paper_comparison(inputs: ReportInputs) -> str:
    chosen = selected_rows(inputs.table2).set_index("method")
    rows = pd.DataFrame(
        {
            "method": [display_name(m) for m in PAPER_AUC],
            "paper AUC": list(PAPER_AUC.values()),
            "this run (selected λ)": [
                float(chosen.loc[m, "auc"]) if m in chosen.index else math.nan for m in PAPER_AUC
            ],
        }
    )
    return _table(rows, text_columns=("method",), fixed_columns=("paper AUC", "this run (selected λ)"))


def _selection_section(inputs: ReportInputs) -> str:
    selection = inputs.selection.copy()
    selection.insert(0, "method", selection.pop("model").map(display_name))
    runs = inputs.runs.copy()
    runs.insert(0, "method", runs.pop("model").map(display_name))
    return (
        "<p>Validation AUC: the mean AUC over the validation baskets, scored like the test baskets at their own "
        "instant, of each run's kept check, averaged over seeds. Per model and sampling the λ with the highest "
        "value is selected (✓ in Table 2).</p>"
        + _table(selection, text_columns=("method", "sampling", "l2"))
        + "<h3>Every training run: the kept check, the steps run and why training stopped</h3>"
        + "<p>A check scores the validation baskets every few Adam steps; no check before <i>min_steps</i> may be "
        "kept, stop training or decay the learning rate, and stopping and the kept check follow the validation "
        "AUC smoothed over the last checks (<code>training.smoothing</code>).</p>"
        + _table(runs, text_columns=("method", "sampling", "l2", "monitor", "stop_reason"))
    )


def _tests_section(inputs: ReportInputs) -> str:
    def named(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        out = frame.copy()
        for column in columns:
            if column in out.columns:
                out[column] = out[column].map(display_name)
        return out

    text = ("model", "sampling", "l2", "reference", "a", "b", "l2_a", "l2_b", "l2_guidelines", "l2_random")
    references = " and ".join(display_name(r) for r in parts.reference_baselines()) or "a reference baseline"
    return (
        "<p>Per-user AUC, each user's AUC averaged over seeds first; differences are the first minus the second. "
        "p_holm: Holm–Bonferroni adjusted within each table's family.</p>"
        "<h3>Table 2's ordering at the selected λ</h3>"
        + _table(named(inputs.verdict_tests, ("a", "b")), text_columns=text)
        + "<h3>Guidelines vs random sampling</h3>"
        + _table(named(inputs.sampling_tests, ("model",)), text_columns=text)
        + f"<h3>Every trained run vs {esc(references)}</h3>"
        + _table(named(inputs.reference_tests, ("model", "reference")), text_columns=text)
    )


def _segments_section(segments: pd.DataFrame) -> str:
    if segments.empty:
        return "<p>No segments.</p>"
    frame = segments.copy()
    frame.insert(3, "Method", frame.pop("method").map(display_name))
    frame = frame.rename(columns={c: metric_label(c) for c in parts.metric_columns_in(frame.columns)})
    sections = []
    for split in ("test", "valid"):
        part = frame[frame["split"] == split].drop(columns="split")
        if len(part):
            title = "Test users" if split == "test" else "Validation users"
            numeric = [c for c in part.columns if c not in ("segment", "Method", "sampling", "l2", "users")]
            sections.append(
                f"<h3>{title}</h3>"
                + _table(part, text_columns=("segment", "Method", "sampling", "l2"), fixed_columns=numeric)
            )
    return (
        "<p>Users by their number of distinct training items (1, 2–4, 5 or more): the selected runs and the "
        "baselines.</p>" + "".join(sections)
    )


def _figure(figure: Figure) -> str:
    data = base64.b64encode(Path(figure.png).read_bytes()).decode("ascii")
    return (
        f'<figure id="{esc(figure.key)}"><h3>{esc(figure.title)}</h3>'
        f'<img alt="{esc(figure.title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
    )


def _runtime_section(benchmarks: pd.DataFrame) -> str:
    if benchmarks.empty:
        return "<p>No benchmark files were found.</p>"
    per_stage = (
        benchmarks.groupby("stage", sort=False)
        .agg(
            jobs=("job", "size"),
            seconds=("seconds", "sum"),
            longest_job_s=("seconds", "max"),
            max_rss_mb=("max_rss_mb", "max"),
        )
        .reset_index()
    )
    total = benchmarks["seconds"].sum()
    return (
        f"<p>Sum of the benchmarked jobs' wall times: {total:,.1f} s (jobs may have run in parallel).</p>"
        + _table(per_stage, text_columns=("stage",))
        + "<details><summary>Every job</summary>"
        + _table(benchmarks, text_columns=("stage", "job"))
        + "</details>"
    )


def _yaml(config: Mapping[str, Any]) -> str:
    import yaml  # installed with snakemake

    plain = json.loads(json.dumps(config, default=str))
    return yaml.safe_dump(plain, sort_keys=False, allow_unicode=True)


def _methods_sentence(table2: pd.DataFrame) -> str:
    """'CuratorNet, VBPR, VisRank, Random, Oracle and MostPopular': the models, then the baselines, as
    registered, that this run evaluated."""
    evaluated = set(table2["method"])
    names = [display_name(m) for m in (*parts.model_names(), *parts.baseline_names()) if m in evaluated]
    return ", ".join(names[:-1]) + f" and {names[-1]}" if len(names) > 1 else "".join(names)


def build_report(inputs: ReportInputs) -> str:
    """The report as one HTML string: the answer first, then figures, then the details."""
    verdicts, reading = _verdicts(inputs)
    versions = inputs.versions or software_versions()
    version_table = pd.DataFrame({"software": list(versions), "version": list(versions.values())})
    figures = "".join(_figure(f) for f in inputs.figures)
    nav = " ".join(
        f'<a href="#{key}">{label}</a>'
        for key, label in (
            ("answer", "The answer"),
            ("figures", "Figures"),
            ("table2-all", "Every run"),
            ("selection", "Model selection"),
            ("tests", "Paired tests"),
            ("segments", "User segments"),
            *([("ablation", "Which guidelines matter")] if inputs.ablation is not None else []),
            ("paper", "Beside the paper"),
            ("runtime", "Run times"),
            ("data", "Data set"),
            ("config", "Configuration"),
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CuratorNet reproduction report</title>
<style>{CSS}</style></head><body>
<h1>CuratorNet reproduction report</h1>
<p>Visually-aware recommendation of art images: {esc(_methods_sentence(inputs.table2))} evaluated with the
inventory replay protocol of the paper's Table 2. Every number below was computed by this run.</p>
<nav>{nav}</nav>
<h2 id="answer">The answer</h2>
<h3>Table 2 at the λ selected on validation</h3>
<p>Mean over the test users (and over seeds: the AUC's range over seeds beside it); sorted by AUC with the Oracle
first and Random last; the best method of each column (the Oracle aside) highlighted. MRR is the reciprocal rank of
the first ground-truth item in the whole ranking. nDCG (paper) is the form the paper's code computed (DCG over the
ideal DCG of the number of hits), for a like-for-like comparison with the paper.</p>
{refit_sentence(inputs.table2)}
{_table2_html(selected_rows(inputs.table2), compact=True)}
<h3>Verdicts</h3>{verdicts}{reading}
<h2 id="figures">Figures</h2>{figures}
<h2 id="table2-all">Table 2: every run</h2>
<p>Every λ trained (✓: selected on validation; its row is the refit model when the run was refit), test
users.</p>{_table2_html(inputs.table2, compact=False)}
<details><summary>The same on the validation baskets</summary>{_table2_html(inputs.table2_valid, compact=False)}
</details>
<h2 id="selection">Model selection</h2>{_selection_section(inputs)}
<h2 id="tests">Paired tests</h2>{_tests_section(inputs)}
<h2 id="segments">User segments</h2>{_segments_section(inputs.segments)}
{_ablation_section(inputs)}
<h2 id="paper">Beside the paper</h2>{_paper_comparison(inputs)}
<h2 id="runtime">Run times per stage</h2>{_runtime_section(inputs.benchmarks)}
<h2 id="data">Data set</h2><details><summary>Statistics of this run's data set beside UGallery's</summary>
{_dataset_section(inputs)}</details>
<h2 id="config">Configuration</h2><details><summary>The run's configuration</summary>
<pre>{esc(_yaml(inputs.config))}</pre></details>
<details><summary>Software versions</summary>{_table(version_table, text_columns=("software", "version"))}</details>
</body></html>
"""
