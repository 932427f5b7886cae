#!/usr/bin/env bash
# chaos-agent's safety nets, each against a real daemon on 127.0.0.1 and a
# real paused process: a fault's duration ends with no controller; a
# controller's lease expires; halt; a fault whose target died; SIGTERM
# reverts all; a second agent on the same journal is refused.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/agent_lib.bash"

# A lease with room for a slow CI machine between two renewals (every 0.5s).
LEASE=2s
agent_config a
start_agent a

# 1. The duration ends with no controller: the agent itself resumes the process.
start_victim agent-v1
api POST /v1/faults "$(pause_body "$VPID" 1s)"
[[ $CODE == 201 ]] || fail "apply: $CODE $(cat "$T/body")"
ID=$(jfield 'r["id"]')
wait_until 2 is_stopped "$VPID"
wait_until 4 is_running "$VPID"
wait_until 2 state_is "$ID" reverted
jfield '[e["detail"] for e in r["events"] if e["event"] == "reverted"][0]' | grep -q "duration 1s ended" ||
    fail "no duration reason: $(cat "$T/body")"
ok "the duration ends with no controller: reverted"

# 2. Lease: renewed, the fault holds; not renewed for the lease period (2s), reverted.
start_victim agent-v2
api POST /v1/faults "$(pause_body "$VPID" 60s ctl-1)"
[[ $CODE == 201 ]] || fail "apply with controller: $CODE $(cat "$T/body")"
ID=$(jfield 'r["id"]')
[[ $(jfield 'r["controller"]') == ctl-1 ]] || fail "controller not in the fault object"
for _ in 1 2 3 4 5 6; do
    sleep 0.5
    api POST /v1/lease '{"controller": "ctl-1"}'
    [[ $CODE == 200 && $(jfield 'r["expires_in_ms"]') == 2000 ]] || fail "renew: $CODE $(cat "$T/body")"
done
is_stopped "$VPID" || fail "the fault did not hold while its lease was renewed"
wait_until 4 is_running "$VPID"
wait_until 2 state_is "$ID" reverted
jfield '[e["detail"] for e in r["events"] if e["event"] == "reverted"][0]' |
    grep -q "lease of controller 'ctl-1' expired" || fail "no lease reason: $(cat "$T/body")"
api GET /metrics
grep -qx 'chaos_agent_lease_expiries_total 1' "$T/body" || fail "lease expiry not counted"
ok "a lease not renewed reverts its controller's faults"

# 3. Halt: everything reverted at once, new faults refused until cleared.
start_victim agent-v3
V3=$VPID
start_victim agent-v3
V4=$VPID
api POST /v1/faults "$(pause_body "$V3" 60s)"
[[ $CODE == 201 ]] || fail "apply: $CODE"
api POST /v1/faults "$(pause_body "$V4" 60s)"
[[ $CODE == 201 ]] || fail "apply: $CODE"
wait_until 2 is_stopped "$V3"
wait_until 2 is_stopped "$V4"
api POST /v1/halt
[[ $CODE == 200 && $(jfield 'r["halted"]') == True && $(jfield 'r["reverted"]') == 2 ]] ||
    fail "halt: $CODE $(cat "$T/body")"
is_running "$V3" && is_running "$V4" || fail "halt left a process paused"
api POST /v1/faults "$(pause_body "$V3" 60s)"
[[ $CODE == 409 ]] && jfield 'r["error"]' | grep -q '^halted: ' || fail "a fault while halted: $CODE $(cat "$T/body")"
is_running "$V3" || fail "a fault was applied while halted"
curl -s "http://127.0.0.1:$PORT/healthz" | grep -q '"halted":true' || fail "healthz does not say halted"
api DELETE /v1/halt
[[ $CODE == 200 && $(jfield 'r["halted"]') == False ]] || fail "clear halt: $CODE"
api POST /v1/faults "$(pause_body "$V3" 60s)"
[[ $CODE == 201 ]] || fail "apply after the halt was cleared: $CODE"
ID=$(jfield 'r["id"]')
api DELETE "/v1/faults/$ID"
[[ $CODE == 200 && $(jfield 'r["state"]') == reverted ]] || fail "delete: $CODE $(cat "$T/body")"
is_running "$V3" || fail "DELETE did not resume"
ok "halt reverts everything and refuses new faults until cleared"

# 4. A fault whose target died is marked reverted with the reason, not left active.
start_victim agent-v5
api POST /v1/faults "$(pause_body "$VPID" 60s)"
[[ $CODE == 201 ]] || fail "apply: $CODE"
ID=$(jfield 'r["id"]')
kill -KILL "$VPID"
wait "$VPID" 2>/dev/null || true
wait_until 3 state_is "$ID" reverted
jfield '[e["detail"] for e in r["events"] if e["event"] == "reverted"][0]' |
    grep -q "target gone: process $VPID (agent-v5) exited" || fail "no target-gone reason: $(cat "$T/body")"
ok "a fault whose target died is marked reverted with the reason"

# An apply that fails is a 500 naming the fault, and leaves nothing applied.
sleep 0.01 &
DEAD=$!
wait "$DEAD"
api POST /v1/faults "$(pause_body "$DEAD" 5s)"
[[ $CODE == 500 ]] && jfield 'r["error"]' | grep -q "^fault 'pause $DEAD': " || fail "apply on a dead pid: $CODE $(cat "$T/body")"
api GET /metrics
grep -qx 'chaos_agent_faults_failed_total 1' "$T/body" || fail "the failed apply is not counted"
grep -qx 'chaos_agent_faults_active{kind="process"} 0' "$T/body" || fail "a failed apply counts as active"
ok "a failed apply is a 500 and leaves nothing applied"

# 5. A second agent on the same journal is refused; the first keeps serving.
FIRST_PORT=$PORT
cp "$T/a.json" "$T/a2.json"
PORT=$(free_port)
sed -i "s/127.0.0.1:$FIRST_PORT/127.0.0.1:$PORT/" "$T/a2.json"
rc=0
timeout 5 "$AGENT" --config "$T/a2.json" 2>"$T/a2.log" || rc=$?
[[ $rc == 1 ]] || fail "a second agent on the same journal exited $rc"
grep -q "another chaos-agent is running on $T/a/journal.jsonl" "$T/a2.log" || fail "$(cat "$T/a2.log")"
PORT=$FIRST_PORT
curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null || fail "the first agent stopped serving"
ok "a second agent on the same journal is refused"

# 6. SIGTERM reverts everything, then the agent exits 0 and removes its journal.
start_victim agent-v6
api POST /v1/faults "$(pause_body "$VPID" 60s)"
[[ $CODE == 201 ]] || fail "apply: $CODE"
wait_until 2 is_stopped "$VPID"
kill -TERM "$APID"
rc=0
wait "$APID" || rc=$?
[[ $rc == 0 ]] || fail "the agent exited $rc after SIGTERM: $(tail -5 "$T/a.log")"
is_running "$VPID" || fail "SIGTERM left the process paused"
[[ ! -e $T/a/journal.jsonl ]] || fail "the journal is left behind: $(cat "$T/a/journal.jsonl")"
grep -q "agent stopping (SIGTERM)" "$T/a.log" || fail "no SIGTERM line in the log"
ok "SIGTERM reverts every fault, then the agent exits 0"
