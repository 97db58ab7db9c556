"""Replicate runs start from independent random streams: no layer's initial weights repeat across seeds."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from curatornet.seeds import stream_rng, stream_seed

SEEDS = (0, 1, 2, 3)


def prefix_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Correlation of the first values of two weight arrays, flattened (a shared stream gives 1)."""
    n = min(a.size, b.size)
    return float(np.corrcoef(a.ravel()[:n], b.ravel()[:n])[0, 1])


def assert_independent(weights: dict[tuple[int, str], np.ndarray]) -> None:
    """No weight of one seed equals or correlates with any weight of another seed (or of its own)."""
    for (key_a, a), (key_b, b) in itertools.combinations(weights.items(), 2):
        corr = prefix_correlation(a, b)
        # 4 standard errors of a correlation of independent draws over the shorter array.
        bound = 4 / np.sqrt(min(a.size, b.size))
        assert abs(corr) < bound, f"{key_a} and {key_b} correlate: {corr:.3f}"
        n = min(a.size, b.size)
        assert np.mean(a.ravel()[:n] == b.ravel()[:n]) < 0.01, f"{key_a} and {key_b} share values"


def test_streams_differ_by_seed_and_name_and_repeat_exactly():
    keys = [(seed, name) for seed in SEEDS for name in ("curatornet/tower_0", "curatornet/tower_1", "batch order")]
    values = [stream_seed(*key) for key in keys]
    assert len(set(values)) == len(values) and all(0 <= v < 2**31 for v in values)
    assert stream_seed(1, "curatornet/tower_0") == stream_seed(1, "curatornet/tower_0")
    np.testing.assert_array_equal(stream_rng(5, "x").random(4), stream_rng(5, "x").random(4))
    with pytest.raises(ValueError, match="non-negative"):
        stream_seed(-1, "x")


def test_curatornet_layers_share_no_initial_weights_across_seeds():
    pytest.importorskip("tensorflow")
    from curatornet.models.curatornet import CuratorNet

    weights = {}
    for seed in SEEDS:
        model = CuratorNet(2048, (200, 200), (300, 200, 200), seed=seed)
        for name, value in model.weights_dict().items():
            if name.endswith("/kernel"):
                weights[(seed, name)] = value
    assert len(weights) == len(SEEDS) * 5
    assert_independent(weights)
    # Each seed still gives the same weights every time.
    again = CuratorNet(2048, (200, 200), (300, 200, 200), seed=1).weights_dict()
    np.testing.assert_array_equal(again["tower_1/kernel"], weights[(1, "tower_1/kernel")])


def test_vbpr_factors_share_no_initial_weights_across_seeds():
    pytest.importorskip("tensorflow")
    from curatornet.models.vbpr import VBPR

    weights = {}
    for seed in SEEDS:
        model = VBPR(300, 400, input_dim=64, latent_dim=20, visual_dim=20, seed=seed)
        for name in ("gamma_user", "gamma_item", "theta_user", "projection"):
            weights[(seed, name)] = np.array(getattr(model, name).numpy())
    assert_independent(weights)
