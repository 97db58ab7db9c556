"""Merging shards by hash: first copy wins (D1..D6 order), train and valid disjoint, report counts."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from test_sampling import clusters_frame, items_frame, purchases_frame

from curatornet import parts
from curatornet.artifacts import MERGED_TRIPLETS_SCHEMA
from curatornet.errors import InputError
from curatornet.sampling import SamplingData, Triples, merge_shards, sample_shard


def shard(triples: list[tuple[list[int], int, int, str]]) -> pa.Table:
    """A shard from (profile, positive, negative, split) tuples, train rows first."""
    lengths = [len(p) for p, *_ in triples]
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    values = np.array([i for p, *_ in triples for i in p], dtype=np.int32)
    t = Triples(
        offsets,
        values,
        np.array([x[1] for x in triples], np.int32),
        np.array([x[2] for x in triples], np.int32),
        np.zeros(len(triples), np.int32),
    )
    tables = []
    for split in ("train", "valid"):
        rows = np.array([k for k, x in enumerate(triples) if x[3] == split], dtype=np.int64)
        tables.append(t.take(rows).to_arrow(split))
    return pa.concat_tables(tables)


def test_first_copy_wins_and_splits_are_disjoint():
    shards = {
        "d1_basket": shard([([1, 2], 3, 4, "train"), ([5], 6, 7, "train"), ([9], 9, 8, "valid")]),
        # same triple as D1's first with the profile in another order: a duplicate
        "d2_next_basket": shard([([2, 1], 3, 4, "train"), ([1, 2], 4, 3, "train"), ([5], 6, 7, "valid")]),
        # a repeat inside valid, and a valid triple equal to D1's validation one
        "d3_artist_cluster": shard([([7], 1, 2, "valid"), ([7], 1, 2, "valid"), ([9], 9, 8, "valid")]),
    }
    merged, report = merge_shards(shards)
    train, valid = merged["train"], merged["valid"]
    assert train.schema.equals(MERGED_TRIPLETS_SCHEMA) and valid.schema.equals(MERGED_TRIPLETS_SCHEMA)
    assert train.column("guideline").to_pylist() == ["d1_basket", "d1_basket", "d2_next_basket"]
    assert train.column("positive").to_pylist() == [3, 6, 4]  # (P, 4, 3) is not (P, 3, 4)
    # valid: D1's ([9], 9, 8); D2's ([5], 6, 7) equals a train triple; D3 keeps one ([7], 1, 2)
    assert valid.column("guideline").to_pylist() == ["d1_basket", "d3_artist_cluster"]
    th, vh = train.column("hash").to_numpy(), valid.column("hash").to_numpy()
    assert len(np.unique(th)) == len(th) and len(np.unique(vh)) == len(vh)
    assert not set(th.tolist()) & set(vh.tolist())
    got = {(r["guideline"], r["split"]): (r["before"], r["after"], r["dropped"]) for r in report.to_dict("records")}
    assert got == {
        ("d1_basket", "train"): (2, 2, 0),
        ("d1_basket", "valid"): (1, 1, 0),
        ("d2_next_basket", "train"): (2, 1, 1),
        ("d2_next_basket", "valid"): (1, 0, 1),
        ("d3_artist_cluster", "train"): (0, 0, 0),
        ("d3_artist_cluster", "valid"): (3, 1, 2),
    }
    assert list(report.columns) == ["guideline", "split", "before", "after", "dropped", "users"]
    assert report["guideline"].tolist()[::2] == ["d1_basket", "d2_next_basket", "d3_artist_cluster"]


def test_merging_sampled_shards_leaves_no_duplicate_hash():
    data = SamplingData.from_tables(items_frame(), purchases_frame(), clusters_frame())
    shards = {g: sample_shard(data, g, 30, 8, seed=11, max_profile=3)[0] for g in parts.shard_names()}
    merged, report = merge_shards({g: shards[g] for g in parts.guideline_names()})
    th = merged["train"].column("hash").to_numpy()
    vh = merged["valid"].column("hash").to_numpy()
    assert len(np.unique(th)) == len(th) and len(np.unique(vh)) == len(vh)
    assert not np.isin(vh, th).any()
    assert int(report["after"].sum()) == len(th) + len(vh)
    assert (report["before"] - report["after"] == report["dropped"]).all()
    # D5 ({i}, i, j) equals D4's triple of a one-item buyer, so some drops are expected, never in D1
    assert report.loc[report["guideline"] == "d1_basket", "dropped"].sum() == 0
    random_merged, _ = merge_shards({"random": shards["random"]})
    assert random_merged["train"].num_rows == 30
    assert set(random_merged["train"].column("guideline").to_pylist()) == {"random"}


def test_bad_shards_raise_input_error():
    good = shard([([1], 2, 3, "train")])
    with pytest.raises(InputError) as info:
        merge_shards({"d1_basket": good.drop_columns(["hash"])}, sources={"d1_basket": "d1.parquet"})
    assert info.value.field == "hash" and info.value.file == "d1.parquet"
    bad_split = good.set_column(good.schema.get_field_index("split"), "split", pa.array(["test"]))
    with pytest.raises(InputError) as info:
        merge_shards({"d1_basket": bad_split})
    assert info.value.field == "split" and info.value.value == "test"
