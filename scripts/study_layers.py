#!/usr/bin/env python3
"""Per-layer instability of a study's runs: which layer's pruning events drive each configuration's
mean stability. Reads RUNS/*/spec.json and metrics.jsonl as the daemon wrote them (standard library
only) and prints, per configuration (spec name) and layer, the mean over seeds of each seed's mean
instability in accuracy points (test accuracy just before minus just after the layer's events),
with a 95% t interval over seeds, plus the same for the layer's last event alone.

    scripts/study_layers.py STATE_DIR/runs
"""
import json
import math
import os
import statistics
import sys

# Two-sided 95% Student t quantiles, by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262,
       10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110,
       18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(df):
    if df in T95:
        return T95[df]
    return T95[max(k for k in T95 if k <= df)] if df < 30 else 1.96


def interval(values):
    n = len(values)
    mean = statistics.fmean(values)
    if n < 2:
        return f"{mean:6.2f}  (n too small for a CI)"
    half = t95(n - 1) * statistics.stdev(values) / math.sqrt(n)
    return f"{mean:6.2f}  [{mean - half:6.2f}, {mean + half:6.2f}]"


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: study_layers.py RUNS_DIR")
    root = sys.argv[1]
    configs = {}  # name -> layer -> list of (seed, [instability points per event])
    for entry in sorted(os.listdir(root)):
        run = os.path.join(root, entry)
        try:
            with open(os.path.join(run, "spec.json")) as f:
                spec = json.load(f)
            with open(os.path.join(run, "summary.json")) as f:
                summary = json.load(f)
        except (OSError, ValueError):
            continue  # unfinished or not a run directory
        if summary.get("status", "completed") != "completed":
            continue
        per_layer = {}
        with open(os.path.join(run, "metrics.jsonl")) as f:
            for line in f:
                row = json.loads(line)
                event = row.get("prune_event")
                if not event:
                    continue
                for layer in event["layers"]:
                    per_layer.setdefault(layer["layer"], []).append(event["instability_points"])
        for layer, points in per_layer.items():
            configs.setdefault(spec["name"], {}).setdefault(layer, []).append(points)
    print("Instability per layer (accuracy points lost at the layer's events; mean over seeds of")
    print("each seed's mean, 95% t interval over seeds). Events that pruned several layers at once")
    print("count for each of them.")
    for name in sorted(configs):
        print(f"\n{name}")
        print(f"  {'layer':<16} {'n':>2}  {'events':>6}  {'mean per event':<28}  {'last event':<28}")
        for layer in sorted(configs[name]):
            seeds = configs[name][layer]
            means = [statistics.fmean(p) for p in seeds]
            lasts = [p[-1] for p in seeds]
            events = len(seeds[0])
            print(f"  {layer:<16} {len(seeds):>2}  {events:>6}  {interval(means):<28}  {interval(lasts):<28}")


if __name__ == "__main__":
    main()
