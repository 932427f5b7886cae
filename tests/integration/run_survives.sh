#!/usr/bin/env bash
# What must not take a run down or hang it (issue 13): a reader that goes away
# (SIGPIPE), a SIGKILL to the whole process group (`timeout -s KILL`, the
# guard must survive it and resume the pause), a FIFO named as a pidfile.
source "$(dirname "$0")/lib.bash"

# 1. `chaos run | head -1`: the run finishes, reverts and writes its report.
start_victim ct-pipe-$$
pause_scenario "$T/s.json" "$VPID" 1s
set +o pipefail
"$CHAOS" run "$T/s.json" --report-json "$T/r.json" 2>"$T/err" | head -1 >/dev/null
rc=${PIPESTATUS[0]}
set -o pipefail
[[ $rc == 0 ]] || fail "chaos run | head -1 exited $rc (141 is SIGPIPE): $(cat "$T/err")"
[[ $(json_get "$T/r.json" 'r["faults"][0]["outcome"]') == reverted ]] || fail "no report after SIGPIPE"
is_running "$VPID" || fail "victim is $(proc_state "$VPID") after the run"
ok "a closed stdout does not kill the run"

# 2. timeout -s KILL signals chaos's whole process group; the guard is in
#    its own session, survives, and resumes the pause at once.
start_victim ct-tmo-$$
pause_scenario "$T/s2.json" "$VPID" 60s
rc=0
timeout -s KILL 2 "$CHAOS" run "$T/s2.json" >"$T/o2" 2>&1 || rc=$?
[[ $rc == 137 ]] || fail "timeout -s KILL: exit $rc, wanted 137: $(cat "$T/o2")"
grep -q "fault 'pause victim' applied" "$T/o2" || fail "the pause was never applied: $(cat "$T/o2")"
wait_until 5 is_running "$VPID"
wait_until 5 eval '[[ -z $(ls -A "$CHAOS_STATE_DIR/journal" 2>/dev/null) ]]'
ok "timeout -s KILL: the guard resumed the victim and removed the journal"

# 3. A FIFO as pidfile: refused at once; the other fault's 1s pause still
#    ends on time and the run exits 3 (a fault could not be applied).
start_victim ct-fifo-$$
mkfifo "$T/pid.fifo"
cat >"$T/s3.json" <<JSON
{"version": 1, "name": "fifo-pidfile",
 "faults": [
   {"name": "pause", "kind": "process", "duration": "1s", "target": {"pid": $VPID},
    "params": {"action": "pause"}},
   {"name": "kill by fifo", "kind": "process", "at": "200ms",
    "target": {"pidfile": "$T/pid.fifo"}, "params": {"action": "kill"}}
 ]}
JSON
timeout -k 5 20 "$CHAOS" validate "$T/s3.json" >"$T/o3" 2>&1 || fail "validate exited $?: $(cat "$T/o3")"
rc=0
timeout -k 5 20 "$CHAOS" run "$T/s3.json" >"$T/o3" 2>&1 || rc=$?
[[ $rc == 3 ]] || fail "FIFO pidfile: exit $rc, wanted 3 (124: it hung): $(cat "$T/o3")"
grep -q "is not a regular file" "$T/o3" || fail "FIFO pidfile not explained: $(cat "$T/o3")"
is_running "$VPID" || fail "victim is $(proc_state "$VPID") after the run"
ok "a FIFO pidfile is refused without blocking the run"
