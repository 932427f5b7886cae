#!/usr/bin/env bash
# chaos-agent killed with SIGKILL mid-fault: the paused process stays paused
# (nothing could revert it), and the agent started again on the same journal
# reverts it from the journal before it serves, and counts the recovery.
source "$(dirname "$0")/lib.bash"
AGENT="$CHAOS_BUILD/agent/chaos-agent"

# ---- helpers (shared by the agent_*.sh tests: same block in each) ----
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$T/token"
chmod 600 "$T/token"
TOKEN=$(cat "$T/token")
# agent_config NAME [EXTRA_FIELDS]: writes $T/NAME.json for a new port; sets PORT.
agent_config() {
    PORT=$(free_port)
    echo "{\"listen\": \"127.0.0.1:$PORT\", \"token_file\": \"$T/token\", \"journal\": \"$T/$1/journal.jsonl\", \"lease\": \"${LEASE:-1s}\"${2:+, $2}}" >"$T/$1.json"
}
# start_agent NAME: starts the agent of $T/NAME.json (log $T/NAME.log); sets APID.
start_agent() {
    "$AGENT" --config "$T/$1.json" 2>>"$T/$1.log" &
    APID=$!
    OWNED_PIDS+=("$APID")
    wait_until 5 curl -sf "http://127.0.0.1:$PORT/healthz" -o /dev/null
}
# api METHOD PATH [BODY]: the reply's body in $T/body, its status in CODE.
api() {
    CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
        ${3:+-d "$3"} "http://127.0.0.1:$PORT$2")
}
# jfield PYEXPR: evaluates PYEXPR over the last reply as r.
jfield() { json_get "$T/body" "$1"; }
pause_body() { # pause_body PID DURATION [CONTROLLER]
    echo "{\"name\": \"pause $1\", \"kind\": \"process\", \"target\": {\"pid\": $1}, \"params\": {\"action\": \"pause\"}, \"duration\": \"$2\"${3:+, \"controller\": \"$3\"}}"
}
fault_state() { api GET "/v1/faults/$1" && jfield 'r["state"]'; }
state_is() { [[ $(fault_state "$1") == "$2" ]]; }
# ----

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
