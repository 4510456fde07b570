#!/usr/bin/env python3
"""Throughput of two builds of pruned, measured back to back in one run.

For each model and thread count it runs `BEFORE bench` and `AFTER bench` alternately over
--rounds rounds (the order flips every round, so neither build always runs first), takes each
build's median img/s per mode, and prints a Markdown table with the ratio after / before.
The machines are shared and noisy: only such interleaved ratios mean anything.

    git worktree add --detach /tmp/base 9ee30ef && (cd /tmp/base && swift build -c release --product pruned)
    scripts/bench_before_after.py --before /tmp/base/.build/release/pruned \
        --after .build/release/pruned [--models conv4,vgg11_bn,resnet18] [--threads 1,2] [--rounds 3]
"""
import argparse
import json
import statistics
import subprocess
import sys


def bench(binary, model, threads, repetitions, extra):
    out = subprocess.run([binary, "bench", "--models", model, "--threads", str(threads),
                          "--repetitions", str(repetitions), "--json"] + extra,
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["mode"]: r["images_per_second"] for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--before", required=True, help="the reference pruned binary (release build)")
    ap.add_argument("--after", default=".build/release/pruned", help="the pruned binary measured against it")
    ap.add_argument("--models", default="conv4,vgg11_bn,resnet18")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repetitions", type=int, default=3, help="timed repetitions inside each bench call")
    ap.add_argument("--after-args", default="", help="extra arguments for the after binary's bench (e.g. '--conv winograd4')")
    ap.add_argument("--before-args", default="", help="extra arguments for the before binary's bench")
    args = ap.parse_args()
    if args.rounds < 1 or args.repetitions < 1:
        ap.error("--rounds and --repetitions must be at least 1")
    models = [m for m in args.models.split(",") if m]
    threads = [int(t) for t in args.threads.split(",") if t]
    extra = {"before": args.before_args.split(), "after": args.after_args.split()}
    rows = []
    for model in models:
        for t in threads:
            samples = {"before": {}, "after": {}}
            for r in range(args.rounds):
                order = ["before", "after"] if r % 2 == 0 else ["after", "before"]
                for which in order:
                    binary = args.before if which == "before" else args.after
                    got = bench(binary, model, t, args.repetitions, extra[which])
                    for mode, v in got.items():
                        samples[which].setdefault(mode, []).append(v)
                    print("%s %d thr round %d %s: %s" % (model, t, r + 1, which,
                          ", ".join("%s %.1f" % kv for kv in sorted(got.items()))), file=sys.stderr)
            for mode in ("train", "eval"):
                b, a = samples["before"].get(mode), samples["after"].get(mode)
                if b and a:
                    rows.append((model, mode, t, statistics.median(b), statistics.median(a)))
    print("| model | mode | threads | before img/s | after img/s | after / before |")
    print("|---|---|---|---|---|---|")
    for model, mode, t, b, a in rows:
        print("| %s | %s | %d | %.1f | %.1f | %.2f |" % (model, mode, t, b, a, a / b))


if __name__ == "__main__":
    main()
