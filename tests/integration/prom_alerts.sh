#!/usr/bin/env bash
# Prometheus and Alertmanager probes against the real thing (Debian's
# prometheus and prometheus-alertmanager, started here on 127.0.0.1 with
# configs written into the temp dir; never the system services). A small
# service exposes requests, errors and a breaker gauge; while the fault
# pauses its worker, every request errors and the breaker reads open. Rules
# alert on the error ratio (for: 0s), on the same ratio with for: 30s, and
# on a condition that is always true.
#   - good.json must hold: the rule fires, Alertmanager gets the alert, the
#     breaker gauge reads 1 for 2s (a range query), the error budget is
#     within bounds, and the alert resolves after the revert.
#   - bad.json must fail, each check for its own reason: a wrong alert name
#     (rule and Alertmanager), a threshold never met, an alert that never
#     resolves, a for: 30s alert that cannot fire inside the window, an
#     error budget overspent.
# Scrape and evaluation every 1s keep alert lifecycles to seconds
# (FIELD-NOTES.md). --rules.alert.resend-delay=1s: Prometheus drops alerts
# it sends before its notifier has discovered Alertmanager (the discovery
# manager updates every 5s) and resends only after the delay, 1m by default.
source "$(dirname "$0")/lib.bash"

for b in prometheus prometheus-alertmanager python3; do
    command -v "$b" >/dev/null || fail "$b is not installed (dev.sh installs it)"
done

base=$(free_ports 4)
SVC=$base PROM=$((base + 1)) AM=$((base + 2)) AMC=$((base + 3))

start_victim ct-pw-$$
WORKER=$VPID

# The service: each scrape counts 10 requests, all of them errors while the
# worker is stopped (state T), and reports the breaker open then.
cat >"$T/svc.py" <<'PY'
import http.server, sys
port, worker = int(sys.argv[1]), sys.argv[2]
req = err = 0
def paused():
    try:
        with open(f"/proc/{worker}/status") as f:
            for line in f:
                if line.startswith("State:"):
                    return line.split()[1] == "T"
    except OSError:
        return True
    return False
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global req, err
        if self.path != "/metrics":
            self.send_error(404); return
        p = paused()
        req += 10
        err += 10 if p else 0
        body = (f"demo_requests_total {req}\ndemo_errors_total {err}\n"
                f"demo_breaker_open {1 if p else 0}\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", port), H).serve_forever()
PY
python3 "$T/svc.py" "$SVC" "$WORKER" &
OWNED_PIDS+=("$!")

cat >"$T/rules.yml" <<'YML'
groups:
  - name: demo
    interval: 1s
    rules:
      - alert: DemoErrorRatio
        expr: rate(demo_errors_total[3s]) / rate(demo_requests_total[3s]) > 0.5
        labels: {service: demo, severity: page}
      - alert: DemoErrorRatioSlow
        expr: rate(demo_errors_total[3s]) / rate(demo_requests_total[3s]) > 0.5
        for: 30s
        labels: {service: demo}
      - alert: DemoAlwaysFiring
        expr: vector(1)
        labels: {service: demo}
YML
cat >"$T/prom.yml" <<YML
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [$T/rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:$AM"]}]}]
scrape_configs:
  - job_name: demo
    static_configs: [{targets: ["127.0.0.1:$SVC"]}]
YML
cat >"$T/am.yml" <<'YML'
route: {receiver: nobody, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}
receivers: [{name: nobody}]
YML
prometheus --config.file="$T/prom.yml" --storage.tsdb.path="$T/prom-data" \
    --web.listen-address="127.0.0.1:$PROM" --rules.alert.resend-delay=1s >"$T/prom.log" 2>&1 &
OWNED_PIDS+=("$!")
PROM_PID=$!
prometheus-alertmanager --config.file="$T/am.yml" --storage.path="$T/am-data" \
    --web.listen-address="127.0.0.1:$AM" --cluster.listen-address= >"$T/am.log" 2>&1 &
OWNED_PIDS+=("$!")
AM_PID=$!

up() { curl -fs -o /dev/null "$1"; }
wait_until 20 up "http://127.0.0.1:$PROM/-/ready"
wait_until 20 up "http://127.0.0.1:$AM/-/ready"
# The first scrape and the always-true alert reaching Alertmanager say the
# whole chain is live before any scenario runs.
has_series() { curl -fs "http://127.0.0.1:$PROM/api/v1/query?query=demo_requests_total" | grep -q '"value"'; }
wait_until 20 has_series
am_has() { curl -fs "http://127.0.0.1:$AM/api/v2/alerts" | grep -q "\"alertname\":\"$1\""; }
for ((i = 0; i < 200; i++)); do am_has DemoAlwaysFiring && break; sleep 0.1; done
am_has DemoAlwaysFiring || { curl -s "http://127.0.0.1:$PROM/api/v1/alerts"; curl -s "http://127.0.0.1:$PROM/api/v1/alertmanagers"; curl -s "http://127.0.0.1:$AM/api/v2/alerts"; tail -n 5 "$T/prom.log"; fail "no alert reached alertmanager in 20s"; }
ok "prometheus :$PROM and alertmanager :$AM are up, scraping the service"

P="\"url\": \"http://127.0.0.1:$PROM\""
A="\"url\": \"http://127.0.0.1:$AM\""
RATIO='sum(rate(demo_errors_total[3s])) / sum(rate(demo_requests_total[3s]))'

cat >"$T/good.json" <<JSON
{"version": 1, "name": "alert-lifecycle",
 "steady_state": [
   {"name": "breaker closed", "every": "250ms", "for": "1s",
    "probe": {"prometheus": {$P, "query": "demo_breaker_open"}},
    "expect": {"value": "== 0"}}],
 "faults": [{"name": "pause worker", "kind": "process", "duration": "6s",
   "target": {"pid": $WORKER}, "params": {"action": "pause"}}],
 "expect": [
   {"name": "rule fires", "during": "pause worker", "every": "250ms",
    "probe": {"prometheus_alert": {$P, "alert": "DemoErrorRatio", "matchers": ["service=demo"]}},
    "expect": {"firing": true, "within": "6s"}},
   {"name": "alertmanager gets it", "during": "pause worker", "every": "250ms",
    "probe": {"alertmanager": {$A, "alert": "DemoErrorRatio", "matchers": ["severity=~pa.e", "service!=other"]}},
    "expect": {"firing": true, "within": "6s"}},
   {"name": "slow rule only pending", "during": "pause worker", "every": "250ms",
    "probe": {"prometheus_alert": {$P, "alert": "DemoErrorRatioSlow"}},
    "expect": {"state": "pending", "within": "6s"}},
   {"name": "breaker held open 2s", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus": {$P, "query": "max(demo_breaker_open)", "step": "1s"}},
    "expect": {"value": "== 1", "held_for": "2s", "within": "6s"}},
   {"name": "budget from samples", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus": {$P, "query": "demo_breaker_open"}},
    "expect": {"value": "== 0", "budget": {"slo": "99.9%", "period": "30d", "max_burn": "5%"}}},
   {"name": "budget from a ratio", "during": "pause worker", "every": "1s",
    "probe": {"prometheus": {$P, "query": "$RATIO"}},
    "expect": {"budget": {"slo": "99%", "period": "7d", "max_burn": "1%", "source": "value"}}},
   {"name": "alert resolves", "after": "pause worker", "every": "250ms",
    "probe": {"alertmanager": {$A, "alert": "DemoErrorRatio"}},
    "expect": {"firing": false, "within": "8s"}}
 ]}
JSON

t0=$(date +%s%N)
rc=0
"$CHAOS" run "$T/good.json" --report-json "$T/good.report.json" >"$T/good.out" 2>&1 || rc=$?
t1=$(date +%s%N)
cat "$T/good.out"
[[ $rc == 0 ]] || fail "good.json did not hold (exit $rc)"
verdicts=$(json_get "$T/good.report.json" '[(c["name"], c["verdict"]) for c in r["checks"]]')
echo "$verdicts"
[[ $(json_get "$T/good.report.json" 'all(c["verdict"] == "passed" and c["samples"]["samples"] > 0 for c in r["checks"])') == True ]] ||
    fail "a check did not pass with samples: $verdicts"
took=$(json_get "$T/good.report.json" '[c["samples"].get("took_ms") for c in r["checks"] if c["name"] == "alertmanager gets it"][0]')
[[ $took =~ ^[0-9]+$ ]] || fail "no took_ms for the alert: $took"
grep -q 'evaluated at 20' <<<"$(json_get "$T/good.report.json" '[c["samples"].get("last_detail") for c in r["checks"]]')" ||
    fail "the report has no evaluation time of the query"
burn=$(json_get "$T/good.report.json" '[c["samples"]["budget"]["burned"] for c in r["checks"] if c["name"] == "budget from samples"][0]')
ok "good.json held in $(((t1 - t0) / 1000000)) ms; alert reached alertmanager after ${took} ms; budget burned $burn"

pgrep -f "$T/svc.py" >/dev/null || fail "the service died"
wait_until 15 bash -c "! curl -fs 'http://127.0.0.1:$AM/api/v2/alerts' | grep -q '\"alertname\":\"DemoErrorRatio\"'"

cat >"$T/bad.json" <<JSON
{"version": 1, "name": "alert-verdicts-not-vacuous",
 "faults": [{"name": "pause worker", "kind": "process", "duration": "5s",
   "target": {"pid": $WORKER}, "params": {"action": "pause"}}],
 "expect": [
   {"name": "wrong rule name", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus_alert": {$P, "alert": "DemoErorRatio"}},
    "expect": {"firing": true, "within": "5s"}},
   {"name": "wrong alert name", "during": "pause worker", "every": "500ms",
    "probe": {"alertmanager": {$A, "alert": "DemoErorRatio"}},
    "expect": {"firing": true, "within": "5s"}},
   {"name": "threshold not met", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus": {$P, "query": "max(demo_breaker_open)"}},
    "expect": {"value": "> 1", "within": "5s"}},
   {"name": "for 30s cannot fire", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus_alert": {$P, "alert": "DemoErrorRatioSlow"}},
    "expect": {"firing": true, "within": "5s"}},
   {"name": "budget overspent", "during": "pause worker", "every": "500ms",
    "probe": {"prometheus": {$P, "query": "demo_breaker_open"}},
    "expect": {"value": "== 0", "budget": {"slo": "99.99%", "period": "1h", "max_burn": "10%"}}},
   {"name": "never resolves", "after": "pause worker", "every": "500ms",
    "probe": {"alertmanager": {$A, "alert": "DemoAlwaysFiring"}},
    "expect": {"firing": false, "within": "3s"}}
 ]}
JSON
t0=$(date +%s%N)
rc=0
"$CHAOS" run "$T/bad.json" --report-json "$T/bad.report.json" >"$T/bad.out" 2>&1 || rc=$?
t1=$(date +%s%N)
cat "$T/bad.out"
[[ $rc == 1 ]] || fail "bad.json exited $rc, wanted 1 (an expectation failed)"
reason() { json_get "$T/bad.report.json" "[c['verdict'] + ': ' + c['reason'] for c in r['checks'] if c['name'] == '$1'][0]"; }
expect_failed() { # NAME FRAGMENT
    local got
    got=$(reason "$1")
    [[ $got == failed:* && $got == *"$2"* ]] || fail "check '$1': wanted failed with '$2', got: $got"
    ok "'$1' failed: ${got:0:160}"
}
expect_failed "wrong rule name" "no alerting rule named DemoErorRatio"
expect_failed "wrong alert name" "did not hold within 5s"
expect_failed "threshold not met" "wanted > 1"
expect_failed "for 30s cannot fire" "wanted firing"
expect_failed "budget overspent" "error budget burned"
expect_failed "never resolves" "DemoAlwaysFiring is firing"
[[ $(json_get "$T/bad.report.json" 'all(c["samples"]["samples"] > 0 for c in r["checks"])') == True ]] ||
    fail "a failing check had no samples: its failure would be vacuous"
ok "bad.json failed each check for its own reason in $(((t1 - t0) / 1000000)) ms"

kill "$PROM_PID" "$AM_PID"
wait "$PROM_PID" "$AM_PID" 2>/dev/null || true
pgrep -f -- "--storage.tsdb.path=$T/prom-data" >/dev/null && fail "prometheus outlived the test"
pgrep -f -- "--storage.path=$T/am-data" >/dev/null && fail "alertmanager outlived the test"
ok "prometheus and alertmanager stopped; nothing left running"
