#!/usr/bin/env bash
# The test job: install what the tests need, build, run every Swift test, then the real-Slurm
# test (tests/slurm/run.sh: a local Slurm 22.05 cluster from Debian's packages runs job arrays of
# the debug build's `pruned run`, with requeue, preemption and a time limit), then the
# real-systemd test (tests/systemd/run.sh: a static release build installed into a container that
# boots systemd 252). Both need root and a tool under ../shared/tools (slurm-local,
# systemd-container-test); without them they are reported as SKIPPED (set
# PRUNED_SKIP_SLURM_TEST=1 or PRUNED_SKIP_SYSTEMD_TEST=1 to skip one on purpose).
set -euo pipefail
cd "$(dirname "$0")/.."
slurm_tool=${SLURM_LOCAL_TOOL:-../shared/tools/slurm-local}
if [ "${PRUNED_SKIP_SLURM_TEST:-0}" != 1 ] && [ "$(id -u)" = 0 ] && [ -f "$slurm_tool/start-cluster.sh" ]; then
  scripts/install-deps.sh --slurm
else
  scripts/install-deps.sh
fi
swift build --build-tests
swift test --skip-build
if [ "${PRUNED_SKIP_SLURM_TEST:-0}" = 1 ]; then
  echo "SKIPPED: the real-Slurm test (PRUNED_SKIP_SLURM_TEST=1)"
else
  SLURM_LOCAL_TOOL=$slurm_tool tests/slurm/run.sh   # prints SKIPPED without root or the tool
fi
tool=${SYSTEMD_CONTAINER_TEST:-../shared/tools/systemd-container-test}
if [ "${PRUNED_SKIP_SYSTEMD_TEST:-0}" = 1 ]; then
  echo "SKIPPED: the real-systemd test (PRUNED_SKIP_SYSTEMD_TEST=1)"
elif [ "$(id -u)" != 0 ] || [ ! -x "$tool" ]; then
  echo "SKIPPED: the real-systemd test needs root and $tool"
else
  tests/systemd/run.sh --build
fi
