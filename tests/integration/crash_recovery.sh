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

# 4. chaos recover says one line per journal: what it reverted, what it
# skipped and why. Journals written here by hand, each with a real pause.
start_field22() { python3 -c 'import sys; s=open("/proc/%s/stat"%sys.argv[1]).read(); print(s[s.rindex(")")+2:].split()[19])' "$1"; }
# journal FILE OWNER_PID OWNER_START VICTIM [EXTRA_LINES]: an open record and
# a pause of VICTIM (which this function stops, as the run would have).
journal() {
    local vstart
    vstart=$(start_field22 "$4")
    kill -STOP "$4"
    wait_until 3 is_stopped "$4"
    {
        echo "{\"op\":\"open\",\"pid\":$2,\"start\":$3,\"at\":1}"
        echo "{\"op\":\"apply\",\"id\":\"f1-$2\",\"kind\":\"process\",\"undo\":{\"pids\":[{\"pid\":$4,\"start\":$vstart,\"comm\":\"x\"}]},\"deadline\":1,\"at\":1}"
        printf '%b' "${5:-}"
    } >"$1"
}
J=$CHAOS_STATE_DIR/journal
rm -rf "$J" && mkdir -p "$J"

# a) the owner pid is now a thread of another process (with that thread's
#    own start time: only the thread check tells it from the owner)
python3 -c 'import threading,time; threading.Thread(target=time.sleep,args=(600,)).start(); time.sleep(600)' &
TPROC=$!
OWNED_PIDS+=("$TPROC")
has_thread() { [[ $(ls "/proc/$1/task" | wc -l) -ge 2 ]]; }
wait_until 5 has_thread "$TPROC"
TID=$(ls /proc/$TPROC/task | grep -vx "$TPROC" | head -1)
start_victim ct-th-$$
v_thread=$VPID
journal "$J/run-thread.jsonl" "$TID" "$(start_field22 "$TID")" "$v_thread"
# b) the owner pid was recycled: a live process with another start time
start_victim ct-rc-$$
v_recyc=$VPID
journal "$J/run-recycled.jsonl" "$TPROC" 1 "$v_recyc"
# c) the owner is gone and the last record was cut short by the crash
start_victim ct-tn-$$
v_torn=$VPID
journal "$J/run-torn.jsonl" 4194304 1 "$v_torn" '{"op":"apply","id":"f2-4194304","kind":"pro'
# d) a line that is no journal record: what it said cannot be known
start_victim ct-bd-$$
v_bad=$VPID
journal "$J/run-bad.jsonl" 4194304 1 "$v_bad" 'this is not json\n'
# e) not readable at all (a folder by that name)
mkdir "$J/run-dir.jsonl"

rc=0
"$CHAOS" recover >"$T/rec4" 2>&1 || rc=$?
cat "$T/rec4"
[[ $rc == 3 ]] || fail "recover exited $rc, want 3 (one journal kept, one unreadable)"
line() { grep -F "$J/$1: " "$T/rec4" | grep -v "reverted process fault" || true; }
[[ $(line run-thread.jsonl) == *"is gone (the pid is now a thread of process $TPROC); reverted 1 fault; removed the journal" ]] ||
    fail "thread line: '$(line run-thread.jsonl)'"
[[ $(line run-recycled.jsonl) == *"is gone (the pid was recycled: another process has it now); reverted 1 fault; removed the journal" ]] ||
    fail "recycled line: '$(line run-recycled.jsonl)'"
[[ $(line run-torn.jsonl) == *"(pid 4194304) is gone; reverted 1 fault; its last record was cut short by the crash"*"removed the journal" ]] ||
    fail "torn line: '$(line run-torn.jsonl)'"
[[ $(line run-bad.jsonl) == *"reverted 1 fault, failed 0; KEPT the journal: line 3 is not a journal record"* ]] ||
    fail "bad-line line: '$(line run-bad.jsonl)'"
[[ $(line run-dir.jsonl) == *"skipped, cannot read it"*"kept it"* ]] || fail "unreadable line: '$(line run-dir.jsonl)'"
for v in "$v_thread" "$v_recyc" "$v_torn" "$v_bad"; do
    is_running "$v" || fail "victim $v still $(proc_state "$v") after recover"
done
[[ ! -e $J/run-thread.jsonl && ! -e $J/run-recycled.jsonl && ! -e $J/run-torn.jsonl ]] ||
    fail "a recovered journal stayed: $(ls "$J")"
[[ -e $J/run-bad.jsonl && -d $J/run-dir.jsonl ]] || fail "an unreadable journal was deleted"
ok "recover says one line per journal (thread, recycled, torn, unreadable) and keeps what it cannot read"
