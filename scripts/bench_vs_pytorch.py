#!/usr/bin/env python3
"""Engine throughput against PyTorch, measured back to back on this machine.

For each model, thread count and mode (training at batch 128, evaluation at
batch 1000) it runs the PyTorch CPU reference benchmark
(../shared/bench/torch_bench.py, in a Python that has torch) and then
`pruned bench` (release build), each mode in its own process, and prints a
Markdown table of median img/s, the ratio pruned / PyTorch, and each
process's peak resident set (its maxrss from wait4, measured the same way for
both sides; it includes the interpreter or runtime and start-up). The machines
are shared and noisy: only the ratio of two measurements taken minutes apart
means anything.

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


def run_measured(argv, stdout):
    """Runs argv to completion; returns (its stdout text or None, its peak resident set in bytes)."""
    proc = subprocess.Popen(argv, stdout=stdout, text=True)
    out = proc.stdout.read() if stdout == subprocess.PIPE else None
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, argv)
    return out, usage.ru_maxrss * 1024   # Linux reports kilobytes


def torch_run(python, script, model, threads, mode, repeats, quiet):
    """(median img/s, peak RSS bytes) of one mode of torch_bench.py in its own process."""
    with tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False) as f:
        path = f.name
    try:
        _, rss = run_measured([python, script, "--models", TORCH_NAMES[model], "--threads", str(threads),
                               "--batches", "128", "--eval-batch", "1000", "--repeats", str(repeats),
                               "--train-only" if mode == "train" else "--eval-only", "--jsonl", path]
                              + (["--quiet-threshold", "0.15", "--clean-threshold", "0.25"] if quiet else []),
                              sys.stderr)
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    finally:
        os.unlink(path)
    return next(r["median"] for r in rows if r["kind"] == mode), rss


def pruned_run(binary, model, threads, mode, repeats):
    """(median img/s, peak RSS bytes) of one mode of `pruned bench` in its own process."""
    out, rss = run_measured([binary, "bench", "--models", model, "--threads", str(threads),
                             "--repetitions", str(repeats), "--modes", mode, "--json"], subprocess.PIPE)
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    return next(r["images_per_second"] for r in rows if r["mode"] == mode), rss


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--python", required=True, help="a Python with torch installed")
    ap.add_argument("--torch-bench", required=True, help="path of torch_bench.py")
    ap.add_argument("--pruned", default=".build/release/pruned", help="the pruned binary (release build)")
    ap.add_argument("--models", default="conv4,vgg11_bn,resnet18")
    ap.add_argument("--threads", default="2")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-quiet", action="store_true",
                    help="do not make PyTorch wait for a quiet machine and redo disturbed repetitions "
                         "(on a machine that is never quiet; its timings are then as noisy as pruned's)")
    args = ap.parse_args()
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in TORCH_NAMES]
    if unknown:
        ap.error("unknown model(s) %s; known: %s" % (", ".join(unknown), ", ".join(TORCH_NAMES)))
    rows = []
    for model in models:
        for threads in [int(t) for t in args.threads.split(",")]:
            for mode in ("train", "eval"):
                ref, ref_rss = torch_run(args.python, args.torch_bench, model, threads, mode, args.repeats, not args.no_quiet)
                ours, our_rss = pruned_run(args.pruned, model, threads, mode, max(args.repeats, 3))
                rows.append((model, mode, threads, ours, ref, our_rss, ref_rss))
                print("%s %s %d threads: pruned %.1f, PyTorch %.1f img/s, ratio %.2f; peak RSS pruned %.0f MB, PyTorch %.0f MB"
                      % (model, mode, threads, ours, ref, ours / ref, our_rss / 1e6, ref_rss / 1e6), file=sys.stderr)
    print("| model | mode | threads | pruned img/s | PyTorch img/s | ratio | pruned peak RSS MB | PyTorch peak RSS MB | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for model, mode, threads, ours, ref, our_rss, ref_rss in rows:
        print("| %s | %s | %d | %.1f | %.1f | %.2f | %.0f | %.0f | %.2f |"
              % (model, mode, threads, ours, ref, ours / ref, our_rss / 1e6, ref_rss / 1e6, our_rss / ref_rss))


if __name__ == "__main__":
    main()
