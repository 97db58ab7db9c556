# What every stage shares: the package on the import path, the plugins, config
# validation, where files live, and the input functions. Included first, before the
# config is validated, so nothing here reads the config at include time but its
# `plugins` key. Nothing heavy is imported: this file runs each time the workflow is
# parsed, on a cluster once per job.
import os
import sys
from pathlib import Path

# The package lives in src/. Make it importable here and in every job (scripts run
# in their own process, possibly in a conda env or on a cluster node, which all
# inherit the environment), even when it has not been pip-installed.
_SRC = str(Path(workflow.basedir).parent / "src")
sys.path.insert(0, _SRC)
os.environ.update(PYTHONPATH=os.pathsep.join(p for p in (_SRC, os.environ.get("PYTHONPATH")) if p))

from curatornet import ablation as ablation_plan
from curatornet import parts
from curatornet.artifacts import BPR_SHARD, RANDOM_SHARD, SAMPLINGS, l2_label
from curatornet.config import validate_config
from curatornet.data import layout as data_layout
from curatornet.data.images import embed_images_inputs as image_inputs
from curatornet.evaluation.evaluate import baseline_settings
from curatornet.models.settings import triplet_set
from curatornet.registry import use_plugins
from curatornet.sampling import plan as triplet_plan


def config_source():
    """The config files in effect, in merge order, for error messages: 'config/config.yaml + mine.yaml'."""

    def shown(path):
        path = Path(path).resolve()
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)

    overlays = [shown(f) for f in workflow.overwrite_configfiles]
    files = [shown(f) for f in workflow.configfiles if shown(f) not in overlays] + overlays
    return " + ".join(dict.fromkeys(files)) or "config"


# Plugins: modules that register models, baselines, metrics or guidelines (curatornet.registry).
# Imported before anything reads a registry: the schema, the wildcards and the job lists below
# include their parts. use_plugins also names them in CURATORNET_PLUGINS, which every job inherits,
# so that the jobs' own processes import them too.
use_plugins(config.get("plugins"), config_source())

# ---------------------------------------------------------------------------
# Where files live. Rules name their own outputs; downstream rules refer to them
# as rules.<rule>.output.<name>. Only the patterns shared by several rules are here.

#: The folder the generator writes the synthetic data set to (file names: curatornet.data.layout).
RAW_DIR = "results/data/raw"
#: What rule embed_images makes of the folder dataset.images (when that key is set).
IMAGE_EMBEDDINGS = "results/data/images/resnet50_embeddings.npy"
#: One trained run inside a path: every model directory, evaluation run, log and
#: benchmark of a run uses it (and training_runs() fills it in).
RUN = "{model}/{sampling}/l2_{l2}/seed_{seed}"
#: The refit of the selected run of a (model, sampling) and seed (training.refit).
REFIT = "{model}/{sampling}/refit/seed_{seed}"
#: One ablation variant (curatornet.ablation) and seed: its model and evaluation directories.
ABLATION_RUN = "{ablation}/seed_{seed}"
#: The split whose cases make the paper's Table 2; the validation split selects models.
EVALUATION_SPLIT = "test"
#: Splits that have evaluation cases (the `cases` rule's {split}): every method is
#: scored on both, Table 2 reads the test, model selection the validation baskets.
CASE_SPLITS = ("test", "valid")
#: The merged triplet sets: the guidelines, random triples with profiles (models that read
#: profiles) and BPR triples without (VBPR); curatornet.models.settings.triplet_set picks a run's.
TRIPLET_SETS = ("guidelines", RANDOM_SHARD, BPR_SHARD)

#: The ablation's figure (config ablation), drawn when the ablation runs.
ABLATION_FIGURE = {"ablation": "Which parts matter: test AUC change with one guideline left out or another pooling"}
#: Figures of the report: name -> title. Drawn by curatornet.plots.FIGURES[name] from
#: figure_inputs(); captions in workflow/report/figures/<name>.rst.
FIGURES = {
    "clusters": "Visual clusters on the 2-D map (paper Figure 3)",
    "sampling_auc": "AUC with sampling guidelines vs random sampling (paper Figure 4)",
    "learning_curves": "Learning curves of every trained run",
    "topk_curves": "Recall@k, Precision@k and nDCG@k for all methods",
    "restarts": "Silhouette of the k-means restarts",
    "example": "Example recommendations for one test user (paper Figure 5)",
}
#: Captions and the report's text, relative to the working directory (moving the project reruns nothing).
REPORT_DIR = Path(os.path.relpath(Path(workflow.basedir) / "report"))


# Every kind of part from its registry (curatornet.parts): a registered part is a valid wildcard.
wildcard_constraints:
    shard="|".join(parts.shard_names()),
    restart=r"\d+",
    model="|".join(parts.model_names()),
    sampling="|".join(SAMPLINGS),
    l2=r"[0-9][0-9.e-]*",
    seed=r"\d+",
    baseline="|".join(parts.baseline_names()),
    split="|".join(CASE_SPLITS),
    figure="|".join([*FIGURES, *ABLATION_FIGURE]),
    ablation=r"(without|pool)_[a-z0-9_]+",
    recommender="|".join(parts.batch_recommenders()),


def per_attempt(base):
    """A resource that grows with each retry: `base` on the first attempt, twice it on the second.
    `base` is a number or a function of the wildcards."""
    if callable(base):
        return lambda wildcards, attempt: int(base(wildcards)) * attempt
    return lambda wildcards, attempt: int(base) * attempt


# ---------------------------------------------------------------------------
# Runs


def training_runs():
    """Wildcards of every training job the config asks for, in config order."""
    runs = []
    for model, grid in config["training"]["runs"].items():
        for sampling, values in grid.items():
            for value in values:
                for seed in config["training"]["seeds"]:
                    runs.append({"model": model, "sampling": sampling, "l2": l2_label(value), "seed": str(seed)})
    return runs


def for_each_run(pattern):
    """`pattern` (with the wildcards of RUN) filled in for every training run."""
    return [pattern.format(**run) for run in training_runs()]


def refit_runs():
    """Wildcards of every refit job (one per model, sampling and seed that trains; none without training.refit)."""
    if not config["training"]["refit"]:
        return []
    keys = {(run["model"], run["sampling"], run["seed"]): None for run in training_runs()}
    return [{"model": model, "sampling": sampling, "seed": seed} for model, sampling, seed in keys]


def for_each_refit(pattern):
    """`pattern` (with the wildcards of REFIT) filled in for every refit."""
    return [pattern.format(**run) for run in refit_runs()]


def selected_candidates(wildcards):
    """The runs a refit's λ is chosen among: every λ of its model and sampling, at its seed."""
    return [
        run
        for run in training_runs()
        if (run["model"], run["sampling"], run["seed"]) == (wildcards.model, wildcards.sampling, wildcards.seed)
    ]


def selection_models(model, sampling):
    """model.json of every run (every λ and seed) the λ of (model, sampling) is selected among."""
    return [
        rules.train.output.model.format(**run)
        for run in training_runs()
        if (run["model"], run["sampling"]) == (model, sampling)
    ]


def refit_inputs(wildcards):
    """A refit's triples (its triplet set drawn from every purchase before the test baskets) and the
    directories of the runs its λ is chosen among (model.json and history.csv)."""
    name = triplet_set(wildcards.model, wildcards.sampling)
    runs = selected_candidates(wildcards)
    return {
        "train": rules.dedup_refit_triplets.output[f"{name}_train"],
        "runs": [rules.train.output.model.format(**run) for run in runs],
        "histories": [rules.train.output.history.format(**run) for run in runs],
        "selection": selection_models(wildcards.model, wildcards.sampling),
    }


def model_dirs():
    """The directory of every trained run (where rule train writes model.json)."""
    return [os.path.dirname(path) for path in for_each_run(rules.train.output.model)]


# ---------------------------------------------------------------------------
# Input functions


def prepare_data_inputs(wildcards):
    """The generator's files, or the configured folder's files (+ a configured or image embeddings .npy)."""
    return data_layout.input_files(config["dataset"], RAW_DIR, IMAGE_EMBEDDINGS)


def embed_images_inputs(wildcards):
    """The inventory, every image of dataset.images and the weights file (unless random)."""
    return image_inputs(config["dataset"], RAW_DIR)


def shard_inputs(wildcards):
    """Only the tables this shard reads, so that it reruns only when they change."""
    tables = {
        "inventory": rules.prepare_data.output.item_table,
        "purchases": rules.prepare_data.output.purchase_table,
        # The selected restart's clusters: the shards need not wait for the 2-D map.
        "clusters": rules.select_restart.output.assignment,
    }
    return triplet_plan.shard_inputs(wildcards.shard, tables)


def refit_shard_inputs(wildcards):
    """A refit shard's tables: those of its shard, and always the purchases (their growth scales its budget)."""
    tables = {
        "inventory": rules.prepare_data.output.item_table,
        "purchases": rules.prepare_data.output.purchase_table,
        "clusters": rules.select_restart.output.assignment,
    }
    return triplet_plan.shard_inputs(wildcards.shard, tables, refit=True)


def training_triples(wildcards):
    """The merged training and validation triples of the run's triplet set."""
    merged = rules.dedup_triplets.output
    name = triplet_set(wildcards.model, wildcards.sampling)
    return {"train": merged[f"{name}_train"], "valid": merged[f"{name}_valid"]}


def evaluation_cases():
    """The cases every method is scored on, per split (named inputs of the evaluation jobs)."""
    inputs = {}
    for split in CASE_SPLITS:
        inputs[f"{split}_cases"] = rules.cases.output.cases.format(split=split)
        inputs[f"{split}_inventory"] = rules.cases.output.inventory.format(split=split)
    return inputs


def evaluation_outputs(name):
    """File `name` (per_user, curves or top) of every evaluated run: trained runs in config order, then baselines."""
    trained = for_each_run(getattr(rules.evaluate_run.output, name))
    baselines = [getattr(rules.evaluate_baseline.output, name).format(baseline=b) for b in parts.baseline_names()]
    return trained + baselines


def model_runs(model):
    """The training runs (wildcard dicts) of one model, in config order."""
    return [run for run in training_runs() if run["model"] == model]


def recommender_models(wildcards):
    """A trained recommender reads the selection, the model.json of each of its runs (in the order of
    recommender_runs) and of each of its refit models (training.refit; in the order of recommender_refits);
    a baseline (VisRank) reads none of them."""
    if parts.is_baseline(wildcards.recommender):
        return {}
    return {
        "selection": rules.select_runs.output.selection,
        "models": [rules.train.output.model.format(**r) for r in model_runs(wildcards.recommender)],
        "refits": [rules.refit.output.model.format(**r) for r in recommender_refits(wildcards)],
    }


def recommender_runs(wildcards):
    return [] if parts.is_baseline(wildcards.recommender) else model_runs(wildcards.recommender)


def recommender_refits(wildcards):
    return [run for run in refit_runs() if run["model"] == wildcards.recommender]


def recommender_settings(wildcards):
    """A baseline's settings (what its recommendations depend on in the config); none for a model."""
    if parts.is_baseline(wildcards.recommender):
        return baseline_settings(wildcards.recommender, config["evaluation"])
    return {}


def batch_recommenders():
    """The recommenders the config asks batch recommendations of (models only when trained)."""
    trained = {run["model"] for run in training_runs()}
    return [r for r in config["recommendations"]["recommenders"] if parts.is_baseline(r) or r in trained]


def batch_recommendations():
    """The batch recommendations the config asks for."""
    return [rules.recommend_batch.output.recommendations.format(recommender=r) for r in batch_recommenders()]


def report_figures():
    """The report's figures: FIGURES, and the ablation's when it runs (name -> title)."""
    return FIGURES | (ABLATION_FIGURE if ablation_variants() else {})


def figure_inputs(wildcards):
    """The named inputs of one figure; curatornet.plots.FIGURES[figure] takes them by these names."""
    evaluation, stats = rules.gather_evaluation.output, rules.stats.output
    if wildcards.figure in ABLATION_FIGURE:
        return {"ablation": rules.ablation_stats.output.guidelines, "pooling": rules.ablation_stats.output.poolings}
    sources = {
        "clusters": {"cluster_items": rules.clusters.output.cluster_items},
        "restarts": {"restarts": rules.select_restart.output.restarts},
        "sampling_auc": {"sampling_ttest": stats.sampling, "per_user": evaluation.per_user},
        "learning_curves": {"histories": for_each_run(rules.train.output.history)},
        "topk_curves": {"curves": evaluation.curves},
        "example": {
            "cases": evaluation_cases()[f"{EVALUATION_SPLIT}_cases"],
            "top": evaluation.top,
            "catalogue": rules.prepare_data.output.item_table,
            "cluster_items": rules.clusters.output.cluster_items,
            "selection": rules.select_runs.output.selection,
        },
    }
    return sources[wildcards.figure]


def figure_options(wildcards):
    """The config a figure depends on (as params: changing it redraws this figure only)."""
    if wildcards.figure == "learning_curves":
        return {"runs": training_runs()}
    if wildcards.figure == "example":
        settings = config["report"]
        return {"example_user": settings["example_user"], "images": settings["images"], "seed": config["seed"]}
    return {}


def ablation_variants():
    """The ablation's variants the config asks for (curatornet.ablation.variants); none by default."""
    return ablation_plan.variants(config)


def for_each_ablation_run(pattern):
    """`pattern` (with the wildcards of ABLATION_RUN) for every variant and seed."""
    return [
        pattern.format(ablation=variant.name, seed=seed)
        for variant in ablation_variants()
        for seed in config["training"]["seeds"]
    ]


def ablation_kept_guidelines(wildcards):
    """The guidelines a leave-one-out set keeps, in registry order."""
    left_out = ablation_plan.variant(config, wildcards.ablation).left_out
    return [name for name in parts.guideline_names() if name != left_out]


def ablation_set_inputs(wildcards):
    """The shards and the headroom shards of the guidelines a leave-one-out set keeps (same order)."""
    kept = ablation_kept_guidelines(wildcards)
    return {
        "shards": [rules.sample_shard.output.triples.format(shard=name) for name in kept],
        "headroom": [rules.sample_headroom_shard.output.triples.format(shard=name) for name in kept],
    }


def ablation_triples(wildcards):
    """A variant's training and validation triples: its leave-one-out set, or the full guidelines set."""
    if ablation_plan.variant(config, wildcards.ablation).left_out:
        return {"train": rules.ablation_set.output.train, "valid": rules.ablation_set.output.valid}
    merged = rules.dedup_triplets.output
    return {"train": merged.guidelines_train, "valid": merged.guidelines_valid}


def ablation_full_runs():
    """The ablated model's guidelines runs (l2 and seed), whose selected λ is the full set's side."""
    model = config["ablation"]["model"]
    return [
        {"l2": run["l2"], "seed": run["seed"]}
        for run in training_runs()
        if run["model"] == model and run["sampling"] == "guidelines"
    ]


def ablation_stats_inputs(wildcards):
    """The full set's per-run test results (in the order of ablation_full_runs), and every variant's
    results and model.json (variant by variant, seed by seed)."""
    model = config["ablation"]["model"]
    full = [
        rules.evaluate_run.output.per_user.format(model=model, sampling="guidelines", **run)
        for run in ablation_full_runs()
    ]
    return {
        "full": full,
        "variants": for_each_ablation_run(rules.evaluate_ablation.output.per_user),
        "models": for_each_ablation_run(rules.train_ablation.output.model),
    }


def figure_caption(wildcards):
    """The figure's caption file, for the Snakemake report (workflow/report/figure.rst includes it)."""
    return str(REPORT_DIR / "figures" / f"{wildcards.figure}.rst")


def baseline_params(wildcards):
    """The part of the evaluation config this baseline's results depend on."""
    return baseline_settings(wildcards.baseline, config["evaluation"])


def baseline_inputs(wildcards):
    """The cases and embeddings, and the purchases for a baseline that reads them (MostPopular)."""
    inputs = {**evaluation_cases(), "embeddings": rules.prepare_data.output.embedding_table}
    if parts.baseline(wildcards.baseline).purchases:
        inputs["purchases"] = rules.prepare_data.output.purchase_table
    return inputs


def benchmark_files():
    """The benchmark file of every job the report's run-time table shows (all but the report's own)."""
    files = []
    if config["dataset"]["format"] == "synthetic":
        files.append(rules.generate_data.benchmark)
    if config["dataset"]["images"]:
        files.append(rules.embed_images.benchmark)
    files += [rules.prepare_data.benchmark, rules.clusters.benchmark]
    files += [rules.sample_shard.benchmark.format(shard=shard) for shard in parts.shard_names()]
    files.append(rules.dedup_triplets.benchmark)
    files += for_each_run(rules.train.benchmark)
    files.append(rules.select_runs.benchmark)
    files += [rules.cases.benchmark.format(split=split) for split in CASE_SPLITS]
    if refit_runs():
        files += [rules.sample_refit_shard.benchmark.format(shard=shard) for shard in parts.shard_names()]
        files += [rules.dedup_refit_triplets.benchmark, *for_each_refit(rules.refit.benchmark)]
        files += for_each_refit(rules.evaluate_refit.benchmark)
    files += for_each_run(rules.evaluate_run.benchmark)
    files += [rules.evaluate_baseline.benchmark.format(baseline=b) for b in parts.baseline_names()]
    files += [rules.gather_evaluation.benchmark, rules.stats.benchmark]
    files += [rules.plot.benchmark.format(figure=figure) for figure in report_figures()]
    if ablation_variants():
        if any(variant.left_out for variant in ablation_variants()):
            files += [rules.sample_headroom_shard.benchmark.format(shard=g) for g in parts.guideline_names()]
            names = [variant.name for variant in ablation_variants() if variant.left_out]
            files += [rules.ablation_set.benchmark.format(ablation=name) for name in names]
        files += for_each_ablation_run(rules.train_ablation.benchmark)
        files += for_each_ablation_run(rules.evaluate_ablation.benchmark)
        files.append(rules.ablation_stats.benchmark)
    files += [rules.recommend_batch.benchmark.format(recommender=r) for r in batch_recommenders()]
    return files
