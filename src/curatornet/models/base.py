"""The interfaces every recommender implements; this module imports no model and no TensorFlow.

A query is one user's situation: who they are (VBPR needs it; -1 for a user
unknown to the model), the items of their profile, when it is asked (the
instant of the evaluated basket: MostPopular counts the purchases before it)
and, for the Oracle only, the ground truth. Every method turns a batch of queries and a vector of
candidate items into a score matrix; higher is better.

A trainer is what the training loop (:mod:`curatornet.models.loop`) needs from
a model: one optimisation step, the weights, the learning rate, and a scorer
of its current weights for validation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from curatornet.errors import InputError

if TYPE_CHECKING:  # typing only: the container lives with the samplers
    from curatornet.sampling.triples import Batch, Triples


#: How CuratorNet pools a profile's item vectors before its head (``training.curatornet.pooling``):
#: the mean and the max concatenated, as in the paper, or one of them alone.
POOLINGS = ("mean+max", "mean", "max")
#: The paper's pooling, and that of a model.json written before the pooling was a hyperparameter.
PAPER_POOLING = "mean+max"


def pooling_parts(pooling: str) -> tuple[str, ...]:
    """The statistics a pooling concatenates, in order: ("mean", "max"), ("mean",) or ("max",)."""
    if pooling not in POOLINGS:
        raise InputError(None, "training.curatornet.pooling", pooling, f"unknown pooling, expected one of {POOLINGS}")
    return tuple(pooling.split("+"))


@dataclass
class Queries:
    users: np.ndarray  # int32 (n,), the `user` index of purchases.parquet, -1 if unknown
    profiles: Sequence[np.ndarray]  # int32 item indexes per query
    truth: Sequence[np.ndarray] | None = None  # int32 item indexes per query (Oracle only)
    times: np.ndarray | None = None  # int64 milliseconds per query; None: the end of the log

    def __post_init__(self) -> None:
        self.users = np.asarray(self.users, dtype=np.int32)
        if self.times is not None:
            self.times = np.asarray(self.times, dtype=np.int64)
            if len(self.times) != len(self.users):
                raise ValueError(f"{len(self.users)} users but {len(self.times)} times")
        if len(self.users) != len(self.profiles):
            raise ValueError(f"{len(self.users)} users but {len(self.profiles)} profiles")
        if self.truth is not None and len(self.truth) != len(self.profiles):
            raise ValueError(f"{len(self.truth)} truth sets but {len(self.profiles)} profiles")

    def __len__(self) -> int:
        return len(self.users)


@runtime_checkable
class Scorer(Protocol):
    """Anything that scores candidate items for queries."""

    name: str

    def score(self, queries: Queries, items: np.ndarray) -> np.ndarray:
        """float32 matrix (len(queries), len(items)); row q scores ``items`` for query q."""
        ...


class Trainer(Protocol):
    """What the training loop needs from a model (CuratorNetTrainer, VBPRTrainer)."""

    learning_rate: float

    def train_step(self, batch: Batch) -> float: ...

    def pairwise_accuracy(self, data: Triples) -> float: ...

    def scorer(self) -> Scorer:
        """A scorer of the current weights (validation during training); it may hold a snapshot of
        them, so ask again after a step."""
        ...

    def get_weights(self) -> dict[str, np.ndarray]: ...

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None: ...
