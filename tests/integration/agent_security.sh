#!/usr/bin/env bash
# chaos-agent's security: the bearer token (401, nothing applied), bad
# requests (400, 413), the policy (403), bad configs (nothing starts), and
# TLS with a self-signed CA made here by openssl.
source "$(dirname "$0")/lib.bash"
source "$(dirname "$0")/agent_lib.bash"

# raw_post PATH BODY_FILE [CURL_ARGS...]: POST with the token from a file.
raw_post() {
    local path=$1 file=$2
    shift 2
    CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X POST -H "Authorization: Bearer $TOKEN" \
        --data-binary "@$file" "$@" "http://127.0.0.1:$PORT$path")
}

agent_config a '"policy": {"allow": {"process_names": ["agent-ok"]}, "max_duration": "30s", "max_loss": "50%"}'
start_agent a
start_victim agent-s1

# 401: no token, a wrong token, a token with one byte more or less; nothing applied.
for auth in "" "Authorization: Bearer wrong" "Authorization: Bearer ${TOKEN}x" \
    "Authorization: Bearer ${TOKEN%?}" "Authorization: $TOKEN"; do
    CODE=$(curl -s -o "$T/body" -w '%{http_code}' -X POST ${auth:+-H "$auth"} \
        -d "$(pause_body "$VPID" 5s)" "http://127.0.0.1:$PORT/v1/faults")
    [[ $CODE == 401 && $(cat "$T/body") == '{"error":"unauthorized"}' ]] || fail "auth '$auth': $CODE $(cat "$T/body")"
done
for ep in /v1/faults /metrics; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT$ep") == 401 ]] || fail "GET $ep without a token"
done
for m in POST DELETE; do
    [[ $(curl -s -o /dev/null -w '%{http_code}' -X $m "http://127.0.0.1:$PORT/v1/halt") == 401 ]] || fail "$m /v1/halt without a token"
done
sleep 0.2
is_running "$VPID" || fail "a request without the token paused the process"
api GET /v1/faults
[[ $(jfield 'len(r["faults"])') == 0 ]] || fail "a fault exists after 401s"
curl -s "http://127.0.0.1:$PORT/healthz" | grep -q '"status":"ok"' || fail "healthz needs no token"
ok "401 without or with a wrong token, and nothing changes"

# 400: an unknown field (named), malformed JSON, a bad spec; 413: a body over 64 KiB.
api POST /v1/faults '{"name": "x", "kind": "process", "target": {"pid": 2}, "params": {"action": "pause"}, "duration": "1s", "extra": 1}'
[[ $CODE == 400 ]] && jfield 'r["error"]' | grep -q '^extra: unknown field' || fail "unknown field: $CODE $(cat "$T/body")"
api POST /v1/faults '{"name": "x", "kind": '
[[ $CODE == 400 ]] && jfield 'r["error"]' | grep -q '^body: invalid JSON' || fail "malformed: $CODE $(cat "$T/body")"
api POST /v1/faults "{\"name\": \"x\", \"kind\": \"process\", \"target\": {\"pid\": $VPID}, \"params\": {\"action\": \"pause\"}}"
[[ $CODE == 400 ]] && jfield 'r["error"]' | grep -q '^fault: duration: required' || fail "no duration: $CODE $(cat "$T/body")"
api POST /v1/lease '{"controller": "a b"}'
[[ $CODE == 400 ]] && jfield 'r["error"]' | grep -q '^controller: ' || fail "bad controller id: $CODE $(cat "$T/body")"
python3 -c 'print("{\"name\": \"" + "x" * 70000 + "\"}")' >"$T/big.json"
raw_post /v1/faults "$T/big.json"
[[ $CODE == 413 ]] || fail "a 70 kB body: $CODE"
raw_post /v1/faults "$T/big.json" -H "Transfer-Encoding: chunked"
[[ $CODE == 413 ]] || fail "a 70 kB chunked body: $CODE"
api GET /v1/faults/nope
[[ $CODE == 404 ]] || fail "unknown id: $CODE"
ok "400 on unknown fields, malformed JSON and bad specs; 413 over 64 KiB"

# 403: the policy (a name not allowed, a duration above max_duration, PID 1 / the agent).
api POST /v1/faults "$(pause_body "$VPID" 5s)"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.pid: process $VPID, named 'agent-s1' is not in the policy's allow.process_names (agent-ok)" ||
    fail "name not allowed: $CODE $(cat "$T/body")"
start_victim agent-ok
api POST /v1/faults "$(pause_body "$VPID" 1m)"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "duration: 1m is above the policy's max_duration 30s" ||
    fail "max_duration: $CODE $(cat "$T/body")"
api POST /v1/faults "$(pause_body "$APID" 5s)"
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "the agent itself" || fail "the agent as target: $CODE $(cat "$T/body")"
api POST /v1/faults '{"name": "cut", "kind": "network", "target": {"interface": "lo"}, "params": {"partition": true}, "duration": "5s"}'
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "params.partition: 100% loss is above the policy's max_loss 50%" ||
    fail "max_loss: $CODE $(cat "$T/body")"
api POST /v1/faults '{"name": "cmd", "kind": "syscall", "target": {"command": ["/bin/true"]}, "params": {"syscalls": ["write"], "errno": "EIO"}, "duration": "5s"}'
[[ $CODE == 403 || $CODE == 400 ]] && jfield 'r["error"]' | grep -qE "target.command: the agent never launches|kind: unknown" ||
    fail "a command to launch: $CODE $(cat "$T/body")"
is_running "$VPID" || fail "a refused fault paused the process"
api POST /v1/faults "$(pause_body "$VPID" 5s)"
[[ $CODE == 201 ]] || fail "an allowed fault: $CODE $(cat "$T/body")"
wait_until 2 is_stopped "$VPID"
kill -TERM "$APID"
wait "$APID" || fail "the agent exited $? after SIGTERM"
is_running "$VPID" || fail "SIGTERM left the process paused"
ok "403 on what the policy forbids; what it allows applies"

# Deny lists, and selectors the policy cannot judge before the apply.
agent_config d '"policy": {"deny": {"process_names": ["agent-deny"]}, "allow": {"interfaces": ["lo"]}}'
start_agent d
start_victim agent-deny
api POST /v1/faults '{"name": "n", "kind": "process", "target": {"name": "agent-deny"}, "params": {"action": "pause"}, "duration": "5s"}'
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.name: 'agent-deny' is denied by the policy's deny.process_names (agent-deny)" ||
    fail "deny.process_names: $CODE $(cat "$T/body")"
api POST /v1/faults '{"name": "c", "kind": "process", "target": {"cmdline": "agent-deny"}, "params": {"action": "pause"}, "duration": "5s"}'
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.cmdline: the processes it matches cannot be checked" ||
    fail "cmdline under a deny list: $CODE $(cat "$T/body")"
api POST /v1/faults '{"name": "d", "kind": "network", "target": {"interface": "eth0"}, "params": {"delay": "10ms"}, "duration": "5s"}'
[[ $CODE == 403 ]] && jfield 'r["error"]' | grep -q "target.interface: 'eth0' is not in the policy's allow.interfaces (lo)" ||
    fail "allow.interfaces: $CODE $(cat "$T/body")"
is_running "$VPID" || fail "a denied fault paused the process"
kill -TERM "$APID"
wait "$APID" || fail "the agent exited $? after SIGTERM"
ok "403 on deny lists and on selectors the policy cannot judge"

# Bad configs: nothing starts, the error names the field.
bad_config() { # bad_config EXPECTED_MESSAGE JSON
    echo "$2" >"$T/bad.json"
    rc=0
    timeout 5 "$AGENT" --config "$T/bad.json" 2>"$T/bad.log" || rc=$?
    [[ $rc == 2 ]] && grep -qF "$1" "$T/bad.log" || fail "config $2: exit $rc: $(cat "$T/bad.log")"
}
bad_config "config: lease: " "{\"token_file\": \"$T/token\", \"lease\": \"soon\"}"
bad_config "config: policy.allow.users: unknown field" "{\"token_file\": \"$T/token\", \"policy\": {\"allow\": {\"users\": []}}}"
bad_config "config: policy.max_loss: " "{\"token_file\": \"$T/token\", \"policy\": {\"max_loss\": \"150%\"}}"
bad_config "config: token_file: required" "{}"
bad_config "config: listen: 0.0.0.0:7433 is not a loopback address" "{\"token_file\": \"$T/token\", \"listen\": \"0.0.0.0:7433\"}"
cp "$T/token" "$T/open-token"
chmod 644 "$T/open-token"
bad_config "config: token_file: $T/open-token is world-readable" "{\"token_file\": \"$T/open-token\"}"
ok "a bad config starts nothing and names the field"

# TLS: a CA and a server certificate for 127.0.0.1, made here.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T/ca.key" -out "$T/ca.pem" -days 2 \
    -subj "/CN=chaos test CA" >/dev/null 2>&1 || fail "openssl: CA"
openssl req -newkey rsa:2048 -nodes -keyout "$T/srv.key" -out "$T/srv.csr" -subj "/CN=127.0.0.1" \
    >/dev/null 2>&1 || fail "openssl: CSR"
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
openssl x509 -req -in "$T/srv.csr" -CA "$T/ca.pem" -CAkey "$T/ca.key" -CAcreateserial \
    -out "$T/srv.pem" -days 2 -extfile "$T/san.ext" >/dev/null 2>&1 || fail "openssl: sign"
chmod 600 "$T/srv.key"
agent_config tls "\"tls\": {\"cert\": \"$T/srv.pem\", \"key\": \"$T/srv.key\"}"
"$AGENT" --config "$T/tls.json" 2>>"$T/tls.log" &
APID=$!
OWNED_PIDS+=("$APID")
wait_until 5 curl -sf --cacert "$T/ca.pem" "https://127.0.0.1:$PORT/healthz" -o /dev/null
CODE=$(curl -s -o "$T/body" -w '%{http_code}' --cacert "$T/ca.pem" -H "Authorization: Bearer $TOKEN" \
    "https://127.0.0.1:$PORT/v1/faults")
[[ $CODE == 200 ]] || fail "https with the CA: $CODE"
if curl -s -o /dev/null "https://127.0.0.1:$PORT/healthz"; then fail "https without the CA succeeded"; fi
if curl -s -o /dev/null "http://127.0.0.1:$PORT/healthz"; then fail "plain http on the TLS port succeeded"; fi
ok "TLS: verified with the test CA, refused without it"

# A client that sends its ClientHello and then stalls must not pin the agent:
# libmicrohttpd 0.9.75 asks to be run again at once for as long as such a
# handshake waits (agent_http.c, zero_timeout_ms); unchecked, the agent spun
# at 100% of a core (~100 ticks a second) until the connection timed out.
python3 - "$PORT" "$T/stalled" <<'PY' &
import socket, ssl, sys, time
ctx = ssl.create_default_context()
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
raw = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
inb, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inb, outb, server_side=False)
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
raw.sendall(outb.read())  # the ClientHello; the server's reply is never read
open(sys.argv[2], "w").close()
time.sleep(5)
PY
STALLER=$!
OWNED_PIDS+=("$STALLER")
wait_until 5 test -e "$T/stalled"
sleep 0.5 # the server's flight has gone out; the handshake now waits
cpu_ticks() { awk '{print $14 + $15}' "/proc/$APID/stat"; }
c0=$(cpu_ticks)
sleep 2
c1=$(cpu_ticks)
((c1 - c0 < 40)) || fail "a stalled TLS handshake made the agent burn $((c1 - c0)) CPU ticks in 2 s"
code=$(curl -s --cacert "$T/ca.pem" -o /dev/null -w '%{http_code}' "https://127.0.0.1:$PORT/healthz")
[[ $code == 200 ]] || fail "healthz during a stalled handshake: $code"
kill "$STALLER" 2>/dev/null || true
ok "a stalled TLS handshake: the agent idles ($((c1 - c0)) ticks in 2 s) and still serves"
