#!/usr/bin/env bash
# chaos run driving a fleet of real chaos-agents. Three "nodes", each a
# network namespace made here (chaos-t-*) joined to the root namespace by a
# veth pair, each running chaos-agent on its veth address with TLS (a CA made
# here by openssl; the controller verifies every agent's certificate). The
# victims are sleep processes; the nodes share the host's PID namespace, so
# the test sees every process state itself. Covered:
#   1. success: one fault per node by name and one on two nodes by label;
#      the report names the agents; every victim runs again after;
#   2. a wrong token (401), 3. a policy refusal (403), 4. a CA that does not
#      match: exit 3 naming the agent, and what another agent applied is
#      reverted;
#   5. an agent SIGKILLed mid-fault: the run stops (exit 3), the restarted
#      agent's journal recovery resumes the victim;
#   6. the controller SIGKILLed: every agent reverts by lease;
#   7. the link to an agent cut: the run stops, the agent reverts by lease;
#   8. POST /v1/halt on an agent mid-run: the run stops (exit 3, "halted").
# After each case every victim runs, no agent holds a live fault, and each
# node's qdiscs and filters, the victims' states and their seccomp and tracer
# fields are as before the first case (fleet_state).
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/agent_lib.bash"

[[ $(id -u) == 0 ]] || fail "needs root (network namespaces)"
command -v openssl >/dev/null || fail "openssl is not installed (dev.sh installs it)"

tag=$(($$ % 100))
NODES=(1 2 3)
fleet_cleanup() {
    local i
    for i in "${NODES[@]}"; do
        ip link del "chaos-t-f$i-$tag" 2>/dev/null || true
        ip netns del "chaos-t-fl$i-$tag" 2>/dev/null || true
    done
}
trap 'fleet_cleanup; cleanup' EXIT
fleet_cleanup

# ---- the nodes ----
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
    -subj "/CN=chaos fleet test CA" >/dev/null 2>&1 || fail "openssl: CA"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/other.key" -out "$T/other.pem" -days 2 \
    -subj "/CN=another CA" >/dev/null 2>&1 || fail "openssl: second CA"
addr() { echo "10.231.$1.2"; }
node_ns() { echo "chaos-t-fl$1-$tag"; }
for i in "${NODES[@]}"; do
    ns=$(node_ns "$i")
    ip netns add "$ns"
    ip link add "chaos-t-f$i-$tag" type veth peer name eth0 netns "$ns"
    ip addr add "10.231.$i.1/24" dev "chaos-t-f$i-$tag"
    ip link set "chaos-t-f$i-$tag" up
    ip -n "$ns" addr add "$(addr "$i")/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    openssl req -newkey rsa:2048 -nodes -keyout "$T/n$i.key" -out "$T/n$i.csr" \
        -subj "/CN=$(addr "$i")" >/dev/null 2>&1 || fail "openssl: CSR $i"
    printf 'subjectAltName=IP:%s\n' "$(addr "$i")" >"$T/n$i.ext"
    openssl x509 -req -in "$T/n$i.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
        -out "$T/n$i.pem" -days 2 -extfile "$T/n$i.ext" >/dev/null 2>&1 || fail "openssl: sign $i"
done
# node3 only admits processes named "web-worker": the victims are refused there.
policy3='"policy": {"allow": {"process_names": ["web-worker"]}}'
node_config() { # I
    local extra=""
    [[ $1 == 3 ]] && extra=", $policy3"
    echo "{\"listen\": \"$(addr "$1"):7433\", \"token_file\": \"$T/token\", \"journal\": \"$T/n$1/journal.jsonl\", \"lease\": \"1s\", \"tls\": {\"cert\": \"$T/n$1.pem\", \"key\": \"$T/n$1.key\"}$extra}" >"$T/n$1.json"
}
declare -A APIDS
start_node() { # I
    ip netns exec "$(node_ns "$1")" "$AGENT" --config "$T/n$1.json" 2>>"$T/n$1.log" &
    APIDS[$1]=$!
    OWNED_PIDS+=("$!")
    wait_until 10 curl -sf --cacert "$T/ca.pem" "https://$(addr "$1"):7433/healthz" -o /dev/null
}
for i in "${NODES[@]}"; do
    node_config "$i"
    start_node "$i"
done
ok "3 agents up on $(addr 1), $(addr 2), $(addr 3) (TLS, lease 1s)"

# node_api I METHOD PATH: like api, against node I.
node_api() {
    CODE=$(curl -s --cacert "$T/ca.pem" -o "$T/body" -w '%{http_code}' -X "$2" \
        -H "Authorization: Bearer $TOKEN" "https://$(addr "$1"):7433$3")
}
live_faults() { # I: how many faults the agent holds that have not ended
    node_api "$1" GET /v1/faults
    jfield 'sum(1 for f in r["faults"] if f["state"] in ("pending", "active", "reverting"))'
}
no_live_faults() { local i; for i in "${NODES[@]}"; do [[ $(live_faults "$i") == 0 ]] || return 1; done; }

inventory() { # FILE [TOKEN_FILE_OF_NODE2] [CA]
    local tok2=${2:-$T/token} ca=${3:-$T/ca.pem}
    cat >"$1" <<JSON
{"agents": [
  {"name": "node1", "url": "https://$(addr 1):7433", "bearer_token_file": "$T/token", "tls": {"ca_file": "$ca"}, "timeout": "1s", "labels": {"role": "db"}},
  {"name": "node2", "url": "https://$(addr 2):7433", "bearer_token_file": "$tok2", "tls": {"ca_file": "$ca"}, "timeout": "1s", "labels": {"role": "db"}},
  {"name": "node3", "url": "https://$(addr 3):7433", "bearer_token_file": "$T/token", "tls": {"ca_file": "$ca"}, "timeout": "1s", "labels": {"role": "web"}}
]}
JSON
}
inventory "$T/inv.json"
head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$T/wrong-token"
chmod 600 "$T/wrong-token"
inventory "$T/inv-badtoken.json" "$T/wrong-token"
inventory "$T/inv-badca.json" "" "$T/other.pem"

start_victim ct-fl1-$$; V1=$VPID
start_victim ct-fl2-$$; V2=$VPID
start_victim ct-fls-$$; VS=$VPID
all_running() { is_running "$V1" && is_running "$V2" && is_running "$VS"; }

# fault NAME AGENT PID DURATION
fault() { echo "{\"name\": \"$1\", \"kind\": \"process\", \"agent\": \"$2\", \"duration\": \"$4\", \"target\": {\"$( [[ $3 =~ ^[0-9]+$ ]] && echo pid || echo name)\": $( [[ $3 =~ ^[0-9]+$ ]] && echo "$3" || echo "\"$3\"")}, \"params\": {\"action\": \"pause\"}}"; }
stopped_check() { # NAME FAULT PID
    echo "{\"name\": \"$1\", \"during\": \"$2\", \"every\": \"200ms\", \"probe\": {\"command\": {\"argv\": [\"grep\", \"-q\", \"^State:.*T\", \"/proc/$3/status\"]}}}"
}
scenario() { # FILE NAME FAULTS_JSON CHECKS_JSON
    echo "{\"version\": 1, \"name\": \"$2\", \"faults\": [$3], \"expect\": [$4]}" >"$1"
}
run() { # NAME SCENARIO INVENTORY: rc in $rc, output in $T/NAME.out
    rc=0
    "$CHAOS" run "$2" --inventory "$3" --no-progress --report-json "$T/$1.report.json" >"$T/$1.out" 2>&1 || rc=$?
    cat "$T/$1.out"
}
# What must be the same after every case as before the first: each node's
# qdiscs and filters, the victims' states, and no seccomp filter or tracer
# on them (nor a tracer process of ours anywhere).
fleet_state() {
    local i v
    for i in "${NODES[@]}"; do
        echo "node $i: $(ip netns exec "$(node_ns "$i")" tc -j qdisc show) $(ip netns exec "$(node_ns "$i")" tc -j filter show dev eth0)"
    done
    for v in "$V1" "$V2" "$VS"; do
        echo "victim $v: $(grep -E '^(State|Seccomp|TracerPid):' "/proc/$v/status" | tr -s '\t\n' '  ')"
    done
    echo "tracers: $(pgrep -x chaos-tracer | wc -l)"
}
same_state() { [[ $(fleet_state) == "$BEFORE" ]]; }
BEFORE=$(fleet_state)
after_case() { # WHAT
    wait_until 5 all_running
    wait_until 5 no_live_faults
    wait_until 5 same_state || fail "$1: the fleet's state changed: before: $BEFORE after: $(fleet_state)"
    ok "$1"
}

# ---- 1. success ----
# The nodes share the host's processes, so a fault on two of them must be
# one both can do to the same process: a signal the victim ignores (SIGCHLD).
signal_db='{"name": "signal the db role", "kind": "process", "agent": "role=db", "target": {"name": "ct-fls-'$$'"}, "params": {"action": "kill", "signal": "SIGCHLD"}}'
scenario "$T/ok.json" fleet-ok \
    "$(fault "pause on node1" node1 "$V1" 3s), $(fault "pause on node2" node2 "$V2" 3s), $signal_db" \
    "$(stopped_check "v1 stopped" "pause on node1" "$V1"), $(stopped_check "v2 stopped" "pause on node2" "$V2")"
run ok "$T/ok.json" "$T/inv.json"
[[ $rc == 0 ]] || fail "the fleet scenario did not hold (exit $rc)"
[[ $(json_get "$T/ok.report.json" '[f["agents"] for f in r["faults"]]') == "[['node1'], ['node2'], ['node1', 'node2']]" ]] ||
    fail "the report does not name the agents: $(json_get "$T/ok.report.json" '[f["agents"] for f in r["faults"]]')"
grep -q "'signal the db role' applied: on 2 agents: node1: signalled 1 process\|'signal the db role' applied: on 2 agents: node1: killed 1 process" "$T/ok.out" ||
    fail "the label fault was not applied on both agents"
[[ $(json_get "$T/ok.report.json" 'r["faults"][2]["outcome"]') == finished ]] || fail "the label fault did not finish on both"
after_case "success: three faults on two agents held, the report names them, all reverted"

# ---- 2-4. refusals: exit 3 naming the agent, node1's part reverted ----
scenario "$T/two.json" fleet-two "$(fault "pause db" role=db "$V1" 5s)" "$(stopped_check "v1 stopped" "pause db" "$V1")"
run badtoken "$T/two.json" "$T/inv-badtoken.json"
[[ $rc == 3 ]] || fail "wrong token: exit $rc, wanted 3"
grep -q "agent 'node2': refused the fault: status 401" "$T/badtoken.out" || fail "wrong token: the abort does not name node2 and 401"
after_case "a wrong token: exit 3, \"agent 'node2': refused the fault: status 401\", node1's part reverted"

scenario "$T/web.json" fleet-web "$(fault "pause web" role=web "$V1" 5s)" "$(stopped_check "v1 stopped" "pause web" "$V1")"
run policy "$T/web.json" "$T/inv.json"
[[ $rc == 3 ]] || fail "policy: exit $rc, wanted 3"
grep -q "agent 'node3': refused the fault: status 403: .*allow.process_names" "$T/policy.out" || fail "policy: the abort does not name node3's policy"
after_case "a policy refusal: exit 3 with node3's 403 and its rule"

run badca "$T/two.json" "$T/inv-badca.json"
[[ $rc == 3 ]] || fail "wrong CA: exit $rc, wanted 3"
grep -qi "agent 'node[12]': could not be reached: .*certificate" "$T/badca.out" || fail "wrong CA: no certificate error named"
after_case "a certificate the CA did not sign: exit 3, nothing applied"

# ---- 5. an agent SIGKILLed mid-fault ----
scenario "$T/long1.json" fleet-long "$(fault "pause on node1" node1 "$V1" 30s)" "$(stopped_check "v1 stopped" "pause on node1" "$V1")"
"$CHAOS" run "$T/long1.json" --inventory "$T/inv.json" --no-progress >"$T/crash.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$V1"
kill -KILL "${APIDS[1]}"
rc=0; wait "$RUN" || rc=$?
cat "$T/crash.out"
[[ $rc == 3 ]] || fail "agent crash: exit $rc, wanted 3"
grep -q "agent 'node1': could not be reached" "$T/crash.out" || fail "agent crash: the abort does not name node1"
is_stopped "$V1" || fail "the victim resumed with nobody to resume it"
start_node 1
grep -q "recover" "$T/n1.log" || fail "the restarted agent did not recover its journal"
after_case "agent SIGKILLed mid-fault: exit 3 naming node1; its restart's journal recovery resumed the victim"

# ---- 6. the controller SIGKILLed: leases ----
scenario "$T/long12.json" fleet-long "$(fault "pause on node1" node1 "$V1" 30s), $(fault "pause on node2" node2 "$V2" 30s)" \
    "$(stopped_check "v1 stopped" "pause on node1" "$V1")"
"$CHAOS" run "$T/long12.json" --inventory "$T/inv.json" --no-progress >"$T/ctl.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$V1"
wait_until 10 is_stopped "$V2"
sleep 1.5 # a few lease renewals
is_stopped "$V1" && is_stopped "$V2" || fail "the renewed leases did not keep the faults"
t0=$(date +%s%N)
kill -KILL "$RUN"
wait "$RUN" 2>/dev/null || true
wait_until 5 all_running
ms=$((($(date +%s%N) - t0) / 1000000))
grep -q "lease of controller 'chaos-" "$T/n1.log" "$T/n2.log" 2>/dev/null || node_api 1 GET /v1/faults
after_case "controller SIGKILLed: both agents reverted by lease within $ms ms (lease 1s)"

# ---- 7. the link to node1 cut ----
"$CHAOS" run "$T/long1.json" --inventory "$T/inv.json" --no-progress >"$T/cut.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$V1"
ip link set "chaos-t-f1-$tag" down
wait_until 5 is_running "$V1" # the agent's lease, with nobody reaching it
rc=0; wait "$RUN" || rc=$?
cat "$T/cut.out"
ip link set "chaos-t-f1-$tag" up
[[ $rc == 3 ]] || fail "network cut: exit $rc, wanted 3"
grep -q "agent 'node1'" "$T/cut.out" || fail "network cut: the abort does not name node1"
after_case "network cut: node1 reverted by lease on its own; the run stopped with exit 3 naming node1"

# ---- 8. halt ----
"$CHAOS" run "$T/long1.json" --inventory "$T/inv.json" --no-progress >"$T/halt.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$V1"
node_api 1 POST /v1/halt
[[ $CODE == 200 ]] || fail "halt: status $CODE"
wait_until 3 is_running "$V1"
rc=0; wait "$RUN" || rc=$?
cat "$T/halt.out"
[[ $rc == 3 ]] || fail "halt: exit $rc, wanted 3"
grep -q "agent 'node1': reverted early: halted" "$T/halt.out" || fail "halt: the abort does not say node1 halted"
node_api 1 DELETE /v1/halt
after_case "halt: node1 reverted at once, the run stopped with exit 3 (\"reverted early: halted\")"

for i in "${NODES[@]}"; do kill -TERM "${APIDS[$i]}"; done
for i in "${NODES[@]}"; do wait "${APIDS[$i]}" 2>/dev/null || true; done
all_running || fail "a victim is not running at the end"
ok "agents stopped; every victim runs; namespaces and veths go with the trap"
