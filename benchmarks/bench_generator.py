"""Benchmark: generate and write the default synthetic data set at several scales.

The purchase simulation draws every purchase from groups of items instead of
scoring the whole inventory, and the embeddings are streamed into the .npy, so
time and memory should grow about linearly with ``dataset.synthetic.scale``.
Goal: scale 100 (774,200 items, 291,900 users, 2048-d embeddings) in a few
minutes with a peak memory well under 8 GB.

    .venv/bin/python benchmarks/bench_generator.py [--scales 1 10 100] [--dim 2048] [--seed 42]

Each scale runs in a fresh process (so its peak memory is its own) and writes
into a temporary folder that is deleted afterwards (scale 100 needs 6.5 GB of
disk for the embeddings).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile

CHILD = """
import json, resource, sys, time
from curatornet.data.synthetic import generate, parameters_for, write_public_release
scale, dim, seed, folder = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
began = time.perf_counter()
data = generate(parameters_for("default", scale, dim), seed)
generated = time.perf_counter()
write_public_release(data, folder=folder)
done = time.perf_counter()
print(json.dumps({
    "scale": scale, "items": len(data.items), "users": int(data.purchases["user_id"].nunique()),
    "purchase_rows": len(data.purchases), "generate_s": round(generated - began, 1),
    "write_s": round(done - generated, 1), "total_s": round(done - began, 1),
    "peak_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0, 100.0])
    parser.add_argument("--dim", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    print("scale  items    users    purchase_rows  generate_s  write_s  total_s  peak_MB")
    for scale in args.scales:
        with tempfile.TemporaryDirectory(prefix="bench_generator_") as folder:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, str(scale), str(args.dim), str(args.seed), folder],
                check=True,
                capture_output=True,
                text=True,
            )
        row = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{row['scale']:<6g} {row['items']:<8} {row['users']:<8} {row['purchase_rows']:<14} "
            f"{row['generate_s']:<11} {row['write_s']:<8} {row['total_s']:<8} {row['peak_mb']}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
