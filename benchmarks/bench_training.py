"""Training throughput of CuratorNet and VBPR, and CuratorNet's share of the machine's matmul rate.

Usage:
    .venv/bin/python benchmarks/bench_training.py [--models curatornet vbpr] [--batch-sizes 4096 16384]
        [--seconds 20] [--triplets results/triplets/guidelines/train.parquet
        --embeddings results/data/embeddings.parquet] [--threads 2] [--step auto|fused|tensorflow]
        [--no-allocator-tuning]

Without files it generates UGallery-like triples (7,700 items of 2,048
dimensions, 2,900 users with heavy-tailed histories, one third of the triples
with the whole history as profile like D3/D4, one third with part of it like
D1/D2 and one third with one item like D5/D6).

For each batch size it times real training steps (after a warm-up step) and,
as the reference, a dense float32 matmul of the tower's first layer over the
catalogue ((n_items x 2048) @ (2048 x 200)): for 2 s just before and just
after the steps, and once after every step. It prints:
  - triples/s;
  - the matmul FLOPs of the step (item tower forward and backward on the
    distinct items, profile head forward and backward on the distinct
    profiles) per second, and their share of the reference matmul rate: as
    the median over the steps of each step's rate over the reference taken
    right after it (paired, so that a shared machine's swings cancel), and
    against the mean of the before and after rates;
  - minor page faults per step;
  - the time of one epoch over the paper's 10 million triples, extrapolated
    from the measured throughput.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from curatornet.models.environment import configure_tensorflow, tune_allocator  # noqa: E402
from curatornet.models.features import Standardizer  # noqa: E402
from curatornet.models.loop import iterate_batches  # noqa: E402
from curatornet.models.train import read_embeddings  # noqa: E402
from curatornet.sampling.triples import Triples, read_triplets  # noqa: E402

PAPER_TRIPLES = 10_000_000


def synthetic(n_items: int, dim: int, n_users: int, n_triples: int, seed: int) -> tuple[np.ndarray, Triples]:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n_items, dim), dtype=np.float32)
    sizes = np.minimum(1 + rng.zipf(1.8, n_users), 64)
    history_offsets = np.concatenate([[0], np.cumsum(sizes)])
    history = rng.integers(0, n_items, history_offsets[-1]).astype(np.int32)
    users = rng.integers(0, n_users, n_triples)
    kind = rng.integers(0, 3, n_triples)  # 0: whole history, 1: prefix, 2: one item
    full = sizes[users]
    lengths = np.where(kind == 0, full, np.where(kind == 1, 1 + (rng.random(n_triples) * full).astype(int), 1))
    lengths = np.minimum(lengths, full)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    first = np.repeat(offsets[:-1], lengths)
    within = np.arange(offsets[-1]) - first
    start = history_offsets[users]
    single = rng.integers(0, n_items, n_triples).astype(np.int32)
    values = history[np.repeat(start, lengths) + within]
    values[offsets[:-1][kind == 2]] = single[kind == 2]
    data = Triples(
        offsets,
        values.astype(np.int32),
        rng.integers(0, n_items, n_triples).astype(np.int32),
        rng.integers(0, n_items, n_triples).astype(np.int32),
        users.astype(np.int32),
    )
    return features, data


class MatmulReference:
    """A dense float32 (rows x dim) @ (dim x units) matmul, timed."""

    def __init__(self, rows: int, dim: int, units: int):
        import tensorflow as tf

        rng = np.random.default_rng(0)
        a = tf.constant(rng.standard_normal((rows, dim), dtype=np.float32))
        w = tf.constant(rng.standard_normal((dim, units), dtype=np.float32))
        self.flops = 2.0 * rows * dim * units
        self._product = tf.function(lambda: tf.reduce_sum(tf.matmul(a, w)))
        self._product().numpy()

    def once(self) -> float:
        """GFLOP/s of one product."""
        started = time.perf_counter()
        self._product().numpy()
        return self.flops / (time.perf_counter() - started) / 1e9

    def rate(self, seconds: float) -> float:
        """GFLOP/s over repeated products for ``seconds``."""
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            self._product().numpy()
            count += 1
        return self.flops * count / (time.perf_counter() - started) / 1e9


def step_flops(n_items: int, n_profiles: int, dim: int, tower: tuple[int, ...], head: tuple[int, ...]) -> float:
    """Matmul FLOPs of one training step, forward and backward."""
    tower_shapes = list(zip((dim,) + tower[:-1], tower))
    head_shapes = list(zip((2 * tower[-1],) + head[:-1], head))
    tower_forward = sum(2.0 * n_items * a * b for a, b in tower_shapes)
    # Backward: weight gradients everywhere, input gradients except into the (constant) embeddings.
    tower_backward = 2 * tower_forward - 2.0 * n_items * tower_shapes[0][0] * tower_shapes[0][1]
    head_forward = sum(2.0 * n_profiles * a * b for a, b in head_shapes)
    return tower_forward + tower_backward + 3 * head_forward


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=["curatornet", "vbpr"], default=["curatornet", "vbpr"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[4096, 16384])
    parser.add_argument("--seconds", type=float, default=20.0, help="timed training per batch size")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--triplets", type=Path)
    parser.add_argument("--embeddings", type=Path)
    parser.add_argument("--item-mode", choices=["auto", "unique", "catalogue", "gather"], default="auto")
    parser.add_argument(
        "--step",
        choices=["auto", "fused", "tensorflow"],
        default="auto",
        help="CuratorNet's gathers, pooling and margin as CPU kernels or as TensorFlow ops (auto: as training does)",
    )
    parser.add_argument("--no-allocator-tuning", action="store_true")
    args = parser.parse_args()

    if not args.no_allocator_tuning:
        print(f"allocator tuning (mallopt): {tune_allocator()}")
    configure_tensorflow(threads=args.threads, seed=0)
    if args.triplets:
        features = read_embeddings(args.embeddings)
        data = read_triplets(args.triplets, len(features))
        source = str(args.triplets)
    else:
        features, data = synthetic(7700, 2048, 2900, 400_000, seed=1)
        source = "generated UGallery-like triples"
    data.add_profile_keys()
    n_items, dim = features.shape
    standardizer = Standardizer.fit(features)
    lengths = np.diff(data.offsets)
    print(f"data: {source}: {len(data)} triples, {n_items} items x {dim}, mean profile {lengths.mean():.2f} items")
    for model_name in args.models:
        for batch_size in args.batch_sizes:
            if model_name == "curatornet":
                bench_curatornet(args, data, features, standardizer, batch_size)
            else:
                bench_vbpr(args, data, features, standardizer, batch_size)


def bench_curatornet(args, data: Triples, features: np.ndarray, standardizer: Standardizer, batch_size: int) -> None:
    from curatornet.models.curatornet import CuratorNet, CuratorNetTrainer, choose_item_mode

    n_items, dim = features.shape
    model = CuratorNet(dim, seed=0)
    mode = choose_item_mode(data, n_items, batch_size, 0) if args.item_mode == "auto" else args.item_mode
    fused = None if args.step == "auto" else args.step == "fused"
    trainer = CuratorNetTrainer(model, standardizer, features, 1e-4, 1e-3, item_mode=mode, fused=fused)
    rng = np.random.default_rng(0)
    batches = iterate_batches(data, batch_size, rng, distinct_profiles=True)
    trainer.train_step(next(batches))  # trace and warm up
    # The machine may be shared: the matmul reference is taken before, after, and after every step.
    reference_matmul = MatmulReference(n_items, dim, model.tower_units[0])
    before = reference_matmul.rate(2.0)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    triples = steps = 0
    flops = items_sum = profiles_sum = elapsed = 0.0
    paired = []
    for batch in batches:
        started = time.perf_counter()
        trainer.train_step(batch)
        took = time.perf_counter() - started
        distinct = (
            n_items
            if mode == "catalogue"
            else len(np.unique(np.concatenate([batch.positive, batch.negative, batch.values])))
        )
        n_profiles = int(batch.row_ids[-1]) + 1
        step = step_flops(distinct, n_profiles, dim, model.tower_units, model.head_units)
        paired.append(step / took / 1e9 / reference_matmul.once())
        flops += step
        elapsed += took
        items_sum += distinct
        profiles_sum += n_profiles
        triples += len(batch)
        steps += 1
        if elapsed > args.seconds:
            break
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / max(steps, 1)
    rate = triples / elapsed
    achieved = flops / elapsed / 1e9
    after = reference_matmul.rate(2.0)
    reference = (before + after) / 2
    low, median, high = np.percentile(paired, [10, 50, 90])
    print(
        f"CuratorNet batch {batch_size} (tower per {mode}, {'fused' if trainer.fused else 'TensorFlow'} step): "
        f"{rate:,.0f} triples/s over {steps} steps; "
        f"{items_sum / steps:,.0f} distinct items and {profiles_sum / steps:,.0f} distinct profiles per step; "
        f"{achieved:.1f} GFLOP/s vs matmul {reference:.1f} GFLOP/s (before {before:.0f}, after {after:.0f}) "
        f"= {achieved / reference:.0%} of the matmul rate; paired with a reference after each step: "
        f"median {median:.0%} (10th to 90th percentile {low:.0%} to {high:.0%}); "
        f"{faults:,.0f} minor page faults per step; "
        f"one epoch over {PAPER_TRIPLES:,} triples: {PAPER_TRIPLES / rate / 60:.1f} min (extrapolated)"
    )


def bench_vbpr(args, data: Triples, features: np.ndarray, standardizer: Standardizer, batch_size: int) -> None:
    from curatornet.models.vbpr import VBPR, VBPRTrainer, choose_item_mode

    n_items, dim = features.shape
    known = data.take(data.user >= 0).without_profiles()
    model = VBPR(int(known.user.max()) + 1, n_items, dim, seed=0)
    model.mark_known_users(known.user)
    mode = choose_item_mode(n_items, batch_size) if args.item_mode == "auto" else args.item_mode
    trainer = VBPRTrainer(model, standardizer, features, 1e-4, 5e-3, item_mode=mode)
    batches = iterate_batches(known, batch_size, np.random.default_rng(0))
    trainer.train_step(next(batches))  # trace and warm up
    triples = steps = 0
    started = time.perf_counter()
    for batch in batches:
        trainer.train_step(batch)
        triples += len(batch)
        steps += 1
        if time.perf_counter() - started > args.seconds:
            break
    rate = triples / (time.perf_counter() - started)
    print(
        f"VBPR batch {batch_size} (visual terms per {mode}): {rate:,.0f} triples/s over {steps} steps; "
        f"one epoch over {PAPER_TRIPLES:,} triples: {PAPER_TRIPLES / rate / 60:.1f} min (extrapolated)"
    )


if __name__ == "__main__":
    main()
