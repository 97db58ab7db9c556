"""CuratorNet's network: pooling over real items only, one shared tower, save and load."""

from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import pandas as pd  # noqa: E402

from curatornet.models.base import Queries  # noqa: E402
from curatornet.models.curatornet import CuratorNet, CuratorNetScorer  # noqa: E402
from curatornet.models.features import Standardizer  # noqa: E402
from curatornet.models.persistence import write_model_dir  # noqa: E402
from curatornet.models.registry import load_scorer  # noqa: E402

DIM = 48  # differs from every other layer input (2 x 16 = 32)


def small_model(seed: int = 0) -> CuratorNet:
    return CuratorNet(DIM, (16, 16), (24, 16, 16), seed=seed)


@pytest.fixture(scope="module")
def features():
    return tf.constant(np.random.default_rng(0).standard_normal((50, DIM)).astype(np.float32))


PROFILES = [[1, 2, 3], [4], [5, 6], [7, 8, 9, 10, 11]]
POSITIVE, NEGATIVE = [12, 13, 14, 15], [20, 21, 22, 23]


def padded(width: int) -> np.ndarray:
    out = np.full((len(PROFILES), width), -1, np.int32)
    for row, profile in enumerate(PROFILES):
        out[row, : len(profile)] = profile
    return out


def scores_and_gradients(model, features, profiles):
    with tf.GradientTape() as tape:
        x_ui, x_uj = model.padded_triple_scores(features, profiles, POSITIVE, NEGATIVE)
        loss = model.bpr_loss(x_ui, x_uj, 0.01)
    grads = tape.gradient(loss, model.trainable_variables)
    return np.stack([x_ui.numpy(), x_uj.numpy()]), [g.numpy() for g in grads]


def test_padding_changes_no_score_and_no_gradient(features):
    model = small_model()
    base_scores, base_grads = scores_and_gradients(model, features, padded(5))
    for width in (8, 20):
        scores, grads = scores_and_gradients(model, features, padded(width))
        np.testing.assert_array_equal(scores, base_scores)
        for g, h in zip(grads, base_grads):
            np.testing.assert_allclose(g, h, rtol=1e-6, atol=1e-7)
    # And each triple scored alone (no padding at all) agrees.
    for row, profile in enumerate(PROFILES):
        x_ui, x_uj = model.padded_triple_scores(features, np.array([profile]), [POSITIVE[row]], [NEGATIVE[row]])
        np.testing.assert_allclose([x_ui.numpy()[0], x_uj.numpy()[0]], base_scores[:, row], rtol=1e-5)


def test_pooling_is_mean_and_max_of_real_items(features):
    model = small_model()
    h = model.item_vectors(tf.gather(features, [1, 2, 3])).numpy()
    pooled = np.concatenate([h.mean(0), h.max(0)])[None]
    expected = pooled
    for layer in model.head:
        expected = layer(expected)
    got = model.profile_vectors(tf.constant(h), tf.constant([0, 0, 0]))
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5)


def test_one_shared_tower_for_profile_positive_and_negative(features):
    model = small_model()
    # One set of tower weights: the only kernels that read the raw features.
    readers = [v for v in model.trainable_variables if len(v.shape) == 2 and v.shape[0] == DIM]
    assert len(readers) == 1 and len(model.trainable_variables) == 2 * (2 + 3)
    # Item 4 as the whole profile and as the positive, item 9 as the negative:
    # the scores must use the very same tower outputs.
    h = model.item_vectors(tf.gather(features, [4, 9]))
    profile = model.profile_vectors(h[:1], tf.constant([0]))
    x_ui, x_uj = model.padded_triple_scores(features, np.array([[4]]), [4], [9])
    np.testing.assert_allclose(x_ui.numpy(), tf.reduce_sum(profile * h[0], 1).numpy(), rtol=1e-5)
    np.testing.assert_allclose(x_uj.numpy(), tf.reduce_sum(profile * h[1], 1).numpy(), rtol=1e-5)
    # Per distinct item or over the whole catalogue: the same scores and gradients.
    values, rows = tf.constant([1, 2, 3, 4], tf.int32), tf.constant([0, 0, 1, 1], tf.int32)
    pos, neg = tf.constant([5, 6], tf.int32), tf.constant([1, 7], tf.int32)
    results = []
    for mode in ("unique", "catalogue"):
        with tf.GradientTape() as tape:
            x_ui, x_uj = model.triple_scores(features, values, rows, pos, neg, mode)
            loss = model.bpr_loss(x_ui, x_uj, 0.0)
        results.append((x_ui.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for g, h in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(g, h, rtol=1e-4, atol=1e-6)


def test_scorer_matches_network_and_save_load(tmp_path):
    rng = np.random.default_rng(1)
    embeddings = rng.standard_normal((40, DIM)).astype(np.float32) * 3 + 1
    standardizer = Standardizer.fit(embeddings)
    model = small_model(seed=4)
    scorer = CuratorNetScorer(model, standardizer, embeddings)
    queries = Queries(np.array([-1, 3]), [np.array([1, 2]), np.array([5])])
    items = np.arange(40)
    scores = scorer.score(queries, items)
    assert scores.shape == (2, 40) and scores.dtype == np.float32
    x_ui, _ = model.padded_triple_scores(tf.constant(standardizer.transform(embeddings)), np.array([[1, 2]]), [7], [8])
    np.testing.assert_allclose(scores[0, 7], x_ui.numpy()[0], rtol=1e-5)

    write_model_dir(
        tmp_path,
        model,
        standardizer,
        pd.DataFrame(),
        {"model": "curatornet", "n_items": 40, "n_users": 0, "hyperparameters": model.hyperparameters()},
    )
    restored = load_scorer(tmp_path, embeddings)
    assert restored.name == "curatornet"
    np.testing.assert_array_equal(restored.score(queries, items), scores)


def test_training_margins_with_the_stored_transpose_equal_the_scores_and_their_gradients(features):
    model = small_model(seed=2)
    values, rows = tf.constant([1, 2, 3, 4, 4, 9], tf.int32), tf.constant([0, 0, 1, 1, 2, 2], tf.int32)
    pos, neg = tf.constant([5, 6, 7, 1], tf.int32), tf.constant([1, 7, 8, 30], tf.int32)
    profile_rows = tf.constant([0, 1, 2, 2], tf.int32)
    features_t = tf.constant(np.ascontiguousarray(features.numpy().T))
    batch = (features, values, rows, pos, neg, "catalogue", profile_rows)

    def from_scores(*batch):
        x_ui, x_uj = model.triple_scores(*batch)
        return x_ui - x_uj

    assert_same_margins_and_gradients(
        margin_and_gradients(model, model.triple_margins, *batch, features_t=features_t),
        margin_and_gradients(model, from_scores, *batch),
    )


def margin_and_gradients(model, margin_of, *args, **kwargs):
    """The margins ``margin_of(*args, **kwargs)`` computes and the loss's gradient with respect to every weight."""
    with tf.GradientTape() as tape:
        margin = margin_of(*args, **kwargs)
        loss = model.margin_loss(margin, 0.01)
    return margin.numpy(), [g.numpy() for g in tape.gradient(loss, model.trainable_variables)]


def assert_same_margins_and_gradients(got, want):
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-6)
    for got_grad, want_grad in zip(got[1], want[1]):
        assert np.abs(want_grad).max() > 0
        np.testing.assert_allclose(got_grad, want_grad, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("pooling", ["mean+max", "mean", "max"])
@pytest.mark.parametrize("item_mode", ["catalogue", "unique"])
def test_fused_step_kernels_give_the_tensorflow_margins_and_gradients(features, item_mode, pooling):
    model = CuratorNet(DIM, (16, 16), (24, 16, 16), seed=4, pooling=pooling)
    # Profile 0 holds item 3 twice: every column of its max is a tie, whose gradient is shared.
    values, rows = tf.constant([3, 3, 2, 4, 9, 9, 1, 30], tf.int32), tf.constant([0, 0, 1, 1, 1, 2, 3, 3], tf.int32)
    pos, neg = tf.constant([5, 6, 7, 1, 3], tf.int32), tf.constant([1, 7, 8, 30, 3], tf.int32)
    features_t = tf.constant(np.ascontiguousarray(features.numpy().T)) if item_mode == "catalogue" else None
    for profile_rows, n in ((tf.constant([0, 1, 2, 2, 3], tf.int32), 5), (None, 4)):
        batch = (features, values, rows, pos[:n], neg[:n], item_mode, profile_rows)
        assert_same_margins_and_gradients(
            margin_and_gradients(model, model.triple_margins, *batch, features_t=features_t, fused=True),
            margin_and_gradients(model, model.triple_margins, *batch, features_t=features_t),
        )


def test_trainer_fuses_its_step_on_the_cpu():
    from curatornet.models.curatornet import CuratorNetTrainer

    embeddings = np.random.default_rng(1).standard_normal((30, DIM)).astype(np.float32)
    standardizer = Standardizer.fit(embeddings)
    trainer = CuratorNetTrainer(small_model(), standardizer, embeddings, 0.0, 0.01)
    assert trainer.fused is (not tf.config.list_physical_devices("GPU"))
    assert CuratorNetTrainer(small_model(), standardizer, embeddings, 0.0, 0.01, fused=False).fused is False


def test_trainer_validation_reads_its_current_weights():
    from curatornet.models.curatornet import CuratorNetTrainer
    from curatornet.sampling.triples import Triples

    rng = np.random.default_rng(3)
    embeddings = rng.standard_normal((30, DIM)).astype(np.float32)
    standardizer = Standardizer.fit(embeddings)
    trainer = CuratorNetTrainer(small_model(seed=5), standardizer, embeddings, 0.0, 0.05, item_mode="catalogue")
    profiles = [[1, 2], [3], [1, 2], [4, 5, 6], [3]]
    valid = Triples.from_lists(profiles, [7, 8, 9, 10, 11], [12, 13, 14, 15, 16])
    train = Triples.from_lists(profiles, [12, 13, 14, 15, 16], [7, 8, 9, 10, 11])

    def expected_accuracy() -> float:
        # Every triple scored alone by a scorer that computes everything afresh.
        plain = CuratorNetScorer(trainer.model, standardizer, embeddings)
        right = [
            plain.score(Queries(np.array([-1]), [np.asarray(profile)]), np.array([p, n]))[0]
            for profile, p, n in zip(profiles, valid.positive, valid.negative)
        ]
        return float(np.mean([s[0] > s[1] for s in right]))

    queries = Queries(np.array([-1, -1]), [np.array([1, 2]), np.array([4, 5, 6])])
    accuracies = []
    for _ in range(3):
        plain = CuratorNetScorer(trainer.model, standardizer, embeddings).score(queries, np.arange(30))
        np.testing.assert_allclose(trainer.scorer().score(queries, np.arange(30)), plain, rtol=1e-5, atol=1e-6)
        accuracies.append(trainer.pairwise_accuracy(valid))
        assert accuracies[-1] == expected_accuracy()
        for _ in range(5):  # steps that reverse the validation preferences
            trainer.train_step(train.batch(np.arange(len(train)), distinct_profiles=True))
    assert accuracies[0] > accuracies[-1]
