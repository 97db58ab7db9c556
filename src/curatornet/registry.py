"""The registries of the workbench: one record per model, baseline, metric and guideline.

Everything that differs between two models (or baselines, metrics,
guidelines) is in its record; every place that used to branch on a name
reads the record instead. This module holds the record types, the
registries and the plugin mechanism, and names no part: the built-in parts
register themselves (:mod:`curatornet.parts` imports them all and is what
the rest of the package reads).

A record may name a function as ``"package.module:attribute"`` instead of
holding it, so that registering a model imports nothing heavy: TensorFlow is
imported only when its trainer or its TensorFlow scorer is asked for.

**Plugins.** A plugin is any importable module that registers parts when it
is imported (``curatornet.parts.register_model(ModelSpec(...))`` and so on).
The modules named in the environment variable ``CURATORNET_PLUGINS``
(comma-separated) are imported before any registry is read, in every
process: the workflow's jobs, the command line and the service. The
workflow's config key ``plugins`` names them too; the workflow imports them
when it parses and puts them in ``CURATORNET_PLUGINS`` for its jobs
(:func:`use_plugins`).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from curatornet.errors import InputError
from curatornet.seeds import stream_seed

#: The environment variable naming plugin modules (comma-separated), read by every process.
PLUGINS_VARIABLE = "CURATORNET_PLUGINS"
#: A part's name: it appears in paths, wildcards and column values.
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")

#: A function, or where to find it: "package.module:attribute.attribute".
Ref = Callable[..., Any] | str


def resolve(ref: Ref) -> Callable[..., Any]:
    """The function ``ref`` names (imported on first use), or ``ref`` itself when it is one."""
    if callable(ref):
        return ref
    module, _, attribute = str(ref).partition(":")
    target: Any = importlib.import_module(module)
    for part in attribute.split(".") if attribute else ():
        target = getattr(target, part)
    return target


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class ModelSpec:
    """A trained model: everything the workflow, the evaluation and serving need to know of it.

    - ``trainer(inputs: TrainingInputs) -> (trainer, recorded hyperparameters)``: builds the
      model and its :class:`~curatornet.models.base.Trainer` (whose ``model`` has ``weights_dict()``).
    - ``scorer(model_dir, embeddings) -> Scorer``: restores a trained directory (may use TensorFlow).
    - ``numpy(model_dir, meta) -> model``: the NumPy twin that serving runs (no TensorFlow), see
      :class:`curatornet.serving.models.NumpyModel`.
    - ``profiles``: it reads profiles. False: it trains on known users' triples without profiles,
      and random sampling gives it the plain BPR triples (``bpr``) instead of ``random``.
    - ``guidelines``: the guidelines of the guidelines set it trains on (None: all).
    - ``cold_start``: it serves a user it never saw without retraining (VBPR only with fold-in).
    - ``item_parameters``: it has parameters per item index, so a catalogue of another size
      cannot be the one it was trained on.
    - ``schema``: its ``training.<name>`` config block as JSON schema, for a model whose block is
      not in workflow/schemas/config.schema.yaml (a plugin's). The block holds its
      hyperparameters; a ``learning_rate`` there replaces ``training.learning_rate``.
    """

    name: str
    display: str
    trainer: Ref
    scorer: Ref
    numpy: Ref
    profiles: bool = True
    guidelines: tuple[str, ...] | None = None
    cold_start: bool = True
    item_parameters: bool = False
    schema: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class BaselineSpec:
    """A recommender that needs no training.

    - ``build(embeddings, purchases, settings) -> Scorer``: ``purchases`` is purchases.parquet
      (``user``, ``item``, ``time``, ``split``) when ``purchases`` is True, else None;
      ``settings`` what :attr:`settings` took from the config (plus the evaluation's cut-offs).
    - ``settings(evaluation) -> dict``: the part of the config's ``evaluation`` section its
      results depend on (a job's params); None: its own block ``evaluation.<name>`` if any.
    - ``bound``: "upper" (a perfect ranking: listed first in Table 2, never marked best) or
      "lower" (listed last), None otherwise.
    - ``reference``: every trained run is tested against it.
    - ``batch``: it can write batch recommendations (it needs no ground truth).
    - ``schema``: its ``evaluation.<name>`` block, for a baseline whose block is not in the schema file.
    """

    name: str
    display: str
    build: Ref
    settings: Callable[[Mapping[str, Any]], dict[str, Any]] | None = None
    purchases: bool = False
    bound: str | None = None
    reference: bool = False
    batch: bool = False
    schema: Mapping[str, Any] | None = None

    def config_settings(self, evaluation: Mapping[str, Any]) -> dict[str, Any]:
        if self.settings is not None:
            return dict(self.settings(evaluation))
        own = evaluation.get(self.name)
        return {self.name: dict(own)} if isinstance(own, Mapping) else {}


@dataclass(frozen=True)
class MetricSpec:
    """A ranking metric, one value per user.

    ``compute(ranked)`` takes a :class:`curatornet.evaluation.metrics.Ranked` block of users and
    returns ``(n_users,)`` values, or with a ``cutoff`` the values at k = 1..depth,
    ``(n_users, depth)``: the columns are then ``<name>@<k>`` for each configured k and the
    mean curve goes to curves.parquet. ``label`` is how tables name it, ``{k}`` standing for
    the cut-off ("R@{k}", "MRR").
    """

    name: str
    label: str
    compute: Ref
    cutoff: bool = False

    def column_label(self, k: int | None = None) -> str:
        return self.label.format(k=k) if self.cutoff else self.label


#: The tables a guideline may read besides the items (what a shard job's inputs can be).
NEEDS = frozenset({"purchases", "clusters"})


@dataclass(frozen=True)
class GuidelineSpec:
    """A sampling guideline: one shard of triples, merged with the others into the guidelines set.

    ``build(data: SamplingData) -> GuidelineSampler``; ``needs``: the tables it reads besides the
    items ("purchases", "clusters"); ``single_item_profiles``: its profiles never hold more than
    one item (``sampling.max_profile`` does not concern it). Its budget is
    ``sampling.budgets.<name>`` and its seed comes from a stable hash of its name (:meth:`seed`),
    so adding or removing another guideline never changes its shard.
    """

    name: str
    build: Ref
    needs: frozenset[str] = field(default_factory=frozenset)
    single_item_profiles: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.needs) - NEEDS
        if unknown:
            raise ValueError(f"guideline {self.name}: needs {sorted(unknown)}; a guideline may need {sorted(NEEDS)}")

    def seed(self, config_seed: int) -> int:
        return shard_seed(config_seed, self.name)


def shard_seed(config_seed: int, shard: str) -> int:
    """The seed of one shard: the config's seed and the shard's name, hashed (:func:`curatornet.seeds.stream_seed`)."""
    return stream_seed(config_seed, f"shard/{shard}")


# --------------------------------------------------------------------------- registries

Spec = TypeVar("Spec", ModelSpec, BaselineSpec, MetricSpec, GuidelineSpec)


class Registry(Generic[Spec]):
    """Records by name, in registration order; reading one loads the plugins first."""

    def __init__(self, kind: str):
        self.kind = kind
        self._specs: dict[str, Spec] = {}

    def register(self, spec: Spec, replace: bool = False) -> Spec:
        if not NAME_PATTERN.fullmatch(spec.name):
            problem = f"a name is lower case letters, digits and _ ({NAME_PATTERN.pattern})"
            raise InputError(None, self.kind, spec.name, problem)
        if spec.name in self._specs and not replace and self._specs[spec.name] != spec:
            raise InputError(None, self.kind, spec.name, f"a {self.kind} of this name is already registered")
        self._specs[spec.name] = spec
        return spec

    def registered(self, name: object) -> bool:
        """Whether ``name`` is registered now, without importing the plugins (for registration itself)."""
        return name in self._specs

    def unregister(self, name: str) -> Spec | None:
        return self._specs.pop(name, None)

    @contextmanager
    def scope(self) -> Iterator[Registry[Spec]]:
        """Registrations and removals inside the block are undone on leaving it, order included (tests)."""
        saved = dict(self._specs)
        try:
            yield self
        finally:
            self._specs.clear()
            self._specs.update(saved)

    def get(self, name: str, source: Any = None, field_name: str | None = None) -> Spec:
        """The record of ``name``; an unknown name is an InputError naming the registered ones."""
        load_plugins()
        if name not in self._specs:
            raise InputError(source, field_name or self.kind, name, f"unknown {self.kind}; registered: {self.names()}")
        return self._specs[name]

    def __contains__(self, name: object) -> bool:
        load_plugins()
        return name in self._specs

    def names(self) -> tuple[str, ...]:
        load_plugins()
        return tuple(self._specs)

    def specs(self) -> tuple[Spec, ...]:
        load_plugins()
        return tuple(self._specs.values())


MODELS: Registry[ModelSpec] = Registry("model")
BASELINES: Registry[BaselineSpec] = Registry("baseline")
METRICS: Registry[MetricSpec] = Registry("metric")
GUIDELINES: Registry[GuidelineSpec] = Registry("guideline")


# --------------------------------------------------------------------------- plugins

_imported: set[str] = set()


def plugin_names(value: str | Iterable[str] | None) -> list[str]:
    """Module names from a comma-separated string or a list (empty entries dropped, order kept)."""
    items = value.split(",") if isinstance(value, str) else list(value or [])
    return list(dict.fromkeys(name.strip() for name in items if name and name.strip()))


def load_plugins(modules: Iterable[str] | None = None, source: str = PLUGINS_VARIABLE) -> None:
    """Import the plugin modules (``CURATORNET_PLUGINS`` when ``modules`` is None), each once."""
    names = plugin_names(os.environ.get(PLUGINS_VARIABLE) if modules is None else modules)
    for name in names:
        if name in _imported:
            continue
        _imported.add(name)  # before importing: a plugin that reads a registry must not import itself again
        try:
            importlib.import_module(name)
        except ImportError as exc:
            _imported.discard(name)
            raise InputError(source, "plugins", name, f"cannot import this plugin module ({exc})") from exc


def use_plugins(modules: Iterable[str] | None, source: str = "config") -> list[str]:
    """Import ``modules`` now and add them to ``CURATORNET_PLUGINS``, so that child processes
    (the workflow's jobs) import them too. Returns every plugin now named."""
    names = plugin_names(modules)
    load_plugins(names, source)
    every = plugin_names([*plugin_names(os.environ.get(PLUGINS_VARIABLE)), *names])
    if every:
        os.environ[PLUGINS_VARIABLE] = ",".join(every)
    return every
