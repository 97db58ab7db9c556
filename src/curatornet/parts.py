"""Every registered part, built in or from a plugin: what the rest of the package reads.

Importing this module imports the modules that register the built-in parts
(the metrics, the baselines, the guidelines) and registers the built-in
models; the plugins named in ``CURATORNET_PLUGINS`` are imported on the
first read of any registry (:mod:`curatornet.registry`). A plugin registers
its parts with the ``register_*`` functions below.

Adding a model, a baseline, a metric or a guideline is one registration
(docs/architecture.md has a checklist for each); the functions below derive
everything else from the records: display names, the order of Table 2's
rows, the metric columns and their labels, the shards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

# The modules of the built-in metrics, baselines and guidelines register them when imported.
from curatornet.evaluation import metrics as _metrics  # noqa: F401
from curatornet.models import baselines as _baselines  # noqa: F401
from curatornet.registry import (
    BASELINES,
    GUIDELINES,
    METRICS,
    MODELS,
    BaselineSpec,
    GuidelineSpec,
    MetricSpec,
    ModelSpec,
    load_plugins,
)
from curatornet.sampling import guidelines as _guidelines
from curatornet.sampling.guidelines import SCHEMES

# --------------------------------------------------------------------------- registration


def register_model(spec: ModelSpec, replace: bool = False) -> ModelSpec:
    _check_method_name(spec.name, BASELINES)
    return MODELS.register(spec, replace)


def register_baseline(spec: BaselineSpec, replace: bool = False) -> BaselineSpec:
    _check_method_name(spec.name, MODELS)
    return BASELINES.register(spec, replace)


def register_metric(spec: MetricSpec, replace: bool = False) -> MetricSpec:
    return METRICS.register(spec, replace)


def register_guideline(spec: GuidelineSpec, replace: bool = False) -> GuidelineSpec:
    """Register a guideline; its name may not be a sampling scheme's shard (random, bpr)."""
    if spec.name in SCHEMES:
        raise ValueError(f"{spec.name!r} is a sampling scheme's shard, not a guideline name")
    return GUIDELINES.register(spec, replace)


def _check_method_name(name: str, other) -> None:
    """Models and baselines share Table 2's ``method`` column: one name cannot be both."""
    if other.registered(name):  # reading the registry would import the plugins, mid-registration
        raise ValueError(f"{name!r} is already registered as a {other.kind}")


#: The paper's models (sections 3 and 4.3). Their config blocks are in workflow/schemas/config.schema.yaml.
register_model(
    ModelSpec(
        name="curatornet",
        display="CuratorNet",
        trainer="curatornet.models.curatornet:build_trainer",
        scorer="curatornet.models.curatornet:CuratorNetScorer.load",
        numpy="curatornet.serving.models:NumpyCuratorNet.from_dir",
    )
)
register_model(
    ModelSpec(
        name="vbpr",
        display="VBPR",
        trainer="curatornet.models.vbpr:build_trainer",
        scorer="curatornet.models.vbpr:VBPRScorer.load",
        numpy="curatornet.serving.models:NumpyVBPR.from_dir",
        profiles=False,  # one vector per user; random sampling gives it plain BPR triples
        guidelines=("d3_artist_cluster", "d4_profile"),  # section 5.1: the guidelines that make sense without profiles
        cold_start=False,
        item_parameters=True,
    )
)


# --------------------------------------------------------------------------- reading

model = MODELS.get
baseline = BASELINES.get
metric = METRICS.get


def models() -> tuple[ModelSpec, ...]:
    return MODELS.specs()


def baselines() -> tuple[BaselineSpec, ...]:
    return BASELINES.specs()


def metrics() -> tuple[MetricSpec, ...]:
    return METRICS.specs()


def guidelines() -> tuple[GuidelineSpec, ...]:
    return GUIDELINES.specs()


def model_names() -> tuple[str, ...]:
    return MODELS.names()


def baseline_names() -> tuple[str, ...]:
    return BASELINES.names()


def guideline_names() -> tuple[str, ...]:
    return GUIDELINES.names()


def shard_names() -> tuple[str, ...]:
    """Every shard the triplet stage samples: the guidelines, then the sampling schemes' shards."""
    return guideline_names() + tuple(SCHEMES)


def shard(name: str) -> GuidelineSpec:
    """The record of a guideline or of a sampling scheme's shard (random, bpr)."""
    return _guidelines.shard_spec(name)


def is_baseline(method: str) -> bool:
    return method in BASELINES


def reference_baselines() -> tuple[str, ...]:
    """The baselines every trained run is tested against."""
    return tuple(b.name for b in baselines() if b.reference)


def batch_recommenders() -> tuple[str, ...]:
    """What may write batch recommendations: every model, and the baselines that need no ground truth."""
    return model_names() + tuple(b.name for b in baselines() if b.batch)


def display_name(method: str) -> str:
    """'CuratorNet', 'VisRank', …; an unregistered name as it is."""
    load_plugins()
    for registry in (MODELS, BASELINES):
        if method in registry:
            return registry.get(method).display
    return method


def table_rank(method: str) -> int:
    """Where a method's rows go in Table 2: 0 an upper bound (the Oracle), 2 a lower bound (Random), else 1."""
    if method in BASELINES:
        return {"upper": 0, "lower": 2}.get(BASELINES.get(method).bound or "", 1)
    return 1


def is_upper_bound(method: str) -> bool:
    return method in BASELINES and BASELINES.get(method).bound == "upper"


def is_bound(method: str) -> bool:
    return method in BASELINES and BASELINES.get(method).bound is not None


# --------------------------------------------------------------------------- metric columns

_COLUMN = re.compile(r"(?P<name>[a-z][a-z0-9_]*)@(?P<k>\d+)")


def metric_columns(ks: Sequence[int]) -> list[str]:
    """The per-user metric columns for cut-offs ``ks``: metrics without a cut-off first (AUC, MRR, …),
    then for each k the metrics with one (recall@k, precision@k, …), in the order of the metric table."""
    plain = [m.name for m in metrics() if not m.cutoff]
    return plain + [f"{m.name}@{int(k)}" for k in ks for m in metrics() if m.cutoff]


def _parse(column: str) -> tuple[MetricSpec, int | None] | None:
    """The metric a column holds, and its cut-off; None when the column is no registered metric."""
    found = _COLUMN.fullmatch(column)
    name, k = (found["name"], int(found["k"])) if found else (column, None)
    if name not in METRICS:
        return None
    spec = METRICS.get(name)
    return (spec, k) if spec.cutoff == (k is not None) else None


def metric_columns_in(columns: Iterable[str]) -> list[str]:
    """The columns of a frame that hold registered metrics, in the order of :func:`metric_columns`."""
    order = {m.name: position for position, m in enumerate(metrics())}
    found = [(c, _parse(c)) for c in columns]
    found = [(c, parsed) for c, parsed in found if parsed is not None]
    return [
        c
        for c, (spec, k) in sorted(found, key=lambda item: (item[1][0].cutoff, item[1][1] or 0, order[item[1][0].name]))
    ]


def metric_label(column: str) -> str:
    """A metric column as tables name it: 'auc' -> 'AUC', 'recall@20' -> 'R@20', 'ndcg_paper@20' -> 'nDCG@20 (paper)';
    a column of no registered metric as it is."""
    parsed = _parse(column)
    if parsed is None:
        return column
    spec, k = parsed
    return spec.column_label(k)


def cutoff_metrics() -> tuple[MetricSpec, ...]:
    return tuple(m for m in metrics() if m.cutoff)
