#!/usr/bin/env bash
# A paused process is stopped during the fault (the scenario's own expectation
# proves it) and running again after the run ends; the report says so.
source "$(dirname "$0")/lib.bash"

start_victim ct-pause-$$
state_probe="grep -q '^State:[[:space:]]*T' /proc/$VPID/status"
pause_scenario "$T/s.json" "$VPID" 1500ms "
  \"steady_state\": [
    {\"name\": \"victim runs\", \"every\": \"100ms\", \"for\": \"300ms\",
     \"probe\": {\"command\": {\"argv\": [\"sh\", \"-c\", \"! $state_probe\"]}}}
  ],
  \"expect\": [
    {\"name\": \"victim stopped\", \"during\": \"pause victim\", \"every\": \"100ms\",
     \"probe\": {\"command\": {\"argv\": [\"sh\", \"-c\", \"$state_probe\"]}},
     \"expect\": {\"success_ratio\": \">= 0.9\"}}
  ]"

rc=0
"$CHAOS" run "$T/s.json" --report-json "$T/r.json" --junit "$T/j.xml" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[[ $rc == 0 ]] || fail "chaos run exited $rc, wanted 0"
is_running "$VPID" || fail "victim is $(proc_state "$VPID") after the run, wanted running"
grep -q '^PASSED' "$T/out" || fail "no PASSED verdict printed"

[[ $(json_get "$T/r.json" 'r["faults"][0]["outcome"]') == reverted ]] || fail "fault outcome not reverted"
[[ $(json_get "$T/r.json" 'r["faults"][0]["applied_ms"] is not None and r["faults"][0]["ended_ms"] - r["faults"][0]["applied_ms"] >= 1400') == True ]] ||
    fail "the pause did not last its 1500ms duration"
[[ $(json_get "$T/r.json" '[c["verdict"] for c in r["checks"]]') == "['passed', 'passed', 'passed']" ]] ||
    fail "checks: $(json_get "$T/r.json" '[(c["name"], c["verdict"], c["reason"]) for c in r["checks"]]')"
[[ $(json_get "$T/r.json" 'r["checks"][1]["samples"]["samples"] >= 10') == True ]] ||
    fail "expected >= 10 samples during the 1.5s pause at 100ms"
[[ -z $(ls -A "$CHAOS_STATE_DIR/journal" 2>/dev/null) ]] || fail "journal left behind after a clean run"
ok "pause applied, observed, reverted; report and journal as expected"

# A process someone else stopped before the pause is left exactly as it was.
name=ct-pst-$$
start_victim "$name"
running=$VPID
"$T/$name" 600 >/dev/null 2>&1 &
stopped=$!
OWNED_PIDS+=("$stopped")
wait_until 5 has_name "$stopped" "$name" # stop it after exec, not as the forking shell
kill -STOP "$stopped"
wait_until 5 is_stopped "$stopped"
cat >"$T/s2.json" <<JSON
{"version": 1, "name": "pause-by-name",
 "faults": [{"name": "pause both", "kind": "process", "duration": "500ms",
             "target": {"name": "$name"}, "params": {"action": "pause"}}]}
JSON
"$CHAOS" run "$T/s2.json" >"$T/out2" 2>&1 || fail "pause-by-name exited $?: $(cat "$T/out2")"
cat "$T/out2"
grep -q "paused 1 process: $running ($name) (1 stopped already, left alone)" "$T/out2" ||
    fail "the description does not say the stopped process was left alone"
is_running "$running" || fail "the running victim was not resumed"
is_stopped "$stopped" || fail "the pause resumed a process someone else had stopped"
ok "a process stopped by someone else stays stopped"

# An expectation with neither during nor after samples from the first fault's
# start (docs/scenario-format.md), not from the start of the fault phase.
start_victim ct-pwin-$$
cat >"$T/s3.json" <<JSON
{"version": 1, "name": "whole-window",
 "faults": [{"name": "late pause", "kind": "process", "at": "600ms", "duration": "400ms",
             "target": {"pid": $VPID}, "params": {"action": "pause"}}],
 "expect": [{"name": "throughout", "every": "50ms", "probe": {"command": {"argv": ["true"]}}}]}
JSON
"$CHAOS" run "$T/s3.json" --report-json "$T/r3.json" >"$T/out3" 2>&1 || fail "whole-window run exited $?: $(cat "$T/out3")"
[[ $(json_get "$T/r3.json" 'r["checks"][0]["started_ms"] >= r["faults"][0]["applied_ms"]') == True ]] ||
    fail "the check started at $(json_get "$T/r3.json" 'r["checks"][0]["started_ms"]')ms, before the fault ($(json_get "$T/r3.json" 'r["faults"][0]["applied_ms"]')ms)"
ok "a check without during or after starts with the first fault"
