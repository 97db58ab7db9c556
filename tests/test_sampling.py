"""Triple sampling: every guideline's definition checked on every triple of a small hand-made run."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from curatornet import parts
from curatornet.artifacts import TRIPLETS_SCHEMA
from curatornet.errors import InputError
from curatornet.io import write_parquet
from curatornet.registry import GUIDELINES
from curatornet.sampling import (
    SamplingData,
    build_profiles,
    plan,
    random_budget,
    sample_shard,
    shard_seed,
    triple_hashes,
)
from curatornet.sampling.arrays import first_occurrence_mask, ranges, sorted_contains
from curatornet.sampling.guidelines import NegativeSampler

# Artists: a0 0-3, a1 4-6, a2 7-11, a3 12-13, unknown 14-16, a4 17-20, a5 21-23; 24-59 by b0-b8
# (never bought: they give the users admissible negatives). Six clusters: item % 6.
ARTISTS = ["a0"] * 4 + ["a1"] * 3 + ["a2"] * 5 + ["a3"] * 2 + [None] * 3 + ["a4"] * 4 + ["a5"] * 3
ARTISTS += [f"b{k}" for k in range(9) for _ in range(4)]
N_ITEMS = len(ARTISTS)
CLUSTERS = [i % 6 for i in range(N_ITEMS)]
# (user, basket, items, split). The last basket of a user with >= 2 baskets is the test basket;
# the one before it may be a validation basket (only user 2's is, the others stay train here).
BASKETS = [
    (0, 0, [0, 1, 4], "train"),
    (0, 1, [2], "train"),
    (0, 2, [7, 8], "test"),  # test items never show up as u's profile or positives
    (1, 0, [12], "train"),  # a single basket: train
    (2, 0, [14, 15], "train"),  # unknown artists
    (2, 1, [18, 0], "train"),
    (2, 2, [19], "valid"),  # a validation basket is hidden from sampling like the test basket
    (2, 3, [20], "test"),
    (3, 0, [5], "train"),
    (3, 1, [5, 6], "train"),  # item 5 bought again
    (3, 2, [21], "test"),
    (4, 0, [6, 7], "train"),  # user 4 covers all six clusters: no admissible negative
    (4, 1, [8, 9, 10, 11], "train"),
    (4, 2, [23], "test"),
    (5, 0, [16], "train"),
    (5, 1, [17], "test"),
]
BUDGET = {"train": 30, "valid": 8}
SHARDS = parts.shard_names()


def items_frame() -> pd.DataFrame:
    return pd.DataFrame({"item": np.arange(N_ITEMS, dtype=np.int32), "artist_id": pd.array(ARTISTS, dtype="string")})


def purchases_frame() -> pd.DataFrame:
    rows = [(u, item, b, split) for u, b, items, split in BASKETS for item in items]
    frame = pd.DataFrame(rows, columns=["user", "item", "basket", "split"])
    return frame.astype({"user": np.int32, "item": np.int32, "basket": np.int32})


def clusters_frame() -> pd.DataFrame:
    return pd.DataFrame({"item": np.arange(N_ITEMS, dtype=np.int32), "cluster": np.array(CLUSTERS, dtype=np.int32)})


@pytest.fixture(scope="module")
def data() -> SamplingData:
    return SamplingData.from_tables(items_frame(), purchases_frame(), clusters_frame())


class Reference:
    """The paper's sets, computed the slow obvious way from the hand-made baskets."""

    def __init__(self):
        self.baskets = {(u, b): set(items) for u, b, items, split in BASKETS if split == "train"}
        self.owned: dict[int, set] = {}
        for (u, _), items in self.baskets.items():
            self.owned.setdefault(u, set()).update(items)
        self.artists = {u: {self.artist(i) for i in s} for u, s in self.owned.items()}
        self.clusters = {u: {CLUSTERS[i] for i in s} for u, s in self.owned.items()}

    @staticmethod
    def artist(item: int):
        return ARTISTS[item] if ARTISTS[item] is not None else ("unknown", item)  # unknown: its own artist

    def admissible(self, u: int, j: int) -> bool:
        return j not in self.owned[u] and self.artist(j) not in self.artists[u] and CLUSTERS[j] not in self.clusters[u]

    def up_to(self, u: int, k: int) -> set:
        return set().union(*(s for (v, b), s in self.baskets.items() if v == u and b <= k))


REF = Reference()


def check_triple(guideline: str, profile: list, i: int, j: int, u: int, max_profile: int) -> None:
    """Assert the definition of ``guideline`` on one triple (paper section 3.5)."""
    p = set(profile)
    assert len(p) == len(profile), "profile repeats an item"
    max_profile = max_profile or len(REF.artists) * 1000  # None: whole profiles
    assert len(profile) <= max_profile

    def matches(expected: set) -> bool:
        if len(expected) <= max_profile:
            return p == expected
        return p <= expected and len(p) == max_profile  # subsampled: a subset of the right size

    def profile_is(expected: set) -> None:
        assert matches(expected), (sorted(p), sorted(expected))

    if guideline in ("d5_single_item", "d6_same_artist"):
        assert u == -1 and len(profile) == 1
        (anchor,) = profile
        if guideline == "d5_single_item":
            assert i == anchor and j != anchor
        else:
            assert i != anchor and REF.artist(i) == REF.artist(anchor) and REF.artist(j) != REF.artist(anchor)
        return
    owned = REF.owned[u]
    if guideline == "d1_basket":
        baskets = [s for (v, _), s in REF.baskets.items() if v == u and i in s and len(s) >= 2]
        assert any(p == s - {i} for s in baskets)
        assert REF.admissible(u, j)
    elif guideline == "d2_next_basket":
        # i is in basket k of u (k >= 1, a training basket), the profile is baskets 0..k-1
        ks = [k for (v, k), s in REF.baskets.items() if v == u and k >= 1 and i in s]
        assert any(matches(REF.up_to(u, k - 1)) for k in ks)
        assert REF.admissible(u, j)
    elif guideline == "d3_artist_cluster":
        profile_is(owned)
        assert i not in owned and REF.artist(i) in REF.artists[u] and CLUSTERS[i] in REF.clusters[u]
        assert REF.admissible(u, j)
    elif guideline == "d4_profile":
        profile_is(owned)
        assert i in owned and i in p  # the positive belongs to its profile, even when subsampled
        assert j not in owned
    elif guideline == "random":
        assert len(owned) >= 2
        assert i in owned
        profile_is(owned - {i})
        assert j not in owned
    elif guideline == "bpr":
        assert profile == [] and u >= 0
        assert i in owned and j not in owned
    else:  # pragma: no cover
        raise AssertionError(guideline)


@pytest.mark.parametrize("max_profile", [None, 2])
@pytest.mark.parametrize("guideline", parts.shard_names())
def test_every_triple_follows_its_guideline(data, guideline, max_profile):
    table, report = sample_shard(data, guideline, BUDGET["train"], BUDGET["valid"], seed=7, max_profile=max_profile)
    assert table.schema.equals(TRIPLETS_SCHEMA)
    rows = table.to_pylist()
    assert [r["split"] for r in rows] == ["train"] * report.produced["train"] + ["valid"] * report.produced["valid"]
    assert report.produced == BUDGET, report  # this data set has enough distinct triples
    for r in rows:
        check_triple(guideline, r["profile"], r["positive"], r["negative"], r["user"], max_profile)
    # Hashes: stored ones are right, all distinct, so train and valid are disjoint.
    hashes = table.column("hash").to_numpy()
    column = table.column("profile").combine_chunks()
    expected = triple_hashes(
        column.offsets.to_numpy(),
        column.values.to_numpy(),
        table.column("positive").to_numpy(),
        table.column("negative").to_numpy(),
    )
    np.testing.assert_array_equal(hashes, expected)
    assert len(np.unique(hashes)) == len(hashes)


def test_test_and_validation_baskets_stay_hidden(data):
    # (user, item) pairs bought only in a test or validation basket
    hidden = {(u, i) for u, _, items, split in BASKETS if split != "train" for i in items if i not in REF.owned[u]}
    assert (2, 19) in hidden
    for guideline in ("d1_basket", "d2_next_basket", "d3_artist_cluster", "d4_profile", "random", "bpr"):
        table, _ = sample_shard(data, guideline, 40, 0, seed=1, max_profile=None)
        for r in table.to_pylist():
            assert not any((r["user"], i) in hidden for i in r["profile"])
            if guideline != "d3_artist_cluster":  # D3's positives are unbought items by definition
                assert (r["user"], r["positive"]) not in hidden


def test_users_without_admissible_negative_are_skipped(data, caplog):
    caplog.set_level(logging.INFO)
    table, report = sample_shard(data, "d1_basket", 30, 0, seed=3, max_profile=64)
    assert 4 not in set(table.column("user").to_pylist())  # user 4 bought from every cluster
    # user 4's baskets {6, 7} and {8, 9, 10, 11} give 6 hidden-item cases, all skipped
    assert report.skipped["cases without an admissible negative"] == 6
    assert report.skipped["baskets with fewer than 2 items"] == sum(
        1 for _, _, items, split in BASKETS if split == "train" and len(items) < 2
    )
    assert "skipped 6 cases without an admissible negative" in caplog.text
    _, report = sample_shard(data, "d2_next_basket", 10, 0, seed=3, max_profile=64)
    assert report.skipped["users with fewer than 2 training baskets"] == 2  # users 1 and 5
    _, report = sample_shard(data, "random", 10, 0, seed=3, max_profile=64)
    assert report.skipped["users with a single training item"] == 2  # users 1 and 5
    _, report = sample_shard(data, "d6_same_artist", 10, 0, seed=3, max_profile=64)
    assert report.skipped["items whose artist has no other item"] == 3  # the three unknown artists


def test_bpr_shard_covers_every_user_with_a_training_item(data):
    # Random sampling for VBPR: users with a single training item (1 and 5) get triples too,
    # while CuratorNet's random shard needs a profile left after hiding the positive.
    bpr, _ = sample_shard(data, "bpr", 400, 0, seed=2, max_profile=None)
    with_profile, _ = sample_shard(data, "random", 400, 0, seed=2, max_profile=None)
    assert set(bpr.column("user").to_pylist()) == set(REF.owned)
    single = {u for u, items in REF.owned.items() if len(items) == 1}
    assert single == {1, 5}
    assert single <= set(bpr.column("user").to_pylist())
    assert not single & set(with_profile.column("user").to_pylist())


def test_short_shard_when_the_guideline_runs_out(data, caplog):
    # D1 here has 7 usable cases with few admissible negatives each: far fewer than 10,000 triples.
    table, report = sample_shard(data, "d1_basket", 10_000, 100, seed=5, max_profile=64)
    assert 0 < report.produced["train"] < 10_000
    hashes = table.column("hash").to_numpy()
    assert len(np.unique(hashes)) == len(hashes)
    assert "only" in caplog.text


def test_fixed_seed_gives_identical_shards(data):
    for guideline in SHARDS:
        first, _ = sample_shard(data, guideline, 30, 5, seed=shard_seed(42, guideline), max_profile=2)
        again, _ = sample_shard(data, guideline, 30, 5, seed=shard_seed(42, guideline), max_profile=2)
        assert first.equals(again)
    first, _ = sample_shard(data, "d5_single_item", 30, 5, seed=shard_seed(42, "d5_single_item"), max_profile=2)
    other, _ = sample_shard(data, "d5_single_item", 30, 5, seed=shard_seed(43, "d5_single_item"), max_profile=2)
    assert not other.equals(first)


def test_shard_seeds_and_random_budget():
    seeds = {shard_seed(42, s) for s in SHARDS}
    assert len(seeds) == len(SHARDS)
    assert shard_seed(42, "d4_profile") == parts.shard("d4_profile").seed(42) != shard_seed(43, "d4_profile")
    budgets = {"d1_basket": {"train": 10, "valid": 1}, "d6_same_artist": {"train": 5, "valid": 2}}
    assert random_budget(budgets) == {"train": 15, "valid": 3}
    with pytest.raises(InputError) as info:
        parts.shard("d7")
    assert info.value.field == "guideline" and info.value.value == "d7"


def test_the_d4_shard_is_byte_identical_with_and_without_d3_among_the_guidelines(data, tmp_path):
    """A shard's seed hashes its name: adding or removing another guideline never changes its bytes."""
    config = {"seed": 42, "sampling": {"budgets": {g: BUDGET for g in GUIDELINES.names()}, "max_profile": 4}}

    def d4_bytes(path):
        params = plan.shard_params(config, "d4_profile")
        table, _ = sample_shard(data, "d4_profile", params["train"], params["valid"], params["seed"], 4)
        write_parquet(table, path, TRIPLETS_SCHEMA)
        return path.read_bytes()

    with_d3 = d4_bytes(tmp_path / "with_d3.parquet")
    with GUIDELINES.scope():
        GUIDELINES.unregister("d3_artist_cluster")
        assert "d3_artist_cluster" not in parts.guideline_names()
        without_d3 = d4_bytes(tmp_path / "without_d3.parquet")
    assert parts.guideline_names().index("d3_artist_cluster") == 2  # restored, in its place
    assert without_d3 == with_d3


def test_hash_is_order_independent_in_the_profile():
    offsets = np.array([0, 3, 6, 9, 12, 15])
    values = np.array([1, 2, 3, 3, 1, 2, 2, 3, 1, 1, 2, 3, 1, 2, 4])
    positive = np.array([5, 5, 5, 6, 5])
    negative = np.array([6, 6, 6, 5, 6])
    h = triple_hashes(offsets, values, positive, negative)
    assert h.dtype == np.uint64
    assert h[0] == h[1] == h[2]  # same set, any order
    assert h[3] != h[0]  # positive and negative swapped
    assert h[4] != h[0]  # another profile


def test_first_occurrence_mask_matches_a_plain_loop():
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 50, size=400).astype(np.uint64)
    seen, expected = set(), []
    for k in keys.tolist():
        expected.append(k not in seen)
        seen.add(k)
    np.testing.assert_array_equal(first_occurrence_mask(keys), expected)
    # the path for many hash keys (a low-bits table before the binary search)
    hashes = rng.integers(0, 2**63, size=100_000, dtype=np.uint64)
    hashes[rng.integers(0, 100_000, 3000)] = hashes[rng.integers(0, 100_000, 3000)]
    seen, expected = set(), []
    for k in hashes.tolist():
        expected.append(k not in seen)
        seen.add(k)
    np.testing.assert_array_equal(first_occurrence_mask(hashes), expected)
    np.testing.assert_array_equal(ranges(np.array([5, 0, 9]), np.array([2, 0, 3])), [5, 6, 9, 10, 11])
    # look-ups in a big sorted array (queries sorted first)
    evens = np.arange(0, 2_200_000, 2, dtype=np.uint64)
    queries = rng.integers(0, 2_400_000, size=80_000).astype(np.uint64)
    np.testing.assert_array_equal(sorted_contains(evens, queries), (queries % 2 == 0) & (queries < 2_200_000))


def test_subsampled_profiles_are_uniform_and_keep_the_kept_item():
    rng = np.random.default_rng(1)
    n, length, m = 20_000, 10, 3
    source = np.arange(100, 100 + length, dtype=np.int32)
    start = np.zeros(n, dtype=np.int64)
    lengths = np.full(n, length)
    offsets, values = build_profiles(rng, source, start, lengths, None, None, m)
    assert np.all(np.diff(offsets) == m)
    rows = values.reshape(n, m)
    assert all(len(set(r)) == m for r in rows[:500].tolist())
    share = np.bincount(values - 100, minlength=length) / n
    np.testing.assert_allclose(share, m / length, atol=0.02)
    # skip position 4 and keep position 7: 7 in every profile, 4 in none, the others equally often
    offsets, values = build_profiles(rng, source, start, lengths, np.full(n, 4), np.full(n, 7), m)
    rows = values.reshape(n, m)
    assert np.all((rows == 107).any(axis=1)) and not np.any(rows == 104)
    share = np.bincount(values - 100, minlength=length) / n
    others = [k for k in range(length) if k not in (4, 7)]
    np.testing.assert_allclose(share[others], (m - 1) / (length - 2), atol=0.02)


def test_exact_negative_draw_when_rejection_fails():
    # 50 items; the buyer of item 0 (artist x, cluster 0) can only get item 49 as a negative.
    items = pd.DataFrame({"item": np.arange(50), "artist_id": ["x"] * 25 + ["y"] * 24 + ["z"]})
    clusters = pd.DataFrame({"item": np.arange(50), "cluster": [0] * 49 + [1]})
    purchases = pd.DataFrame({"user": [0], "item": [0], "basket": [0], "split": ["train"]})
    data = SamplingData.from_tables(items, purchases, clusters)
    sampler = NegativeSampler(data, admissible=True)
    assert sampler.counts().tolist() == [1]
    negatives = sampler.sample(np.random.default_rng(0), np.zeros(200, dtype=np.int64))
    assert set(negatives.tolist()) == {49}


def random_market(n_users: int, n_items: int, n_artists: int, n_clusters: int, seed: int = 0) -> SamplingData:
    """Random purchases (1-6 items per user) over a catalogue with random artists and clusters."""
    rng = np.random.default_rng(seed)
    items = pd.DataFrame({"item": np.arange(n_items), "artist_id": rng.integers(0, n_artists, n_items).astype(str)})
    clusters = pd.DataFrame({"item": np.arange(n_items), "cluster": rng.integers(0, n_clusters, n_items)})
    per_user = rng.integers(1, 7, n_users)
    user = np.repeat(np.arange(n_users), per_user)
    purchases = pd.DataFrame(
        {"user": user, "item": rng.integers(0, n_items, len(user)), "basket": rng.integers(0, 3, len(user))}
    ).assign(split="train")
    return SamplingData.from_tables(items, purchases, clusters)


@pytest.mark.parametrize("admissible", [True, False])
def test_negative_counts_and_lookups_match_the_allowed_matrix(data, admissible):
    for market in (data, random_market(300, 500, 40, 12)):
        sampler = NegativeSampler(market, admissible)
        users = np.arange(market.n_users)
        allowed = sampler.allowed(users)
        np.testing.assert_array_equal(sampler.counts(), allowed.sum(axis=1))
        grid_users, grid_items = np.divmod(np.arange(market.n_users * market.n_items), market.n_items)
        np.testing.assert_array_equal(sampler.is_allowed(grid_users, grid_items), allowed.reshape(-1))
    # the reference sets of the hand-made data agree too
    sampler = NegativeSampler(data, admissible=True)
    for u in REF.owned:
        expected = [j for j in range(N_ITEMS) if REF.admissible(u, j)]
        assert np.flatnonzero(sampler.allowed(np.array([u]))[0]).tolist() == expected


def test_negative_sampler_memory_grows_with_purchases_not_users_times_artists():
    import tracemalloc

    market = random_market(20_000, 20_000, 20_000, 100)  # a dense users x artists table: 400 MB
    tracemalloc.start()
    try:
        sampler = NegativeSampler(market, admissible=True)
        counts = sampler.counts()
        negatives = sampler.sample(np.random.default_rng(0), np.arange(market.n_users))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, f"peak {peak / 2**20:.0f} MB"
    assert (counts > 0).all() and sampler.is_allowed(np.arange(market.n_users), negatives).all()


@pytest.mark.parametrize(
    "purchases_change, field",
    [
        (lambda p: p.drop(columns=["basket"]), "basket"),
        (lambda p: p.assign(item=p["item"].where(p.index != 3, 99)), "item"),
        (lambda p: p.assign(split=p["split"].where(p.index != 0, "validation")), "split"),
    ],
)
def test_bad_purchases_raise_input_error(purchases_change, field):
    with pytest.raises(InputError) as info:
        SamplingData.from_tables(
            items_frame(), purchases_change(purchases_frame()), clusters_frame(), sources={"purchases": "p.parquet"}
        )
    assert info.value.field == field and info.value.file == "p.parquet"


def test_bad_items_and_clusters_raise_input_error():
    with pytest.raises(InputError) as info:
        SamplingData.from_tables(items_frame().drop(columns=["artist_id"]))
    assert info.value.field == "artist_id"
    with pytest.raises(InputError) as info:
        SamplingData.from_tables(items_frame().assign(item=np.arange(1, N_ITEMS + 1)))
    assert info.value.field == "item"
    with pytest.raises(InputError) as info:
        SamplingData.from_tables(items_frame(), purchases_frame(), clusters_frame().iloc[:-1])
    assert info.value.field == "item"
    data = SamplingData.from_tables(items_frame(), purchases_frame())
    with pytest.raises(InputError) as info:
        sample_shard(data, "d3_artist_cluster", 5, 0, seed=0, max_profile=4)
    assert info.value.field == "cluster"
    with pytest.raises(InputError):
        sample_shard(data, "d4_profile", -1, 0, seed=0, max_profile=4)


def test_arrow_tables_are_accepted(data):
    from_arrow = SamplingData.from_tables(
        pa.Table.from_pandas(items_frame()),
        pa.Table.from_pandas(purchases_frame()),
        pa.Table.from_pandas(clusters_frame()),
    )
    np.testing.assert_array_equal(from_arrow.user_items, data.user_items)
    np.testing.assert_array_equal(from_arrow.first_items, data.first_items)
    np.testing.assert_array_equal(from_arrow.artist, data.artist)
    assert (
        len(set(from_arrow.artist[14:17].tolist()) | set(from_arrow.artist[:14].tolist())) == 4 + 3
    )  # unknowns unique
