#!/usr/bin/env bash
# Every round of a repeated action is reported, and a round that found no
# target does not let a "during" check pass silently (issue 13): by default
# the run stops (exit 3); with "on_round_failure": "continue" it goes on and
# the check's verdict says which rounds failed. A run without checks says
# that nothing was checked.
source "$(dirname "$0")/lib.bash"

kill_scenario() { # FILE PID EXTRA_FAULT_FIELDS
    cat >"$1" <<JSON
{"version": 1, "name": "kill-thrice",
 "faults": [{"name": "kill", "kind": "process", "target": {"pid": $2} $3,
             "params": {"action": "kill", "every": "300ms", "count": 3}}],
 "expect": [{"name": "still fine", "during": "kill", "every": "100ms",
             "probe": {"command": {"argv": ["true"]}}}]}
JSON
}

# Default: round 2 finds its target dead (round 1 killed it): abort, exit 3.
start_victim ct-rnd-$$
kill_scenario "$T/s.json" "$VPID" ""
rc=0
"$CHAOS" run "$T/s.json" --report-json "$T/r.json" --junit "$T/j.xml" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[[ $rc == 3 ]] || fail "a failed round: exit $rc, wanted 3"
grep -q "ABORTED: fault 'kill' round 2 failed: target matched no process" "$T/out" ||
    fail "the verdict does not say round 2 failed"
grep -q '"on_round_failure": "continue"' "$T/out" || fail "the verdict does not say how to go on"
[[ $(json_get "$T/r.json" '[(x["round"], x["ok"]) for x in r["faults"][0]["rounds"]]') == "[(1, True), (2, False)]" ]] ||
    fail "JSON rounds: $(json_get "$T/r.json" 'r["faults"][0]["rounds"]')"
grep -q 'name="kill round 2" time="0">' "$T/j.xml" && grep -q 'type="round_failed"' "$T/j.xml" ||
    fail "JUnit does not show round 2 failing: $(cat "$T/j.xml")"
[[ $(json_get "$T/r.json" '[c["verdict"] for c in r["checks"]]') != "['passed']" ]] ||
    fail "the during check passed over a fault that hit nothing"
ok "a round without a target aborts the run by default and is in every report"

# "continue": every round runs and is reported; the check says what failed.
start_victim ct-rnd2-$$
kill_scenario "$T/s2.json" "$VPID" ', "on_round_failure": "continue"'
rc=0
"$CHAOS" run "$T/s2.json" --report-json "$T/r2.json" --junit "$T/j2.xml" >"$T/out2" 2>&1 || rc=$?
cat "$T/out2"
[[ $rc == 0 ]] || fail "on_round_failure continue: exit $rc, wanted 0"
grep -q "^    round 3 FAILED: target matched no process" "$T/out2" || fail "text does not list round 3"
grep -q "note: 2 of 3 rounds of 'kill' failed to act" "$T/out2" || fail "the check does not say rounds failed"
[[ $(json_get "$T/r2.json" 'r["faults"][0]["rounds_failed"]') == 2 ]] || fail "JSON rounds_failed"
[[ $(grep -c 'type="round_failed"' "$T/j2.xml") == 2 ]] || fail "JUnit round errors: $(cat "$T/j2.xml")"
ok "on_round_failure continue: all rounds reported, the check notes the failed ones"

# No checks: validate warns; the verdict says nothing was checked (exit 0).
start_victim ct-rnd3-$$
pause_scenario "$T/s3.json" "$VPID" 200ms
"$CHAOS" validate "$T/s3.json" >"$T/v" 2>&1 || fail "validate exited $?"
grep -q "warning: no steady_state or expect checks" "$T/v" || fail "validate did not warn: $(cat "$T/v")"
"$CHAOS" run "$T/s3.json" --report-json "$T/r3.json" >"$T/out3" 2>&1 || fail "no-check run exited $?"
grep -q "warning: no steady_state or expect checks" "$T/out3" || fail "run did not warn: $(cat "$T/out3")"
grep -q "^NOTHING CHECKED: the faults ran and were reverted" "$T/out3" || fail "verdict: $(cat "$T/out3")"
! grep -q "PASSED: all 0 checks held" "$T/out3" || fail "still a vacuous PASSED"
[[ $(json_get "$T/r3.json" 'r["checks_judged"]') == 0 ]] || fail "JSON checks_judged"
ok "a run without checks says nothing was checked"
