"""Cold start: new users (any liked items) and new items (never seen in training), and the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("tensorflow")

from planted import N_ITEMS, catalogue, planted_triples, settings, train_paths, write_data_folder, write_triplets  # noqa: E402

from curatornet.cli import main  # noqa: E402
from curatornet.models.base import Queries  # noqa: E402
from curatornet.models.registry import load_scorer  # noqa: E402
from curatornet.models.train import train_model  # noqa: E402


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small CuratorNet and the data folder the CLI reads (items, embeddings, purchases)."""
    root = tmp_path_factory.mktemp("cold")
    embeddings, taste = catalogue()
    data = write_data_folder(root / "data")
    write_triplets(planted_triples(3000, seed=1), root / "train.parquet")
    write_triplets(planted_triples(600, seed=2), root / "valid.parquet", "valid")
    train_model(settings("curatornet", seed=3), **train_paths(root, data), out_dir=root / "model")
    centres = np.stack([embeddings[taste == t].mean(0) for t in range(4)])
    return root, embeddings, taste, centres


def test_new_item_reaches_the_top_for_a_matching_profile(trained):
    root, embeddings, taste, centres = trained
    # A new image strongly in taste 2 (its centre pushed away from the catalogue's
    # mean), never seen in training, appended as item 300.
    typical = embeddings.mean(0) + 2.0 * (centres[2] - embeddings.mean(0))
    extended = np.concatenate([embeddings, typical[None]])
    scorer = load_scorer(root / "model", extended)
    liked = np.flatnonzero(taste == 2)[:3]
    other = np.flatnonzero(taste == 0)[:3]
    candidates = np.setdiff1d(np.arange(N_ITEMS + 1), np.concatenate([liked, other]))
    scores = scorer.score(Queries(np.array([-1, -1]), [liked, other]), candidates)
    new = np.flatnonzero(candidates == N_ITEMS)[0]
    rank_liked = int((scores[0] > scores[0, new]).sum())
    rank_other = int((scores[1] > scores[1, new]).sum())
    assert rank_liked < 5  # at the top of the list of a user who likes taste 2
    # ... and below (nearly) every item of the taste of a user who likes another one.
    assert rank_other > 0.9 * (taste[candidates[candidates < N_ITEMS]] == 0).sum()
    # A brand-new user whose profile is only the new item gets taste-2 items first.
    top = np.argsort(-scorer.score(Queries(np.array([-1]), [np.array([N_ITEMS])]), np.arange(N_ITEMS))[0])[:10]
    assert (taste[top] == 2).mean() >= 0.8


def parse(out: str) -> pd.DataFrame:
    lines = [line.split("\t") for line in out.strip().splitlines()]
    assert lines[0] == ["rank", "item_id", "artist_id", "score"]
    return pd.DataFrame(lines[1:], columns=lines[0])


def test_cli_prints_top_k_without_profile_items(trained, capsys):
    root, _, taste, centres = trained
    profile = [f"art{k:03d}" for k in np.flatnonzero(taste == 1)[:4]]
    assert (
        main(
            [
                "recommend",
                "--model",
                str(root / "model"),
                "--items",
                ",".join(profile),
                "--k",
                "7",
                "--data",
                str(root / "data"),
            ]
        )
        == 0
    )
    table = parse(capsys.readouterr().out)
    assert len(table) == 7 and table["rank"].tolist() == [str(k) for k in range(1, 8)]
    assert not set(profile) & set(table["item_id"])
    scores = table["score"].astype(float).to_numpy()
    assert (np.diff(scores) <= 0).all()
    assert (taste[[int(i[3:]) for i in table["item_id"]]] == 1).all()
    assert table["artist_id"].str.startswith("artist").all()


def test_cli_new_items_from_file(trained, tmp_path, capsys):
    root, _, taste, centres = trained
    rows = np.empty((2, 2), dtype=object)
    mean = trained[1].mean(0)
    rows[0] = ["new_taste1", (mean + 2.0 * (centres[1] - mean)).astype(np.float32)]
    rows[1] = ["new_taste3", (mean + 2.0 * (centres[3] - mean)).astype(np.float32)]
    np.save(tmp_path / "new.npy", rows, allow_pickle=True)
    # The profile is a new item itself; the other new item is a candidate.
    assert (
        main(
            [
                "recommend",
                "--model",
                str(root / "model"),
                "--items",
                "new_taste3",
                "--k",
                "3",
                "--data",
                str(root / "data"),
                "--new-items",
                str(tmp_path / "new.npy"),
            ]
        )
        == 0
    )
    table = parse(capsys.readouterr().out)
    assert "new_taste3" not in set(table["item_id"]) and len(table) == 3
    profile = [f"art{k:03d}" for k in np.flatnonzero(taste == 1)[:3]]
    main(
        [
            "recommend",
            "--model",
            str(root / "model"),
            "--items",
            ",".join(profile),
            "--k",
            "5",
            "--data",
            str(root / "data"),
            "--new-items",
            str(tmp_path / "new.npy"),
        ]
    )
    table = parse(capsys.readouterr().out)
    assert "new_taste1" in table["item_id"].tolist()[:3]
    assert table.loc[table["item_id"] == "new_taste1", "artist_id"].item() == "-"


def test_cli_rejects_unknown_item(trained, capsys):
    root = trained[0]
    assert main(["recommend", "--model", str(root / "model"), "--items", "nope", "--data", str(root / "data")]) == 2
    assert "nope" in capsys.readouterr().err


def test_python_dash_m_entry_point(trained):
    root = trained[0]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "curatornet",
            "recommend",
            "--model",
            str(root / "model"),
            "--items",
            "art000",
            "--k",
            "2",
            "--data",
            str(root / "data"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 3
