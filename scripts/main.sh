#!/usr/bin/env bash
# The main job: install what is needed, build a release, and train Conv4 on the real
# Fashion-MNIST in the foreground (a short run: 3 epochs on 20,000 training images).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product pruned
out="runs/conv4-fashion-mnist-$(date +%Y%m%d-%H%M%S)"
.build/release/pruned run --spec examples/conv4-fashion-mnist.json --out "$out" --threads "$(nproc)"
echo "metrics: $out/metrics.jsonl  summary: $out/summary.json"
