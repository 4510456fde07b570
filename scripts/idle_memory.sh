#!/usr/bin/env bash
# Idle memory of the daemon: a real `pruned daemon` on a temporary state directory, 12 one-epoch
# runs of Conv4, VGG11 and ResNet20 at quarter width (in turn) on 512 Fashion-MNIST images, then
# its resident size (VmRSS) fresh and once idle again, and its largest resident mappings.
# Usage: scripts/idle_memory.sh [BUILD_DIR]   (default .build/release; build it first)
set -euo pipefail
bin=${1:-.build/release}
d=$(mktemp -d /tmp/pruned-idle-XXXX)
"$bin/pruned" daemon --state-dir "$d/state" --socket "$d/s" 2> "$d/log" &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$d"' EXIT
for _ in $(seq 100); do "$bin/prunectl" ping --socket "$d/s" > /dev/null 2>&1 && break; sleep 0.1; done
echo "fresh: $(grep VmRSS /proc/$pid/status)"
models=(conv4 vgg11_bn resnet20)
for i in $(seq 12); do
  m=${models[$((i % 3))]}
  printf '{"model":"%s","width":0.25,"dataset":{"kind":"fashion_mnist","path":"/usr/share/datasets/fashion-mnist","train_limit":512,"test_limit":256},"epochs":1,"batch_size":64,"seed":%d}\n' "$m" "$i" > "$d/spec.json"
  "$bin/prunectl" submit --socket "$d/s" --group mem --spec "$d/spec.json" > /dev/null
done
"$bin/prunectl" wait --socket "$d/s" --group mem --quiet
sleep 3
echo "after 12 runs: $(grep VmRSS /proc/$pid/status)"
echo "largest resident mappings (kB):"
awk '/^[0-9a-f]+-/{m=$0} /^Rss:/{if ($2>1000) print $2, m}' /proc/$pid/smaps | sort -rn | head -8
