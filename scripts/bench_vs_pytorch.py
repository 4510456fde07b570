#!/usr/bin/env python3
"""Engine throughput against PyTorch, measured back to back on this machine.

For each model and thread count it runs the PyTorch CPU reference benchmark
(../shared/bench/torch_bench.py, in a Python that has torch) and then
`pruned bench` (release build), and prints a Markdown table of median img/s
and the ratio pruned / PyTorch. The machines are shared and noisy: only the
ratio of two measurements taken minutes apart means anything.

    scripts/bench_vs_pytorch.py --python /tmp/torch-venv/bin/python \
        --torch-bench ../shared/bench/torch_bench.py [--threads 1,2] [--models conv4,vgg11_bn,resnet18]
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

TORCH_NAMES = {"conv4": "conv4", "vgg11_bn": "vgg11", "resnet18": "resnet18"}


def torch_run(python, script, model, threads, repeats):
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        path = f.name
    try:
        subprocess.run([python, script, "--models", TORCH_NAMES[model], "--threads", str(threads),
                        "--batches", "128", "--eval-batch", "1000", "--repeats", str(repeats),
                        "--quiet-threshold", "0.15", "--clean-threshold", "0.25", "--jsonl", path],
                       check=True, stdout=sys.stderr)
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(path)
    return {r["kind"]: r["median"] for r in rows}


def pruned_run(binary, model, threads, repeats):
    out = subprocess.run([binary, "bench", "--models", model, "--threads", str(threads),
                          "--repetitions", str(repeats), "--json"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return {r["mode"]: r["images_per_second"] for r in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="a Python with torch installed")
    ap.add_argument("--torch-bench", required=True, help="path of torch_bench.py")
    ap.add_argument("--pruned", default=".build/release/pruned", help="the pruned binary (release build)")
    ap.add_argument("--models", default="conv4,vgg11_bn,resnet18")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in TORCH_NAMES]
    if unknown:
        ap.error("unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(TORCH_NAMES)))
    rows = []
    for model in models:
        for threads in [int(t) for t in args.threads.split(",")]:
            ref = torch_run(args.python, args.torch_bench, model, threads, args.repeats)
            ours = pruned_run(args.pruned, model, threads, max(args.repeats, 3))
            for mode in ("train", "eval"):
                if mode in ref and mode in ours:
                    rows.append((model, mode, threads, ours[mode], ref[mode]))
                    print("%s %s %d threads: pruned %.1f, PyTorch %.1f img/s, ratio %.2f"
                          % (model, mode, threads, ours[mode], ref[mode], ours[mode] / ref[mode]), file=sys.stderr)
    print("| model | mode | threads | pruned img/s | PyTorch img/s | ratio |")
    print("|---|---|---|---|---|---|")
    for model, mode, threads, ours, ref in rows:
        print("| %s | %s | %d | %.1f | %.1f | %.2f |" % (model, mode, threads, ours, ref, ours / ref))


if __name__ == "__main__":
    main()
