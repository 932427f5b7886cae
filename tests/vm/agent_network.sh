#!/usr/bin/env bash
# chaos-agent's safety nets with a real netem fault, inside the VM (the host
# kernel has no sch_netem; tests/vm/vm-run boots Debian's kernel). A "node"
# is a network namespace made here, joined to the guest's root namespace by a
# veth pair; its agent listens on the node's veth address and delays the
# node's UDP to the controller's address. For each way a fault can lose its
# owner, the node's tc state (qdiscs and filters of eth0, its links) must be
# the same after as before, and the netem must have been there in between:
#   1. the duration ends with no controller;
#   2. the controller's lease (3 s: a guest under TCG is slow) is not renewed;
#   3. the agent is SIGKILLed mid-fault: the restarted agent's journal
#      recovery takes the netem down;
#   4. SIGTERM to the agent;
#   5. POST /v1/halt (and new faults refused until DELETE /v1/halt);
#   6. chaos run --inventory SIGKILLed mid-fault: the agent reverts by lease;
#   7. the link between controller and agent cut mid-run: chaos run stops
#      (exit 3, naming the agent) and the agent reverts by lease.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?}"
fail() {
    echo "FAIL: $*" >&2
    if [[ -n ${T:-} && -f $T/agent.log ]]; then
        echo "-- agent log:" >&2
        tail -20 "$T/agent.log" >&2
        [[ -n ${APID:-} ]] && api GET /v1/faults && echo "-- GET /v1/faults: $(cat "$T/body")" >&2
    fi
    exit 1
}
ok() { echo "ok: $*"; }

if [[ ${1:-} != --guest ]]; then
    exec "$here/vm-run" --timeout "${CHAOS_VM_TIMEOUT:-300}" -- bash "$here/agent_network.sh" --guest
fi

AGENT=$CHAOS_BUILD/agent/chaos-agent
CHAOS=$CHAOS_BUILD/controller/chaos
T=$(mktemp -d) # the guest's /tmp: private to this VM
NS=chaos-t-an
HOSTIF=chaos-t-an0
CTL=10.232.0.1
NODE=10.232.0.2
URL=https://$NODE:7433
APID=
cleanup() {
    [[ -n $APID ]] && kill -KILL "$APID" 2>/dev/null
    ip link del "$HOSTIF" 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
}
trap cleanup EXIT

ip netns add "$NS"
ip link add "$HOSTIF" type veth peer name eth0 netns "$NS"
ip addr add "$CTL/24" dev "$HOSTIF"
ip link set "$HOSTIF" up
ip -n "$NS" addr add "$NODE/24" dev eth0
ip -n "$NS" link set eth0 up
ip -n "$NS" link set lo up

head -c 32 /dev/urandom | base64 | tr -d '/+=' >"$T/token"
chmod 600 "$T/token"
TOKEN=$(cat "$T/token")
# TLS, as the agent requires off loopback: a CA made here signs the node's certificate.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
    -subj "/CN=chaos vm test CA" >/dev/null 2>&1 || fail "openssl: CA"
openssl req -newkey rsa:2048 -nodes -keyout "$T/node.key" -out "$T/node.csr" \
    -subj "/CN=$NODE" >/dev/null 2>&1 || fail "openssl: CSR"
printf 'subjectAltName=IP:%s\n' "$NODE" >"$T/node.ext"
openssl x509 -req -in "$T/node.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -out "$T/node.pem" -days 2 -extfile "$T/node.ext" >/dev/null 2>&1 || fail "openssl: sign"
echo "{\"listen\": \"$NODE:7433\", \"token_file\": \"$T/token\", \"journal\": \"$T/agent/journal.jsonl\", \"lease\": \"3s\", \"tls\": {\"cert\": \"$T/node.pem\", \"key\": \"$T/node.key\"}}" >"$T/agent.json"

wait_for() { # SECONDS COMMAND...: polls every 50 ms
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.05
    done
}
healthy() { curl -sf --cacert "$T/ca.pem" "$URL/healthz" -o /dev/null; }
start_agent() {
    ip netns exec "$NS" "$AGENT" --config "$T/agent.json" 2>>"$T/agent.log" &
    APID=$!
    wait_for 20 healthy || { cat "$T/agent.log"; fail "the agent did not come up"; }
}
stop_agent() { # SIGNAL
    kill -"$1" "$APID"
    wait "$APID" 2>/dev/null || true
    APID=
}
api() { # METHOD PATH [BODY]: body in $T/body, status in CODE
    CODE=$(curl -s --cacert "$T/ca.pem" -o "$T/body" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $TOKEN" \
        ${3:+-d "$3"} "$URL$2")
}
state() {
    ip netns exec "$NS" tc -j qdisc show dev eth0
    ip netns exec "$NS" tc -j filter show dev eth0
    ip -n "$NS" -o link show | awk -F': ' '{print $2}'
}
has_netem() { ip netns exec "$NS" tc qdisc show dev eth0 | grep -q netem; }
restored() { [[ $(state) == "$BEFORE" ]]; }
FAULT_PARAMS='"target": {"interface": "eth0", "dst": "'$CTL'", "protocol": "udp"}, "params": {"delay": "50ms"}'
fault_body() { # DURATION [CONTROLLER]
    echo "{\"name\": \"delay udp\", \"kind\": \"network\", $FAULT_PARAMS, \"duration\": \"$1\"${2:+, \"controller\": \"$2\"}}"
}
apply() { # DURATION [CONTROLLER]: the fault's id in ID
    api POST /v1/faults "$(fault_body "$@")"
    [[ $CODE == 201 ]] || fail "apply: $CODE $(cat "$T/body")"
    has_netem || fail "201, but no netem on the node's eth0: $(cat "$T/body") $(state)"
    ID=$(sed -E 's/^\{"id":"([^"]+)".*/\1/' "$T/body")
}
reverted_because() { # TEXT: the fault ID's "reverted" event says TEXT
    api GET "/v1/faults/$ID"
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); sys.exit(0 if any(e["event"] == "reverted" and sys.argv[2] in e["detail"] for e in r["events"]) else 1)' "$T/body" "$1" ||
        fail "fault $ID: no reverted event saying '$1': $(cat "$T/body")"
}
expect_restored() { # SECONDS WHAT
    wait_for "$1" restored || fail "$2: the node's tc state was not restored: before: $BEFORE after: $(state)"
    ok "$2: netem applied, then the node's tc state is as before"
}

start_agent
BEFORE=$(state)
has_netem && fail "netem on eth0 before any fault"

# 1. The duration ends, no controller.
apply 2s
expect_restored 10 "the duration ended with no controller"
reverted_because "its duration 2s ended"

# 2. A lease not renewed.
apply 60s ctl-vm
expect_restored 10 "the lease of controller ctl-vm expired"
reverted_because "lease of controller 'ctl-vm' expired"

# 3. SIGKILL mid-fault: the netem stays until the agent is back.
apply 60s
stop_agent KILL
sleep 0.5
has_netem || fail "after SIGKILL the netem went without recovery (nothing to prove)"
start_agent
expect_restored 10 "agent SIGKILLed mid-fault, restarted: journal recovery"

# 4. SIGTERM reverts before the agent exits.
apply 60s
stop_agent TERM
restored || fail "SIGTERM: the agent exited with the netem in place: $(state)"
ok "SIGTERM: reverted before the agent exited"
start_agent

# 5. Halt: reverted at once, new faults refused until cleared.
apply 60s
api POST /v1/halt
[[ $CODE == 200 ]] || fail "halt: $CODE $(cat "$T/body")"
restored || fail "halt: the node's tc state is not as before: $(state)"
api POST /v1/faults "$(fault_body 5s)"
REFUSED=$CODE
[[ $REFUSED == 409 ]] && grep -q "until DELETE /v1/halt" "$T/body" ||
    fail "a fault while halted: $REFUSED $(cat "$T/body"), wanted 409 naming DELETE /v1/halt"
restored || fail "a refused fault changed tc state: $(state)"
api DELETE /v1/halt
[[ $CODE == 200 ]] || fail "clear halt: $CODE $(cat "$T/body")"
ok "halt: reverted at once, new faults refused ($REFUSED) until DELETE /v1/halt"

# 6-7. chaos run drives the agent through an inventory.
cat >"$T/inv.json" <<JSON
{"agents": [{"name": "vmnode", "url": "$URL", "bearer_token_file": "$T/token", "timeout": "5s",
             "tls": {"ca_file": "$T/ca.pem"},
             "labels": {"role": "db"}}]}
JSON
cat >"$T/hold.json" <<JSON
{"version": 1, "name": "vm-fleet-hold",
 "faults": [{"name": "delay the node", "kind": "network", "agent": "role=db", "duration": "60s",
             $FAULT_PARAMS}]}
JSON
run_bg() { # NAME
    "$CHAOS" run "$T/hold.json" --inventory "$T/inv.json" --no-progress >"$T/$1.out" 2>&1 &
    CPID=$!
    wait_for 20 has_netem || { cat "$T/$1.out"; fail "$1: the delay never appeared on the node"; }
}
run_bg ctlkill
sleep 4 # past one lease period: the renewals (every 1 s) keep the fault
has_netem || { cat "$T/ctlkill.out"; fail "the fault went while the controller lived"; }
kill -KILL "$CPID"
wait "$CPID" 2>/dev/null || true
expect_restored 10 "chaos run SIGKILLed: reverted by lease"

run_bg cut
ip link set "$HOSTIF" down
rc=0
wait "$CPID" || rc=$?
cat "$T/cut.out"
[[ $rc == 3 ]] || fail "network cut: chaos run exited $rc, wanted 3"
grep -q "agent 'vmnode'" "$T/cut.out" || fail "network cut: the abort does not name the agent"
expect_restored 10 "the link to the agent cut: chaos run exit 3 naming it, reverted by lease"
ip link set "$HOSTIF" up

stop_agent TERM
restored || fail "the node's tc state at the end: $(state)"
echo "ok: every agent safety net took the netem down"
