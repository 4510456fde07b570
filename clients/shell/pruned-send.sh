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
# Like prunectl, it refuses (exit 2) a socket whose directory another user owns or may write to
# (someone could have put a fake daemon there): $XDG_RUNTIME_DIR/pruned and /tmp/pruned-$UID
# must be yours with mode 0700; any other directory must belong to root, you or the pruned user
# and not be writable by group or others; so must the directories above it (sticky ones like /tmp
# excepted); the socket must be yours or root's (or the pruned user's).
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

# The directory part of a path ("." for a bare name), without trailing slashes.
dir_of() {
  local p=$1
  while [ "${#p}" -gt 1 ] && [ "${p%/}" != "$p" ]; do p=${p%/}; done
  case "$p" in
    */*) p=${p%/*}; while [ "${#p}" -gt 1 ] && [ "${p%/}" != "$p" ]; do p=${p%/}; done; [ -n "$p" ] || p=/ ;;
    *) p=. ;;
  esac
  printf '%s\n' "$p"
}

# A path without empty and "." components.
normalised() {
  local out="" part
  local -a parts
  IFS=/ read -r -a parts <<<"$1"
  for part in "${parts[@]}"; do case "$part" in ""|.) ;; *) out="$out/$part" ;; esac; done
  case "$1" in /*) printf '%s\n' "${out:-/}" ;; *) printf '%s\n' "${out#/}" ;; esac
}

describe_uid() {
  local n
  n=$(getent passwd "$1" 2>/dev/null | cut -d: -f1)
  if [ -n "$n" ]; then printf 'uid %s (%s)' "$1" "$n"; else printf 'uid %s' "$1"; fi
}

describe_uids() {
  local u first=1
  for u in $(printf '%s\n' "$@" | sort -nu); do
    [ $first -eq 1 ] || printf ' or '
    describe_uid "$u"
    first=0
  done
}

is_one_of() { local x=$1 y; shift; for y in "$@"; do [ "$x" = "$y" ] && return 0; done; return 1; }

# Refuses (message, exit 2) a socket in a directory another user owns or can write to: the same
# rule as prunectl's (Sources/ControlClient/SocketDirectory.swift).
check_socket() {
  local sock=$1 me dir rule sysuid owners above st uid mode type expected why p m
  me=$(id -u)
  dir=$(dir_of "$sock")
  rule=shared
  if [ "$(normalised "$dir")" = "/tmp/pruned-$me" ]; then
    rule=private
  elif [ -n "${XDG_RUNTIME_DIR:-}" ] && [ "$(normalised "$dir")" = "$(normalised "$XDG_RUNTIME_DIR/pruned")" ]; then
    rule=private
  fi
  sysuid=$(id -u pruned 2>/dev/null || true)
  above=(0 "$me")
  [ -z "$sysuid" ] || above+=("$sysuid")
  if [ "$rule" = private ]; then owners=(0 "$me"); else owners=("${above[@]}"); fi
  st=$(stat -c '%u %a %F' -- "$dir" 2>/dev/null) || return 0
  read -r uid mode type <<<"$st"
  mode=$((8#$mode))
  if [ "$rule" = private ]; then
    expected="a directory owned by $(describe_uid "$me") with mode 0700"
    why=" (another user may have created it to intercept your requests: remove it, or set XDG_RUNTIME_DIR)"
  else
    expected="a directory owned by $(describe_uids "${owners[@]}") and not writable by group or others"
    why=" (whoever can write there can replace the socket with a fake daemon)"
  fi
  if [ "$type" != directory ]; then
    [ "$type" = "symbolic link" ] && type="a symbolic link" || type="not a directory"
    echo "pruned-send: refusing the socket directory $dir: it is $type, owned by $(describe_uid "$uid"); expected $expected$why" >&2
    exit 2
  fi
  if { [ "$rule" = private ] && { [ "$uid" != "$me" ] || [ "$mode" -ne $((8#700)) ]; }; } ||
     { [ "$rule" = shared ] && { ! is_one_of "$uid" "${owners[@]}" || [ $((mode & 8#022)) -ne 0 ]; }; }; then
    printf 'pruned-send: refusing the socket directory %s: owned by %s with mode %04o; expected %s%s\n' \
      "$dir" "$(describe_uid "$uid")" "$mode" "$expected" "$why" >&2
    exit 2
  fi
  p=$(realpath -- "$(dir_of "$dir")" 2>/dev/null) || p=""
  while [ -n "$p" ]; do
    if st=$(stat -c '%u %a' -- "$p" 2>/dev/null); then
      read -r uid m <<<"$st"
      m=$((8#$m))
      if ! is_one_of "$uid" "${above[@]}" || { [ $((m & 8#022)) -ne 0 ] && [ $((m & 8#1000)) -eq 0 ]; }; then
        printf 'pruned-send: refusing the socket directory %s: the directory above it, %s, is owned by %s with mode %04o; expected one owned by %s and not writable by group or others unless sticky (like /tmp), since whoever can write there can replace %s\n' \
          "$dir" "$p" "$(describe_uid "$uid")" "$m" "$(describe_uids "${above[@]}")" "$dir" >&2
        exit 2
      fi
    fi
    [ "$p" != / ] || break
    p=$(dir_of "$p")
  done
  st=$(stat -c '%u %a %F' -- "$sock" 2>/dev/null) || return 0
  read -r uid mode type <<<"$st"
  mode=$((8#$mode))
  if [ "$rule" = private ]; then owners=(0 "$me"); fi
  if [ "$type" != socket ]; then
    [ "$type" = "symbolic link" ] && type="a symbolic link" || type="not a socket"
    echo "pruned-send: refusing $sock: it is $type; expected a socket owned by $(describe_uids "${owners[@]}")" >&2
    exit 2
  fi
  if ! is_one_of "$uid" "${owners[@]}"; then
    printf 'pruned-send: refusing the socket %s: owned by %s with mode %04o; expected a socket owned by %s (another user may have put a fake daemon there)\n' \
      "$sock" "$(describe_uid "$uid")" "$mode" "$(describe_uids "${owners[@]}")" >&2
    exit 2
  fi
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

check_socket "$sock"
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
