#!/bin/bash
# The real-systemd test: installs pruned with `make install` into a Debian 12 container that boots
# systemd 252 as PID 1 (../shared/tools/systemd-container-test), and runs tests/systemd/test.sh
# inside it: units verified, user created by sysusers, socket activation, group access control,
# a real Conv4 run on Fashion-MNIST stopped mid-run with `systemctl stop` and resumed, journal
# fields, the watchdog, the user units and the `systemd-analyze security` score.
#
# Usage (as root; the first run debootstraps the container's base rootfs, ~90 s; later runs ~30 s):
#   tests/systemd/run.sh [--bin PATH] [--build] [--out DIR] [--keep-payload]
#     --bin PATH    the pruned executable (default .build/release/pruned, or $PRUNED_BIN); it
#                   must be built with --static-swift-stdlib (the container has no Swift
#                   runtime); a prunectl beside it is installed too
#     --build       first build it: swift build -c release --static-swift-stdlib --product pruned
#                   --scratch-path .build-static (and use .build-static/release/pruned)
#     --out DIR     where results go (default .build-systemd-test/): container.log (everything),
#                   security.txt (systemd-analyze security pruned.service), summary.txt,
#                   journal.txt (the container's journal)
#   Environment: SYSTEMD_CONTAINER_TEST (default ../shared/tools/systemd-container-test),
#   TEST_TIMEOUT (seconds for the whole container run, default 1500), and the tool's own
#   (ROOTFS=, KEEP=1, ...).
# Exit status: test.sh's (1 = a check failed; each failure is printed as "FAIL name: why"),
# 2 = setup error.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PRUNED_BIN:-$root/.build/release/pruned}
out=$root/.build-systemd-test
build=0; keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=1; bin=$root/.build-static/release/pruned; shift ;;
    --keep-payload) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
die() { echo "run.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "must run as root (it boots a container)"
tool=${SYSTEMD_CONTAINER_TEST:-$root/../shared/tools/systemd-container-test}
[ -x "$tool" ] || [ -f "$tool" ] || die "no container tool at $tool (set SYSTEMD_CONTAINER_TEST=)"

if [ "$build" = 1 ]; then
  (cd "$root" && swift build -c release --static-swift-stdlib --product pruned --scratch-path .build-static \
    && swift build -c release --static-swift-stdlib --product prunectl --scratch-path .build-static)
fi
[ -x "$bin" ] || die "no executable at $bin: build it with
  swift build -c release --static-swift-stdlib --product pruned   (or pass --build / --bin PATH)"
if grep -q 'libswiftCore' <<<"$(ldd "$bin" 2>/dev/null)"; then
  die "$bin links the Swift runtime dynamically; the container has none. Build with --static-swift-stdlib (or --build)."
fi
"$bin" daemon --help >/dev/null 2>&1 || die "$bin has no working 'daemon' subcommand"

# ---- payload -------------------------------------------------------------------------------
payload=$(mktemp -d /var/tmp/pruned-systemd-payload.XXXXXX)
[ "$keep" = 1 ] || trap 'rm -rf "$payload"' EXIT
# rootfs/ is copied over the container's / with cp -a: its mode becomes the mode of /.
install -d -m 0755 "$payload/rootfs" "$payload/stage"
install -m 0755 "$bin" "$payload/stage/pruned"
[ -x "$(dirname "$bin")/prunectl" ] && install -m 0755 "$(dirname "$bin")/prunectl" "$payload/stage/prunectl"
# The units, sysusers.d and tmpfiles.d exactly as `make install` lays them out.
make -C "$root" --no-print-directory install DESTDIR="$payload/rootfs" PREFIX=/usr/local \
  BUILDDIR="$payload/stage" >/dev/null
rm -rf "$payload/stage"
install -m 0644 "$here/test.sh" "$payload/test.sh"
# Runtime libraries of the binary, the tools test.sh uses (libpam-systemd: user managers for
# the user-unit test), and the real Fashion-MNIST.
pkgs="libopenblas0-pthread libzstd1 zlib1g libsystemd0 socat python3 procps libpam-systemd"
if apt-cache policy dataset-fashion-mnist 2>/dev/null | grep -q 'Candidate: [0-9]'; then
  pkgs="$pkgs dataset-fashion-mnist"
elif [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
  mkdir -p "$payload/rootfs/usr/share/datasets"
  cp -a /usr/share/datasets/fashion-mnist "$payload/rootfs/usr/share/datasets/"
else
  die "Fashion-MNIST is neither installable (dataset-fashion-mnist) nor in /usr/share/datasets/fashion-mnist"
fi
echo "$pkgs" > "$payload/packages"
# No `enable` file: enabling pruned.socket before boot would start it before systemd-sysusers
# has created its group (the container's boot does not run sysusers). test.sh enables the units
# after `systemd-sysusers`, as a package's postinst does.
[ "$keep" = 1 ] && echo "run.sh: payload kept in $payload" >&2

# ---- run -----------------------------------------------------------------------------------
mkdir -p "$out"
rm -f "$out"/{container.log,security.txt,summary.txt,journal.txt,test.log}
echo "run.sh: booting the container (log: $out/container.log)" >&2
set +e
timeout -s TERM "${TEST_TIMEOUT:-1500}" bash "$tool" "$payload" 2>&1 | tee "$out/container.log"
rc=${PIPESTATUS[0]}
set -e
block() { awk -v b="=== BEGIN $1 ===" -v e="=== END $1 ===" '$0==e{p=0} p{print} $0==b{p=1}' "$out/container.log"; }
block security > "$out/security.txt"
block summary > "$out/summary.txt"
rundir=$(sed -n 's/.*logs: \(\/var\/tmp\/boot-test\.[A-Za-z0-9]*\)\/.*/\1/p' "$out/container.log" | tail -1)
if [ -n "$rundir" ] && [ -d "$rundir" ]; then
  cp "$rundir/journal.txt" "$out/journal.txt" 2>/dev/null || true
  cp "$rundir/test.log" "$out/test.log" 2>/dev/null || true
fi
[ -s "$out/security.txt" ] || rm -f "$out/security.txt"
echo
echo "run.sh: results in $out"
score=$(sed -n 's/.*Overall exposure level for pruned.service: \(.*\)/\1/p' "$out/security.txt" 2>/dev/null || true)
[ -n "$score" ] && echo "run.sh: systemd-analyze security pruned.service: $score"
grep -h '^FAIL ' "$out/container.log" || true
if [ -s "$out/summary.txt" ]; then tail -1 "$out/summary.txt"; fi
[ "$rc" = 124 ] && echo "run.sh: the container run timed out after ${TEST_TIMEOUT:-1500}s" >&2
exit "$rc"
