#!/bin/bash
# The Slurm test: examples/slurm/pruned-array.sbatch on a REAL Slurm cluster whose node is this
# machine (paths are shared), normally started by tests/slurm/run.sh. Tiny VGG11 runs (width
# 0.125, Prune_L preset F2_VGG_4 scaled to a few epochs) on the real Fashion-MNIST, 1 thread each:
#   - an array of 4 runs (seeds 1-4) completes, each run's final weights, masks and BN buffers
#     (pruned ckpt export), metrics (timing fields aside) and summary (seconds aside) equal
#     the same spec run locally with `pruned run --threads 1`;
#   - task 0 is requeued mid-run with `scontrol requeue J_0` (after the pruned binary is replaced
#     by a copy with a new build id): it resumes from its checkpoint, says that the build changed,
#     restart count >= 1, identical;
#   - the tasks then running are preempted by a job in partition `urgent` that needs every CPU:
#     they resume, restart count >= 1, identical;
#   - a task with --time=1 --signal=B:USR1@30 checkpoints on USR1, requeues itself, resumes and
#     completes identical;
#   - a task cancelled with DIR/slurm-cancel + scancel is not requeued;
#   - a finished run's task is a no-op; a task whose run directory is missing fails at once
#     naming the node and the path;
#   - `pruned report` over the run directories prints the configuration table and counts the
#     unfinished run.
# Needs: SLURM_CONF of a running cluster with partitions main (preemptable) and urgent, python3,
# /usr/share/datasets/fashion-mnist. Usage: tests/slurm/test.sh [--bin PATH] [--keep]
# Prints "PASS name" / "FAIL name: why" per check and "slurm: N passed, M failed"; exits 1 on any
# failure, 2 on a setup error.
set -uo pipefail
export LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=${PRUNED_BIN:-}
keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) sed -n '2,/^set -uo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
die() { echo "test.sh: $*" >&2; exit 2; }
if [ -z "$bin" ]; then
  for b in "$root/.build/debug/pruned" "$root/.build/release/pruned"; do [ -x "$b" ] && { bin=$b; break; }; done
fi
[ -n "$bin" ] && [ -x "$bin" ] || die "no pruned executable (build it, or pass --bin PATH)"
[ -n "${SLURM_CONF:-}" ] || die "SLURM_CONF is not set (start a cluster with tests/slurm/run.sh)"
command -v sbatch >/dev/null && command -v python3 >/dev/null || die "needs sbatch and python3"
DATA=/usr/share/datasets/fashion-mnist
[ -f "$DATA/train-images-idx3-ubyte.gz" ] || die "no Fashion-MNIST in $DATA (apt-get install dataset-fashion-mnist)"
ncpu=$(sinfo -h -o %c | head -n 1)
[[ $ncpu =~ ^[0-9]+$ ]] || die "cannot read the node's CPU count from sinfo"

work=$(mktemp -d /var/tmp/pruned-slurm-test.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/bin" "$work/runs" "$work/local" "$work/logs" "$work/specs"
script=$work/pruned-array.sbatch
t_start=$(date +%s)

passed=0; failed=0; failures=()
pass() { passed=$((passed + 1)); echo "PASS $1"; }
fail() { failed=$((failed + 1)); failures+=("$1"); echo "FAIL $1${2:+: $2}"; }
ok() { local name=$1 why=$2; shift 2; if "$@"; then pass "$name"; else fail "$name" "$why"; fi; }
jobs_started=()
finish() {
  local j d
  for d in "$work"/runs/*/; do [ -f "$d/summary.json" ] || touch "$d/slurm-cancel"; done   # so scancel does not requeue
  for j in "${jobs_started[@]+"${jobs_started[@]}"}"; do scancel "$j" 2>/dev/null; done
  [ -n "${refpid:-}" ] && kill "$refpid" 2>/dev/null
  echo
  for f in "${failures[@]+"${failures[@]}"}"; do echo "failed: $f"; done
  if [ "$failed" = 0 ] && [ "$keep" = 0 ]; then rm -rf "$work"; echo "took $(( $(date +%s) - t_start )) s"
  else echo "took $(( $(date +%s) - t_start )) s; files kept in $work"; fi
  echo "slurm: $passed passed, $failed failed"
  [ "$failed" = 0 ]
  exit $?
}
fatal() { fail "$1" "$2"; finish; }
# jget FILE KEY[.KEY...]: a value of a JSON file ("" when absent)
jget() { python3 - "$@" <<'PY'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
    for k in sys.argv[2].split("."):
        v = v[k]
    print(v)
except Exception:
    print("")
PY
}
# wait_until SECONDS COMMAND...: poll every 0.5 s
wait_until() {
  local limit=$1 i; shift
  for ((i = 0; i < limit * 2; i++)); do "$@" && return 0; sleep 0.5; done
  return 1
}
# training PROGRESSFILE: the run has taken a training step (progress.json says so)
training() {
  [ -f "$1" ] || return 1
  [ "$(jget "$1" state)" = running ] || return 1
  local e s; e=$(jget "$1" epochs_done); s=$(jget "$1" step)
  [ "${e:-0}" -gt 0 ] || [ "${s:-0}" -gt 0 ]
}
task_state() { squeue -h -r -t all -j "$1" -o %T 2>/dev/null | head -n 1; }
# same_run A B: final checkpoint tensors, metrics (no timing) and summary (no seconds) equal
same_run() {
  local a=$1 b=$2 fa fb
  fa=$(cat "$a/checkpoints/LATEST" 2>/dev/null) && fb=$(cat "$b/checkpoints/LATEST" 2>/dev/null) || { echo "no LATEST checkpoint"; return 1; }
  "$bin" ckpt export "$a/checkpoints/$fa" --safetensors "$a.final.safetensors" >/dev/null || return 1
  "$bin" ckpt export "$b/checkpoints/$fb" --safetensors "$b.final.safetensors" >/dev/null || return 1
  cmp -s "$a.final.safetensors" "$b.final.safetensors" || { echo "final weights differ ($fa vs $fb)"; return 1; }
  python3 - "$a" "$b" <<'PY'
import json, sys
def metrics(d):
    rows = [json.loads(l) for l in open(d + "/metrics.jsonl") if l.strip()]
    for r in rows:
        r.pop("seconds", None); r.pop("train_images_per_second", None)
    return rows
def summary(d):
    s = json.load(open(d + "/summary.json")); s.pop("seconds", None); return s
a, b = sys.argv[1], sys.argv[2]
if metrics(a) != metrics(b): print("metrics differ"); sys.exit(1)
if summary(a) != summary(b): print("summaries differ"); sys.exit(1)
PY
}

# ---- setup: the binary, the script, two canonical specs ---------------------------------------
install -m 0755 "$bin" "$work/bin/pruned"
export PRUNED_BIN=$work/bin/pruned           # sbatch passes the environment on to the tasks
"$PRUNED_BIN" slurm-script > "$script"
ok "script: pruned slurm-script equals examples/slurm/pruned-array.sbatch" "they differ" cmp -s "$script" "$root/examples/slurm/pruned-array.sbatch"
common=(--width 0.125 --dataset-kind fashion_mnist --data "$DATA" --threads 1)
# canonical spec.json: a run stopped (test hook: SIGTERM to itself) after its first step
PRUNED_TEST_SIGTERM_AT_STEP=1 "$PRUNED_BIN" run --spec F2_VGG_4 --epochs 4 --train-limit 4096 --test-limit 512 "${common[@]}" --out "$work/specs/short" >"$work/specs/short.log" 2>&1 &
PRUNED_TEST_SIGTERM_AT_STEP=1 "$PRUNED_BIN" run --spec F2_VGG_4 --epochs 5 --train-limit 6144 --test-limit 512 "${common[@]}" --out "$work/specs/long" >"$work/specs/long.log" 2>&1 &
wait
[ -f "$work/specs/short/spec.json" ] && [ -f "$work/specs/long/spec.json" ] || fatal "setup: specs" "$(cat "$work/specs/"*.log)"
mkrun() {   # mkrun NAME PROTO SEED: a run directory with the proto spec and another seed (and a copy for the local run)
  mkdir -p "$work/runs/$1"
  python3 - "$work/specs/$2/spec.json" "$3" "$work/runs/$1/spec.json" "$work/specs/$1.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1])); s["seed"] = int(sys.argv[2])
for out in sys.argv[3:]:
    json.dump(s, open(out, "w"), indent=2)
PY
}
for s in 1 2 3 4; do mkrun "s$s" short "$s"; echo "$work/runs/s$s"; done > "$work/array.txt"
mkrun timelimit long 7; echo "$work/runs/timelimit" > "$work/timelimit.txt"
mkrun cancelled long 8; echo "$work/runs/cancelled/spec.json" > "$work/cancel.txt"   # a line may name DIR/spec.json
printf '%s\n' "$work/runs/s1" > "$work/noop.txt"
printf '%s\n' "$work/nowhere/run-x" > "$work/missing.txt"
sb=(sbatch --parsable --requeue --open-mode=append --cpus-per-task=1 --output="$work/logs/slurm-%A_%a.out")

# ---- submit: the array, the time-limited task --------------------------------------------------
t_submit=$(date +%s)
A=$("${sb[@]}" --array=0-3%2 --signal=B:USR1@60 "$script" "$work/array.txt") || fatal "submit array" "sbatch failed"
jobs_started+=("$A")
T=$("${sb[@]}" --array=0 --time=1 --signal=B:USR1@30 "$script" "$work/timelimit.txt") || fatal "submit time-limited task" "sbatch failed"
jobs_started+=("$T")
echo "submitted array $A (4 runs, 2 at a time) and time-limited task ${T}_0 on a $ncpu-CPU node"
# the local references meanwhile, one after the other, same spec and thread count
(
  for r in s1 s2 s3 s4 timelimit; do
    "$PRUNED_BIN" run --spec "$work/specs/$r.json" --out "$work/local/$r" --threads 1 >"$work/local/$r.log" 2>&1
  done
) &
refpid=$!

# ---- requeue task 0 mid-run, after replacing the binary (new build id) ------------------------
if wait_until 90 training "$work/runs/s1/progress.json"; then
  cp "$bin" "$work/bin/pruned.new" && touch -d '+2 seconds' "$work/bin/pruned.new" && mv -f "$work/bin/pruned.new" "$work/bin/pruned"
  if scontrol requeue "${A}_0"; then pass "requeue: scontrol requeue ${A}_0 accepted mid-run"
  else fail "requeue: scontrol requeue ${A}_0" "refused"; fi
else
  fail "requeue: task ${A}_0 training" "no training step in progress.json within 90 s"
fi

# ---- preempt the running array tasks with an urgent job that needs every CPU ------------------
running_trained() {
  local t i n=0
  preempted=()
  for t in $(squeue -h -r -j "$A" -t R -o %K); do
    i=$((t + 1))
    training "$work/runs/s$i/progress.json" && { preempted+=("$t"); n=$((n + 1)); }
  done
  [ "$n" -ge 1 ]
}
if wait_until 90 running_trained; then
  echo "preempting tasks ${preempted[*]} of $A"
  U=$(sbatch --parsable -p urgent -n "$ncpu" --output="$work/logs/urgent-%j.out" --wrap 'sleep 3') || fatal "submit urgent job" "sbatch failed"
  jobs_started+=("$U")
else
  preempted=()
  fail "preempt: a running array task" "none had trained within 90 s"
fi

# ---- cancel on purpose: DIR/slurm-cancel, then scancel ----------------------------------------
C=$("${sb[@]}" --array=0 "$script" "$work/cancel.txt") || fatal "submit cancel task" "sbatch failed"
jobs_started+=("$C")
if wait_until 120 training "$work/runs/cancelled/progress.json"; then
  touch "$work/runs/cancelled/slurm-cancel"
  scancel "${C}_0"
  sleep 12   # KillWait (10 s) and more than the requeue delay (cred_expire 5 s)
  st=$(task_state "${C}_0")
  out=$(cat "$work/logs/slurm-${C}_0.out" 2>/dev/null)
  ok "cancel: DIR/slurm-cancel + scancel is not requeued (state $st)" "task requeued or still running" \
    test "$st" != PENDING -a "$st" != RUNNING -a "$st" != REQUEUED
  ok "cancel: the task says so and the run kept a checkpoint" "$(tail -n 3 <<<"$out")" \
    bash -c '[[ $1 == *"cancelled on purpose, not requeued"* ]] && [ -s "$2/checkpoints/LATEST" ] && [ ! -e "$2/summary.json" ]' _ "$out" "$work/runs/cancelled"
else
  fail "cancel: task ${C}_0 training" "no training step within 120 s"
fi

# ---- wait for everything ----------------------------------------------------------------------
all_done() {
  local r
  for r in s1 s2 s3 s4 timelimit; do [ -f "$work/runs/$r/summary.json" ] || return 1; done
  [ -z "$(squeue -h -r -j "$A,$T" -o %i 2>/dev/null)" ]
}
if wait_until 300 all_done; then
  t_done=$(date +%s)
  pass "array: 4 runs and the time-limited run completed ($((t_done - t_submit)) s after submission)"
else
  fail "array: completion" "not all finished within 300 s: $(squeue -h -r -o '%i %T %r' | tr '\n' ';')"
fi
wait "$refpid"; refpid=""

out_of() { cat "$work/logs/slurm-$1.out" 2>/dev/null; }
restarts() { jget "$work/runs/$1/progress.json" slurm.restart_count; }
for i in 0 1 2 3; do
  r=s$((i + 1))
  why=$(same_run "$work/runs/$r" "$work/local/$r" 2>&1)
  ok "array: task $i (seed $((i + 1))) bit-identical to the local run" "$why" test -z "$why" -a -f "$work/runs/$r/summary.json"
done
o=$(out_of "${A}_0")
n=$(restarts s1)
ok "requeue: task 0 resumed from its checkpoint (restart count ${n:-?})" "$(grep -E 'requeue|resum|stopped' <<<"$o" | tail -n 5)" \
  bash -c '[ "${1:-0}" -ge 1 ] && [[ $2 == *"resuming from ckpt-"* ]]' _ "$n" "$o"
ok "requeue: task 0's output notes the changed build id" "no 'written by build' note" grep -q "note: the checkpoint was written by build" <<<"$o"
ok "requeue: pruned checkpointed at a training step on SIGTERM" "no 'stopped at step' line" grep -qE "stopped (at step|after epoch) .*checkpoint written" <<<"$o"
# seconds from the task's "SIGTERM received" line to its "stopped on SIGTERM" line (pruned has exited)
t_sig=$(grep -m1 "SIGTERM received" <<<"$o" | cut -d' ' -f1); t_stop=$(grep -m1 "stopped on SIGTERM" <<<"$o" | cut -d' ' -f1)
stop_s=$(( $(date -d "${t_stop:-1970-01-01T00:00:00Z}" +%s) - $(date -d "${t_sig:-2970-01-01T00:00:00Z}" +%s) ))
ok "requeue: pruned stopped ${stop_s} s after SIGTERM, well within KillWait (10 s)" "'$t_sig' → '$t_stop'" test "$stop_s" -ge 0 -a "$stop_s" -le 5
for t in "${preempted[@]+"${preempted[@]}"}"; do
  r=s$((t + 1)); o=$(out_of "${A}_$t"); n=$(restarts "$r")
  ok "preempt: task $t preempted by the urgent job, resumed (restart count ${n:-?}), bit-identical" \
    "$(grep -E 'PREEMPTION|resum|SIG' <<<"$o" | tail -n 5)" \
    bash -c '[ "${1:-0}" -ge 1 ] && [[ $2 == *"DUE TO PREEMPTION"* ]] && [[ $2 == *"resuming from ckpt-"* ]] && [ -f "$3/summary.json" ]' _ "$n" "$o" "$work/runs/$r"
done
o=$(out_of "${T}_0"); n=$(restarts timelimit)
ok "time limit: USR1, checkpoint, self-requeue, resume (restart count ${n:-?})" "$(grep -E 'SIG|requeue|resum' <<<"$o" | tail -n 6)" \
  bash -c '[ "${1:-0}" -ge 1 ] && [[ $2 == *"SIGUSR1 received"* ]] && [[ $2 == *"requeued ${3}_0"* ]] && [[ $2 == *"resuming from ckpt-"* ]]' _ "$n" "$o" "$T"
why=$(same_run "$work/runs/timelimit" "$work/local/timelimit" 2>&1)
ok "time limit: the run completed bit-identical to the local run" "$why" test -z "$why"

# ---- a finished run's task is a no-op; a missing run directory fails at once ------------------
before=$(stat -c %Y.%s "$work/runs/s1/summary.json" "$work/runs/s1/metrics.jsonl" | tr '\n' ' ')
N=$("${sb[@]}" --array=0 "$script" "$work/noop.txt"); jobs_started+=("$N")
M=$("${sb[@]}" --array=0 "$script" "$work/missing.txt"); jobs_started+=("$M")
gone() { [ -z "$(squeue -h -r -j "$N,$M" -o %i 2>/dev/null)" ]; }
wait_until 60 gone || fail "no-op/missing: tasks ended" "still queued after 60 s"
o=$(out_of "${N}_0")
ok "no-op: a finished run's task does nothing" "$o" \
  bash -c '[[ $1 == *"already finished (summary.json exists): nothing to do"* ]] && [[ $1 != *"running "* ]]' _ "$o"
ok "no-op: the finished run's files are untouched" "changed" test "$before" = "$(stat -c %Y.%s "$work/runs/s1/summary.json" "$work/runs/s1/metrics.jsonl" | tr '\n' ' ')"
o=$(out_of "${M}_0")
ok "missing: the task fails naming the node and the path" "$o" \
  bash -c '[[ $1 == *"on node $2"* ]] && [[ $1 == *"$3"* ]] && [[ $1 == *"error:"* ]]' _ "$o" "$(hostname)" "$work/nowhere/run-x"

# ---- pruned report over the run directories ---------------------------------------------------
rep=$("$PRUNED_BIN" report "$work/runs" --figures "$work/figures" 2>"$work/report.err")
rc=$?
echo "$rep"
ok "report: pruned report prints the configuration table" "exit $rc: $(cat "$work/report.err")" \
  bash -c '[ "$1" = 0 ] && [[ $2 == *"best test acc % [95% CI]"* ]] && [[ $2 == *"Kendall tau-b"* ]] && [ -f "$3/stability-vs-accuracy.svg" ]' _ "$rc" "$rep" "$work/figures"
ok "report: the array's 4 runs and the time-limited run as two configurations; the cancelled run excluded and counted" "$rep" \
  bash -c '[[ $1 == *"excluded 1 run without summary.json"*"cancelled (stopped"* ]] && grep -qE "^dataset[.]train_limit=4096, .*  4 +4  " <<<"$1" && grep -qE "^dataset[.]train_limit=6144, .*  1 +1  " <<<"$1"' _ "$rep"
echo "wall time of the 4-run array with its requeue and preemption: $((${t_done:-$(date +%s)} - t_submit)) s from submission (the time-limited run included)"
finish
