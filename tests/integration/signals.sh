#!/usr/bin/env bash
# SIGINT and SIGTERM to `chaos run` revert every fault before it exits (code 3).
source "$(dirname "$0")/lib.bash"

for sig in INT TERM; do
    start_victim ct-sig-$$
    pause_scenario "$T/s.json" "$VPID" 60s
    "$CHAOS" run "$T/s.json" --report-json "$T/r.json" >"$T/out" 2>&1 &
    cpid=$!
    OWNED_PIDS+=("$cpid")
    wait_until 10 is_stopped "$VPID"
    kill -"$sig" "$cpid"
    rc=0
    wait "$cpid" || rc=$?
    cat "$T/out"
    [[ $rc == 3 ]] || fail "SIG$sig: chaos exited $rc, wanted 3"
    is_running "$VPID" || fail "SIG$sig: victim is $(proc_state "$VPID") after chaos exited"
    [[ $(json_get "$T/r.json" 'r["interrupted"]') == True ]] || fail "report does not say interrupted"
    grep -q "interrupted by SIG$sig" "$T/out" || fail "output does not name SIG$sig"
    kill -KILL "$VPID"
    ok "SIG$sig reverted the pause"
done
