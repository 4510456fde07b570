#!/usr/bin/env bash
# A small, reproducible version of the paper's Figure 2 VGG comparison and one Figure 3 rate pair,
# on Fashion-MNIST (not CIFAR-10), executed through the daemon with `prunectl sweep`.
#
#   scripts/study.sh [OUT]        (default OUT: docs/studies/fmnist-vgg-40ep)
#
# Configurations (each with seeds 1..SEEDS, default 6):
#   F2_VGG_2  Prune_S 13% (L2, smallest, r=40)
#   F2_VGG_3  Prune_R 13% (random, r=40)
#   F2_VGG_4  Prune_L 13% (L2, largest, r=40) -- also Figure 3's r=40 point: F3_L_40's schedule
#             is the same as F2_VGG_4's (`pruned schedule` prints both identically)
#   F3_L_100  Prune_L at r=100 (about 30% of conv8's filters per event instead of 13%)
# Scale: VGG11-BN at width 0.25, 40 epochs (the smallest count at which both schedules keep their
# whole shape is 37; `pruned schedule F2_VGG_4 --epochs 40` shows it), 5,120 training and 2,000
# test images, batch 128, the presets' Adam 1e-3 and LR milestones scaled.
# The script starts its own daemon (state under OUT/state, which is not committed; 2 runs at a
# time, 1 thread each), waits for every run, and writes OUT/report.txt, OUT/report.json,
# OUT/report.csv, the SVG figures, OUT/per-layer.txt and OUT/provenance.txt (commands, machine,
# wall time).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/studies/fmnist-vgg-40ep}
seeds=${SEEDS:-6}
epochs=${EPOCHS:-40}
data=${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}
swift build -c release --product pruned
swift build -c release --product prunectl
bin=$PWD/.build/release
mkdir -p "$out"
state=$(realpath "$out")/state
mkdir -p "$state"
sockdir=$(mktemp -d /tmp/pruned-study.XXXXXX)   # mode 0700, the user's own
sock=$sockdir/control.sock
"$bin/pruned" daemon --state-dir "$state" --socket "$sock" --runs 2 --threads 1 > "$state/daemon.log" 2>&1 &
daemon=$!
trap 'kill $daemon 2>/dev/null || true; rm -rf "$sockdir"' EXIT
for _ in $(seq 1 100); do "$bin/prunectl" ping --socket "$sock" >/dev/null 2>&1 && break; sleep 0.1; done
ctl() { local sub=$1; shift; "$bin/prunectl" "$sub" --socket "$sock" "$@"; }
group=study
common=(--set "epochs=$epochs" --set width=0.25 --set dataset.kind=fashion_mnist
        --set "dataset.path=$data" --set dataset.train_limit=5120 --set dataset.test_limit=2000)
commands=()
start=$(date +%s)
for preset in F2_VGG_2 F2_VGG_3 F2_VGG_4 F3_L_100; do
  cmd=(prunectl sweep "$preset" --seeds "1..$seeds" --group "$group" --tag "$preset" "${common[@]}")
  commands+=("${cmd[*]}")
  ctl "${cmd[@]:1}" > /dev/null
done
ctl wait --group "$group" --quiet || true
end=$(date +%s)
ctl report "$group" --figures "$out" > "$out/report.txt"
ctl report "$group" --format json > "$out/report.json"
python3 scripts/study_layers.py "$state/runs" > "$out/per-layer.txt"
{
  echo "commands (through the daemon: pruned daemon --runs 2 --threads 1):"
  for c in "${commands[@]}"; do echo "  $c"; done
  echo "  prunectl wait --group $group --quiet"
  echo "  prunectl report $group --figures $out"
  echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, $(free -g | awk '/^Mem:/{print $2}') GiB"
  echo "software: $("$bin/pruned" --version), commit $(git rev-parse --short HEAD)"
  echo "wall time: $(( (end - start) / 60 )) min $(( (end - start) % 60 )) s for $(( 4 * seeds )) runs, submission to last run finished"
  echo "date: $(date -u +%Y-%m-%dT%H:%MZ)"
} > "$out/provenance.txt"
cat "$out/report.txt" "$out/per-layer.txt" "$out/provenance.txt"
