#!/usr/bin/env bash
# Game-day silences against a real Alertmanager (Debian's
# prometheus-alertmanager on 127.0.0.1, config in the temp dir). An alert is
# posted to it directly, as Prometheus would, so the test needs no rules:
#   - a run with "silences" creates one before its fault (after the steady
#     state), with the run's id in its comment; the alert under it is
#     suppressed, and the alertmanager probe still sees it firing; at the end
#     the silence is expired and the report lists it;
#   - `chaos run` SIGKILLed mid-fault: its guard expires the silence and
#     reverts the pause; with the guard SIGKILLed too, both stay until
#     `chaos recover`;
#   - an Alertmanager that cannot be reached aborts the run (exit 3) with
#     no fault applied; a bad matcher is refused before anything starts.
source "$(dirname "$0")/lib.bash"

command -v prometheus-alertmanager >/dev/null || fail "prometheus-alertmanager is not installed (dev.sh installs it)"

base=$(free_ports 2)
AM=$base
DEAD=$((base + 1)) # nothing listens there

cat >"$T/am.yml" <<'YML'
route: {receiver: nobody, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: nobody}]
YML
prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$T/am.log" 2>&1 &
AM_PID=$!
OWNED_PIDS+=("$AM_PID")
up() { curl -fs -o /dev/null "http://127.0.0.1:$AM/-/ready"; }
wait_until 20 up

# The alert fires for 10 minutes unless re-posted (Alertmanager's own endsAt).
post_alert() {
    local ends
    ends=$(date -u -d '+10 min' +%Y-%m-%dT%H:%M:%SZ)
    curl -fs -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$AM/api/v2/alerts" \
        -d "[{\"labels\": {\"alertname\": \"GameDayErrors\", \"service\": \"demo\"}, \"endsAt\": \"$ends\"}]"
}
post_alert
alert_state() { curl -fs "http://127.0.0.1:$AM/api/v2/alerts?filter=alertname%3D%22GameDayErrors%22" |
    python3 -c 'import json,sys; a=json.load(sys.stdin); print(a[0]["status"]["state"] if a else "none")'; }
is_state() { [[ $(alert_state) == "$1" ]]; }
wait_until 10 is_state active
ok "alertmanager :$AM is up; GameDayErrors is active"

# silences_json: [[id, state, comment], ...] of every silence Alertmanager has.
silences_json() { curl -fs "http://127.0.0.1:$AM/api/v2/silences" |
    python3 -c 'import json,sys; print(json.dumps([[s["id"], s["status"]["state"], s["comment"]] for s in json.load(sys.stdin)]))'; }
active_silences() { silences_json | python3 -c 'import json,sys; print(sum(1 for s in json.load(sys.stdin) if s[1] == "active"))'; }
n_active() { [[ $(active_silences) == "$1" ]]; }

start_victim ct-sil-$$
VICTIM=$VPID

# scenario FILE DURATION AM_PORT MATCHER
scenario() {
    cat >"$1" <<JSON
{"version": 1, "name": "silenced-game-day",
 "silences": [{"name": "game day", "alertmanager": {"url": "http://127.0.0.1:$3", "timeout": "2s"},
               "matchers": ["$4", "service=demo"]}],
 "steady_state": [{"name": "alertmanager up", "every": "200ms", "for": "400ms",
    "probe": {"http": {"url": "http://127.0.0.1:$AM/-/ready"}}, "expect": {"status": [200]}}],
 "faults": [{"name": "pause victim", "kind": "process", "duration": "$2",
             "target": {"pid": $VICTIM}, "params": {"action": "pause"}}],
 "expect": [{"name": "alert seen through its silence", "during": "pause victim", "every": "250ms",
    "probe": {"alertmanager": {"url": "http://127.0.0.1:$AM", "alert": "GameDayErrors"}},
    "expect": {"firing": true}}]}
JSON
}

# 1. A run creates its silence before the fault and removes it after.
scenario "$T/good.json" 3s "$AM" "alertname=GameDayErrors"
rc=0
"$CHAOS" run "$T/good.json" --report-json "$T/good.report.json" >"$T/good.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$VICTIM"
n_active 1 || fail "no active silence while the fault is on: $(silences_json)"
is_state suppressed || fail "the alert is not suppressed under the silence: $(alert_state)"
during=$(silences_json)
wait "$RUN" || rc=$?
cat "$T/good.out"
[[ $rc == 0 ]] || fail "the silenced run did not hold (exit $rc)"
run_id=$(json_get "$T/good.report.json" 'r["run_id"]')
[[ $run_id == chaos-* ]] || fail "no run id in the report: $run_id"
grep -q "chaos run $run_id" <<<"$during" || fail "the silence's comment lacks the run id $run_id: $during"
[[ $(json_get "$T/good.report.json" '[(s["created"], s["removed"], s["error"]) for s in r["silences"]]') == "[(True, True, None)]" ]] ||
    fail "the report's silences: $(json_get "$T/good.report.json" 'r["silences"]')"
sid=$(json_get "$T/good.report.json" 'r["silences"][0]["id"]')
grep -q "\"$sid\", \"expired\"" <<<"$(silences_json)" || fail "silence $sid is not expired after the run: $(silences_json)"
wait_until 10 is_state active
[[ -z $(ls -A "$CHAOS_STATE_DIR/silences" 2>/dev/null) ]] || fail "a silence journal was left: $(ls "$CHAOS_STATE_DIR/silences")"
# The order: the silence was created after the steady state and before the fault.
order=$(json_get "$T/good.report.json" '[e["event"][:40] for e in r["timeline"] if "silence" in e["event"] or "fault phase" in e["event"] or "steady state" in e["event"]]')
python3 - "$order" <<'PY' || fail "silence created out of order: $order"
import ast, sys
ev = ast.literal_eval(sys.argv[1])
i = next(i for i, e in enumerate(ev) if "silence" in e and "created" in e)
j = next(i for i, e in enumerate(ev) if e.startswith("fault phase"))
assert i < j, ev
PY
ok "run $run_id: silence $sid active and the alert suppressed during the fault, probe still saw it firing; expired after"

# 2a. SIGKILL mid-fault: the run's guard reverts the pause and expires the
# silence at once.
scenario "$T/long.json" 30s "$AM" "alertname=GameDayErrors"
"$CHAOS" run "$T/long.json" >"$T/long.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$VICTIM"
wait_until 5 n_active 1
kill -KILL "$RUN"
wait "$RUN" 2>/dev/null || true
wait_until 10 n_active 0
wait_until 5 is_running "$VICTIM"
[[ -z $(ls -A "$CHAOS_STATE_DIR/silences") ]] || fail "the guard kept the silence journal"
ok "SIGKILLed run: its guard reverted the pause and expired the silence"

# 2b. The guard SIGKILLed too: the silence stays until `chaos recover`.
"$CHAOS" run "$T/long.json" >"$T/long.out" 2>&1 &
RUN=$!
wait_until 10 is_stopped "$VICTIM"
wait_until 5 n_active 1
GUARD=$(pgrep -P "$RUN" -x chaos-guard) || fail "no chaos-guard under the run"
kill -KILL "$GUARD" "$RUN"
wait "$RUN" 2>/dev/null || true
sleep 0.5
n_active 1 || fail "the silence went with the SIGKILLed run and guard: $(silences_json)"
is_stopped "$VICTIM" || fail "the pause went with the SIGKILLed run and guard"
[[ -n $(ls -A "$CHAOS_STATE_DIR/silences") ]] || fail "no silence journal after the SIGKILL"
"$CHAOS" recover >"$T/recover.out" 2>&1 || { cat "$T/recover.out"; fail "chaos recover failed"; }
cat "$T/recover.out"
grep -q "silence .* expired" "$T/recover.out" || fail "recover did not say it expired the silence"
n_active 0 || fail "recover left an active silence: $(silences_json)"
wait_until 5 is_running "$VICTIM"
[[ -z $(ls -A "$CHAOS_STATE_DIR/silences") ]] || fail "recover kept the silence journal"
ok "SIGKILLed run and guard: silence kept, then expired by chaos recover with the pause"

# 3. Alertmanager unreachable: exit 3, nothing injected.
scenario "$T/dead.json" 3s "$DEAD" "alertname=GameDayErrors"
rc=0
"$CHAOS" run "$T/dead.json" --report-json "$T/dead.report.json" >"$T/dead.out" 2>&1 || rc=$?
cat "$T/dead.out"
[[ $rc == 3 ]] || fail "unreachable alertmanager: exit $rc, wanted 3"
grep -q "silence 'game day': not created" "$T/dead.out" || fail "the abort does not name the silence"
[[ $(json_get "$T/dead.report.json" '[f["applied_ms"] for f in r["faults"]]') == "[None]" ]] ||
    fail "a fault was applied although the silence failed"
is_running "$VICTIM" || fail "the victim was paused"
ok "an unreachable alertmanager aborts before any fault (exit 3)"

# 4. A bad matcher is refused before anything starts, naming the field.
scenario "$T/bad.json" 3s "$AM" "alert name=GameDayErrors"
rc=0
"$CHAOS" run "$T/bad.json" >"$T/bad.out" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "bad matcher: exit $rc, wanted 2"
grep -q 'silences\[0\].matchers\[0\]' "$T/bad.out" || fail "the error does not name the matcher: $(cat "$T/bad.out")"
n_active 0 || fail "a refused scenario created a silence"
ok "a bad matcher is refused: $(head -c 160 "$T/bad.out")"

kill "$AM_PID"
wait "$AM_PID" 2>/dev/null || true
pgrep -f -- "--storage.path=$T/am-data" >/dev/null && fail "alertmanager outlived the test"
ok "alertmanager stopped; nothing left running"
