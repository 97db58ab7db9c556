"""The HTML report holds every method row and every figure, offline."""

from __future__ import annotations

import re

import pandas as pd
import pytest
from test_plots import draw_all, fake_artifacts

from curatornet import report
from curatornet.data.prepare import prepare_dataset
from curatornet.evaluation.evaluate import summarise


def _inputs(tmp_path):
    data = fake_artifacts()
    paths = draw_all(tmp_path, data)
    per_user = data["per_user"].copy()
    for column in ("recall@20", "precision@20", "ndcg@20"):
        per_user[column] = per_user["auc"] / 10
    summary = summarise(per_user, ks=[20])
    bench = tmp_path / "benchmarks"
    (bench / "evaluation").mkdir(parents=True)
    (bench / "evaluation" / "evaluate.tsv").write_text("s\th:m:s\tmax_rss\tmax_vms\n3.25\t0:00:03\t512.5\t900\n")
    (bench / "broken.tsv").write_text("not a benchmark\n")
    figures = [report.Figure(name, f"Figure {name}", png, f"caption of {name}") for name, (png, _) in paths.items()]
    stats_csv = pd.DataFrame(
        {"statistic": ["users", "first_sale", "purchase_rows"], "value": ["100.0", "2014-01-01", "250.0"]}
    )
    visrank = pd.DataFrame(
        columns=[
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
    )
    return report.ReportInputs(
        summary=summary,
        per_user=per_user,
        sampling_ttest=data["sampling_ttest"],
        vs_visrank=visrank,
        selection=data["selection"],
        data_stats=stats_csv,
        config={
            "seed": 1,
            "dataset": {"format": "synthetic", "synthetic": {"preset": "tiny"}},
            "evaluation": {"ks": [20]},
        },
        figures=figures,
        benchmarks=report.read_benchmarks(bench),
    ), summary


def test_report_has_every_row_and_figure_and_is_offline(tmp_path):
    inputs, summary = _inputs(tmp_path)
    page = report.build_report(inputs)
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    table2 = page.split('id="table2"')[1].split("</table>")[0]
    for method, sampling, l2 in summary[["Method", "sampling", "λ"]].itertuples(index=False):
        cells = (
            f'<td class="text">{method}</td><td class="text">{sampling or "–"}</td><td class="text">{l2 or "–"}</td>'
        )
        assert cells in table2, (method, sampling, l2)
    assert table2.split("<tbody>")[1].count("<tr>") == len(summary)
    for figure in inputs.figures:
        assert f'id="{figure.key}"' in page and f"caption of {figure.key}" in page
    assert page.count("data:image/png;base64,") == len(inputs.figures) == 6
    assert not re.search(r"(src|href)=\"(https?:)?//", page) and "http" not in page.replace("data:image", "")
    assert "top" in table2  # highlighted cells
    assert "evaluation" in page and "3.2" in page  # run time of the benchmarked stage
    assert "paired t = 2.000" in page and "λ = 0.01" in page  # the t-tests in words, with the random side's λ
    assert "6,535" in page  # UGallery reference beside this run's statistics
    assert len(rows) > len(summary)


def test_top_five_and_formatting():
    frame = pd.DataFrame({"AUC": [1.0, 0.9, 0.8, 0.8, 0.7, 0.6, 0.5]})
    assert report.top_five(frame, ["AUC"])["AUC"] == {0, 1, 2, 3, 4}
    assert report.fmt(0.72041) == ".7204" and report.fmt(728) == "728" and report.fmt(float("nan")) == "–"
    assert report.rst_to_text("A ``code`` and *em*\n text.") == "A code and em text."
    assert set(report.software_versions()) >= {"python", "numpy", "scipy", "snakemake", "tensorflow"}


def _summary(aucs: dict[str, float]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Method": list(aucs),
            "sampling": ["guidelines" if m in ("CuratorNet", "VBPR") else "" for m in aucs],
            "λ": ["0.0001" if m in ("CuratorNet", "VBPR") else "" for m in aucs],
            "AUC": list(aucs.values()),
        }
    )


def _comparison(tmp_path, aucs):
    inputs, _ = _inputs(tmp_path)
    inputs.summary = _summary(aucs)
    return report.build_report(inputs).split('id="paper"')[1].split("<h2")[0]


def test_paper_comparison_says_when_the_ordering_is_reproduced(tmp_path):
    section = _comparison(tmp_path, {"CuratorNet": 0.72, "VisRank": 0.71, "VBPR": 0.66, "Random": 0.5})
    assert "CuratorNet &gt; VisRank &gt; VBPR &gt; Random" in section
    assert "reproduces the paper" in section


def test_paper_comparison_says_when_it_is_not(tmp_path):
    section = _comparison(tmp_path, {"CuratorNet": 0.62, "VisRank": 0.64, "VBPR": 0.63, "Random": 0.5})
    assert "VisRank &gt; VBPR &gt; CuratorNet &gt; Random" in section
    assert "does <b>not</b> reproduce" in section
    assert "0.7204" in section or ".7204" in section  # the paper's figure beside ours


def decimals(value: float) -> int:
    """Digits after the point as the constant is written (0.0682 -> 4, 40 -> 0)."""
    text = repr(value)
    return len(text.split(".")[1]) if "." in text else 0


def test_ugallery_reference_matches_the_real_files(ugallery_dir):
    real = prepare_dataset({"format": "ugallery", "path": str(ugallery_dir), "synthetic": {"embedding_dim": 8}}, 0)
    shared = [name for name in report.UGALLERY_REFERENCE if name in real.stats]
    for name in ("later_basket_known_artist_share", "same_artist_pair_share_basket", "same_artist_pair_share_user"):
        assert name in shared and name in report.UGALLERY_REFERENCE
    for name in shared:
        constant, computed = report.UGALLERY_REFERENCE[name], real.stats[name]
        if isinstance(constant, str):
            assert computed == constant, name
        else:
            # The constant is the computed value rounded to the digits it is written with.
            assert computed == pytest.approx(constant, abs=0.5 * 10 ** -decimals(constant) + 1e-12), name
    # Only the evaluation protocol's numbers (checked in test_protocol.py) are not data set statistics.
    assert set(report.UGALLERY_REFERENCE) - set(shared) == {"test_users", "mean_ground_truth", "median_inventory"}
