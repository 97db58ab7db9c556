"""What one training job needs besides its files, read from the validated config.

Every value comes from the config, whose schema holds the defaults
(:func:`curatornet.config.schema_defaults`); nothing here has a default of
its own. This module imports no TensorFlow: the workflow reads it while
parsing, to put each job's settings in its ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from curatornet.artifacts import BPR_SHARD, MODELS, RANDOM_SHARD, SAMPLINGS
from curatornet.errors import InputError
from curatornet.models.loop import Schedule


@dataclass(frozen=True)
class TrainSettings:
    """One (model, sampling, λ, seed) run: its schedule and the model's hyperparameters."""

    model: str
    sampling: str
    l2: float
    seed: int
    schedule: Schedule
    hyperparameters: dict[str, Any]

    @classmethod
    def from_config(cls, training: Mapping[str, Any], model: str, sampling: str, l2: float, seed: int) -> TrainSettings:
        """Settings of one job from the config's validated ``training`` section."""
        if model not in MODELS:
            raise InputError(None, "model", model, f"unknown model, expected one of {MODELS}")
        if sampling not in SAMPLINGS:
            raise InputError(None, "sampling", sampling, f"unknown sampling, expected one of {SAMPLINGS}")
        own = training[model]
        if model == "vbpr":
            rate = own["learning_rate"]
            hyper = {"latent_dim": int(own["latent_dim"]), "visual_dim": int(own["visual_dim"])}
        else:
            rate = training["learning_rate"]
            hyper = {
                "tower_units": [int(u) for u in own["tower_units"]],
                "head_units": [int(u) for u in own["head_units"]],
            }
        schedule = Schedule(
            batch_size=int(training["batch_size"]),
            learning_rate=float(rate),
            seed=int(seed),
            check_every_steps=int(training["check_every_steps"]),
            min_steps=int(training["min_steps"]),
            max_steps=int(training["max_steps"]),
            smoothing=int(training["smoothing"]),
            early_stop_patience=int(training["early_stop_patience"]),
            lr_patience=int(training["lr_patience"]),
            lr_decay=float(training["lr_decay"]),
        )
        return cls(model, sampling, float(l2), int(seed), schedule, hyper)

    def as_params(self) -> dict[str, Any]:
        """Plain (JSON-like) values, for Snakemake params and model.json."""
        return asdict(self)

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainSettings:
        """The inverse of :meth:`as_params`."""
        values = dict(params)
        values["schedule"] = Schedule(**dict(values["schedule"]))
        values["hyperparameters"] = dict(values["hyperparameters"])
        return cls(**values)


def job_settings(config: Mapping[str, Any], model: str, sampling: str, l2: float, seed: int) -> dict[str, Any]:
    """Settings of one training job of the workflow (plain values, for a rule's params)."""
    return TrainSettings.from_config(config["training"], model, sampling, l2, seed).as_params()


def triplet_set(model: str, sampling: str) -> str:
    """The merged triplet set a run reads: 'guidelines', 'random' (profiles) or 'bpr' (no profiles).

    CuratorNet's random sampling needs a profile left after hiding the
    positive, so it reads the ``random`` set (users with two or more training
    items); VBPR reads no profile and trains on plain BPR triples over every
    user with a training purchase (``bpr``), as Rendle et al. sample them.
    """
    if sampling == "guidelines":
        return "guidelines"
    return BPR_SHARD if model == "vbpr" else RANDOM_SHARD
