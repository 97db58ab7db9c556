"""The generator: statistics like UGallery's, hard constraints, determinism and planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from curatornet.data.prepare import build_canonical, prepare_dataset
from curatornet.data.synthetic import generate, parameters_for
from curatornet.data.ugallery import RawDataset

# Statistic -> (kind, tolerance): "rel" relative difference, "abs" absolute difference,
# "ratio" the generated value lies within [real / t, real * t].
# The tolerances are those of one fixed seed; heavy-tailed maxima get a ratio.
TOLERANCES = {
    "purchase_rows": ("rel", 0.05),
    "users": ("rel", 0.0),
    "purchased_items": ("rel", 0.08),
    "inventory_items": ("rel", 0.0),
    "artists": ("rel", 0.0),
    "artists_purchased": ("rel", 0.08),
    "items_per_artist_mean": ("rel", 0.02),
    "items_per_artist_median": ("abs", 1.0),
    "items_per_artist_max": ("ratio", 1.5),
    "artists_single_item": ("rel", 0.10),
    "one_of_a_kind_item_share": ("abs", 0.01),
    "one_of_a_kind_purchase_share": ("abs", 0.03),
    "one_of_a_kind_sold_more_than_once": ("abs", 0.0),
    "other_items_sold_more_than_once": ("rel", 0.25),
    "baskets": ("rel", 0.05),
    "basket_size_1": ("rel", 0.05),
    "basket_size_2": ("rel", 0.15),
    "basket_size_3": ("rel", 0.35),
    "basket_size_max": ("ratio", 1.5),
    "baskets_per_user_1": ("rel", 0.05),
    "baskets_per_user_2": ("rel", 0.15),
    "baskets_per_user_3": ("rel", 0.25),
    "baskets_per_user_max": ("ratio", 3.0),
    "items_per_user_1": ("rel", 0.05),
    "items_per_user_2": ("rel", 0.15),
    "items_per_user_3": ("rel", 0.25),
    "items_per_user_max": ("ratio", 3.0),
    "users_with_test_basket": ("rel", 0.05),
    "median_basket_gap_days": ("rel", 0.25),
    "median_upload_to_sale_days": ("rel", 0.25),
    "same_artist_pair_share_basket": ("abs", 0.08),
    "same_artist_pair_share_user": ("abs", 0.05),
}
DATE_TOLERANCE_DAYS = {"first_sale": 7, "last_sale": 7, "first_upload": 365, "last_upload": 7}


@pytest.fixture(scope="module")
def generated():
    """The default preset with small embeddings (the transactions do not depend on their size)."""
    data = generate(parameters_for("default", embedding_dim=128), seed=42)
    canonical = build_canonical(RawDataset(data.items, data.purchases, None), lambda items: in_item_order(data, items))
    return data, canonical


def in_item_order(data, items: pd.DataFrame) -> np.ndarray:
    """The generator's rows follow its own item order; canonical items are sorted by id."""
    return data.embeddings[pd.Index(data.items["item_id"]).get_indexer(items["item_id"])]


def within(kind: str, tolerance: float, generated_value: float, real_value: float) -> bool:
    if kind == "rel":
        return abs(generated_value - real_value) <= tolerance * abs(real_value) + 1e-9
    if kind == "abs":
        return abs(generated_value - real_value) <= tolerance + 1e-9
    return real_value / tolerance <= generated_value <= real_value * tolerance


def test_generated_statistics_match_the_real_ones(generated, ugallery_dir):
    real = prepare_dataset(
        {"format": "ugallery", "path": str(ugallery_dir), "synthetic": {"embedding_dim": 8}}, seed=0
    ).stats
    made = generated[1].stats
    failures = [
        f"{name}: generated {made[name]:.4g}, real {real[name]:.4g} ({kind} {tol})"
        for name, (kind, tol) in TOLERANCES.items()
        if not within(kind, tol, made[name], real[name])
    ]
    for name, days in DATE_TOLERANCE_DAYS.items():
        gap = abs((pd.Timestamp(made[name]) - pd.Timestamp(real[name])).days)
        if gap > days:
            failures.append(f"{name}: generated {made[name]}, real {real[name]} (more than {days} days apart)")
    assert not failures, "\n".join(failures)


def test_hard_constraints_hold(generated):
    data, canonical = generated
    items, purchases = canonical.items, canonical.purchases
    sales = purchases["item"].value_counts()
    assert not items["one_of_a_kind"].to_numpy()[sales.index[sales > 1]].any()
    upload = items["upload_time"].to_numpy()[purchases["item"].to_numpy()]
    assert (purchases["time"].to_numpy() > upload).all()
    assert purchases["time"].min() >= pd.Timestamp("2014-01-01")
    assert purchases["time"].max() < pd.Timestamp("2018-06-01")
    assert items["upload_time"].min() >= pd.Timestamp("2007-01-01")
    assert items["upload_time"].max() <= pd.Timestamp("2018-06-01")
    assert items["item_id"].is_unique and data.purchases["user_id"].str.len().eq(16).all()
    # A one-of-a-kind item leaves the inventory when sold: nobody buys it before its upload or twice.
    assert not purchases.duplicated(["user", "basket", "item"]).any()


def test_same_seed_gives_identical_data_and_another_seed_does_not():
    params = parameters_for("tiny", embedding_dim=16)
    first, second, other = generate(params, 7), generate(params, 7), generate(params, 8)
    pd.testing.assert_frame_equal(first.items, second.items)
    pd.testing.assert_frame_equal(first.purchases, second.purchases)
    np.testing.assert_array_equal(first.embeddings, second.embeddings)
    assert not first.purchases["time"].equals(other.purchases["time"])


def test_tiny_preset_is_small_with_returning_users_and_scale_multiplies():
    tiny = generate(parameters_for("tiny", embedding_dim=8), 1)
    canonical = build_canonical(RawDataset(tiny.items, tiny.purchases, None), lambda items: in_item_order(tiny, items))
    assert 200 <= len(tiny.items) <= 600
    assert 100 <= canonical.stats["users"] <= 200
    assert canonical.stats["users_with_test_basket"] >= 20
    assert canonical.stats["basket_size_2"] >= 5
    double = generate(parameters_for("tiny", scale=2.0, embedding_dim=8), 1)
    assert len(double.items) == 2 * len(tiny.items)
    assert double.purchases["user_id"].nunique() > 1.8 * tiny.purchases["user_id"].nunique()


def test_embeddings_look_like_pooled_cnn_features(generated):
    features = generate(parameters_for("tiny", embedding_dim=2048), 3).embeddings
    assert features.shape == (400, 2048) and features.dtype == np.float32
    assert features.min() >= 0.0
    assert 0.3 <= features.mean() <= 0.6
    assert 0.05 <= (features == 0).mean() <= 0.4
    assert np.percentile(features, 99.9) > 8 * np.median(features)  # long right tail


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_planted_structure_is_real(generated):
    data, canonical = generated
    rng = np.random.default_rng(0)
    embeddings = canonical.embeddings
    items = canonical.items
    n = len(items)
    # Items of one artist are closer than random pairs.
    artist = pd.factorize(items["artist_id"])[0]
    order = np.argsort(artist, kind="stable")
    same = artist[order[:-1]] == artist[order[1:]]
    left, right = rng.integers(0, n, 5000), rng.integers(0, n, 5000)
    random_similarity = cosine(embeddings[left], embeddings[right]).mean()
    assert cosine(embeddings[order[:-1][same]], embeddings[order[1:][same]]).mean() > random_similarity + 0.1

    # Basket-mates are more alike than two random items of the same user's history.
    purchases = canonical.purchases
    keyed = purchases.assign(key=purchases["user"].astype(np.int64) * 10_000 + purchases["basket"])
    first = keyed.drop_duplicates("key")
    mates = keyed.merge(first[["key", "item"]], on="key", suffixes=("", "_first"))
    mates = mates[mates["item"] != mates["item_first"]]
    basket_similarity = cosine(embeddings[mates["item"]], embeddings[mates["item_first"]]).mean()
    history = purchases.groupby("user")["item"].agg(list)
    history = history[history.map(len) >= 2]
    pairs = np.array([rng.choice(h, 2, replace=False) for h in history.sample(500, random_state=0, replace=True)])
    history_similarity = cosine(embeddings[pairs[:, 0]], embeddings[pairs[:, 1]]).mean()
    assert basket_similarity > history_similarity > random_similarity

    # k-means on the embeddings finds the planted styles.
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import adjusted_rand_score

    sample = rng.choice(n, 2000, replace=False)
    reduced = PCA(n_components=20, random_state=0).fit_transform(embeddings[sample])
    labels = KMeans(n_clusters=40, n_init=1, random_state=0).fit_predict(reduced)
    item_style = data.item_style[pd.Index(data.items["item_id"]).get_indexer(items["item_id"])]
    assert adjusted_rand_score(item_style[sample], labels) > 0.5
