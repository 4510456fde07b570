#!/usr/bin/env bash
# The main job: install what is needed, build a release, start the daemon in user mode, queue a
# short real experiment on Fashion-MNIST and watch it with prunectl, then print the report
# (figures go to runs/). The experiment: the paper's Prune_L vs Prune_S pair at the same rate
# (F2_VGG_4 and F2_VGG_2, 13% per event), three seeds each (DEMO_SEEDS, default 1..3), on a
# quarter-width VGG11, 40 epochs (the schedule keeps its whole shape from 37 on, recovery tail
# included: `pruned schedule F2_VGG_4 --epochs 40`), 2,048 training and 1,000 test images.
# The daemon runs as a `systemctl --user` socket-activated service when a user manager is
# available, else in the background (log: ~/.local/state/pruned/daemon.log); it keeps running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release --product pruned
swift build -c release --product prunectl
bin=$PWD/.build/release
export PATH="$bin:$PATH"
state=${XDG_STATE_HOME:-$HOME/.local/state}/pruned
if systemctl --user show-environment >/dev/null 2>&1; then
  make --no-print-directory install-user BUILDDIR=.build/release
  systemctl --user daemon-reload
  systemctl --user enable --now pruned.socket
  echo "daemon: systemctl --user status pruned (socket activated; logs: journalctl --user -u pruned)"
elif ! prunectl ping >/dev/null 2>&1; then
  mkdir -p "$state"
  nohup pruned daemon > "$state/daemon.log" 2>&1 &
  for _ in $(seq 1 100); do prunectl ping >/dev/null 2>&1 && break; sleep 0.1; done
  echo "daemon: pid $! in the background (no systemd user manager here); log: $state/daemon.log"
fi
prunectl ping
group="demo-$(date +%Y%m%d-%H%M%S)"
seeds=${DEMO_SEEDS:-1..3}
for preset in F2_VGG_4 F2_VGG_2; do   # Prune_L 13% and Prune_S 13%
  prunectl sweep "$preset" --seeds "$seeds" --group "$group" --tag "$preset" \
    --set epochs=40 --set width=0.25 --set dataset.kind=fashion_mnist \
    --set dataset.path=/usr/share/datasets/fashion-mnist --set dataset.train_limit=2048 --set dataset.test_limit=1000
done
prunectl watch --group "$group"
prunectl wait --group "$group" --quiet
mkdir -p runs
prunectl report "$group" --figures "runs/$group"
echo "results: prunectl list --group $group; figures in runs/$group/ (Fashion-MNIST, not CIFAR-10)"
