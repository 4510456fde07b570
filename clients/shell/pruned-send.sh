#!/usr/bin/env bash
# pruned-send.sh — send request lines to the pruned daemon and print one reply line per request.
#
#   pruned-send.sh [-s SOCKET] [-t SECONDS] REQUEST...     e.g. pruned-send.sh status 'list state=running'
#   printf 'ping\nstatus\n' | pruned-send.sh               (request lines on stdin when none are given)
#
# All requests go over one connection, in order; the greeting (HELLO) is not printed. Replies are
# printed as the daemon sends them: `OK {json}` or `ERR CODE message`.
# Exit status: 0 every reply was OK; 1 some reply was ERR; 2 usage error or no daemon answered;
# 3 fewer replies than requests arrived (the connection dropped, or -t SECONDS ran out — pause and
# cancel answer only once the run has stopped at its next training step).
# Socket: -s, else $PRUNED_SOCKET, else /run/pruned/control.sock if it exists, else
# $XDG_RUNTIME_DIR/pruned/control.sock if it exists, else /tmp/pruned-$UID/control.sock.
# Needs socat (or an `nc` with -U as a fallback); nothing else beyond bash.
set -u

usage() { sed -n '2,/^set -u/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }

socket_path() {
  if [ -n "${PRUNED_SOCKET:-}" ]; then echo "$PRUNED_SOCKET"; return; fi
  if [ -e /run/pruned/control.sock ]; then echo /run/pruned/control.sock; return; fi
  if [ -n "${XDG_RUNTIME_DIR:-}" ] && [ -e "$XDG_RUNTIME_DIR/pruned/control.sock" ]; then
    echo "$XDG_RUNTIME_DIR/pruned/control.sock"; return
  fi
  if [ -e "/tmp/pruned-$(id -u)/control.sock" ] || [ -z "${XDG_RUNTIME_DIR:-}" ]; then
    echo "/tmp/pruned-$(id -u)/control.sock"; return
  fi
  echo "$XDG_RUNTIME_DIR/pruned/control.sock"
}

sock=""
wait_seconds=600
while [ $# -gt 0 ]; do
  case "$1" in
    -s|--socket) [ $# -ge 2 ] || usage; sock=$2; shift 2 ;;
    -t|--timeout) [ $# -ge 2 ] || usage; wait_seconds=$2; shift 2 ;;
    -h|--help) usage ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[ -n "$sock" ] || sock=$(socket_path)

requests=()
if [ $# -gt 0 ]; then
  requests=("$@")
else
  while IFS= read -r line || [ -n "$line" ]; do
    line=${line%$'\r'}
    case "$line" in *[![:space:]]*) requests+=("$line") ;; esac
  done
fi
[ ${#requests[@]} -gt 0 ] || usage
for r in "${requests[@]}"; do
  case "$r" in *$'\n'*) echo "pruned-send: a request is one line" >&2; exit 2 ;; esac
done

if [ ! -S "$sock" ]; then
  echo "pruned-send: no daemon socket at $sock (is pruned running? set PRUNED_SOCKET or use -s)" >&2
  exit 2
fi

# `quit` last: the daemon answers it and closes the connection, which ends socat. shut-none keeps
# socat from half-closing the socket when its input ends, so replies that come later (pause,
# cancel, checkpoint wait for a training step) still arrive.
send() {
  if command -v socat >/dev/null 2>&1; then
    socat -t "$wait_seconds" - "UNIX-CONNECT:$sock,shut-none"
  elif command -v nc >/dev/null 2>&1; then
    timeout "$wait_seconds" nc -U "$sock"
  else
    echo "pruned-send: needs socat (apt-get install socat) or nc with -U" >&2
    return 127
  fi
}

output=$({ printf '%s\n' "${requests[@]}"; printf 'quit\n'; } | send)
rc=$?
if [ -z "$output" ]; then
  echo "pruned-send: no answer from $sock (exit $rc)" >&2
  exit 2
fi

want=${#requests[@]}
got=0
status=0
while IFS= read -r line; do
  line=${line%$'\r'}
  [ "$got" -lt "$want" ] || break
  case "$line" in
    "HELLO "*) continue ;;
    "EVENT "*) printf '%s\n' "$line"; continue ;;   # only after a subscribe request
    "OK"|"OK "*) ;;
    "ERR "*) status=1 ;;
    *) continue ;;
  esac
  printf '%s\n' "$line"
  got=$((got + 1))
done <<<"$output"

if [ "$got" -lt "$want" ]; then
  echo "pruned-send: $got of $want replies arrived (connection closed or -t $wait_seconds s ran out)" >&2
  exit 3
fi
exit "$status"
