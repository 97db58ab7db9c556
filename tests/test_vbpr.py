"""VBPR: learns a planted preference from its guideline triples, cold users and items, save and load."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from planted import N_ITEMS, catalogue, planted_triples, settings, train_paths, write_data_folder, write_triplets  # noqa: E402

from curatornet.models.base import Queries  # noqa: E402
from curatornet.models.registry import load_scorer  # noqa: E402
from curatornet.models.train import train_model  # noqa: E402
from curatornet.sampling.triples import Triples  # noqa: E402


def with_distractors(data: Triples, rng) -> tuple[Triples, list[str]]:
    """Append D5-like rows (user -1) and D1-like rows, which VBPR must ignore with guidelines."""
    n = len(data)
    extra = Triples.from_lists(
        [[1]] * 50 + [[2]] * 50, rng.integers(0, N_ITEMS, 100), rng.integers(0, N_ITEMS, 100), [-1] * 50 + [0] * 50
    )
    merged = Triples(
        np.concatenate([data.offsets, data.offsets[-1] + extra.offsets[1:]]),
        np.concatenate([data.values, extra.values]),
        np.concatenate([data.positive, extra.positive]),
        np.concatenate([data.negative, extra.negative]),
        np.concatenate([data.user, extra.user]),
    )
    guidelines = (
        ["d4_profile"] * (n // 2) + ["d3_artist_cluster"] * (n - n // 2) + ["d5_single_item"] * 50 + ["d1_basket"] * 50
    )
    return merged, guidelines


@pytest.fixture(scope="module")
def vbpr_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vbpr")
    rng = np.random.default_rng(0)
    embeddings, _ = catalogue()
    train, train_guidelines = with_distractors(planted_triples(3000, seed=1), rng)
    write_triplets(train, root / "train.parquet", "train", train_guidelines)
    write_triplets(planted_triples(600, seed=2), root / "valid.parquet", "valid")
    write_data_folder(root / "data")
    meta = train_model(
        settings("vbpr", l2=1e-4, seed=2, max_steps=72, vbpr={"latent_dim": 8, "visual_dim": 8, "learning_rate": 0.01}),
        **train_paths(root, root / "data"),
        out_dir=root / "model",
    )
    return root, meta, embeddings


def test_vbpr_learns_planted_preference_on_its_guidelines_only(vbpr_dir):
    root, meta, _ = vbpr_dir
    assert meta["valid_accuracy"] > 0.8 and meta["valid_auc"] > 0.8
    assert meta["n_train_triples"] == 3000  # D1 and D5 rows (and user -1) left out
    assert json.loads((root / "model" / "model.json").read_text())["model"] == "vbpr"


def test_unknown_user_gets_item_side_terms_and_save_load_is_exact(vbpr_dir):
    root, _, embeddings = vbpr_dir
    scorer = load_scorer(root / "model", embeddings)
    items = np.arange(N_ITEMS)
    queries = Queries(np.array([-1, 3, 10_000]), [np.array([1])] * 3)
    scores = scorer.score(queries, items)
    assert scores.shape == (3, 300) and scores.dtype == np.float32
    np.testing.assert_array_equal(scores[0], scores[2])  # both unknown
    model = scorer.model
    expected = model.beta_item.numpy() + scorer.features @ model.beta_visual.numpy()
    np.testing.assert_allclose(scores[0], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(scores[1], scores[0])  # a known user has personal terms
    again = load_scorer(root / "model", embeddings).score(queries, items)
    np.testing.assert_array_equal(again, scores)


def test_known_user_prefers_their_taste(vbpr_dir):
    root, _, embeddings = vbpr_dir
    _, taste = catalogue()
    scorer = load_scorer(root / "model", embeddings)
    scores = scorer.score(Queries(np.array([5]), [np.array([0])]), np.arange(300))[0]
    liked = taste == 5 % 4
    assert scores[liked].mean() > scores[~liked].mean()


def test_vbpr_scores_new_items_by_their_visual_terms(vbpr_dir):
    root, _, embeddings = vbpr_dir
    extended = np.concatenate([embeddings, embeddings[:1]])  # item 300 = a copy of item 0's image
    scores = load_scorer(root / "model", extended).score(Queries(np.array([5]), [np.array([0])]), np.arange(301))
    assert np.isfinite(scores).all() and scores.shape == (1, 301)
