#!/bin/bash
# The Slurm test, end to end: starts a real single-node Slurm 22.05 cluster on this machine with
# ../shared/tools/slurm-local/start-cluster.sh --install (Debian's slurmctld, slurmd,
# slurm-client and munge, installed by apt-get when missing; state in $SLURM_LOCAL_DIR), runs
# tests/slurm/test.sh and then tests/slurm/daemon-test.sh against it, and stops and removes the cluster again.
#
# Usage (as root): tests/slurm/run.sh [--bin PATH] [--keep]     (arguments go to test.sh)
#   Environment: SLURM_LOCAL_TOOL (default ../shared/tools/slurm-local), SLURM_LOCAL_DIR (default
#   /var/tmp/slurm-local-pruned-test; must be outside /root), SLURM_LOCAL_PORT (default 6837),
#   SLURM_LOCAL_CPUS (default 4: the node pretends to have 4 CPUs, sharing the real cores, so the
#   array, the time-limited task and the cancelled task run side by side).
# Prints "SKIPPED: ..." and exits 0 without the tool or without root. Exit status: test.sh's
# (0 all passed, 1 a check failed, 2 setup error); 2 when the cluster does not start.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
tool=${SLURM_LOCAL_TOOL:-$root/../shared/tools/slurm-local}
if [ ! -f "$tool/start-cluster.sh" ]; then
  echo "SKIPPED: the Slurm test needs $tool/start-cluster.sh (set SLURM_LOCAL_TOOL=)"
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "SKIPPED: the Slurm test needs root (start-cluster.sh runs slurmd, which runs jobs as their users)"
  exit 0
fi
export SLURM_LOCAL_DIR=${SLURM_LOCAL_DIR:-/var/tmp/slurm-local-pruned-test}
export SLURM_LOCAL_PORT=${SLURM_LOCAL_PORT:-6837}
export SLURM_LOCAL_CPUS=${SLURM_LOCAL_CPUS:-4}
stop() { bash "$tool/stop-cluster.sh" --purge >/dev/null 2>&1 || echo "run.sh: stop-cluster.sh failed" >&2; }
if ! bash "$tool/start-cluster.sh" --install; then
  echo "run.sh: the local Slurm cluster did not start" >&2
  stop
  exit 2
fi
trap stop EXIT
# shellcheck disable=SC1091
. "$SLURM_LOCAL_DIR/env.sh"
"$here/test.sh" "$@"
rc=$?
# The daemon driving Slurm (prunectl sweep --slurm …): its own cluster jobs, same cluster.
bin_args=()
[ "${1:-}" = --bin ] && bin_args=(--bin "$2")
"$here/daemon-test.sh" "${bin_args[@]+"${bin_args[@]}"}"
rc2=$?
[ "$rc" = 0 ] && rc=$rc2
exit "$rc"
