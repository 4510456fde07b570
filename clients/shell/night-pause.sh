#!/usr/bin/env bash
# night-pause.sh — pause every running run of a group (e.g. from a 19:00 cron job), or with
# --resume queue every paused run of the group again (07:00).
#
#   night-pause.sh [-s SOCKET] GROUP            pause the group's running runs
#   night-pause.sh [-s SOCKET] --resume GROUP   resume the group's paused runs
#
# A pause answers once the run has checkpointed at its next training step, so pausing takes up
# to one step per run. Runs of the group that are only queued are not touched (they may start in
# the freed slots: `hold` them, or submit night runs with hold=true). A run that finished between
# the listing and its pause is reported and skipped. Exit status: 0 all done (or nothing to do);
# 1 some pause/resume failed; 2 usage error or no daemon.
# Needs only bash, socat (via pruned-send.sh), grep and sed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
send="$here/pruned-send.sh"

usage() { sed -n '2,/^set -u/{/^#/s/^# \{0,1\}//p}' "$0" >&2; exit 2; }

mode=pause
sendopts=()
group=""
while [ $# -gt 0 ]; do
  case "$1" in
    --resume) mode=resume; shift ;;
    --pause) mode=pause; shift ;;
    -s|--socket) [ $# -ge 2 ] || usage; sendopts+=(-s "$2"); shift 2 ;;
    -h|--help) usage ;;
    -*) usage ;;
    *) [ -z "$group" ] || usage; group=$1; shift ;;
  esac
done
[ -n "$group" ] || usage
# Group names are 1-64 of letters, digits and ._-+:@ (the daemon refuses others), so they never
# need quoting on a request line. A copy of the daemon's rule, whose one home is RunLabel in
# Sources/Control/RunLabel.swift: keep the two alike.
if ! printf '%s' "$group" | grep -Eq '^[A-Za-z0-9._+:@-]{1,64}$'; then
  echo "night-pause: '$group' is not a group name (letters, digits and ._-+:@)" >&2
  exit 2
fi

if [ "$mode" = pause ]; then from=running; else from=paused; fi
listing=$("$send" "${sendopts[@]}" "list group=$group state=$from") || { echo "night-pause: list failed: $listing" >&2; exit 2; }
ids=$(printf '%s\n' "$listing" | grep -o '"id":"r-[0-9]*"' | sed 's/^"id":"\(r-[0-9]*\)"$/\1/')
if [ -z "$ids" ]; then
  echo "night-pause: no $from runs in group $group"
  exit 0
fi

status=0
for id in $ids; do
  reply=$("$send" "${sendopts[@]}" "$mode $id")
  rc=$?
  state=$(printf '%s\n' "$reply" | grep -o '"state":"[a-z]*"' | head -n 1 | sed 's/^"state":"\(.*\)"$/\1/')
  if [ $rc -eq 0 ]; then
    echo "$mode $id: $state"
  elif printf '%s\n' "$reply" | grep -q '^ERR BAD_STATE'; then
    echo "$mode $id: skipped (${reply#ERR BAD_STATE })"
  else
    echo "$mode $id: failed: $reply" >&2
    status=1
  fi
done
exit $status
