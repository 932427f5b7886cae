#!/usr/bin/env bash
# The shipped demo scenarios against the shipped demo system, as the README's
# first command runs them: retries cover killed workers (exit 0); pausing
# every worker fails the expectation (exit 1) and says which and why. Both
# JUnit reports validate against the common JUnit XML schema, and the JSON
# reports carry every check's samples summary.
source "$(dirname "$0")/lib.bash"

# Own ports, so nothing else on 8080 is probed; the scenarios are copied with it.
port=$((20000 + $$ % 20000))
export DEMO_PORT=$port DEMO_WORKER_BASE_PORT=$((port + 1))
xsd="$CHAOS_SOURCE/tests/schemas/junit.xsd"

run_demo() { # NAME: runs scenarios/NAME.json on the demo; rc in $rc, output in $T/NAME.out
    sed "s/127\.0\.0\.1:8080/127.0.0.1:$port/g" "$CHAOS_SOURCE/scenarios/$1.json" >"$T/$1.json"
    rc=0
    "$CHAOS_SOURCE/demo/run-demo.sh" "$CHAOS_BUILD" "$T/$1.json" --no-progress \
        --report-json "$T/$1.report.json" --junit "$T/$1.xml" >"$T/$1.out" 2>&1 || rc=$?
    cat "$T/$1.out"
    xmllint --noout --schema "$xsd" "$T/$1.xml" || fail "$1: JUnit report does not validate"
    [[ $(json_get "$T/$1.report.json" 'all(c["samples"]["samples"] > 0 for c in r["checks"])') == True ]] ||
        fail "$1: a check has no samples summary"
    [[ -z $(pgrep -f "demo-worker --port $DEMO_WORKER_BASE_PORT\$" || true) ]] ||
        fail "$1: demo workers left running"
}

run_demo demo-retries-hold
[[ $rc == 0 ]] || fail "demo-retries-hold exited $rc, wanted 0"
grep -q '^PASSED' "$T/demo-retries-hold.out" || fail "no PASSED verdict"
[[ $(json_get "$T/demo-retries-hold.report.json" '[e["event"] for e in r["faults"][0]["events"]]') == \
    "['applied', 'stepped', 'stepped', 'stepped', 'finished']" ]] ||
    fail "the kill did not run 4 rounds: $(json_get "$T/demo-retries-hold.report.json" 'r["faults"][0]["events"]')"
[[ $(json_get "$T/demo-retries-hold.report.json" 'r["checks"][1]["samples"]["samples"] >= 25') == True ]] ||
    fail "too few samples during the kills"
grep -q 'failures="0"' "$T/demo-retries-hold.xml" || fail "JUnit reports failures for a passing run"
ok "retries hold: exit 0, 4 kill rounds, JUnit and JSON reports complete"

run_demo demo-all-workers-paused
[[ $rc == 1 ]] || fail "demo-all-workers-paused exited $rc, wanted 1"
grep -q "^FAILED: 1 of " "$T/demo-all-workers-paused.out" || fail "no FAILED verdict line"
grep -Eq "FAIL expect 'checkout during pause': success_ratio 0(\.[0-9]+)? .*wanted >= 0.99 during 'pause all workers'" \
    "$T/demo-all-workers-paused.out" || fail "the failed expectation is not named with its numbers"
[[ $(json_get "$T/demo-all-workers-paused.report.json" '[(c["name"], c["phase"], c["verdict"]) for c in r["checks"] if c["section"] != "abort_when"]') == \
    "[('checkout ok', 'before', 'passed'), ('checkout during pause', 'faults', 'failed'), ('checkout recovers', 'faults', 'passed'), ('checkout ok', 'after', 'passed')]" ]] ||
    fail "verdicts: $(json_get "$T/demo-all-workers-paused.report.json" '[(c["name"], c["verdict"], c["reason"]) for c in r["checks"]]')"
grep -q '<failure message="success_ratio' "$T/demo-all-workers-paused.xml" || fail "JUnit has no failure"
ok "all workers paused: exit 1 naming the failed expectation; workers recover"
