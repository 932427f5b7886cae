#!/usr/bin/env bash
# An abort_when condition stops the run early, reverts every fault, exits 3.
source "$(dirname "$0")/lib.bash"

start_victim ct-abort-$$
flag="$T/unhealthy"
pause_scenario "$T/s.json" "$VPID" 60s "
  \"abort_when\": [
    {\"name\": \"health gone\", \"every\": \"100ms\", \"for\": \"300ms\",
     \"probe\": {\"command\": {\"argv\": [\"test\", \"!\", \"-e\", \"$flag\"]}}}
  ]"
"$CHAOS" run "$T/s.json" --report-json "$T/r.json" >"$T/out" 2>&1 &
cpid=$!
OWNED_PIDS+=("$cpid")
wait_until 10 is_stopped "$VPID"
sleep 0.5
is_stopped "$VPID" || fail "the pause ended before the abort condition was raised"
start=$(date +%s%N)
touch "$flag" # the health probe fails from now on
rc=0
wait "$cpid" || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
cat "$T/out"
[[ $rc == 3 ]] || fail "chaos exited $rc, wanted 3 (aborted)"
is_running "$VPID" || fail "victim is $(proc_state "$VPID") after the abort"
((elapsed_ms < 5000)) || fail "abort took ${elapsed_ms}ms; wanted well under the 60s fault"
[[ $(json_get "$T/r.json" 'r["aborted"]') == True ]] || fail "report does not say aborted"
json_get "$T/r.json" 'r["abort_reason"]' | grep -q "health gone" || fail "abort reason does not name the check"
ok "abort_when aborted after ${elapsed_ms}ms and the victim runs again"
