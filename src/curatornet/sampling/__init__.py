"""Triple sampling (paper section 3.5): guidelines D1-D6, random BPR sampling, hashing, deduplication.

- :mod:`.data`: the training purchases, artists and clusters as flat arrays.
- :mod:`.guidelines`: the samplers, the records of D1-D6 and :func:`sample_shard`.
- :mod:`.hashing`: the order-independent 64-bit triple hash.
- :mod:`.dedup`: merging shards by hash (:func:`merge_shards`).
"""

from curatornet.registry import shard_seed
from curatornet.sampling.data import SamplingData
from curatornet.sampling.dedup import merge_shards
from curatornet.sampling.guidelines import ShardReport, make_sampler, random_budget, sample_shard
from curatornet.sampling.hashing import triple_hashes
from curatornet.sampling.triples import Triples, build_profiles

__all__ = [
    "SamplingData",
    "ShardReport",
    "Triples",
    "build_profiles",
    "make_sampler",
    "merge_shards",
    "random_budget",
    "sample_shard",
    "shard_seed",
    "triple_hashes",
]
