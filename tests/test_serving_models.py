"""NumPy CuratorNet and VBPR: the same scores as the TensorFlow models, VBPR fold-in, load errors, no TensorFlow."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from curatornet.errors import InputError
from curatornet.models.base import Queries
from curatornet.serving.models import NumpyScorer, NumpyVBPR, load_numpy_model, load_numpy_scorer, selu

tf = pytest.importorskip("tensorflow")

import pandas as pd  # noqa: E402
from planted import catalogue, planted_triples, settings, train_paths, write_data_folder, write_triplets  # noqa: E402

from curatornet.models.curatornet import CuratorNet  # noqa: E402
from curatornet.models.features import Standardizer  # noqa: E402
from curatornet.models.persistence import write_model_dir  # noqa: E402
from curatornet.models.registry import load_scorer  # noqa: E402
from curatornet.models.train import train_model  # noqa: E402

RTOL = 1e-5


def assert_scores_match(numpy_scores, tf_scores, queries, items):
    """rtol 1e-5 plus an absolute tolerance of 1e-5 times Σ_k |q_k v_k|.

    A score is a dot product; float32 rounding in a different summation order
    (NumPy's BLAS vs TensorFlow's kernels) errs in proportion to the sum of the
    absolute terms, not to the result. A score near zero is the sum of large
    terms that cancel, so its relative error alone says nothing.
    """
    magnitude = np.abs(queries) @ np.abs(items).T
    close = np.abs(numpy_scores - tf_scores) <= RTOL * np.abs(tf_scores) + RTOL * magnitude
    assert close.all(), f"{(~close).sum()} scores differ, worst {np.abs(numpy_scores - tf_scores).max()}"


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    root = tmp_path_factory.mktemp("planted")
    embeddings, taste = catalogue()
    write_triplets(planted_triples(3000, seed=1), root / "train.parquet")
    write_triplets(planted_triples(600, seed=2), root / "valid.parquet", "valid")
    write_data_folder(root / "data")
    return root, embeddings, taste


@pytest.fixture(scope="module")
def trained_curatornet(planted):
    root, embeddings, _ = planted
    paper_sizes = {"tower_units": [200, 200], "head_units": [300, 200, 200]}
    run = settings("curatornet", seed=3, max_steps=36, curatornet=paper_sizes)
    train_model(run, **train_paths(root, root / "data"), out_dir=root / "cn")
    return root / "cn", embeddings


@pytest.fixture(scope="module")
def untrained_paper_size(tmp_path_factory):
    """Paper sizes on 2048-d ResNet-like (non-negative, skewed) embeddings, initial weights."""
    root = tmp_path_factory.mktemp("paper")
    rng = np.random.default_rng(5)
    embeddings = np.maximum(np.exp(rng.normal(-1, 0.7, (120, 2048))) - 0.12, 0).astype(np.float32)
    model = CuratorNet(2048, seed=11)
    meta = {"model": "curatornet", "n_items": 120, "n_users": 0, "hyperparameters": model.hyperparameters()}
    write_model_dir(root, model, Standardizer.fit(embeddings), pd.DataFrame(), meta)
    return root, embeddings


@pytest.fixture(scope="module", params=["mean", "max"])
def untrained_pooled(request, tmp_path_factory):
    """A CuratorNet with another pooling than the paper's, initial weights."""
    root = tmp_path_factory.mktemp(f"pooled_{request.param}")
    embeddings = np.random.default_rng(6).random((80, 32)).astype(np.float32)
    model = CuratorNet(32, (24, 16), (20, 16), seed=2, pooling=request.param)
    meta = {"model": "curatornet", "n_items": 80, "n_users": 0, "hyperparameters": model.hyperparameters()}
    write_model_dir(root, model, Standardizer.fit(embeddings), pd.DataFrame(), meta)
    return root, embeddings


def test_a_repeated_profile_item_changes_the_mean_not_the_max_and_numpy_equals_tensorflow(untrained_pooled):
    model_dir, embeddings = untrained_pooled
    pooling = json.loads((model_dir / "model.json").read_text())["hyperparameters"]["pooling"]
    for scorer in (load_scorer(model_dir, embeddings), load_numpy_scorer(model_dir, embeddings)):
        once, twice = np.array([3, 7]), np.array([3, 3, 7])
        scores = scorer.score(Queries(np.full(2, -1), [once, twice]), np.arange(80))
        assert np.allclose(scores[0], scores[1], rtol=1e-5, atol=1e-5) == (pooling == "max")
    profiles = [np.random.default_rng(n).choice(80, size=n, replace=False) for n in range(1, 20)]
    queries, items = Queries(np.full(19, -1), profiles), np.arange(80)
    numpy_scorer = load_numpy_scorer(model_dir, embeddings)
    assert_scores_match(
        numpy_scorer.score(queries, items),
        load_scorer(model_dir, embeddings).score(queries, items),
        numpy_scorer.query_vectors(queries),
        numpy_scorer.item_matrix(),
    )


@pytest.mark.parametrize("which", ["trained_curatornet", "untrained_paper_size"])
def test_numpy_curatornet_equals_tensorflow_on_every_item_and_profiles_of_1_to_50(which, request):
    model_dir, embeddings = request.getfixturevalue(which)
    reference = load_scorer(model_dir, embeddings)
    scorer = load_numpy_scorer(model_dir, embeddings)
    assert scorer.name == "curatornet"
    items = np.arange(len(embeddings))
    tf_vectors = reference.item_vectors(items)
    np.testing.assert_allclose(scorer.item_matrix(), tf_vectors, rtol=RTOL, atol=RTOL * np.abs(tf_vectors).max())
    rng = np.random.default_rng(0)
    profiles = [rng.choice(len(embeddings), size=n, replace=False) for n in range(1, 51)]
    queries = Queries(np.full(50, -1), profiles)
    numpy_scores = scorer.score(queries, items)
    assert numpy_scores.shape == (50, len(items)) and numpy_scores.dtype == np.float32
    assert_scores_match(numpy_scores, reference.score(queries, items), scorer.query_vectors(queries), tf_vectors)
    # Not a constant: the scores rank items differently for different profiles.
    assert np.std(numpy_scores) > 0 and not np.allclose(numpy_scores[0], numpy_scores[-1])


def test_new_items_get_vectors_only_for_themselves(trained_curatornet):
    model_dir, embeddings = trained_curatornet
    scorer = load_numpy_scorer(model_dir, embeddings[:250])
    before = scorer.item_matrix().copy()
    new = scorer.add_items(embeddings[250:])
    assert new.tolist() == list(range(250, 300))
    whole = load_numpy_scorer(model_dir, embeddings)
    np.testing.assert_array_equal(scorer.item_matrix()[:250], before)
    np.testing.assert_allclose(scorer.item_matrix(), whole.item_matrix(), rtol=1e-6, atol=1e-6)


def test_selu_uses_keras_constants():
    x = np.linspace(-5, 5, 101, dtype=np.float32)
    np.testing.assert_allclose(selu(x), tf.keras.activations.selu(x).numpy(), rtol=1e-6, atol=1e-7)


@pytest.fixture(scope="module")
def trained_vbpr(planted):
    root, embeddings, taste = planted
    run = settings("vbpr", l2=1e-4, seed=2, vbpr={"latent_dim": 8, "visual_dim": 8, "learning_rate": 0.01})
    train_model(run, **train_paths(root, root / "data"), out_dir=root / "vbpr")
    return root / "vbpr", embeddings, taste


def test_numpy_vbpr_equals_tensorflow_for_known_unknown_users_and_new_items(trained_vbpr):
    model_dir, embeddings, _ = trained_vbpr
    # Five new items beyond the training catalogue (β_i = 0, γ_i = 0).
    extended = np.concatenate([embeddings, embeddings[:5] + 0.5])
    reference = load_scorer(model_dir, extended)
    scorer = load_numpy_scorer(model_dir, extended)
    users = np.array([0, 3, 17, -1, 10_000])
    queries = Queries(users, [np.array([1])] * len(users))
    items = np.arange(len(extended))
    numpy_scores = scorer.score(queries, items)
    tf_scores = reference.score(queries, items)
    assert_scores_match(numpy_scores, tf_scores, scorer.query_vectors(queries), scorer.item_matrix())
    np.testing.assert_array_equal(numpy_scores[3], numpy_scores[4])  # both unknown: item-side terms only
    assert not np.allclose(numpy_scores[0], numpy_scores[3])


def handmade_vbpr(tmp_path, n_items=200, n_tastes=4, dim=16, seed=0):
    """A VBPR whose item factors encode a planted taste: γ_i is taste i's unit vector (times 3)."""
    rng = np.random.default_rng(seed)
    taste = rng.integers(0, n_tastes, n_items)
    embeddings = rng.standard_normal((n_items, dim)).astype(np.float32)
    weights = {
        "beta_item": rng.normal(0, 0.1, n_items).astype(np.float32),
        "gamma_item": (3.0 * np.eye(n_tastes)[taste]).astype(np.float32),
        "gamma_user": np.zeros((2, n_tastes), np.float32),
        "theta_user": np.zeros((2, 2), np.float32),
        "projection": rng.normal(0, 0.01, (dim, 2)).astype(np.float32),
        "beta_visual": rng.normal(0, 0.01, dim).astype(np.float32),
        "known_users": np.ones(2, bool),
    }
    np.savez(tmp_path / "weights.npz", **weights)
    Standardizer.fit(embeddings).save(tmp_path / "standardizer.npz")
    meta = {
        "model": "vbpr",
        "l2": 1e-3,
        "n_items": n_items,
        "n_users": 2,
        "embedding_dim": dim,
        "hyperparameters": {"latent_dim": n_tastes, "visual_dim": 2},
        "weights": "weights.npz",
        "standardizer": "standardizer.npz",
        "training": {},
    }
    (tmp_path / "model.json").write_text(json.dumps(meta))
    return embeddings, taste


def test_vbpr_fold_in_finds_the_profiles_taste_and_is_seeded(tmp_path):
    embeddings, taste = handmade_vbpr(tmp_path)
    scorer = load_numpy_scorer(tmp_path, embeddings)
    assert isinstance(scorer.model, NumpyVBPR)
    item_side = scorer.score(Queries(np.array([-1]), [np.array([0])]), np.arange(200))[0]
    for wanted in range(4):
        profile = np.flatnonzero(taste == wanted)[:5]
        user = scorer.fold_in_vectors([profile], seed=1)
        scores = scorer.item_matrix() @ user[0]
        candidates = np.setdiff1d(np.arange(200), profile)
        top = candidates[np.argsort(-scores[candidates])[:10]]
        assert (taste[top] == wanted).all(), (wanted, taste[top])
        np.testing.assert_array_equal(user, scorer.fold_in_vectors([profile], seed=1))
    # Without fold-in the item-side ranking mixes tastes.
    assert len(set(taste[np.argsort(-item_side)[:20]])) > 1


def test_load_errors_name_file_field_and_value(trained_curatornet, tmp_path):
    model_dir, embeddings = trained_curatornet
    for name in ("model.json", "standardizer.npz"):
        (tmp_path / name).write_bytes((model_dir / name).read_bytes())
    with np.load(model_dir / "weights.npz") as data:
        weights = dict(data)
    weights["head_1/kernel"] = weights["head_1/kernel"][:, :7]
    np.savez(tmp_path / "weights.npz", **weights)
    with pytest.raises(InputError) as caught:
        load_numpy_model(tmp_path)
    message = str(caught.value)
    assert "weights.npz" in message and "head_1/kernel" in message and "(300, 7)" in message
    del weights["head_1/kernel"]
    np.savez(tmp_path / "weights.npz", **weights)
    with pytest.raises(InputError, match="head_1/kernel.*weight missing"):
        load_numpy_model(tmp_path)
    with pytest.raises(InputError, match="expected vectors of length 32"):
        NumpyScorer(load_numpy_model(model_dir), embeddings[:, :10])


def test_serving_imports_no_tensorflow(trained_curatornet):
    model_dir, embeddings = trained_curatornet
    code = f"""
import sys
import numpy as np
import curatornet.cli, curatornet.serving.app, curatornet.serving.server, curatornet.serving.topk
import curatornet.serving.recommender
from curatornet.models.base import Queries
from curatornet.serving.models import load_numpy_scorer
scorer = load_numpy_scorer({str(model_dir)!r}, np.random.default_rng(0).standard_normal((20, 32)).astype(np.float32))
scorer.score(Queries(np.array([-1]), [np.array([1, 2])]), np.arange(20))
print('tensorflow' in sys.modules, 'keras' in sys.modules)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]
