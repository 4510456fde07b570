#!/bin/bash
# The daemon on REAL Slurm (normally started by tests/slurm/run.sh after test.sh): a user-mode
# `pruned daemon` on a temp state dir, runs submitted with `prunectl sweep --slurm`:
#   - a sweep of 4 tiny Fashion-MNIST runs becomes ONE array job; all complete; each run's metrics
#     (timing fields aside) and final checkpoint export equal the same spec run locally with
#     `pruned run` and the same thread count;
#   - a task requeued with `scontrol requeue J_i` resumes and completes, restart count >= 1 in show;
#   - the daemon is killed with kill -9 while the array runs, restarted, re-attaches, and the runs
#     complete;
#   - pause/resume/cancel through prunectl; `prunectl watch` shows epoch progress;
#   - no sbatch on the daemon's PATH: the submit is refused naming sbatch; a bad partition: the run
#     fails with sbatch's message.
# Needs SLURM_CONF of a running cluster, python3, /usr/share/datasets/fashion-mnist.
# Usage: tests/slurm/daemon-test.sh [--bin DIR] [--keep]. Prints "slurm-daemon: N passed, M failed".
set -uo pipefail
export LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=""
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bindir=$(dirname "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "daemon-test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "daemon-test.sh: $*" >&2; exit 2; }
[ -n "$bindir" ] || bindir=$root/.build/debug
PRUNED=$bindir/pruned; PRUNECTL=$bindir/prunectl
[ -x "$PRUNED" ] && [ -x "$PRUNECTL" ] || die "no pruned/prunectl in $bindir (build first)"
[ -n "${SLURM_CONF:-}" ] || die "SLURM_CONF is not set (start a cluster with tests/slurm/run.sh)"
DATA=/usr/share/datasets/fashion-mnist
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || die "no Fashion-MNIST in $DATA"

work=$(mktemp -d /var/tmp/pruned-slurm-daemon.XXXXXX)
chmod 755 "$work"
export PRUNED_SOCKET=$work/control.sock
t_start=$(date +%s)
passed=0; failed=0; failures=()
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${2:+: $2}"; }
ok() { local name=$1 why=$2; shift 2; if "$@"; then pass "$name"; else fail "$name" "$why"; fi; }
dpid=""
start_daemon() {   # start_daemon [PATH]
  PATH=${1:-$PATH} "$PRUNED" daemon --state-dir "$work/state" --socket "$PRUNED_SOCKET" --threads 1 --slurm-poll 1 \
    --slurm-signal-margin 30 >>"$work/daemon.log" 2>&1 &
  dpid=$!
  for _ in $(seq 50); do "$PRUNECTL" status >/dev/null 2>&1 && return 0; sleep 0.2; done
  return 1
}
stop_daemon() { [ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null; dpid=""; }
finish() {
  for d in "$work"/state/runs/*/; do [ -f "$d/summary.json" ] || touch "$d/slurm-cancel"; done
  for j in $(squeue -h --me -o %A -n "$(cat "$work/jobnames" 2>/dev/null | tr '\n' ',')" 2>/dev/null | sort -u); do scancel "$j" 2>/dev/null; done
  stop_daemon
  echo
  for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
  if [ "$failed" = 0 ] && [ "$keep" = 0 ]; then rm -rf "$work"; echo "took $(( $(date +%s) - t_start )) s"
  else echo "took $(( $(date +%s) - t_start )) s; files kept in $work (daemon log: $work/daemon.log)"; fi
  echo "slurm-daemon: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
show() { "$PRUNECTL" show --json "$1"; }
field() { show "$1" | python3 -c 'import json,sys
v=json.load(sys.stdin)
for k in sys.argv[1].split("."):
    v = v.get(k) if isinstance(v, dict) else None
print("" if v is None else v)' "$2"; }
wait_state() {   # wait_state SECONDS STATE ID...
  local limit=$1 want=$2; shift 2
  local end=$(( $(date +%s) + limit )) id
  while [ "$(date +%s)" -lt "$end" ]; do
    local all=1
    for id in "$@"; do [ "$(field "$id" state)" = "$want" ] || all=0; done
    [ "$all" = 1 ] && return 0
    sleep 1
  done
  return 1
}
common=(--set width=0.125 --set dataset.kind=fashion_mnist --set "dataset.path=$DATA" --set dataset.test_limit=512)

start_daemon || { fail "daemon starts" "$(tail -5 "$work/daemon.log")"; finish; }

# ---- 1. a sweep of 4 runs is one array job; kill -9 of the daemon meanwhile; a requeued task --
ids=$("$PRUNECTL" sweep F2_VGG_4 --seeds 1..4 --group sweep --slurm --set epochs=4 --set dataset.train_limit=6144 "${common[@]}") \
  || { fail "sweep submitted" "$ids"; finish; }
mapfile -t run <<<"$ids"
ok "sweep: 4 runs" "got: $ids" test "${#run[@]}" = 4
sleep 4
jobs=$(for r in "${run[@]}"; do field "$r" slurm.job_id; done | sort -u)
ok "sweep: one array job for the 4 runs" "job ids: $jobs" test "$(wc -w <<<"$jobs")" = 1
job=$jobs
echo "pruned-${run[0]}" >"$work/jobnames"
ok "sweep: squeue lists the array's 4 tasks" "$(squeue -h -r -j "$job" 2>&1)" test "$(squeue -h -r -t all -j "$job" -o %i | wc -l)" = 4
wait_state 60 running "${run[1]}" || fail "sweep: task 1 runs" "$(show "${run[1]}")"
# Without a terminal, watch prints a line per event: wait (bounded) for one about this run.
"$PRUNECTL" watch "${run[1]}" >"$work/watch.txt" 2>&1 &
watcher=$!
for _ in $(seq 120); do grep -q "${run[1]}" "$work/watch.txt" && break; sleep 0.5; done
kill "$watcher" 2>/dev/null; wait "$watcher" 2>/dev/null
ok "watch shows a Slurm run's progress" "$(cat "$work/watch.txt")" grep -q "${run[1]}" "$work/watch.txt"
scontrol requeue "${job}_1"
kill -9 "$dpid"; wait "$dpid" 2>/dev/null; dpid=""
sleep 3
start_daemon || fail "daemon restarts after kill -9" "$(tail -5 "$work/daemon.log")"
wait_state 240 completed "${run[@]}" || fail "sweep: all completed" "$(for r in "${run[@]}"; do field "$r" state; field "$r" reason; done)"
restarts=$(field "${run[1]}" slurm.restarts)
ok "requeued task: restart count >= 1 in show" "restarts=$restarts" test "${restarts:-0}" -ge 1
ok "requeued task: show names job, index and node" "$(show "${run[1]}")" test "$(field "${run[1]}" slurm.task)" = "${job}_1"
# the same specs run locally, same thread count: identical metrics and final weights
same=1
for r in "${run[@]}"; do
  d=$work/state/runs/$r
  "$PRUNED" run --spec "$d/spec.json" --out "$work/local/$r" --threads 1 >"$work/local-$r.log" 2>&1 || { same=0; echo "local run of $r failed"; continue; }
  python3 - "$d/metrics.jsonl" "$work/local/$r/metrics.jsonl" <<'PY' || same=0
import json, sys
drop = {"seconds", "train_images_per_second"}
a, b = ([{k: v for k, v in json.loads(l).items() if k not in drop} for l in open(p)] for p in sys.argv[1:3])
if a != b: print("metrics differ:", sys.argv[1]); sys.exit(1)
PY
  ca=$(ls "$d/checkpoints"/ckpt-*-m.pck 2>/dev/null | tail -n 1); cb=$(ls "$work/local/$r/checkpoints"/ckpt-*-m.pck 2>/dev/null | tail -n 1)
  "$PRUNED" ckpt export "$ca" --safetensors "$work/a.st" >/dev/null 2>&1 && "$PRUNED" ckpt export "$cb" --safetensors "$work/b.st" >/dev/null 2>&1 \
    && cmp -s "$work/a.st" "$work/b.st" || { same=0; echo "final checkpoints of $r differ ($ca vs $cb)"; }
done
ok "sweep: metrics and final weights bit-identical to local runs" "see above" test "$same" = 1

# ---- 2. pause, resume, cancel -----------------------------------------------------------------
ids=$("$PRUNECTL" sweep F2_VGG_4 --seeds 5..6 --group ctl --slurm --set epochs=3 --set dataset.train_limit=8192 "${common[@]}")
mapfile -t ctl <<<"$ids"
echo "pruned-${ctl[0]}" >>"$work/jobnames"
wait_state 60 running "${ctl[0]}" "${ctl[1]}" || fail "control: tasks run" "$(show "${ctl[0]}")"
sleep 2
out=$(timeout 60 "$PRUNECTL" pause "${ctl[0]}" 2>&1)
ok "pause: the run is paused" "$out / $(field "${ctl[0]}" state)" test "$(field "${ctl[0]}" state)" = paused
out=$(timeout 60 "$PRUNECTL" cancel "${ctl[1]}" 2>&1)
ok "cancel: the run is cancelled" "$out / $(field "${ctl[1]}" state)" test "$(field "${ctl[1]}" state)" = cancelled
sleep 3
ok "cancel: the task was not requeued" "$(squeue -h -r -j "$(field "${ctl[1]}" slurm.job_id)" -o '%i %T' 2>&1)" \
  test -z "$(squeue -h -r -j "$(field "${ctl[1]}" slurm.task)" -t pending,running -o %i 2>/dev/null)"
"$PRUNECTL" resume "${ctl[0]}" >/dev/null 2>&1
wait_state 180 completed "${ctl[0]}" || fail "resume: the paused run completes" "$(field "${ctl[0]}" state) $(field "${ctl[0]}" reason)"
ok "resume: resubmitted as a new job" "$(field "${ctl[0]}" slurm.job_id)" test "$(field "${ctl[0]}" slurm.submit_attempts)" -ge 2

# ---- 3. failures ------------------------------------------------------------------------------
bad=$("$PRUNECTL" submit F2_VGG_4 --slurm --partition nosuch --set epochs=1 --set dataset.train_limit=1024 "${common[@]}" 2>&1)
wait_state 30 failed "$bad" || true
reason=$(field "$bad" reason)
ok "bad partition: the run fails with sbatch's message" "$reason" grep -qi "invalid partition" <<<"$reason"
stop_daemon
mkdir -p "$work/nopath"; ln -s "$(command -v python3)" "$work/nopath/python3"
start_daemon "$work/nopath" || fail "daemon without sbatch starts" "$(tail -3 "$work/daemon.log")"
out=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=1 "${common[@]}" 2>&1)
ok "no sbatch on PATH: the submit is refused naming sbatch" "$out" grep -q "sbatch is not on the daemon's PATH" <<<"$out"
finish
