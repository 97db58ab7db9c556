"""Every figure is written as a PNG and an SVG from small made-up artifacts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pandas as pd
import pytest

from curatornet import plots


def fake_artifacts(seed: int = 0) -> dict:
    """Small, internally consistent artifacts of every upstream stage."""
    rng = np.random.default_rng(seed)
    n_items, users = 60, np.arange(8, dtype=np.int32)
    items = pd.DataFrame(
        {
            "item": np.arange(n_items, dtype=np.int32),
            "item_id": [f"it{i}" for i in range(n_items)],
            "artist_id": [f"a{i % 7}" for i in range(n_items)],
        }
    )
    cluster_items = pd.DataFrame(
        {
            "item": items["item"],
            "cluster": (np.arange(n_items) % 5).astype(np.int32),
            "x": rng.random(n_items),
            "y": rng.random(n_items),
        }
    )
    restarts = pd.DataFrame(
        {
            "restart": np.arange(4),
            "seed": np.arange(4),
            "silhouette": [0.1, 0.3, 0.2, 0.15],
            "inertia": [9.0, 7, 8, 8.5],
            "selected": [False, True, False, False],
        }
    )
    runs = [
        ("curatornet", "guidelines", "0.001"),
        ("curatornet", "random", "0.001"),
        ("vbpr", "guidelines", "0"),
        ("vbpr", "random", "0.01"),
        ("visrank", "", ""),
        ("random", "", ""),
        ("oracle", "", ""),
    ]
    per_user = pd.concat(
        [
            pd.DataFrame(
                {
                    "method": m,
                    "sampling": s,
                    "l2": lam,
                    "seed": "0" if s else "",
                    "split": "test",
                    "user": users,
                    "auc": rng.random(len(users)),
                    "n_truth": 1,
                    "n_candidates": 50,
                }
            )
            for m, s, lam in runs
        ],
        ignore_index=True,
    )
    curves = pd.concat(
        [
            pd.DataFrame(
                {
                    "method": m,
                    "sampling": s,
                    "l2": lam,
                    "seed": "0" if s else "",
                    "split": "test",
                    "k": np.arange(1, 11),
                    "recall": np.linspace(0, 1, 10) * rng.random(),
                    "precision": 0.1,
                    "ndcg": np.linspace(0, 1, 10) * rng.random(),
                }
            )
            for m, s, lam in runs
        ],
        ignore_index=True,
    )
    cases = pd.DataFrame(
        {
            "user": users,
            "user_id": [f"u{u}" for u in users],
            "profile": [rng.choice(n_items, 3, replace=False) for _ in users],
            "truth": [np.array([u]) for u in users],
            "n_candidates": 50,
        }
    )
    top = pd.concat(
        [
            pd.DataFrame(
                {
                    "method": m,
                    "sampling": s,
                    "l2": lam,
                    "seed": "0" if s else "",
                    "split": "test",
                    "user": np.repeat(users, 10),
                    "rank": np.tile(np.arange(1, 11), len(users)),
                    "item": rng.integers(0, n_items, 10 * len(users)),
                    "hit": False,
                }
            )
            for m, s, lam in runs
        ],
        ignore_index=True,
    )
    sampling_ttest = pd.DataFrame(
        {
            "model": ["curatornet", "vbpr"],
            "l2_guidelines": ["0.001", "0"],
            "l2_random": ["0.001", "0.01"],
            "n_users": [8, 8],
            "mean_a": [0.7, 0.6],
            "mean_b": [0.6, 0.55],
            "mean_diff": [0.1, 0.05],
            "ci_low": [0.01, -0.05],
            "ci_high": [0.2, 0.15],
            "d_z": [0.8, 0.3],
            "t": [2.0, 1.1],
            "p": [0.04, 0.3],
            "wilcoxon_p": [0.05, 0.3],
            "p_holm": [0.08, 0.3],
        }
    )
    selection = pd.DataFrame(
        {
            "model": ["curatornet", "curatornet", "vbpr", "vbpr"],
            "sampling": ["guidelines", "random", "guidelines", "random"],
            "l2": ["0.001", "0.001", "0", "0.01"],
            "seeds": 1,
            "valid_auc": [0.8, 0.7, 0.75, 0.6],
            "valid_auc_min": [0.8, 0.7, 0.75, 0.6],
            "valid_auc_max": [0.8, 0.7, 0.75, 0.6],
            "selected": True,
            "best_seed": 0,
        }
    )
    histories = {
        "CuratorNet (guidelines, λ=0.001)": pd.DataFrame(
            {
                "check": [1, 2, 3],
                "step": [10, 20, 30],
                "loss": [0.6, 0.5, 0.45],
                "valid_auc": [0.62, 0.66, 0.65],
                "monitor_smoothed": [0.62, 0.64, 0.655],
                "valid_accuracy": [0.6, 0.7, 0.72],
                "eligible": [False, True, True],
                "kept": [False, False, True],
            }
        ),
        "VBPR (random, λ=0.01)": pd.DataFrame(
            {
                "check": [1, 2],
                "step": [22, 44],
                "loss": [0.69, 0.6],
                "valid_auc": [0.55, 0.56],
                "monitor_smoothed": [0.55, 0.555],
                "valid_accuracy": [0.55, 0.6],
                "eligible": [True, True],
                "kept": [False, True],
            }
        ),
    }
    return dict(
        items=items,
        cluster_items=cluster_items,
        restarts=restarts,
        per_user=per_user,
        curves=curves,
        cases=cases,
        top=top,
        sampling_ttest=sampling_ttest,
        selection=selection,
        histories=histories,
    )


def draw_all(folder, data) -> dict[str, tuple]:
    """Every figure of the report into ``folder``; returns name -> (png, svg)."""
    paths = {
        name: (folder / f"{name}.png", folder / f"{name}.svg")
        for name in ("clusters", "sampling_auc", "learning_curves", "topk_curves", "restarts", "example")
    }
    plots.plot_clusters(data["cluster_items"], *paths["clusters"])
    plots.plot_sampling_auc(data["sampling_ttest"], data["per_user"], *paths["sampling_auc"])
    plots.plot_learning_curves({label: [h] for label, h in data["histories"].items()}, *paths["learning_curves"])
    plots.plot_topk_curves(data["curves"], *paths["topk_curves"])
    plots.plot_restarts(data["restarts"], *paths["restarts"])
    runs = plots.example_runs(data["selection"], data["top"])
    user = plots.pick_example_user(data["cases"], None, seed=1)
    rows = plots.example_rows(data["cases"], data["top"], user, runs)
    plots.plot_example(rows, data["items"], data["cluster_items"], *paths["example"])
    return paths


def test_every_figure_written_as_png_and_svg(tmp_path):
    paths = draw_all(tmp_path, fake_artifacts())
    for png, svg in paths.values():
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert ET.parse(svg).getroot().tag.endswith("svg")
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temporaries


def test_example_rows_and_runs():
    data = fake_artifacts()
    runs = plots.example_runs(data["selection"], data["top"])
    assert runs == [
        ("curatornet", "guidelines", "0.001", "0"),
        ("vbpr", "guidelines", "0", "0"),
        ("visrank", "", "", ""),
    ]
    assert plots.pick_example_user(data["cases"], "u3") == 3
    rows = plots.example_rows(data["cases"], data["top"], 3, runs)
    assert [r[0] for r in rows][0].startswith("profile") and rows[-1] == ("ground truth", [3], [True])
    assert all(len(r[1]) == 10 for r in rows[1:-1])
    with pytest.raises(Exception, match="example_user"):
        plots.pick_example_user(data["cases"], "nobody")


def test_example_uses_thumbnails(tmp_path):
    import matplotlib.pyplot as plt

    data = fake_artifacts()
    images = tmp_path / "images"
    images.mkdir()
    plt.imsave(images / "it3.png", np.random.default_rng(0).random((8, 8, 3)))
    rows = [("ground truth", [3], [True])]
    plots.plot_example(
        rows, data["items"], data["cluster_items"], tmp_path / "e.png", tmp_path / "e.svg", images=images
    )
    assert "<image" in (tmp_path / "e.svg").read_text()
