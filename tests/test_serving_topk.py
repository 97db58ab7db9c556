"""Batch top-k: k rows per user, never a purchased or sold one-of-a-kind item, ordered by score, any scorer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from planted import write_embeddings
from serving_helpers import write_vbpr_dir

from curatornet.artifacts import ITEMS_SCHEMA, PURCHASES_SCHEMA
from curatornet.errors import InputError
from curatornet.io import write_parquet
from curatornet.models.base import Queries
from curatornet.models.baselines import VisRank
from curatornet.serving.data import load_data
from curatornet.serving.models import write_untrained_curatornet
from curatornet.serving.topk import TOP_K_SCHEMA, batch_top_k, load_batch_scorer, write_top_k

N_ITEMS, DIM, N_USERS = 40, 8, 7
BIG_BUYER = 6  # buys so much that fewer than k candidates are left


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """40 items (even ones one-of-a-kind), 7 users with made-up purchase histories."""
    root = tmp_path_factory.mktemp("topk")
    rng = np.random.default_rng(3)
    items = pd.DataFrame(
        {
            "item": np.arange(N_ITEMS, dtype=np.int32),
            "item_id": [f"it{k:02d}" for k in range(N_ITEMS)],
            "artist_id": [f"a{k % 5}" for k in range(N_ITEMS)],
            "upload_time": pd.Timestamp("2015-01-01") + pd.to_timedelta(np.arange(N_ITEMS), unit="D"),
            "one_of_a_kind": np.arange(N_ITEMS) % 2 == 0,
        }
    )
    rows = []
    for user in range(N_USERS):
        bought = rng.choice(N_ITEMS, size=30 if user == BIG_BUYER else int(rng.integers(1, 7)), replace=False)
        rows += [
            (user, f"user{user}", int(item), pd.Timestamp("2016-01-01") + pd.Timedelta(days=int(item)), 0, "train")
            for item in bought
        ]
    rows.append((0, "user0", int(rows[0][2]), pd.Timestamp("2017-01-01"), 1, "test"))  # a repeat purchase
    purchases = pd.DataFrame(rows, columns=PURCHASES_SCHEMA.names)
    data = root / "data"
    write_parquet(items, data / "items.parquet", ITEMS_SCHEMA)
    write_parquet(purchases, data / "purchases.parquet", PURCHASES_SCHEMA)
    embeddings = rng.standard_normal((N_ITEMS, DIM)).astype(np.float32)
    write_embeddings(embeddings, data / "embeddings.parquet")
    ids = items["item_id"].tolist()
    write_untrained_curatornet(root / "curatornet", embeddings, (16, 16), (24, 16, 16), seed=1, item_ids=ids)
    write_vbpr_dir(root / "vbpr", embeddings, N_USERS, known=np.arange(N_USERS) != 2)  # user 2: no factors
    return root, items, purchases, embeddings


def expected_top(scorer, items, purchases, user, k):
    """Brute force for one user: every candidate scored, best first (ties by item index)."""
    bought = np.unique(purchases.loc[purchases["user"] == user, "item"].to_numpy())
    sold = np.zeros(N_ITEMS, bool)
    sold[purchases["item"].to_numpy()] = True
    inventory = np.flatnonzero(~(sold & items["one_of_a_kind"].to_numpy()))
    candidates = np.setdiff1d(inventory, bought)
    scores = scorer.score(Queries(np.array([user]), [bought]), candidates)[0]
    order = np.lexsort((candidates, -scores))[:k]
    return candidates[order], scores[order], bought, inventory


@pytest.mark.parametrize("method", ["curatornet", "vbpr", "visrank"])
def test_every_user_gets_their_top_k_of_the_final_inventory(folder, method):
    root, items, purchases, embeddings = folder
    data = load_data(root / "data")
    scorer = VisRank(embeddings) if method == "visrank" else load_batch_scorer(root / method, data)
    k = 10
    frame = batch_top_k(scorer, data, k, block=3)  # blocks of 3 users: several blocks, one partial
    assert list(frame.columns) == ["user_id", "rank", "item_id", "artist_id", "score", "model"]
    assert set(frame["model"]) == {method}
    assert frame["user_id"].unique().tolist() == [f"user{u}" for u in range(N_USERS)]
    for user in range(N_USERS):
        rows = frame[frame["user_id"] == f"user{user}"]
        best, scores, bought, inventory = expected_top(scorer, items, purchases, user, k)
        assert len(rows) == min(k, len(np.setdiff1d(inventory, bought)))
        if user != BIG_BUYER:
            assert len(rows) == k
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
        chosen = rows["item_id"].str[2:].astype(int).to_numpy()
        assert not set(chosen) & set(bought), "a purchased item was recommended"
        assert set(chosen) <= set(inventory), "a sold one-of-a-kind item was recommended"
        assert (np.diff(rows["score"].to_numpy()) <= 0).all()
        np.testing.assert_array_equal(chosen, best)
        np.testing.assert_allclose(rows["score"].to_numpy(), scores, rtol=1e-5, atol=1e-6)
        assert rows["artist_id"].tolist() == [f"a{c % 5}" for c in chosen]
    assert len(frame[frame["user_id"] == f"user{BIG_BUYER}"]) < k


def test_vbpr_user_without_factors_gets_the_item_side_ranking(folder):
    root, items, purchases, _ = folder
    data = load_data(root / "data")
    frame = batch_top_k(load_batch_scorer(root / "vbpr", data), data, 5)
    scorer = load_batch_scorer(root / "vbpr", data)
    bias = scorer.item_matrix()[:, 0]  # β_i + β′·f_i
    chosen = frame.loc[frame["user_id"] == "user2", "item_id"].str[2:].astype(int).to_numpy()
    best, _, _, _ = expected_top(scorer, items, purchases, 2, 5)
    np.testing.assert_array_equal(chosen, best)
    assert (np.diff(bias[chosen]) <= 0).all()


def test_faiss_index_scanning_every_cell_equals_exact(folder):
    pytest.importorskip("faiss", reason="faiss-cpu not installed (pip install -e .[index])")
    root, _, _, _ = folder
    data = load_data(root / "data")
    scorer = load_batch_scorer(root / "curatornet", data)
    exact = batch_top_k(scorer, data, 8)
    # Every cell scanned and every candidate re-ranked exactly: the approximation vanishes.
    approximate = batch_top_k(scorer, data, 8, index="faiss", n_lists=4, n_probe=4, k_factor=100)
    pd.testing.assert_frame_equal(exact.drop(columns="score"), approximate.drop(columns="score"))
    np.testing.assert_allclose(exact["score"], approximate["score"], rtol=1e-5, atol=1e-5)


def test_write_top_k_writes_the_schema_atomically_and_accepts_visrank(folder, tmp_path):
    root, _, _, _ = folder
    out = tmp_path / "out" / "topk.parquet"
    frame = write_top_k("visrank", root / "data", 4, out)
    table = pq.read_table(out)
    assert table.schema.equals(TOP_K_SCHEMA)
    assert table.num_rows == len(frame) and set(frame["model"]) == {"visrank"}
    assert [p.name for p in out.parent.iterdir()] == ["topk.parquet"]  # no temporary file left
    write_top_k(root / "curatornet", root / "data", 4, out)
    assert set(pq.read_table(out).column("model").to_pylist()) == {"curatornet"}


def test_model_of_another_catalogue_is_refused(folder, tmp_path):
    root, items, _, embeddings = folder
    other_ids = [f"other{k}" for k in range(N_ITEMS)]
    write_untrained_curatornet(tmp_path / "model", embeddings, (16, 16), (24, 16, 16), item_ids=other_ids)
    with pytest.raises(InputError) as caught:
        write_top_k(tmp_path / "model", root / "data", 4, tmp_path / "out.parquet")
    message = str(caught.value)
    assert "items.parquet" in message and "fingerprint" in message and "another catalogue" in message
    assert not (tmp_path / "out.parquet").exists()


def test_k_below_one_is_refused(folder):
    root, _, _, embeddings = folder
    with pytest.raises(InputError, match="'k'.*at least 1"):
        batch_top_k(VisRank(embeddings), load_data(root / "data"), 0)
