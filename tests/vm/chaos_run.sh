#!/usr/bin/env bash
# `chaos run` with network faults, end to end, inside the VM (Debian's kernel
# under QEMU, tests/vm/vm-run): the
# demo front and its two workers, a scenario that first delays one worker
# and then partitions the other (tests/vm/scenarios/slow-then-cut-worker.json),
# probes and a verdict. Asserts the exit code, that the report shows both
# faults applied and reverted, that the latency checks (through the front and
# straight to the slowed worker) saw the delay,
# and that lo's tc state is the same before and after.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
: "${CHAOS_BUILD:?}" "${CHAOS_SOURCE:?}"
fail() { echo "FAIL: $*" >&2; exit 1; }

if [[ ${1:-} != --guest ]]; then
    exec "$here/vm-run" --timeout "${CHAOS_VM_TIMEOUT:-400}" -- bash "$here/chaos_run.sh" --guest
fi

out=$(mktemp -d)  # the guest's /tmp: private to this VM
state() { tc -j qdisc show dev lo; tc -j filter show dev lo; ip -o link show | awk -F': ' '{print $2}'; }
before=$(state)
rc=0
"$CHAOS_SOURCE/demo/run-demo.sh" "$CHAOS_BUILD" "$here/scenarios/slow-then-cut-worker.json" \
    --report-json "$out/report.json" > "$out/stdout" 2> "$out/stderr" || rc=$?
cat "$out/stdout"
[[ $rc == 0 ]] || { cat "$out/stderr" >&2; fail "chaos run exited $rc, wanted 0 (passed)"; }
after=$(state)
[[ $before == "$after" ]] || fail "tc state of lo changed: before: $before after: $after"
grep -q '"slow worker 1"' "$out/report.json" || fail "report lacks the first fault"
# Both faults were applied and reverted, and say what they did.
for f in "slow worker 1" "cut worker 2"; do
    grep -A12 "\"name\": *\"$f\"" "$out/report.json" | grep -q '"reverted"' ||
        fail "fault '$f' not reported reverted: $(cat "$out/report.json")"
done
grep -q 'delay 500ms on lo' "$out/report.json" "$out/stdout" "$out/stderr" ||
    fail "no description of the delay in the report or output"
grep -q 'partition' "$out/report.json" || fail "no partition in the report"
echo "ok: chaos run with a delay and a partition passed, lo restored"

# A run that is stopped mid-fault puts lo back: SIGINT and SIGTERM revert
# before chaos exits (code 3); after SIGKILL its guard reverts.
cat > "$out/hold.json" <<'JSON'
{"version": 1, "name": "vm-hold-delay",
 "faults": [{"name": "hold", "kind": "network", "at": "0s", "duration": "60s",
             "target": {"interface": "lo", "dst": "127.0.0.9", "protocol": "udp"},
             "params": {"delay": "100ms"}}]}
JSON
has_netem() { tc qdisc show dev lo | grep -q netem; }
wait_for() {  # wait_for SECONDS COMMAND...: poll every 50ms
    local deadline=$((SECONDS + $1)); shift
    until "$@"; do ((SECONDS < deadline)) || return 1; sleep 0.05; done
}
lo_restored() { [[ $(state) == "$before" ]]; }
for sig in INT TERM KILL; do
    "$CHAOS_BUILD/controller/chaos" run "$out/hold.json" --state-dir "$out/state" \
        > "$out/hold.out" 2>&1 &
    cpid=$!
    wait_for 20 has_netem || { cat "$out/hold.out"; fail "SIG$sig: the delay never appeared on lo"; }
    kill -"$sig" "$cpid"
    rc=0
    wait "$cpid" || rc=$?
    if [[ $sig == KILL ]]; then
        wait_for 10 lo_restored || fail "SIGKILL: the guard did not restore lo: $(state)"
    else
        [[ $rc == 3 ]] || { cat "$out/hold.out"; fail "SIG$sig: chaos exited $rc, wanted 3"; }
        lo_restored || fail "SIG$sig: lo not restored when chaos exited: $(state)"
        grep -q "interrupted by SIG$sig" "$out/hold.out" || fail "SIG$sig: output does not say so"
    fi
    echo "ok: SIG$sig to a run with a network fault restored lo"
done
