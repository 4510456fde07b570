#!/usr/bin/env python3
"""A small pruning sweep through the daemon: Conv4 on Fashion-MNIST, pruning features.conv3 by
L2 norm, for each pruning target (smallest/largest filters) x each seed. Submits the runs in one
group, waits for them, then prints best test accuracy and mean stability per run (from the
``summary`` that ``show`` returns once a run has completed) and the mean per target.

    python3 example_sweep.py                                   # defaults: tiny, a few seconds a run
    python3 example_sweep.py --epochs 10 --train-limit 60000 --seeds 1,2,3
    PRUNED_SOCKET=/tmp/s python3 example_sweep.py --data /path/to/fashion-mnist --json

Exit status 0 when every run completed.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pruned_client import Client, PrunedError  # noqa: E402


def base_spec(a):
    return {
        "model": "conv4",
        "width": a.width,
        "dataset": {"kind": "fashion_mnist", "path": a.data, "train_limit": a.train_limit, "test_limit": a.test_limit},
        "epochs": a.epochs,
        "batch_size": a.batch_size,
        "seed": 1,
        "pruning": {
            "score": "l2",
            "target": "smallest",
            # Prune a quarter of conv3's filters over the first epochs (0-based, end < epochs).
            "layers": [{"name": a.layer, "fraction": a.fraction, "start": 0, "end": max(0, a.epochs - 1)}],
        },
    }


def fmt(x, width=8):
    return ("%*.2f" % (width, x)) if isinstance(x, (int, float)) else ("%*s" % (width, "-"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--socket", default=None, help="daemon socket (default: $PRUNED_SOCKET or the usual places)")
    p.add_argument("--data", default=os.environ.get("PRUNED_FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                   help="Fashion-MNIST directory as the daemon sees it (default: $PRUNED_FASHION_MNIST or %(default)s)")
    p.add_argument("--targets", default="smallest,largest", help="pruning targets (comma-separated)")
    p.add_argument("--seeds", default="1,2", help="seeds (comma-separated integers)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--train-limit", type=int, default=1024)
    p.add_argument("--test-limit", type=int, default=256)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--layer", default="features.conv3", help="layer to prune (see `pruned layers --model conv4`)")
    p.add_argument("--fraction", type=float, default=0.25)
    p.add_argument("--group", default=None, help="group for the runs (default: sweep-<time>)")
    p.add_argument("--timeout", type=float, default=None, help="give up waiting after this many seconds")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between status polls")
    p.add_argument("--json", action="store_true", help="also print the results as one JSON line")
    a = p.parse_args(argv)

    targets = [t for t in a.targets.split(",") if t]
    seeds = [int(s) for s in a.seeds.split(",") if s]
    group = a.group or time.strftime("sweep-%Y%m%d-%H%M%S")
    c = Client(a.socket)
    spec = base_spec(a)

    runs = []
    for target in targets:
        for seed in seeds:
            try:
                r = c.submit(spec=spec, group=group, tags=["sweep", "target-" + target],
                             overrides={"pruning.target": target, "seed": seed,
                                        "name": "conv4 %s seed %d" % (target, seed)})
            except PrunedError as e:
                print("submit failed (%s): %s" % (e.code, e.message), file=sys.stderr)
                return 2
            runs.append({"id": r["id"], "target": target, "seed": seed})
            print("submitted %s  target=%-8s seed=%d" % (r["id"], target, seed), flush=True)

    try:
        states = c.wait([r["id"] for r in runs], timeout=a.timeout, poll=a.poll)
    except TimeoutError as e:
        print("timed out: %s" % e, file=sys.stderr)
        return 3

    for r in runs:
        r["state"] = states[r["id"]]
        summary = c.show(r["id"]).get("summary") or {}
        r["best_test_acc"] = summary.get("best_test_acc")
        r["mean_stability"] = summary.get("mean_stability")

    print()
    print("%-8s %-9s %5s %-10s %8s %8s" % ("run", "target", "seed", "state", "best_acc", "stab"))
    for r in runs:
        print("%-8s %-9s %5d %-10s %s %s" % (r["id"], r["target"], r["seed"], r["state"],
                                               fmt(r["best_test_acc"]), fmt(r["mean_stability"])))
    print()
    print("%-9s %5s %8s %8s" % ("target", "runs", "best_acc", "stab"))
    for target in targets:
        rows = [r for r in runs if r["target"] == target and r["best_test_acc"] is not None]
        mean = lambda k: sum(r[k] for r in rows) / len(rows) if rows else None  # noqa: E731
        print("%-9s %5d %s %s" % (target, len(rows), fmt(mean("best_test_acc")), fmt(mean("mean_stability"))))
    if a.json:
        print(json.dumps({"group": group, "runs": runs}))
    return 0 if all(r["state"] == "completed" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
