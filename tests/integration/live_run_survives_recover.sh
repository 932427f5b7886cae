#!/usr/bin/env bash
# Issue 12, item 1: a live run's faults are its own. Its journal records its
# start time (field 22 of /proc/PID/stat), and neither a second `chaos run`
# nor a `chaos recover` on the same state folder takes it for dead, even
# after its memory has grown (the start time was once read from field 23,
# vsize, which then no longer matched). Also: `chaos recover` says one line
# per journal, what it did and why.
source "$(dirname "$0")/lib.bash"

# field N of /proc/PID/stat, counted after the last ')' like proc(5) does
stat_field() {
    python3 - "$1" "$2" <<'PY'
import sys
s = open("/proc/%s/stat" % sys.argv[1]).read()
rest = s[s.rindex(")") + 2:].split()
print(rest[int(sys.argv[2]) - 3])
PY
}

# The probe's host name makes libcurl start its resolver thread once the
# fault is on, which grows the run's memory (the thread's stack). Only a
# name /etc/hosts maps to loopback: no traffic leaves the machine.
probe_host=127.0.0.1
for h in "$(hostname)" localhost.localdomain; do
    if getent hosts "$h" | grep -q '^127\.' && [[ $h != localhost ]]; then
        probe_host=$h
        break
    fi
done

start_victim ct-live-$$
live=$VPID
cat >"$T/live.json" <<JSON
{"version": 1, "name": "live", "max_duration": "2m",
 "faults": [{"name": "hold", "kind": "process", "at": "1s", "duration": "60s",
             "target": {"pid": $live}, "params": {"action": "pause"}}],
 "expect": [{"name": "grow", "during": "hold",
             "probe": {"http": {"url": "http://$probe_host:1/", "timeout": "1s"}},
             "every": "100ms", "expect": {"success_ratio": ">= 0"}}]}
JSON
"$CHAOS" run "$T/live.json" >"$T/live.out" 2>&1 &
CPID=$!
OWNED_PIDS+=("$CPID")
wait_until 5 test -s "$CHAOS_STATE_DIR/journal/run-$CPID.jsonl"
vsize_before=$(stat_field "$CPID" 23)
wait_until 10 is_stopped "$live"
sleep 1
vsize_after=$(stat_field "$CPID" 23)
if [[ $vsize_before != "$vsize_after" ]]; then
    ok "the live run's memory grew ($vsize_before -> $vsize_after bytes of vsize)"
else
    echo "note: the live run's memory did not grow (probe host $probe_host); the start-time check below still holds"
fi

# The journal's owner record is the run's pid and field 22, read here apart
# from the code under test.
journal=$CHAOS_STATE_DIR/journal/run-$CPID.jsonl
recorded=$(head -1 "$journal" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["pid"], r["start"])')
want="$CPID $(stat_field "$CPID" 22)"
[[ $recorded == "$want" ]] ||
    fail "journal owner is '$recorded', want '$want' (pid, field 22 starttime; field 23 vsize is $vsize_after)"
ok "the journal records the owner's start time (field 22 of /proc/PID/stat)"

# A second run on the same state folder: recovers nothing of the live run.
start_victim ct-other-$$
other=$VPID
pause_scenario "$T/other.json" "$other" 200ms
"$CHAOS" run "$T/other.json" >"$T/other.out" 2>&1 || fail "second run exited $?: $(cat "$T/other.out")"
cat "$T/other.out"
! grep -q "reverted process fault" "$T/other.out" || fail "the second run reverted a live run's fault"
is_stopped "$live" || fail "the second run lifted the live run's pause (victim $(proc_state "$live"))"
grep -q "^recovery: $journal: skipped: its run (pid $CPID) is still running" "$T/other.out" ||
    fail "the second run did not say why it left the live journal alone"
ok "a second chaos run leaves the live run's pause in place"

# chaos recover on the same folder: the same.
"$CHAOS" recover >"$T/rec" 2>&1 || fail "chaos recover exited $?: $(cat "$T/rec")"
cat "$T/rec"
is_stopped "$live" || fail "chaos recover lifted the live run's pause (victim $(proc_state "$live"))"
! grep -q "reverted process fault" "$T/rec" || fail "chaos recover reverted a live run's fault"
[[ $(wc -l <"$T/rec") == 1 ]] && grep -q "^$journal: skipped: its run (pid $CPID) is still running" "$T/rec" ||
    fail "chaos recover should say in one line that it skipped the live journal"
[[ -e $journal ]] || fail "chaos recover removed a live run's journal"
ok "chaos recover leaves the live run's pause and journal alone, and says so"

# The live run still owns its fault: SIGTERM reverts it.
kill -TERM "$CPID"
wait "$CPID" || true
is_running "$live" || fail "the live run did not resume its victim on SIGTERM"
grep -q "fault 'hold' reverted" "$T/live.out" || fail "the live run did not revert its fault: $(cat "$T/live.out")"
ok "the live run reverted its own fault at the end"
