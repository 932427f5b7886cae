#!/usr/bin/env bash
# chaos-agent killed with SIGKILL mid-fault: the paused process stays paused
# (nothing could revert it), and the agent started again on the same journal
# reverts it from the journal before it serves, and counts the recovery.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/agent_lib.bash"

agent_config a
start_agent a
start_victim agent-c1
api POST /v1/faults "$(pause_body "$VPID" 60s)"
[[ $CODE == 201 ]] || fail "apply: $CODE $(cat "$T/body")"
wait_until 2 is_stopped "$VPID"
kill -KILL "$APID"
wait "$APID" 2>/dev/null || true
sleep 0.3
is_stopped "$VPID" || fail "the process was resumed without the agent (the test proves nothing)"
grep -q '"op":"apply"' "$T/a/journal.jsonl" || fail "no apply record in the journal"
ok "SIGKILL of the agent leaves the fault applied and journalled"

start_agent a
is_running "$VPID" || fail "the restarted agent did not resume the process"
grep -q "recovery: .*reverted process fault" "$T/a.log" || fail "no recovery line: $(cat "$T/a.log")"
api GET /metrics
grep -qx 'chaos_agent_recoveries_total 1' "$T/body" || fail "the recovery is not counted"
api GET /v1/faults
[[ $(jfield 'len(r["faults"])') == 0 ]] || fail "the new agent lists old faults"
ok "the restarted agent reverts what the journal holds"

kill -TERM "$APID"
rc=0
wait "$APID" || rc=$?
[[ $rc == 0 ]] || fail "exit $rc after SIGTERM"
[[ ! -e $T/a/journal.jsonl ]] || fail "the journal is left behind"
ok "nothing left behind"
