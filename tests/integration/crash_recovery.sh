#!/usr/bin/env bash
# SIGKILL of `chaos run` mid-fault: the journal lets `chaos recover`, or the
# next `chaos run`, revert what it left behind.
source "$(dirname "$0")/lib.bash"

kill_mid_pause() { # starts a 60s pause of $VPID and SIGKILLs chaos once it holds
    pause_scenario "$T/s.json" "$VPID" 60s
    "$CHAOS" run "$T/s.json" >"$T/out" 2>&1 &
    local cpid=$!
    OWNED_PIDS+=("$cpid")
    wait_until 10 is_stopped "$VPID"
    kill -KILL "$cpid"
    wait "$cpid" 2>/dev/null || true
    sleep 0.2
    is_stopped "$VPID" || fail "victim resumed without recovery: the test proves nothing"
    ls "$CHAOS_STATE_DIR"/journal/*.jsonl >/dev/null || fail "no journal left by the killed run"
}

# 1. chaos recover
start_victim ct-crash-$$
kill_mid_pause
"$CHAOS" recover >"$T/rec" 2>&1 || fail "chaos recover exited $?: $(cat "$T/rec")"
cat "$T/rec"
grep -q "reverted process fault" "$T/rec" || fail "recover did not say what it reverted"
is_running "$VPID" || fail "victim still $(proc_state "$VPID") after chaos recover"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal") ]] || fail "recovered journal not removed"
"$CHAOS" recover >"$T/rec2" 2>&1 || fail "second recover failed"
[[ ! -s $T/rec2 ]] || fail "second recover found something: $(cat "$T/rec2")"
ok "chaos recover resumed the victim and removed the journal; a second recover is a no-op"

# 2. the next chaos run recovers first
kill_mid_pause
first=$VPID
start_victim ct-crash2-$$
pause_scenario "$T/s2.json" "$VPID" 100ms
"$CHAOS" run "$T/s2.json" >"$T/out2" 2>&1 || fail "second run exited $?: $(cat "$T/out2")"
cat "$T/out2"
grep -q "^recovery: .*reverted process fault" "$T/out2" || fail "the next run did not report its recovery"
is_running "$first" || fail "first victim still $(proc_state "$first") after the next run"
ok "the next chaos run recovered the crashed run's pause first"

# 3. a journal whose owner still runs is left alone
start_victim ct-crash3-$$
pause_scenario "$T/s3.json" "$VPID" 60s
"$CHAOS" run "$T/s3.json" >"$T/out3" 2>&1 &
cpid=$!
OWNED_PIDS+=("$cpid")
wait_until 10 is_stopped "$VPID"
"$CHAOS" recover >"$T/rec3" 2>&1 || fail "recover failed: $(cat "$T/rec3")"
is_stopped "$VPID" || fail "recover touched the fault of a run that is still alive"
kill -TERM "$cpid"
wait "$cpid" || true
is_running "$VPID" || fail "victim not resumed by SIGTERM"
ok "recover leaves a live run's faults alone"
