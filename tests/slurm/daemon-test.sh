#!/bin/bash
# The daemon on REAL Slurm (normally started by tests/slurm/run.sh after test.sh): a user-mode
# `pruned daemon` on a temp state dir, runs submitted with `prunectl sweep --slurm`:
#   - a sweep of 4 tiny Fashion-MNIST runs becomes ONE array job; all complete; each run's metrics
#     (timing fields aside) and final checkpoint export equal the same spec run locally with
#     `pruned run` and the same thread count;
#   - a task requeued with `scontrol requeue J_i` resumes and completes, restart count >= 1 in show;
#   - the daemon is killed with kill -9 while the array runs, restarted, re-attaches, and the runs
#     complete;
#   - a task reaching its time limit (--time 1) resumes until done, bit-identical;
#   - pause/resume/cancel through prunectl; `prunectl watch` shows epoch progress;
#   - hold/release of a task pending in Slurm (node drained) are scontrol hold/release; priority
#     of it is refused with the documented message;
#   - the daemon killed with kill -9 while sbatch is in flight (an sbatch wrapper submits, then
#     hangs): after the restart the run is re-attached to its job, never submitted twice;
#   - slurmctld stopped (by its PID): a submitted run stays queued with the reason in show,
#     sbatch is retried with backoff; slurmctld started again: the run is submitted and completes;
#   - a run preempted by a job in the `urgent` partition resumes from its checkpoint and
#     completes bit-identical to a local run, restart count >= 1;
#   - no sbatch on the daemon's PATH: the submit is refused naming sbatch; a bad partition: the run
#     fails with sbatch's message.
# Needs SLURM_CONF of a running cluster, python3, /usr/share/datasets/fashion-mnist.
# Usage: tests/slurm/daemon-test.sh [--bin DIR] [--keep] [--only SECTION,...]
#   SECTIONs: sweep, control, hold, lost, unreachable, preempt, timelimit, failures (default: all).
# Prints "slurm-daemon: N passed, M failed".
set -uo pipefail
export LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bindir=""
keep=0
only=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bindir=$(dirname "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    --only) only=",$2,"; shift 2 ;;
    *) echo "daemon-test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "daemon-test.sh: $*" >&2; exit 2; }
want() { [ -z "$only" ] || [[ $only == *",$1,"* ]]; }
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
  # this test's jobs: their batch script is under $work
  for j in $(our_jobs); do scancel "$j" 2>/dev/null; done
  [ -f "$work/hang-pid" ] && kill "$(cat "$work/hang-pid")" 2>/dev/null
  [ -n "$drained" ] && scontrol update NodeName="$drained" State=RESUME 2>/dev/null
  [ -n "$ctl_down" ] && start_slurmctld
  stop_daemon
  echo
  for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
  if [ "$failed" = 0 ] && [ "$keep" = 0 ]; then rm -rf "$work"; echo "took $(( $(date +%s) - t_start )) s"
  else echo "took $(( $(date +%s) - t_start )) s; files kept in $work (daemon log: $work/daemon.log)"; fi
  echo "slurm-daemon: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
# the ids of this test's Slurm jobs (array job ids), with their names: "ID NAME" lines
our_jobs_named() { squeue -h -t all --me -o '%A %j %o' 2>/dev/null | awk -v w="$work/" 'index($3, w) == 1 {print $1, $2}' | sort -u; }
our_jobs() { our_jobs_named | cut -d' ' -f1 | sort -u; }
drained=""; ctl_down=""
ctl_dir=$(dirname "$(dirname "$SLURM_CONF")")
ctl_cmd=(); ctl_env=()
# slurmctld started again with the command line and environment it had (see the unreachable test)
start_slurmctld() {
  [ ${#ctl_cmd[@]} -gt 0 ] || return 1
  (cd / && env -i "${ctl_env[@]}" "${ctl_cmd[@]}" </dev/null >>"$ctl_dir/log/daemons.out" 2>&1)
  for _ in $(seq 50); do scontrol ping 2>/dev/null | grep -q UP && { ctl_down=""; return 0; }; sleep 0.2; done
  return 1
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

# same_as_local RUN: the run's metrics (timing fields aside) and final weights equal the same
# spec run locally with `pruned run` and the same thread count (prints what differs)
same_as_local() {
  local r=$1 d=$work/state/runs/$1 ca cb
  "$PRUNED" run --spec "$d/spec.json" --out "$work/local/$r" --threads 1 >"$work/local-$r.log" 2>&1 || { echo "local run of $r failed"; return 1; }
  python3 - "$d/metrics.jsonl" "$work/local/$r/metrics.jsonl" <<'PY' || return 1
import json, sys
drop = {"seconds", "train_images_per_second"}
a, b = ([{k: v for k, v in json.loads(l).items() if k not in drop} for l in open(p)] for p in sys.argv[1:3])
if a != b: print("metrics differ:", sys.argv[1]); sys.exit(1)
PY
  ca=$(ls "$d/checkpoints"/ckpt-*-m.pck 2>/dev/null | tail -n 1); cb=$(ls "$work/local/$r/checkpoints"/ckpt-*-m.pck 2>/dev/null | tail -n 1)
  "$PRUNED" ckpt export "$ca" --safetensors "$work/a.st" >/dev/null 2>&1 && "$PRUNED" ckpt export "$cb" --safetensors "$work/b.st" >/dev/null 2>&1 \
    && cmp -s "$work/a.st" "$work/b.st" || { echo "final checkpoints of $r differ ($ca vs $cb)"; return 1; }
}

start_daemon || { fail "daemon starts" "$(tail -5 "$work/daemon.log")"; finish; }

# ---- 1. a sweep of 4 runs is one array job; kill -9 of the daemon meanwhile; a requeued task --
if want sweep; then
ids=$("$PRUNECTL" sweep F2_VGG_4 --seeds 1..4 --group sweep --slurm --set epochs=4 --set dataset.train_limit=6144 "${common[@]}") \
  || { fail "sweep submitted" "$ids"; finish; }
mapfile -t run <<<"$ids"
ok "sweep: 4 runs" "got: $ids" test "${#run[@]}" = 4
sleep 4
jobs=$(for r in "${run[@]}"; do field "$r" slurm.job_id; done | sort -u)
ok "sweep: one array job for the 4 runs" "job ids: $jobs" test "$(wc -w <<<"$jobs")" = 1
job=$jobs
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
same=1
for r in "${run[@]}"; do same_as_local "$r" || same=0; done
ok "sweep: metrics and final weights bit-identical to local runs" "see above" test "$same" = 1
fi

# ---- 2. pause, resume, cancel -----------------------------------------------------------------
if want control; then
ids=$("$PRUNECTL" sweep F2_VGG_4 --seeds 5..6 --group ctl --slurm --set epochs=3 --set dataset.train_limit=8192 "${common[@]}")
mapfile -t ctl <<<"$ids"
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
fi

# ---- 3. hold, release and priority of a run pending in Slurm (the node drained) ---------------
if want hold; then
node=$(sinfo -h -o %n | head -n 1)
scontrol update NodeName="$node" State=DRAIN Reason=pruned-daemon-test && drained=$node
held=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=1 --set dataset.train_limit=1024 "${common[@]}")
end=$(( $(date +%s) + 30 ))
while [ "$(date +%s)" -lt "$end" ] && [ "$(field "$held" slurm.state)" != PENDING ]; do sleep 1; done
task=$(field "$held" slurm.task)
ok "hold: the run is pending in Slurm" "$(show "$held")" test "$(squeue -h -r -j "$task" -o %T 2>/dev/null)" = PENDING
out=$(timeout 60 "$PRUNECTL" hold "$held" 2>&1)
ok "hold: the run is held" "$out" test "$(field "$held" state)" = held
ok "hold: squeue shows the task held (JobHeldUser)" "$(squeue -h -r -j "$task" -o '%T %r' 2>&1)" \
  test "$(squeue -h -r -j "$task" -o %r 2>/dev/null)" = JobHeldUser
out=$(timeout 60 "$PRUNECTL" release "$held" 2>&1)
ok "release: the run is queued again" "$out" test "$(field "$held" state)" = queued
ok "release: squeue shows the task pending, not held" "$(squeue -h -r -j "$task" -o '%T %r' 2>&1)" \
  test "$(squeue -h -r -j "$task" -o '%T %r' 2>/dev/null | grep -c JobHeld)" = 0
out=$("$PRUNECTL" priority "$held" 5 2>&1)
ok "priority of a run in Slurm: refused, naming scontrol's Nice" "$out" grep -q "Nice=N" <<<"$out"
timeout 60 "$PRUNECTL" cancel "$held" >/dev/null 2>&1
ok "cancel of a pending Slurm run" "$(field "$held" state)" test "$(field "$held" state)" = cancelled
scontrol update NodeName="$node" State=RESUME && drained=""
fi

# ---- 4. the daemon killed while sbatch is in flight: re-attached, not submitted twice ----------
if want lost; then
real_sbatch=$(command -v sbatch)
mkdir -p "$work/hang"
cat >"$work/hang/sbatch" <<WRAP
#!/bin/bash
# the real sbatch; the first time (while $work/hang-once exists) its answer is lost: it submits, then hangs
if [ -e "$work/hang-once" ]; then
  rm -f "$work/hang-once"
  "$real_sbatch" "\$@" >"$work/hang-out" 2>&1
  echo \$\$ >"$work/hang-pid"
  exec sleep 600
fi
exec "$real_sbatch" "\$@"
WRAP
chmod 755 "$work/hang/sbatch"
touch "$work/hang-once"
stop_daemon
start_daemon "$work/hang:$PATH" || fail "daemon with the sbatch wrapper starts" "$(tail -3 "$work/daemon.log")"
lost=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=1 --set dataset.train_limit=2048 "${common[@]}")
for _ in $(seq 60); do [ -s "$work/hang-pid" ] && break; sleep 0.5; done
ok "lost answer: sbatch submitted, then hung" "$(cat "$work/hang-out" 2>&1)" test -s "$work/hang-pid"
kill -9 "$dpid"; wait "$dpid" 2>/dev/null; dpid=""
kill "$(cat "$work/hang-pid")" 2>/dev/null; rm -f "$work/hang-pid"
start_daemon || fail "daemon restarts after kill -9 during sbatch" "$(tail -5 "$work/daemon.log")"
wait_state 120 completed "$lost" || fail "lost answer: the run completes" "$(field "$lost" state) $(field "$lost" reason) $(field "$lost" slurm_status)"
named=$(our_jobs_named | awk -v id="-$lost-" 'index($2, id)')
ok "lost answer: exactly one Slurm job for the run" "jobs: $named" test "$(wc -l <<<"$named")" = 1
ok "lost answer: the run is attached to that job" "$named / $(field "$lost" slurm.job_id)" \
  test "$(cut -d' ' -f1 <<<"$named")" = "$(field "$lost" slurm.job_id)"
fi

# ---- 5. slurmctld unreachable: queued with the reason, retried with backoff, then submitted ----
if want unreachable; then
ctl_pid=$(cat "$ctl_dir/run/slurmctld.pid" 2>/dev/null)
if [ -n "$ctl_pid" ] && [ "$(cat "/proc/$ctl_pid/comm" 2>/dev/null)" = slurmctld ]; then
  mapfile -d '' -t ctl_cmd <"/proc/$ctl_pid/cmdline"
  mapfile -d '' -t ctl_env <"/proc/$ctl_pid/environ"
  kill "$ctl_pid" && ctl_down=1
  for _ in $(seq 50); do [ -d "/proc/$ctl_pid" ] || break; sleep 0.2; done
  unr=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=1 --set dataset.train_limit=2048 "${common[@]}" 2>&1)
  # sbatch gives up after about 9 s; then 5 s of backoff, then 10 s
  seen_first=""; seen_second=""
  end=$(( $(date +%s) + 60 ))
  while [ "$(date +%s)" -lt "$end" ]; do
    st=$(field "$unr" slurm_status)
    [ "$(field "$unr" state)" = queued ] || break
    grep -q "unreachable.*tried again in 5 s" <<<"$st" && seen_first=1
    grep -q "unreachable.*tried again in 10 s" <<<"$st" && { seen_second=1; break; }
    sleep 1
  done
  ok "slurmctld down: the run stays queued with the reason in show" "$(field "$unr" state): $st" test -n "$seen_first"
  ok "slurmctld down: sbatch retried with backoff (5 s, then 10 s)" "$st" test -n "$seen_second"
  start_slurmctld || fail "slurmctld starts again" "$(tail -3 "$ctl_dir/log/slurmctld.log")"
  wait_state 120 completed "$unr" || fail "slurmctld back: the run is submitted and completes" "$(field "$unr" state) $(field "$unr" slurm_status)"
  ok "slurmctld back: the run completed" "$(field "$unr" state)" test "$(field "$unr" state)" = completed
else
  fail "slurmctld's PID file" "no running slurmctld in $ctl_dir/run/slurmctld.pid"
fi
fi

# ---- 6. preempted by a job in the urgent partition: resumes, completes bit-identical ----------
if want preempt; then
pre=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=3 --set dataset.train_limit=16384 "${common[@]}")
wait_state 60 running "$pre" || fail "preempt: the run runs" "$(show "$pre")"
# preempted while it trains (mid-epoch: it checkpoints at its next step)
sleep 4
cpus=$(sinfo -h -o %c | head -n 1)
urgent=$(sbatch --parsable -p urgent -c "$cpus" -o /dev/null -J pruned-test-urgent --wrap 'sleep 10')
ok "preempt: the urgent job is submitted" "$urgent" test -n "$urgent"
wait_state 240 completed "$pre" || fail "preempt: the run completes" "$(field "$pre" state) $(field "$pre" reason)"
restarts=$(field "$pre" slurm.restarts)
ok "preempt: restart count >= 1 in show" "restarts=$restarts" test "${restarts:-0}" -ge 1
ok "preempt: metrics and final weights bit-identical to a local run" "see above" same_as_local "$pre"
fi

# ---- 6b. a task reaching its time limit (--time 1, USR1 30 s before it): it checkpoints,
# requeues itself and resumes until the run is done, bit-identical. The run must train for well
# over 30 s: 8 epochs of 32,768 images take about 65 s at 1 thread (Zen 4, commit f33636c; 8,192
# images took 17 s, finished before USR1 and never requeued) ----------------------------------
if want timelimit; then
tl=$("$PRUNECTL" submit F2_VGG_4 --slurm --time 1 --set epochs=8 --set dataset.train_limit=32768 "${common[@]}")
wait_state 60 running "$tl" || fail "time limit: the run runs" "$(show "$tl")"
wait_state 480 completed "$tl" || fail "time limit: the run completes" "$(field "$tl" state) $(field "$tl" reason)"
restarts=$(field "$tl" slurm.restarts)
ok "time limit: restart count >= 1 in show" "restarts=$restarts" test "${restarts:-0}" -ge 1
ok "time limit: metrics and final weights bit-identical to a local run" "see above" same_as_local "$tl"
fi

# ---- 7. failures ------------------------------------------------------------------------------
if want failures; then
bad=$("$PRUNECTL" submit F2_VGG_4 --slurm --partition nosuch --set epochs=1 --set dataset.train_limit=1024 "${common[@]}" 2>&1)
wait_state 30 failed "$bad" || true
reason=$(field "$bad" reason)
ok "bad partition: the run fails with sbatch's message" "$reason" grep -qi "invalid partition" <<<"$reason"
stop_daemon
mkdir -p "$work/nopath"; ln -s "$(command -v python3)" "$work/nopath/python3"
start_daemon "$work/nopath" || fail "daemon without sbatch starts" "$(tail -3 "$work/daemon.log")"
out=$("$PRUNECTL" submit F2_VGG_4 --slurm --set epochs=1 "${common[@]}" 2>&1)
ok "no sbatch on PATH: the submit is refused naming sbatch" "$out" grep -q "sbatch is not on the daemon's PATH" <<<"$out"
fi
finish
