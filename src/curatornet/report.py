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
import platform
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from curatornet.evaluation.evaluate import DISPLAY_NAMES

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
    summary: pd.DataFrame  # Table 2 (summary.csv)
    per_user: pd.DataFrame
    sampling_ttest: pd.DataFrame
    vs_visrank: pd.DataFrame
    selection: pd.DataFrame
    data_stats: pd.DataFrame | None  # results/data/stats.csv (statistic, value)
    config: Mapping[str, Any]
    figures: Sequence[Figure]
    benchmarks: pd.DataFrame  # from read_benchmarks()
    versions: Mapping[str, str] = field(default_factory=dict)


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


def read_benchmarks(root: str | Path) -> pd.DataFrame:
    """Snakemake benchmark files under ``root`` (root/<stage>/**/*.tsv):
    one row per job with its stage, seconds and peak memory (MB)."""
    root = Path(root)
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        try:
            frame = pd.read_csv(path, sep="\t")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            continue
        if "s" not in frame.columns or frame.empty:
            continue
        relative = path.relative_to(root)
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
    one_run = per_user.drop_duplicates("user")
    return {
        "test_users": float(len(one_run)),
        "mean_ground_truth": float(one_run["n_truth"].mean()) if len(one_run) else math.nan,
        "median_inventory": float(one_run["n_candidates"].median()) if len(one_run) else math.nan,
    }


def _dataset_section(inputs: ReportInputs) -> str:
    dataset = inputs.config.get("dataset", {})
    if dataset.get("format") == "ugallery":
        source = f"the real UGallery transactions read from {dataset.get('path')}"
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
    run_stats: dict[str, str] = {}
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


def _ttest_sentences(inputs: ReportInputs) -> str:
    parts = []
    for row in inputs.sampling_ttest.itertuples(index=False):
        l2_g, _, l2_r = str(row.l2).partition("/")
        l2_r = l2_r or l2_g
        diff = row.mean_auc_guidelines - row.mean_auc_random
        verdict = "significant" if row.p < 0.05 else "not significant"
        direction = "higher" if diff > 0 else "lower"
        parts.append(
            f"<li><b>{esc(DISPLAY_NAMES.get(row.model, row.model))}</b>: with the sampling guidelines "
            f"(λ = {esc(l2_g)}) the mean AUC over "
            f"{int(row.n_users):,} test users is {fmt(row.mean_auc_guidelines)}, "
            f"with random sampling (λ = {esc(l2_r)}) "
            f"{fmt(row.mean_auc_random)}: the guidelines are {direction} by {fmt(abs(diff))} "
            f"(95% CI of the difference [{fmt(row.ci_low)}, {fmt(row.ci_high)}]); paired t = {row.t:.3f}, "
            f"p = {fmt_p(row.p)} ({verdict} at the 5% level); Wilcoxon signed-rank p = {fmt_p(row.wilcoxon_p)}.</li>"
        )
    if not parts:
        parts.append("<li>No model was trained with both sampling schemes, so there is no comparison.</li>")
    selection = inputs.selection.copy()
    return (
        "<p>λ is chosen on validation accuracy (never on the test users): per model, the guidelines run with the best "
        "validation pairwise accuracy, compared with the random-sampling run at the same λ when one was trained, "
        "otherwise "
        "with the best random-sampling run.</p><ul>"
        + "".join(parts)
        + "</ul>"
        + "<h3>Numbers: guidelines vs random sampling</h3>"
        + _table(inputs.sampling_ttest, text_columns=("model", "l2"))
        + "<h3>Validation accuracy of every run (selected: used above)</h3>"
        + _table(selection, text_columns=("model", "sampling", "l2"))
        + "<h3>Every trained run vs VisRank (per-user AUC, model minus VisRank)</h3>"
        + _table(inputs.vs_visrank, text_columns=("model", "sampling", "l2"))
    )


#: Published figures the run is compared with: Table 2 and section 5.1 of the paper
#: (CuratorNet, Messina et al.), best λ per model, all trained with the guidelines.
PAPER_AUC = {"CuratorNet": 0.7204, "VisRank": 0.7151, "VBPR": 0.6641, "Random": 0.4973}
#: Section 5.1: AUC with guidelines vs random sampling, and the paired t-test's p.
PAPER_SAMPLING = {"curatornet": (0.7204, 0.6602, 7.7e-5), "vbpr": (0.6641, 0.5899, 1.6e-6)}


def _best_auc_by_method(summary: pd.DataFrame) -> dict[str, float]:
    """Best AUC of each method in this run (trained models: guideline runs only, as in Table 2)."""
    frame = summary.copy()
    sampling = frame["sampling"].fillna("").astype(str)
    frame = frame[sampling.isin(["", "guidelines", "nan", "–"])]
    best = frame.groupby("Method")["AUC"].max()
    return {method: float(best[method]) for method in PAPER_AUC if method in best.index}


def _paper_comparison(inputs: ReportInputs) -> str:
    ours = _best_auc_by_method(inputs.summary)
    paper_order = sorted(PAPER_AUC, key=PAPER_AUC.get, reverse=True)
    our_order = sorted(ours, key=ours.get, reverse=True)
    rows = pd.DataFrame(
        {
            "method": list(PAPER_AUC),
            "paper AUC": list(PAPER_AUC.values()),
            "this run (best AUC)": [ours.get(m, math.nan) for m in PAPER_AUC],
        }
    )
    same = [m for m in paper_order if m in ours] == our_order
    verdict = "reproduces the paper's ordering" if same else "does <b>not</b> reproduce the paper's ordering"
    sentences = [
        f"<p>By best AUC this run ranks {esc(' > '.join(our_order))}; the paper ranks "
        f"{esc(' > '.join(paper_order))}. The run {verdict}.</p>"
    ]
    for row in inputs.sampling_ttest.itertuples(index=False):
        if row.model not in PAPER_SAMPLING:
            continue
        guided, random_auc, p_value = PAPER_SAMPLING[row.model]
        agrees = (row.mean_auc_guidelines > row.mean_auc_random) and row.p < 0.05
        sentences.append(
            f"<p>{esc(DISPLAY_NAMES.get(row.model, row.model))}: the paper reports guidelines {fmt(guided)} vs random "
            f"{fmt(random_auc)} (p = {fmt_p(p_value)}); this run {fmt(row.mean_auc_guidelines)} vs "
            f"{fmt(row.mean_auc_random)} (p = {fmt_p(row.p)}), "
            + (
                "the same significant improvement."
                if agrees
                else "which does <b>not</b> show the paper's significant improvement."
            )
            + "</p>"
        )
    note = (
        "<p>Absolute values are not comparable when the embeddings are generated rather than the real ResNet50 "
        "features: the generated data set fixes the purchase statistics, not how informative the images are.</p>"
    )
    return (
        "".join(sentences)
        + _table(rows, text_columns=("method",), fixed_columns=("paper AUC", "this run (best AUC)"))
        + note
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


def build_report(inputs: ReportInputs) -> str:
    """The report as one HTML string."""
    metric_columns = [c for c in inputs.summary.columns if c not in ("Method", "sampling", "λ", "users")]
    summary = inputs.summary.copy()
    for column in ("sampling", "λ"):
        summary[column] = summary[column].fillna("").astype(str).replace({"": "–", "nan": "–"})
    table2 = _table(
        summary,
        text_columns=("Method", "sampling", "λ"),
        highlight=top_five(summary, metric_columns),
        fixed_columns=metric_columns,
    )
    versions = inputs.versions or software_versions()
    version_table = pd.DataFrame({"software": list(versions), "version": list(versions.values())})
    figures = "".join(_figure(f) for f in inputs.figures)
    nav = " ".join(
        f'<a href="#{key}">{label}</a>'
        for key, label in (
            ("data", "Data set"),
            ("config", "Configuration"),
            ("table2", "Table 2"),
            ("paper", "Beside the paper"),
            ("tests", "t-tests"),
            ("figures", "Figures"),
            ("runtime", "Run times"),
            ("software", "Software"),
        )
    )
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>CuratorNet reproduction report</title>
<style>{CSS}</style></head><body>
<h1>CuratorNet reproduction report</h1>
<p>Visually-aware recommendation of art images: CuratorNet, VBPR, VisRank, Random and Oracle evaluated with the
inventory replay protocol of the paper's Table 2. Every number below was computed by this run.</p>
<nav>{nav}</nav>
<h2 id="data">Data set</h2>{_dataset_section(inputs)}
<h2 id="config">Configuration</h2><pre>{esc(_yaml(inputs.config))}</pre>
<h2 id="table2">Table 2: results for all methods</h2>
<p>Mean over test users, sorted by AUC with the Oracle first and Random last; the five best values of each metric column
are highlighted. λ is the L2 regularisation; sampling is the triple sampling a model was trained on.</p>{table2}
<h2 id="paper">Beside the paper</h2>{_paper_comparison(inputs)}
<h2 id="tests">Guidelines vs random sampling: paired tests</h2>{_ttest_sentences(inputs)}
<h2 id="figures">Figures</h2>{figures}
<h2 id="runtime">Run times per stage</h2>{_runtime_section(inputs.benchmarks)}
<h2 id="software">Software versions</h2>{_table(version_table, text_columns=("software", "version"))}
</body></html>
"""
