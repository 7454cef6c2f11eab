"""Speed of the linearizability checker on long single-key histories.

Owns: nothing the product imports; run by hand.
May import: ``dynamokv.sim``.

Usage (from the repository root)::

    PYTHONPATH=src python bench/linearizability_bench.py [--ops 500] [--concurrency 5]
        [--spread 8] [--histories 20] [--unknown 0.05]

For each of ``--histories`` seeds it draws a linearizable history (``random_history``: one
key, ``--concurrency`` clients, windows of up to ``--spread`` ms either side of each op's
instant) and one with a single corrupted result, and times ``check_key`` on both. Prints the
median and worst time and search steps of each kind, and how many corruptions were caught.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

try:
    import dynamokv  # noqa: F401
except ImportError:  # run without PYTHONPATH: use the source tree next to this script
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from dynamokv.sim.linearizability import check_key
from dynamokv.sim.linearizability_gen import corrupt, random_history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--spread", type=int, default=8)
    parser.add_argument("--histories", type=int, default=20)
    parser.add_argument("--unknown", type=float, default=0.05)
    args = parser.parse_args()
    rows: dict[str, list[tuple[float, int]]] = {"linearizable": [], "corrupted": []}
    caught = 0
    for seed in range(args.histories):
        rng = random.Random(seed)
        history = random_history(rng, args.ops, concurrency=args.concurrency,
                                 spread=args.spread, unknown=args.unknown)
        broken, _ = corrupt(rng, history)
        for kind, ops in (("linearizable", history), ("corrupted", broken)):
            start = time.perf_counter()
            verdict = check_key(ops)
            rows[kind].append((time.perf_counter() - start, verdict.steps))
            if kind == "linearizable" and verdict.outcome != "ok":
                raise SystemExit(f"seed {seed}: a linearizable history was judged "
                                 f"{verdict.outcome}:\n{verdict.explain()}")
            if kind == "corrupted":
                caught += verdict.outcome == "violation"
    print(f"{args.histories} histories of {args.ops} ops on one key, concurrency "
          f"{args.concurrency}, spread {args.spread} ms, unknown {args.unknown}")
    for kind, data in rows.items():
        times = [t * 1000 for t, _ in data]
        steps = [s for _, s in data]
        print(f"  {kind:<12} median {statistics.median(times):7.1f} ms  worst "
              f"{max(times):7.1f} ms  steps median {statistics.median(steps):.0f} "
              f"worst {max(steps)}")
    print(f"  corruptions caught: {caught} of {args.histories}")


if __name__ == "__main__":
    main()
