"""How to stop training on a noisy validation AUC: record trajectories, then compare stopping rules.

Usage (after the workflow has made the data and the triples, e.g. on the real log):
    .venv/bin/python benchmarks/study_stopping.py record --results results --out study \\
        [--model curatornet --sampling guidelines --l2 0.001] [--seeds 0 1 2 3 4] [--steps 440] [--every 5]
    .venv/bin/python benchmarks/study_stopping.py analyse --out study

``record`` trains one run per seed at a constant learning rate for ``--steps``
Adam steps (nothing stops it) and scores a check every ``--every`` steps: the
per-user AUC of every validation and test user, for the current weights and
for the average of the weights of the last 4 and 8 checks. The trajectories go
to ``<out>/seed_<s>.npz``.

``analyse`` replays candidate rules (check interval, minimum steps, smoothing
window, patience, weights averaged or not) on those trajectories and chooses
one on validation only. Choosing on the validation AUC of the kept check
would favour rules that take the maximum over more noisy checks, so the
score is cross-fitted: the validation users are split into two halves; a rule
watches one half and the kept check is scored on the other half, then the
halves swap. The rule with the best cross-fitted validation AUC (mean over
seeds) is chosen; only then is the test AUC of its kept checks printed,
beside the rule of the previous schedule (every pass, no minimum, patience 2).
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from collections import deque
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from curatornet.config import schema_defaults  # noqa: E402
from curatornet.evaluation.protocol import build_cases  # noqa: E402
from curatornet.evaluation.validation import per_user_auc  # noqa: E402
from curatornet.models.settings import TrainSettings, triplet_set  # noqa: E402

AVERAGED = (4, 8)  # checks whose weights are averaged in the "avg" sources
FOLD_SEED = 20261206  # the split of the validation users into two halves


def record(args: argparse.Namespace) -> None:
    from curatornet.models.loop import fit
    from curatornet.models.train import prepare_run

    results, out = Path(args.results), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = triplet_set(args.model, args.sampling)
    training = {
        **schema_defaults()["training"],
        "check_every_steps": args.every,
        "min_steps": args.steps,  # nothing is kept, stopped or decayed before the end: a plain trajectory
        "max_steps": args.steps,
        "smoothing": 1,
    }
    for seed in args.seeds:
        settings = TrainSettings.from_config(training, args.model, args.sampling, args.l2, seed)
        run = prepare_run(
            settings,
            results / "triplets" / name / "train.parquet",
            results / "triplets" / name / "valid.parquet",
            results / "data" / "embeddings.parquet",
            results / "data" / "items.parquet",
            results / "data" / "purchases.parquet",
        )
        test = build_cases(run.items, run.purchases, "test")
        snapshots: deque = deque(maxlen=max(AVERAGED))
        rows: dict[str, list[np.ndarray]] = {"valid": [], "test": []}
        for w in AVERAGED:
            rows[f"avg{w}_valid"], rows[f"avg{w}_test"] = [], []
        started = time.perf_counter()

        def check(run=run, test=test, rows=rows, snapshots=snapshots, seed=seed, started=started) -> dict:
            trainer = run.trainer
            rows["valid"].append(per_user_auc(trainer.scorer(), run.cases))
            rows["test"].append(per_user_auc(trainer.scorer(), test))
            current = trainer.get_weights()
            snapshots.append(current)
            for w in AVERAGED:
                last = list(snapshots)[-w:]
                trainer.set_weights({k: np.mean([s[k] for s in last], axis=0) for k in current})
                rows[f"avg{w}_valid"].append(per_user_auc(trainer.scorer(), run.cases))
                rows[f"avg{w}_test"].append(per_user_auc(trainer.scorer(), test))
            trainer.set_weights(current)
            print(
                f"seed {seed} check {len(rows['valid'])}: valid {np.nanmean(rows['valid'][-1]):.4f} "
                f"test {np.nanmean(rows['test'][-1]):.4f} ({time.perf_counter() - started:.0f} s)",
                flush=True,
            )
            return {"valid_auc": float(np.nanmean(rows["valid"][-1]))}

        result = fit(run.trainer, run.train, settings.schedule, check, "valid_auc")
        np.savez(
            out / f"seed_{seed}.npz",
            steps=result.history["step"].to_numpy(),
            steps_per_pass=np.array(len(run.train) / settings.schedule.batch_size),
            valid_users=run.cases.users,
            **{k: np.stack(v) for k, v in rows.items()},
        )


# --------------------------------------------------------------------------- rules


def kept_check(monitor: np.ndarray, steps: np.ndarray, rule: dict) -> tuple[int, int]:
    """(index of the check ``rule`` keeps, index of the check where it stops) when it watches ``monitor``.

    The same rule as :func:`curatornet.models.loop.fit` at a constant learning rate: a check counts once
    ``min_steps`` are done and its smoothing window is full.
    """
    best, best_at, since = -np.inf, -1, 0
    for c in range(len(monitor)):
        if steps[c] < rule["min_steps"] or c + 1 < rule["smoothing"]:
            continue
        smoothed = float(np.mean(monitor[c + 1 - rule["smoothing"] : c + 1]))
        if smoothed > best:
            best, best_at, since = smoothed, c, 0
            continue
        since += 1
        if since >= rule["patience"]:
            return best_at, c
    return best_at, len(monitor) - 1


def candidate_rules(steps_per_pass: float, every: int) -> list[dict]:
    rules = []
    grid = itertools.product(
        (1, 2, 4),  # check interval in recorded checks
        (0, 50, 100, 150, 200),  # min_steps
        (1, 3, 5),  # smoothing
        (2, 5, 10),  # patience
        ("raw", *(f"avg{w}" for w in AVERAGED)),  # weights kept
    )
    for stride, min_steps, smoothing, patience, source in grid:
        rules.append(
            dict(
                label="",
                every=stride * every,
                stride=stride,
                min_steps=min_steps,
                smoothing=smoothing,
                patience=patience,
                source=source,
            )
        )
    # The previous schedule: a check per pass, no minimum, patience 2 (it also decayed the rate).
    per_pass = max(1, round(steps_per_pass / every))
    rules.append(
        dict(
            label="previous",
            every=per_pass * every,
            stride=per_pass,
            min_steps=0,
            smoothing=1,
            patience=2,
            source="raw",
        )
    )
    return rules


def checks_of(run: dict, rule: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(steps, validation AUCs, test AUCs) of the checks ``rule`` sees: every ``stride``-th recorded check."""
    pick = np.arange(rule["stride"] - 1, len(run["steps"]), rule["stride"])
    prefix = "" if rule["source"] == "raw" else f"{rule['source']}_"
    return run["steps"][pick], run[f"{prefix}valid"][pick], run[f"{prefix}test"][pick]


def analyse(args: argparse.Namespace) -> None:
    runs = [dict(np.load(p)) for p in sorted(Path(args.out).glob("seed_*.npz"))]
    if not runs:
        raise SystemExit(f"no trajectories in {args.out}: run 'record' first")
    every = int(runs[0]["steps"][0])
    folds = np.random.default_rng(FOLD_SEED).random(len(runs[0]["valid_users"])) < 0.5
    print(
        f"{len(runs)} seeds, {len(runs[0]['steps'])} checks every {every} steps, {folds.sum()}/{(~folds).sum()} users"
    )
    scored = []
    for rule in candidate_rules(float(runs[0]["steps_per_pass"]), every):
        cross, full, kept_steps, run_steps = [], [], [], []
        for run in runs:
            steps, valid, _ = checks_of(run, rule)
            for watch, judge in ((folds, ~folds), (~folds, folds)):
                kept, _ = kept_check(np.nanmean(valid[:, watch], axis=1), steps, rule)
                cross.append(np.nanmean(valid[kept, judge]))
            kept, stopped = kept_check(np.nanmean(valid, axis=1), steps, rule)
            full.append(np.nanmean(valid[kept]))
            kept_steps.append(int(steps[kept]))
            run_steps.append(int(steps[stopped]))
        scored.append(dict(rule=rule, cross=np.array(cross), full=float(np.mean(full)), kept=kept_steps, ran=run_steps))
    scored.sort(key=lambda r: -r["cross"].mean())
    best = scored[0]
    for entry in scored:
        diff = entry["cross"] - best["cross"]  # paired by seed and half
        entry["diff"], entry["se"] = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(len(diff)))
    # One-standard-error rule: a rule whose paired difference to the best lies within its standard error is
    # not told apart from the best by these seeds; of those, take the one that trains the fewest steps (then
    # checks least often, then scores higher). Rules without a minimum are there to compare: the schedule
    # has one by design, so that an early lucky check cannot end a run.
    close = [e for e in scored if e["diff"] + e["se"] >= 0 and e["rule"]["min_steps"] > 0]
    chosen = min(close, key=lambda e: (np.mean(e["ran"]), -e["rule"]["every"], -e["cross"].mean()))
    print("\nrules by cross-fitted validation AUC (mean over seeds and halves; diff and its SE against the best):")
    print("cross   diff    se     full   every  min smooth pat source  steps run   kept steps")
    previous = next(e for e in scored if e["rule"]["label"] == "previous")
    for entry in scored[: args.top] + [previous, chosen]:
        rule = entry["rule"]
        print(
            f"{entry['cross'].mean():.4f} {entry['diff']:+.4f} {entry['se']:.4f} {entry['full']:.4f} "
            f"{rule['every']:5d} {rule['min_steps']:4d} {rule['smoothing']:6d} {rule['patience']:3d} "
            f"{rule['source']:6s} {np.mean(entry['ran']):6.0f}   {entry['kept']} {rule['label']}"
        )
    print("\nbest rule per min_steps:")
    for min_steps in sorted({e["rule"]["min_steps"] for e in scored}):
        top = next(e for e in scored if e["rule"]["min_steps"] == min_steps)
        print(f"  min_steps {min_steps:3d}: {top['cross'].mean():.4f} ({top['diff']:+.4f} ± {top['se']:.4f})")
    print(f"\n{len(close)} rules with a minimum lie within one standard error of the best")
    print(f"chosen (fewest steps among them): {chosen['rule']}")
    print(f"previous rule: rank {scored.index(previous) + 1} of {len(scored)}, {previous['diff']:+.4f}")
    print("\ntest AUC at the kept check (all validation users watched), printed after the choice:")
    for label, entry in (("chosen", chosen), ("previous", previous)):
        rule, tests = entry["rule"], []
        for run in runs:
            steps, valid, test = checks_of(run, rule)
            tests.append(float(np.nanmean(test[kept_check(np.nanmean(valid, axis=1), steps, rule)[0]])))
        print(
            f"{label:8s} test AUC per seed {np.round(tests, 4).tolist()}: mean {np.mean(tests):.4f}, "
            f"range {max(tests) - min(tests):.4f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record")
    rec.add_argument("--results", default="results")
    rec.add_argument("--out", default="study")
    rec.add_argument("--model", default="curatornet")
    rec.add_argument("--sampling", default="guidelines")
    rec.add_argument("--l2", type=float, default=0.001)
    rec.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    rec.add_argument("--steps", type=int, default=440)
    rec.add_argument("--every", type=int, default=5)
    rec.set_defaults(run=record)
    ana = sub.add_parser("analyse")
    ana.add_argument("--out", default="study")
    ana.add_argument("--top", type=int, default=25)
    ana.set_defaults(run=analyse)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
