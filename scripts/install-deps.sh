#!/usr/bin/env bash
# Installs the Debian packages pruned needs (build: OpenBLAS, zstd, systemd, zlib headers, make;
# clients and their tests: socat, python3, and python3-venv and python3-pip (whose setuptools and
# wheel build the Python client package offline);
# data: the real Fashion-MNIST). Skips apt entirely when everything is already there.
# Usage: scripts/install-deps.sh [--slurm] [MORE_PACKAGES...]
#   --slurm  also Slurm 22.05 and munge (slurmctld slurmd slurm-client munge), for tests/slurm/ and
#            ../shared/tools/slurm-local (whose start-cluster.sh --install also installs them)
set -euo pipefail
extra=()
for a in "$@"; do
  if [ "$a" = --slurm ]; then extra+=(slurmctld slurmd slurm-client munge); else extra+=("$a"); fi
done
packages=(libopenblas-dev libzstd-dev libsystemd-dev zlib1g-dev pkg-config dataset-fashion-mnist make socat python3 python3-venv python3-pip "${extra[@]+"${extra[@]}"}")
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "installing: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
$SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
