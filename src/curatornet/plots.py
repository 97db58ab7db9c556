"""The figures of the report (matplotlib, Agg backend), each written as PNG and SVG.

Every function takes ready data frames and two output paths; files are written
atomically. Nothing here computes results: the figures only draw artifacts of
earlier stages.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.patches import Rectangle
from scipy import stats as sps

from curatornet import parts
from curatornet.errors import InputError
from curatornet.io import atomic_path, read_frame

# No display in jobs: draw off-screen (pyplot picks its backend at the first figure, so this still counts).
matplotlib.use("Agg")
#: Matplotlib writes SVG text as text (searchable, small) and no timestamp.
plt.rcParams.update({"svg.fonttype": "none", "svg.hashsalt": __package__, "figure.dpi": 100})


def save_figure(fig: plt.Figure, png: str | Path, svg: str | Path) -> None:
    """Write ``fig`` to both paths atomically and close it."""
    for path, fmt in ((png, "png"), (svg, "svg")):
        with atomic_path(path) as tmp:
            fig.savefig(
                tmp, format=fmt, dpi=120, bbox_inches="tight", metadata={"Date": None} if fmt == "svg" else None
            )
    plt.close(fig)


def run_label(method: str, sampling: str = "", l2: str = "") -> str:
    """'CuratorNet (guidelines, λ=0.001)' or 'VisRank'."""
    name = parts.display_name(method)
    details = [d for d in (sampling, f"λ={l2}" if l2 else "") if d]
    return f"{name} ({', '.join(details)})" if details else name


#: 60 distinct colours for clusters (they repeat beyond 60; labels name the cluster).
_CLUSTER_PALETTE = np.array(
    plt.get_cmap("tab20").colors + plt.get_cmap("tab20b").colors + plt.get_cmap("tab20c").colors
)


def cluster_colour(cluster: np.ndarray | int) -> np.ndarray:
    return _CLUSTER_PALETTE[np.asarray(cluster) % len(_CLUSTER_PALETTE)]


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()


# (1) Figure 3: visual clusters on the 2-D map ---------------------------------
def plot_clusters(cluster_items: pd.DataFrame, png, svg) -> None:
    fig, ax = plt.subplots(figsize=(8, 7))
    clusters = cluster_items["cluster"].to_numpy()
    x, y = cluster_items["x"].to_numpy(), cluster_items["y"].to_numpy()
    ax.scatter(x, y, c=cluster_colour(clusters), s=4, linewidths=0, rasterized=True)
    # Label each cluster at its median position so that groups can be told apart.
    for cluster, group in cluster_items.groupby("cluster"):
        ax.text(group["x"].median(), group["y"].median(), str(cluster), fontsize=6, ha="center", va="center", alpha=0.8)
    ax.set_title(f"{len(cluster_items):,} items in {len(np.unique(clusters))} visual clusters (2-D map)")
    ax.set_xticks([])
    ax.set_yticks([])
    save_figure(fig, png, svg)


# (2) Figure 4: AUC with guidelines vs random sampling -------------------------
def _mean_ci(values: np.ndarray) -> tuple[float, float]:
    values = values[~np.isnan(values)]
    if len(values) < 2:
        return (float(values.mean()) if len(values) else math.nan, 0.0)
    return float(values.mean()), float(sps.t.ppf(0.975, len(values) - 1) * sps.sem(values))


def plot_sampling_auc(sampling_tests: pd.DataFrame, per_user: pd.DataFrame, png, svg) -> None:
    """Bars of the mean test AUC (users' AUC averaged over seeds) at the λ selected on validation."""
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if sampling_tests.empty:
        _empty(ax, "no model was trained with both guidelines and random sampling")
        save_figure(fig, png, svg)
        return
    test = per_user[per_user["split"] == "test"] if "split" in per_user.columns else per_user
    by_user = test.groupby(["method", "sampling", "l2", "user"], sort=False)["auc"].mean().reset_index()
    width = 0.38
    for position, row in enumerate(sampling_tests.itertuples(index=False)):
        tops = []
        for offset, sampling, l2, colour in (
            (-width / 2, "guidelines", row.l2_guidelines, "tab:blue"),
            (width / 2, "random", row.l2_random, "tab:orange"),
        ):
            mask = (by_user["method"] == row.model) & (by_user["sampling"] == sampling) & (by_user["l2"] == l2)
            mean, half = _mean_ci(by_user.loc[mask, "auc"].to_numpy(dtype=float))
            ax.bar(
                position + offset,
                mean,
                width,
                yerr=half,
                capsize=4,
                color=colour,
                label=sampling if position == 0 else None,
            )
            ax.text(position + offset, 0.02, f"λ={l2}\n{mean:.4f}", ha="center", va="bottom", fontsize=7, color="white")
            tops.append(mean + half)
        ax.text(position, max(tops) + 0.02, f"p = {row.p:.2g}", ha="center", fontsize=9)
    ax.set_xticks(range(len(sampling_tests)), [parts.display_name(m) for m in sampling_tests["model"]])
    ax.set_ylabel("mean AUC over test users (95% CI)")
    ax.set_ylim(0, 1.15)
    ax.axhline(0.5, color="grey", lw=0.8, ls="--")
    ax.legend(title="triple sampling", loc="upper right", ncols=2, fontsize=8)
    ax.set_title("Sampling guidelines vs random sampling, λ selected on validation")
    save_figure(fig, png, svg)


# (3) Learning curves -----------------------------------------------------------
def plot_learning_curves(histories: Mapping[str, Sequence[pd.DataFrame]], png, svg) -> None:
    """Loss, validation AUC (each check, and smoothed: what stopping follows) and pairwise accuracy per Adam
    step; one colour per run (model, sampling, λ), one line per seed; a ring marks each kept check and the
    grey band the steps before ``min_steps``."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    if not histories:
        for ax in axes:
            _empty(ax, "no trained model")
    palette = plt.get_cmap("tab20").colors
    before_min = 0
    for position, (label, seeds) in enumerate(histories.items()):
        style = "-" if "guidelines" in label else "--"
        colour = palette[position % len(palette)]
        for number, history in enumerate(seeds):
            shown = label if number == 0 else None
            for ax, column in zip(axes, ("loss", "monitor_smoothed", "valid_accuracy")):
                if column in history and history[column].notna().any():
                    ax.plot(history["step"], history[column], style, label=shown, color=colour, lw=1.1)
            if "valid_auc" in history and history["valid_auc"].notna().any():
                axes[1].plot(history["step"], history["valid_auc"], ".", ms=2, color=colour, alpha=0.4)
            kept = history[history["kept"].astype(bool)] if "kept" in history else history.iloc[0:0]
            if len(kept):
                axes[1].plot(kept["step"], kept["monitor_smoothed"], "o", ms=8, mfc="none", color=colour)
            if "eligible" in history and (~history["eligible"].astype(bool)).any():
                before_min = max(before_min, int(history.loc[~history["eligible"].astype(bool), "step"].max()))
    if before_min:
        axes[1].axvspan(0, before_min, color="0.92", zorder=0, label="before min_steps")
    axes[0].set(xlabel="Adam step", ylabel="training loss (log scale)", title="Training loss")
    if histories:
        axes[0].set_yscale("log")  # softplus plus λ‖W‖²: positive, and λ = 0.01 dwarfs the rest on a linear axis
    axes[1].set(xlabel="Adam step", ylabel="mean AUC, validation baskets", title="Validation AUC (ring: kept check)")
    axes[2].set(xlabel="Adam step", ylabel="pairwise accuracy", title="Validation triples: pairwise accuracy")
    if histories:
        fig.legend(*axes[1].get_legend_handles_labels(), loc="outside right upper", fontsize=7)
    save_figure(fig, png, svg)


# (4) Every cut-off metric at k = 1..K ------------------------------------------
def plot_topk_curves(curves: pd.DataFrame, png, svg) -> None:
    """Mean value at k = 1..K over the test users (and over seeds) of every run, one panel per metric
    with a cut-off in the metric table (Recall, Precision, nDCG, …) that ``curves`` holds."""
    names = [m.name for m in parts.cutoff_metrics() if m.name in curves.columns]
    columns = max(1, min(2, len(names)))
    rows = max(1, math.ceil(len(names) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(5.5 * columns, 4.2 * rows), squeeze=False)
    axes = axes.ravel()
    palette = plt.get_cmap("tab20").colors  # 20 distinct colours: one per run
    if "split" in curves.columns:
        curves = curves[curves["split"] == "test"]
    curves = curves.groupby(["method", "sampling", "l2", "k"], sort=False)[names].mean().reset_index()
    groups = curves.groupby(["method", "sampling", "l2"], sort=False)
    for position, ((method, sampling, l2), group) in enumerate(groups):
        style = ":" if parts.is_bound(method) else ("--" if sampling == "random" else "-")
        label, colour = run_label(method, sampling, l2), palette[position % len(palette)]
        for ax, name in zip(axes, names):
            ax.plot(group["k"], group[name], style, label=label, color=colour)
    max_k = int(curves["k"].max()) if len(curves) else 1
    for ax, name in zip(axes, names):
        label = parts.metric(name).column_label("k")
        ax.set(xlabel="k", ylabel=f"mean {label}", title=f"{label}, k = 1..{max_k}")
        ax.set_xlim(1, max_k)
        ax.grid(alpha=0.3)
    for ax in axes[len(names) :]:
        ax.set_axis_off()
    if names:
        axes[columns - 1].legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    save_figure(fig, png, svg)


# (5) Silhouette of the k-means restarts ----------------------------------------
def plot_restarts(restarts: pd.DataFrame, png, svg) -> None:
    fig, ax = plt.subplots(figsize=(7, 3.8))
    selected = restarts["selected"].to_numpy(dtype=bool)
    colours = np.where(selected, "tab:red", "tab:grey")
    ax.bar(restarts["restart"], restarts["silhouette"], color=colours)
    for row in restarts[selected].itertuples(index=False):
        ax.annotate(
            f"selected (seed {row.seed})\n{row.silhouette:.4f}",
            (row.restart, row.silhouette),
            xytext=(0, 8),
            textcoords="offset points",
            ha="center",
            fontsize=8,
        )
    low, high = restarts["silhouette"].min(), restarts["silhouette"].max()
    span = max(high - low, 1e-3)
    ax.set_ylim(min(0, low) if low < 0 else low - span, high + span * 0.6)
    ax.set(
        xlabel="k-means restart", ylabel="silhouette coefficient", title="k-means restarts: the best silhouette is kept"
    )
    save_figure(fig, png, svg)


# (6) Figure 5: one test user's profile, top 10 per method, ground truth ---------
def pick_example_user(cases: pd.DataFrame, example_user=None, seed: int = 0) -> int:
    """The ``user`` index to show: ``example_user`` (a user_id) when given, else
    one picked by ``seed`` among users whose profile and truth fit on a row."""
    if example_user is not None:
        match = cases[cases["user_id"].astype(str) == str(example_user)]
        if match.empty:
            raise InputError("config", "report.example_user", example_user, "not a test user")
        return int(match["user"].iloc[0])
    sizes = cases["profile"].map(len)
    fitting = cases[(sizes >= 2) & (sizes <= 10)]
    pool = fitting if len(fitting) else cases
    return int(pool["user"].iloc[np.random.default_rng(seed).integers(len(pool))])


def _find_image(folder: Path | None, item_id: str) -> Path | None:
    if folder is None:
        return None
    for suffix in (".jpg", ".jpeg", ".png"):
        candidate = folder / f"{item_id}{suffix}"
        if candidate.exists():
            return candidate
    return None


def plot_example(
    rows: Sequence[tuple[str, Sequence[int], Sequence[bool]]],
    items: pd.DataFrame,
    cluster_items: pd.DataFrame,
    png,
    svg,
    title: str = "",
    images: str | Path | None = None,
) -> None:
    """``rows``: (label, item indexes, hit flags) drawn top to bottom as tiles
    coloured by visual cluster, labelled with item and artist (or thumbnails)."""
    folder = Path(images) if images else None
    ids = items.set_index("item")["item_id"].astype(str)
    artists = items.set_index("item")["artist_id"].astype("string").fillna("?")
    clusters = cluster_items.set_index("item")["cluster"]
    n_cols = max([len(r[1]) for r in rows] + [1])
    fig, ax = plt.subplots(figsize=(1.25 * n_cols + 2.4, 1.3 * len(rows) + 0.6))
    for r, (label, row_items, row_hits) in enumerate(rows):
        top = len(rows) - r - 1
        ax.text(-0.15, top + 0.45, label, ha="right", va="center", fontsize=9)
        for c, (item, hit) in enumerate(zip(row_items, row_hits)):
            item = int(item)
            if item < 0:
                continue
            image = _find_image(folder, ids.get(item, ""))
            if image is not None:
                ax.imshow(plt.imread(image), extent=(c + 0.05, c + 0.95, top + 0.05, top + 0.85), aspect="auto")
            else:
                ax.add_patch(
                    Rectangle((c + 0.05, top + 0.05), 0.9, 0.8, color=cluster_colour(int(clusters.get(item, 0))))
                )
            if hit:
                ax.add_patch(Rectangle((c + 0.02, top + 0.02), 0.96, 0.86, fill=False, lw=2.5, ec="black"))
            ax.text(
                c + 0.5,
                top + 0.45,
                f"{ids.get(item, item)}\nartist {artists.get(item, '?')}\ncl {clusters.get(item, '?')}",
                ha="center",
                va="center",
                fontsize=6,
            )
    ax.set_xlim(-0.1, n_cols)
    ax.set_ylim(0, len(rows))
    ax.set_axis_off()
    ax.set_title(title or "Profile, top 10 per method and ground truth (black frame: a hit)", fontsize=10)
    save_figure(fig, png, svg)


def example_rows(
    cases: pd.DataFrame,
    top: pd.DataFrame,
    user: int,
    runs: Sequence[tuple[str, str, str, str]],
) -> list[tuple[str, list[int], list[bool]]]:
    """Tiles of the example: the profile, each run's top 10 (runs: method, sampling, l2, seed), the ground truth."""
    case = cases[cases["user"] == user].iloc[0]
    truth = [int(i) for i in case["truth"]]
    profile = [int(i) for i in case["profile"]][:10]
    rows = [(f"profile ({len(case['profile'])})", profile, [False] * len(profile))]
    if "split" in top.columns:
        top = top[top["split"] == "test"]
    for method, sampling, l2, seed in runs:
        picks = top[
            (top["user"] == user)
            & (top["method"] == method)
            & (top["sampling"] == sampling)
            & (top["l2"] == l2)
            & (top["seed"].astype(str) == seed)
        ]
        picks = picks.sort_values("rank")
        rows.append((run_label(method, sampling, l2), picks["item"].tolist(), picks["hit"].astype(bool).tolist()))
    rows.append(("ground truth", truth, [True] * len(truth)))
    return rows


def example_runs(selection: pd.DataFrame, top: pd.DataFrame) -> list[tuple[str, str, str, str]]:
    """Runs shown in the example (method, sampling, l2, seed): per trained model the
    guidelines run at the λ selected on validation (else its best-validated run) and
    its best seed, then the reference baseline (VisRank)."""
    runs = []
    for model, group in selection.groupby("model", sort=True):
        chosen = group[group["selected"].astype(bool) & (group["sampling"] == "guidelines")]
        if chosen.empty:
            chosen = group.sort_values("valid_auc", ascending=False, na_position="last")
        row = chosen.iloc[0]
        runs.append((str(model), str(row["sampling"]), str(row["l2"]), str(int(row["best_seed"]))))
    for reference in parts.reference_baselines():
        if (top["method"] == reference).any():
            runs.append((reference, "", "", ""))
    return runs


# The workflow's figures: name -> function drawing it from the files of earlier stages ---------------
# Each function takes the two output paths, then its input paths and options by name (the
# workflow's `plot` rule passes its named inputs and params.options), and returns a line for the log.

PER_USER_COLUMNS = ["method", "sampling", "l2", "seed", "split", "user", "auc"]
TOP_COLUMNS = ["method", "sampling", "l2", "seed", "split", "user", "rank", "item", "hit"]
TEXT = {"model": str, "sampling": str, "l2": str, "l2_guidelines": str, "l2_random": str}


def figure_clusters(png, svg, *, cluster_items) -> str:
    plot_clusters(read_frame(cluster_items, ["item", "cluster", "x", "y"]), png, svg)
    return "visual clusters on the 2-D map"


def figure_restarts(png, svg, *, restarts) -> str:
    plot_restarts(read_frame(restarts, ["restart", "seed", "silhouette", "selected"]), png, svg)
    return "silhouette of the k-means restarts"


def figure_sampling_auc(png, svg, *, sampling_ttest, per_user) -> str:
    table = pd.read_csv(sampling_ttest, dtype=TEXT, keep_default_na=False, na_values=[""])
    plot_sampling_auc(table, read_frame(per_user, PER_USER_COLUMNS), png, svg)
    return f"{len(table)} models compared"


def figure_learning_curves(png, svg, *, histories: Sequence, runs: Sequence[Mapping[str, str]]) -> str:
    """``histories``: history.csv of each run, in the order of ``runs`` (their model, sampling, l2 and seed)."""
    if len(histories) != len(runs):
        raise InputError(None, "histories", len(histories), f"one history per run expected ({len(runs)} runs)")
    curves: dict[str, list[pd.DataFrame]] = {}
    for run, path in zip(runs, histories):
        curves.setdefault(run_label(run["model"], run["sampling"], run["l2"]), []).append(pd.read_csv(path))
    plot_learning_curves(curves, png, svg)
    return f"{len(histories)} runs"


def figure_topk_curves(png, svg, *, curves) -> str:
    frame = read_frame(curves, ["method", "sampling", "l2", "seed", "split", "k"])
    plot_topk_curves(frame, png, svg)
    return "at k = 1..K: " + ", ".join(m.name for m in parts.cutoff_metrics() if m.name in frame.columns)


def figure_example(
    png, svg, *, cases, top, catalogue, cluster_items, selection, example_user=None, images=None, seed: int = 0
) -> str:
    users = read_frame(cases, ["user", "user_id", "profile", "truth"])
    tops = read_frame(top, TOP_COLUMNS)
    runs = example_runs(pd.read_csv(selection, dtype={"model": str, "sampling": str, "l2": str}), tops)
    user = pick_example_user(users, example_user, seed)
    user_id = users.loc[users["user"] == user, "user_id"].iloc[0]
    plot_example(
        example_rows(users, tops, user, runs),
        read_frame(catalogue, ["item", "item_id", "artist_id"]),
        read_frame(cluster_items, ["item", "cluster"]),
        png,
        svg,
        title=f"Test user {user_id}: profile, top 10 per method, ground truth (black frame: a hit)",
        images=images,
    )
    return f"example user {user_id}, runs {runs}"


FIGURES: dict[str, Callable[..., str]] = {
    "clusters": figure_clusters,
    "sampling_auc": figure_sampling_auc,
    "learning_curves": figure_learning_curves,
    "topk_curves": figure_topk_curves,
    "restarts": figure_restarts,
    "example": figure_example,
}


# (7) Ablation: the test AUC change of each variant against the full set -------
def plot_ablation(guidelines: pd.DataFrame, poolings: pd.DataFrame, full_auc: float, png, svg) -> None:
    """One row per variant: the mean paired change of the test AUC against the full set, with its 95% CI;
    guidelines left out first, then the poolings. Holm-adjusted p beside each."""
    rows = [(f"without {r.left_out}", r) for r in guidelines.itertuples(index=False)]
    rows += [(f"pooling {r.pooling}", r) for r in poolings.itertuples(index=False)]
    fig, ax = plt.subplots(figsize=(7, 0.5 * max(len(rows), 2) + 1.5))
    if not rows:
        _empty(ax, "no ablation variant was trained")
        save_figure(fig, png, svg)
        return
    positions = np.arange(len(rows))[::-1]
    for position, (_, row) in zip(positions, rows):
        colour = "tab:red" if row.p_holm < 0.05 and row.mean_diff < 0 else "tab:blue" if row.p_holm < 0.05 else "grey"
        ax.errorbar(
            row.mean_diff,
            position,
            xerr=[[row.mean_diff - row.ci_low], [row.ci_high - row.mean_diff]],
            fmt="o",
            color=colour,
            capsize=4,
        )
        ax.annotate(f"  Holm p = {row.p_holm:.2g}", (row.ci_high, position), va="center", fontsize=8)
    ax.axvline(0.0, color="black", lw=0.8)
    ax.set_yticks(positions, [label for label, _ in rows])
    ax.set_xlabel(f"test AUC change against the full set (its AUC {full_auc:.4f}), mean over users, 95% CI")
    ax.set_title("Which parts matter: one guideline left out, or another pooling")
    ax.margins(x=0.35)
    save_figure(fig, png, svg)


def figure_ablation(png, svg, *, ablation, pooling) -> str:
    guidelines = pd.read_csv(ablation, dtype={"set": str, "left_out": str})
    poolings = pd.read_csv(pooling, dtype={"set": str, "pooling": str})
    both = pd.concat([guidelines, poolings])
    full = float((both["auc"] - both["mean_diff"]).mean()) if len(both) else math.nan
    plot_ablation(guidelines, poolings, full, png, svg)
    return f"{len(guidelines)} guidelines left out, {len(poolings)} poolings"


FIGURES["ablation"] = figure_ablation
