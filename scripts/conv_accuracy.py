#!/usr/bin/env python3
"""Final accuracy of real training runs under different convolution algorithms.

Trains one preset (default F2_VGG_4, the demo's Prune_L) on real Fashion-MNIST with
`pruned run --conv ALGORITHM` for every algorithm and seed, two runs at a time with one
thread each, and prints per algorithm every seed's final test accuracy, their mean, the mean
per-seed difference to the first algorithm, and the mean stability. Winograd variants round
differently, so runs diverge from the first step on: the question is whether the final
accuracies differ by more than seed noise.

    scripts/conv_accuracy.py --pruned .build/release/pruned --algorithms automatic2,automatic,im2col \
        --seeds 1,2,3 --out /tmp/conv-accuracy
"""
import argparse
import concurrent.futures
import json
import os
import statistics
import subprocess
import sys


def run(pruned, preset, algorithm, seed, out, extra):
    d = os.path.join(out, "%s-seed%d" % (algorithm, seed))
    if not os.path.exists(os.path.join(d, "summary.json")):
        subprocess.run([pruned, "run", "--spec", preset, "--out", d, "--threads", "1", "--seed", str(seed),
                        "--conv", algorithm] + extra, check=True, stdout=subprocess.DEVNULL)
    with open(os.path.join(d, "summary.json")) as f:
        summary = json.load(f)
    print("%s seed %d: %s" % (algorithm, seed, json.dumps(summary)), file=sys.stderr)
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pruned", default=".build/release/pruned")
    ap.add_argument("--preset", default="F2_VGG_4")
    ap.add_argument("--algorithms", default="automatic2,automatic,im2col")
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", required=True)
    ap.add_argument("--run-args", default="--epochs 40 --width 0.25 --dataset-kind fashion_mnist "
                    "--data /usr/share/datasets/fashion-mnist --train-limit 2048 --test-limit 1000",
                    help="arguments for every pruned run (default: the demo's)")
    args = ap.parse_args()
    algorithms = [a for a in args.algorithms.split(",") if a]
    seeds = [int(s) for s in args.seeds.split(",") if s]
    os.makedirs(args.out, exist_ok=True)
    jobs = [(a, s) for s in seeds for a in algorithms]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {job: pool.submit(run, args.pruned, args.preset, job[0], job[1], args.out, args.run_args.split())
                   for job in jobs}
        results = {job: f.result() for job, f in futures.items()}

    first = algorithms[0]
    print("| algorithm | final test accuracy, seeds %s | mean | mean − %s | mean stability |" % (",".join(map(str, seeds)), first))
    print("|---|---|---|---|---|")
    for a in algorithms:
        accs = [results[(a, s)]["final_test_acc"] for s in seeds]
        base = [results[(first, s)]["final_test_acc"] for s in seeds]
        stab = [results[(a, s)].get("mean_stability") for s in seeds]
        stab = [x for x in stab if x is not None]
        print("| %s | %s | %.2f | %+.2f | %s |" % (a, " / ".join("%.1f" % x for x in accs), statistics.mean(accs),
              statistics.mean(x - y for x, y in zip(accs, base)), "%.2f" % statistics.mean(stab) if stab else "–"))

if __name__ == "__main__":
    main()
