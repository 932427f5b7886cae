#!/usr/bin/env bash
# HTTP probes verify TLS by default: a self-signed server fails the steady
# state (exit 1, no fault injected) with the certificate error named; with
# "tls_verify": false the same scenario passes. Traffic stays on 127.0.0.1.
source "$(dirname "$0")/lib.bash"

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
    -keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1 || fail "openssl could not make a certificate"
port=$((30000 + $$ % 20000))
openssl s_server -accept "127.0.0.1:$port" -www -cert "$T/cert.pem" -key "$T/key.pem" -quiet \
    >/dev/null 2>&1 </dev/null &
OWNED_PIDS+=("$!")
wait_until 10 curl -ks -o /dev/null "https://127.0.0.1:$port/"

start_victim ct-tls-$$
https_scenario() { # FILE TLS_VERIFY
    cat >"$1" <<JSON
{"version": 1, "name": "tls",
 "steady_state": [{"name": "tls ok", "every": "100ms", "for": "300ms",
   "probe": {"http": {"url": "https://127.0.0.1:$port/", "tls_verify": $2}}}],
 "faults": [{"name": "pause victim", "kind": "process", "duration": "100ms",
   "target": {"pid": $VPID}, "params": {"action": "pause"}}]}
JSON
}

https_scenario "$T/verify.json" true
rc=0
"$CHAOS" run "$T/verify.json" --report-json "$T/r1.json" >"$T/o1" 2>&1 || rc=$?
cat "$T/o1"
[[ $rc == 1 ]] || fail "a self-signed server passed with verification on (exit $rc)"
grep -qi "certificate" "$T/o1" || fail "the failure does not name the certificate problem"
[[ $(json_get "$T/r1.json" 'r["faults"][0]["outcome"]') == not_reached ]] ||
    fail "a fault was injected although the steady state failed"
ok "tls_verify defaults to on: self-signed certificate refused, nothing injected"

https_scenario "$T/noverify.json" false
"$CHAOS" run "$T/noverify.json" >"$T/o2" 2>&1 || fail "tls_verify false still failed: $(cat "$T/o2")"
ok "tls_verify false accepts the self-signed server"
