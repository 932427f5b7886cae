#!/usr/bin/env bash
# The worked verification examples (scenarios/verify-*.json) as a user runs
# them, through demo/run-verify.sh: the demo system with circuit breakers, a
# real Prometheus and a real Alertmanager (Debian's), on ports of our own.
# Each must hold, and its report must carry the evidence the docs promise:
# the time the alert took to fire and to resolve, the budget burned, the
# silence created and removed. The breaker example run against a front
# without breakers must fail, on the breaker checks: the verdicts are not
# vacuous.
source "$(dirname "$0")/lib.bash"

for b in prometheus prometheus-alertmanager curl; do
    command -v "$b" >/dev/null || fail "$b is not installed (dev.sh installs it)"
done
base=$(free_ports 5)
export DEMO_PORT=$base DEMO_WORKER_BASE_PORT=$((base + 1)) PROM_PORT=$((base + 3)) AM_PORT=$((base + 4))

run_example() { # NAME: rc in $rc, report in $T/NAME.report.json
    sed -e "s/127\.0\.0\.1:8080/127.0.0.1:$DEMO_PORT/g" -e "s/127\.0\.0\.1:9090/127.0.0.1:$PROM_PORT/g" \
        -e "s/127\.0\.0\.1:9093/127.0.0.1:$AM_PORT/g" "$CHAOS_SOURCE/scenarios/$1.json" >"$T/$1.json"
    rc=0
    "$CHAOS_SOURCE/demo/run-verify.sh" "$CHAOS_BUILD" "$T/$1.json" --no-progress \
        --report-json "$T/$1.report.json" --junit "$T/$1.xml" >"$T/$1.out" 2>&1 || rc=$?
    cat "$T/$1.out"
    [[ -z $(pgrep -f -- "--web.listen-address=127.0.0.1:$PROM_PORT" || true) ]] || fail "$1: prometheus left running"
    [[ -z $(pgrep -f -- "--web.listen-address=127.0.0.1:$AM_PORT" || true) ]] || fail "$1: alertmanager left running"
    [[ -z $(pgrep -f "demo-worker --port $DEMO_WORKER_BASE_PORT\$" || true) ]] || fail "$1: demo workers left running"
}
must_hold() {
    run_example "$1"
    [[ $rc == 0 ]] || fail "$1 exited $rc, wanted 0"
    [[ $(json_get "$T/$1.report.json" 'all(c["verdict"] == "passed" and c["samples"]["samples"] > 0 for c in r["checks"])') == True ]] ||
        fail "$1: a check did not pass with samples"
    xmllint --noout --schema "$CHAOS_SOURCE/tests/schemas/junit.xsd" "$T/$1.xml" || fail "$1: JUnit report does not validate"
}
took() { json_get "$T/$1.report.json" "[c['samples'].get('took_ms') for c in r['checks'] if c['name'] == '$2'][0]"; }

must_hold verify-retry-one-dead-upstream
ok "retry example held: $(json_get "$T/verify-retry-one-dead-upstream.report.json" '[c["reason"] for c in r["checks"] if c["name"] == "every checkout succeeds"][0]')"

must_hold verify-breaker-opens-and-closes
opened=$(took verify-breaker-opens-and-closes "breaker opens within 5s")
closed=$(took verify-breaker-opens-and-closes "breaker closes within 6s")
[[ $opened =~ ^[0-9]+$ && $closed =~ ^[0-9]+$ ]] || fail "breaker example: no took_ms ($opened, $closed)"
ok "breaker example held: opened after $opened ms, closed $closed ms after the worker was back"

must_hold verify-alert-fires-and-resolves
R=$T/verify-alert-fires-and-resolves.report.json
fired=$(took verify-alert-fires-and-resolves "alertmanager has it within 11s")
resolved=$(took verify-alert-fires-and-resolves "alertmanager resolves it within 15s")
[[ $fired =~ ^[0-9]+$ && $resolved =~ ^[0-9]+$ ]] || fail "alert example: no took_ms ($fired, $resolved)"
[[ $(json_get "$R" '[(s["created"], s["removed"]) for s in r["silences"]]') == "[(True, True)]" ]] ||
    fail "alert example: the silence was not created and removed: $(json_get "$R" 'r["silences"]')"
grep -q "name=\"took_ms\" value=\"$fired\"" "$T/verify-alert-fires-and-resolves.xml" ||
    fail "the JUnit report lacks the alert's took_ms property"
ok "alert example held: fired in Alertmanager after $fired ms, resolved $resolved ms after the fault; silence created and removed"

must_hold verify-error-budget-of-a-game-day
burned=$(json_get "$T/verify-error-budget-of-a-game-day.report.json" '[c["samples"]["budget"]["burned"] for c in r["checks"] if c["name"] == "checkout error budget"][0]')
python3 -c "import sys; b = float(sys.argv[1]); sys.exit(0 if 0 < b <= 0.005 else 1)" "$burned" ||
    fail "budget example: burned $burned, wanted more than 0 and at most 0.5%"
grep -q 'name="budget.burned"' "$T/verify-error-budget-of-a-game-day.xml" || fail "the JUnit report lacks budget.burned"
ok "budget example held: the game day burned $burned of the budget (allowed 0.005)"

# Not vacuous: without breakers the breaker example fails on its breaker checks.
DEMO_FRONT_ARGS="--breaker-failures 0" run_example verify-breaker-opens-and-closes
[[ $rc == 1 ]] || fail "breaker example without breakers exited $rc, wanted 1"
verdict() { json_get "$T/verify-breaker-opens-and-closes.report.json" "[c['verdict'] for c in r['checks'] if c['name'] == '$1'][0]"; }
[[ $(verdict "breaker opens within 5s") == failed ]] || fail "no breaker, yet 'breaker opens' did not fail"
[[ $(verdict "checkouts succeed and stay fast") == failed ]] || fail "no breaker, yet checkouts stayed fast"
ok "without breakers the breaker example fails: $(json_get "$T/verify-breaker-opens-and-closes.report.json" 'r["verdict"]')"
