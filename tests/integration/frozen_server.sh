#!/usr/bin/env bash
# Probes of a frozen server (issue 13): a sample counts where its outcome was
# observed. Samples that wait out a pause and answer after the revert do not
# count as "during" it; an abort_when whose probe is slower than its `for`
# still fires.
source "$(dirname "$0")/lib.bash"

# A one-threaded HTTP server on loopback: paused, it answers nothing, but the
# kernel still accepts connections, so probes hang until it resumes.
python3 -c '
import http.server, socketserver, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a): pass
class S(socketserver.TCPServer):
    def handle_error(self, request, client_address): pass  # clients that gave up
s = S(("127.0.0.1", 0), H)
open(sys.argv[1], "w").write(str(s.server_address[1]))
s.serve_forever()' "$T/port" &
SRV=$!
OWNED_PIDS+=("$SRV")
wait_until 10 test -s "$T/port"
PORT=$(cat "$T/port")
URL="http://127.0.0.1:$PORT/"

# 1. Frozen for the whole window: nothing observed during it was ok.
pause_scenario "$T/s.json" "$SRV" 1s "
  \"expect\": [
    {\"name\": \"answers while frozen\", \"during\": \"pause victim\", \"every\": \"100ms\",
     \"probe\": {\"http\": {\"url\": \"$URL\", \"timeout\": \"3s\"}},
     \"expect\": {\"success_ratio\": \">= 0.5\"}}
  ]"
rc=0
"$CHAOS" run "$T/s.json" --report-json "$T/r.json" >"$T/out" 2>&1 || rc=$?
cat "$T/out"
[[ $rc == 1 ]] || fail "a check of a frozen server exited $rc, wanted 1 (failed)"
[[ $(json_get "$T/r.json" 'r["checks"][0]["samples"]["ok"]') == 0 ]] ||
    fail "samples answered after the revert were counted as during: $(json_get "$T/r.json" 'r["checks"][0]["reason"]')"
[[ $(json_get "$T/r.json" 'r["checks"][0]["samples"]["in_flight_at_end"] >= 1') == True ]] ||
    fail "the report does not say samples were in flight at the window's end"
grep -q "still in flight when the window ended, not counted" "$T/out" || fail "the verdict does not say so"
is_running "$SRV" || fail "server is $(proc_state "$SRV") after the run"
ok "samples answering after the revert are not counted as during the pause"

# 2. abort_when with every 100ms, for 500ms and a 1s probe timeout: every
#    sample started more than `for` before its outcome came; it still fires.
pause_scenario "$T/s2.json" "$SRV" 20s "
  \"abort_when\": [
    {\"name\": \"server gone\", \"every\": \"100ms\", \"for\": \"500ms\",
     \"probe\": {\"http\": {\"url\": \"$URL\", \"timeout\": \"1s\"}},
     \"expect\": {\"success_ratio\": \"< 1\"}}
  ]"
rc=0
start=$(date +%s%N)
"$CHAOS" run "$T/s2.json" --report-json "$T/r2.json" >"$T/out2" 2>&1 || rc=$?
elapsed_ms=$((($(date +%s%N) - start) / 1000000))
cat "$T/out2"
[[ $rc == 3 ]] || fail "abort_when with a slow probe exited $rc, wanted 3 (aborted)"
((elapsed_ms < 10000)) || fail "the abort took ${elapsed_ms}ms of the 20s pause"
grep -q "abort_when 'server gone' triggered" "$T/out2" || fail "the abort does not name the check"
[[ $(json_get "$T/r2.json" '[c["verdict"] for c in r["checks"] if c["section"] == "abort_when"]') == "['triggered']" ]] ||
    fail "the report does not say triggered: $(json_get "$T/r2.json" 'r["checks"]')"
json_get "$T/r2.json" '[c["reason"] for c in r["checks"]][0]' | grep -q "over the last 500ms" ||
    fail "the triggered check has no reason in the report"
is_running "$SRV" || fail "server is $(proc_state "$SRV") after the abort"
ok "abort_when fires on slow failed probes within ${elapsed_ms}ms and is reported as triggered"
