#!/usr/bin/env bash
# SIGKILL of `chaos run` mid-fault: its guard process reverts at once; and
# when the guard is gone too (power loss), the journal lets `chaos recover`,
# or the next `chaos run`, revert what was left behind.
source "$(dirname "$0")/lib.bash"

# start_pause: a 60s pause of $VPID; sets CPID (chaos) and GPID (its guard).
start_pause() {
    pause_scenario "$T/s.json" "$VPID" 60s
    "$CHAOS" run "$T/s.json" >"$T/out" 2>&1 &
    CPID=$!
    OWNED_PIDS+=("$CPID")
    wait_until 10 is_stopped "$VPID"
    GPID=$(pgrep -P "$CPID" -x chaos-guard) || fail "chaos run has no chaos-guard child"
    OWNED_PIDS+=("$GPID")
}

kill_mid_pause() { # SIGKILLs chaos and its guard while the pause holds
    start_pause
    kill -KILL "$GPID" "$CPID"
    wait "$CPID" 2>/dev/null || true
    sleep 0.2
    is_stopped "$VPID" || fail "victim resumed without recovery: the test proves nothing"
    ls "$CHAOS_STATE_DIR"/journal/*.jsonl >/dev/null || fail "no journal left by the killed run"
}

# 0. SIGKILL of chaos alone: the guard reverts within moments.
start_victim ct-guard-$$
start_pause
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
wait_until 3 is_running "$VPID"
wait_until 3 test ! -e "/proc/$GPID"
cat "$T/out"
grep -q "chaos-guard: .*reverted process fault" "$T/out" || fail "the guard did not say what it reverted"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal") ]] || fail "the guard left the journal behind"
ok "SIGKILL of chaos run: its guard resumed the victim and removed the journal"

# A clean run's guard exits with it.
start_victim ct-guard2-$$
pause_scenario "$T/short.json" "$VPID" 200ms
"$CHAOS" run "$T/short.json" >"$T/out" 2>&1 || fail "short run failed: $(cat "$T/out")"
# The guard is a fork of chaos: same command line.
[[ -z $(pgrep -f "run $T/short.json" || true) ]] || fail "a guard outlived its run"
! grep -q chaos-guard "$T/out" || fail "the guard acted after a clean run"
ok "a clean run's guard exits quietly"

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
start_pause
"$CHAOS" recover >"$T/rec3" 2>&1 || fail "recover failed: $(cat "$T/rec3")"
is_stopped "$VPID" || fail "recover touched the fault of a run that is still alive"
kill -TERM "$CPID"
wait "$CPID" || true
is_running "$VPID" || fail "victim not resumed by SIGTERM"
ok "recover leaves a live run's faults alone"
