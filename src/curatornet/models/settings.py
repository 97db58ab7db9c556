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

from curatornet import parts
from curatornet.artifacts import BPR_SHARD, RANDOM_SHARD, SAMPLINGS
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
        """Settings of one job from the config's validated ``training`` section.

        The model's hyperparameters are its own block, ``training.<model>`` (its schema block);
        a ``learning_rate`` there replaces ``training.learning_rate``.
        """
        parts.model(model, field_name="model")
        if sampling not in SAMPLINGS:
            raise InputError(None, "sampling", sampling, f"unknown sampling, expected one of {SAMPLINGS}")
        own = dict(training.get(model) or {})
        rate = own.pop("learning_rate", training["learning_rate"])
        hyper = own
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


def refit_settings(config: Mapping[str, Any], model: str, sampling: str, seed: int) -> dict[str, Any]:
    """Settings of one refit job (``training.refit``): those of the (model, sampling, seed) runs but λ,
    which the selection on the validation baskets gives when the job runs."""
    settings = job_settings(config, model, sampling, 0.0, seed)
    del settings["l2"]
    return settings


def triplet_set(model: str, sampling: str) -> str:
    """The merged triplet set a run reads: 'guidelines', 'random' (profiles) or 'bpr' (no profiles).

    Random sampling of a model that reads profiles needs a profile left after
    hiding the positive, so it reads the ``random`` set (users with two or
    more training items); a model that reads no profile (VBPR) trains on plain
    BPR triples over every user with a training purchase (``bpr``), as Rendle
    et al. sample them.
    """
    if sampling == "guidelines":
        return "guidelines"
    return RANDOM_SHARD if parts.model(model).profiles else BPR_SHARD
