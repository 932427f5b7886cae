#!/usr/bin/env bash
# The workload probe on a real program: sqlite3, launched by a syscall
# fault whose writes under its folder fail with EIO, is checked by what it
# did (stderr says "disk I/O error", it exits non-zero) in a scenario that
# must pass; a scenario that wants "exits 0" of the same sqlite3, and of a
# workload that is still running when its window ends, must fail, each for
# its own reason (no evidence is no pass).
source "$(dirname "$0")/lib.bash"
command -v sqlite3 >/dev/null || fail "sqlite3 is not installed (dev.sh installs it)"

D=$T/db
mkdir -p "$D"
# scenario NAME EXPECT_CHECKS [WORKLOAD_ARGV]: a 1500ms EIO fault on
# sqlite3's writes under $D, output in $T/NAME.out.
scenario() {
    local argv=${3:-"[\"sqlite3\", \"$D/$1.db\", \"create table t(x); insert into t values (1);\"]"}
    cat >"$T/$1.json" <<JSON
{"version": 1, "name": "$1",
 "faults": [{"name": "disk errors", "kind": "syscall", "duration": "1500ms",
   "target": {"command": $argv, "output_dir": "$T/$1.out"},
   "params": {"syscalls": ["write", "pwrite64"], "errno": "EIO", "path_prefix": "$D"}}],
 "expect": $2}
JSON
}

scenario pass '[
  {"name": "sqlite says disk I/O error", "during": "disk errors", "every": "100ms",
   "probe": {"workload": {"fault": "disk errors"}},
   "expect": {"stderr_contains": "disk I/O error", "within": "1s"}},
  {"name": "sqlite exits non-zero", "after": "disk errors", "for": "2s", "every": "100ms",
   "probe": {"workload": {"fault": "disk errors"}},
   "expect": {"exit_code": "non-zero", "stderr_regex": "disk I/O error"}}]'
rc=0
"$CHAOS" run --report-json "$T/pass.report.json" "$T/pass.json" >"$T/pass.log" 2>&1 || rc=$?
cat "$T/pass.log"
[[ $rc == 0 ]] || fail "the passing scenario exited $rc, wanted 0"
[[ $(cat "$T/pass.out/status") =~ ^exited\ [1-9][0-9]*$ ]] || fail "sqlite3 status: $(cat "$T/pass.out/status")"
grep -q "disk I/O error" "$T/pass.out/stderr" || fail "sqlite3 stderr: $(cat "$T/pass.out/stderr")"
[[ $(json_get "$T/pass.report.json" 'r["checks"][0]["probe"]["workload"]["output_dir"]') == "$T/pass.out" ]] ||
    fail "the report does not show the probe's output_dir"
ok "sqlite3 under EIO: the workload probe saw 'disk I/O error' and a non-zero exit"

scenario fail '[
  {"name": "sqlite exits 0", "after": "disk errors", "for": "1s", "every": "100ms",
   "probe": {"workload": {"fault": "disk errors"}}, "expect": {"exit_code": [0]}}]'
rc=0
"$CHAOS" run "$T/fail.json" >"$T/fail.log" 2>&1 || rc=$?
cat "$T/fail.log"
[[ $rc == 1 ]] || fail "the failing scenario exited $rc, wanted 1"
grep -q "FAIL expect 'sqlite exits 0'.*the workload exited [1-9][0-9]*, wanted an exit code in \[0\]" "$T/fail.log" ||
    fail "no reason naming the exit code"
ok "'exits 0' of sqlite3 under EIO fails, naming the exit code it saw"

scenario slow '[
  {"name": "exits 0 in the window", "during": "disk errors", "every": "100ms",
   "probe": {"workload": {"fault": "disk errors"}}, "expect": {"exit_code": [0], "within": "1s"}}]' \
    '["sleep", "3"]'
rc=0
"$CHAOS" run "$T/slow.json" >"$T/slow.log" 2>&1 || rc=$?
cat "$T/slow.log"
[[ $rc == 1 ]] || fail "a workload that never exited in the window passed (exit $rc)"
grep -q "FAIL expect 'exits 0 in the window'.*still running (no exit status yet)" "$T/slow.log" ||
    fail "no reason saying the workload was still running"
wait_until 10 test -e "$T/slow.out/status"
[[ $(cat "$T/slow.out/status") == "exited 0" ]] || fail "sleep status: $(cat "$T/slow.out/status")"
ok "'exits 0' of a workload still running when its window ends fails (no evidence is no pass)"

# Bad input names the field.
scenario bad '[{"name": "c", "during": "disk errors",
   "probe": {"workload": {"fault": "disk error"}}, "expect": {"exit_code": [0]}}]'
rc=0
"$CHAOS" validate "$T/bad.json" >"$T/bad.log" 2>&1 || rc=$?
[[ $rc == 2 ]] || fail "validate exited $rc, wanted 2: $(cat "$T/bad.log")"
grep -q "expect\[0\] 'c': probe.workload.fault: no fault is called 'disk error' (faults: 'disk errors')" "$T/bad.log" ||
    fail "error: $(cat "$T/bad.log")"
ok "a workload probe naming no fault is refused, naming the field"

# The shipped example: a small service whose storage writes fail with EIO
# answers 503, keeps running, stores again after the window and exits 0.
port=$((20000 + $$ % 20000))
sed -e "s/127\.0\.0\.1:8090/127.0.0.1:$port/g" -e "s/\"8090\"/\"$port\"/" \
    -e "s|demo/ledger-service.py|$CHAOS_SOURCE/demo/ledger-service.py|" \
    -e "s|/tmp/chaos-ledger-out|$T/ledger-out|" -e "s|/tmp/chaos-ledger|$T/ledger|g" \
    "$CHAOS_SOURCE/scenarios/syscall-storage-eio.json" >"$T/ledger.json"
grep -q "$port" "$T/ledger.json" && grep -q "$T/ledger" "$T/ledger.json" || fail "the example was not rewritten"
rc=0
"$CHAOS" run "$T/ledger.json" >"$T/ledger.log" 2>&1 || rc=$?
cat "$T/ledger.log"
[[ $rc == 0 ]] || fail "scenarios/syscall-storage-eio.json exited $rc, wanted 0"
[[ $(cat "$T/ledger-out/status") == "exited 0" ]] || fail "the service: $(cat "$T/ledger-out/status")"
grep -q "write failed (try 3 of 3): Input/output error" "$T/ledger-out/stderr" || fail "the fault never hit the service"
[[ -s $T/ledger/ledger.log ]] || fail "nothing was stored after the window"
ok "scenarios/syscall-storage-eio.json: 503 during the EIO, stored after, exit 0"
