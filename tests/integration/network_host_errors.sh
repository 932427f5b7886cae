#!/usr/bin/env bash
# On the host kernel, which has no sch_prio and no sch_netem: a network
# fault fails with one precise error naming the missing module, `chaos run`
# exits 3 (a fault could not be applied), and the interface's tc state is
# exactly what it was - nothing left behind. Also: a missing interface and a
# missing namespace are named. Runs in a namespace this test makes.
set -euo pipefail
. "$(dirname "$0")/lib.bash"
ns=chaos-t-hosterr-$$
cleanup() { ip netns del "$ns" 2>/dev/null || true; rm -rf "$tmp"; }
tmp=$(mktemp -d)
trap cleanup EXIT
if lsmod 2>/dev/null | grep -q '^sch_prio ' || modinfo sch_prio >/dev/null 2>&1; then
    echo "note: this kernel can load sch_prio; the missing-module path is tested in the VM instead (tests/vm/net_faults.sh)"
fi
ip netns add "$ns"
ip -n "$ns" link add chaos-t-he0 type veth peer name chaos-t-he1
ip -n "$ns" link set chaos-t-he0 up
ip -n "$ns" link set chaos-t-he1 up
# A configured root too: the refusal must leave it alone.
ip netns exec "$ns" tc qdisc add dev chaos-t-he0 root handle 1: htb default 10
# direct_packets_stat is a counter (packets htb sent past its classes), not
# configuration: a re-created htb starts it from 0 again.
state() { ip netns exec "$ns" tc -j qdisc show dev chaos-t-he0 | sed 's/"direct_packets_stat":[0-9]*,//'; ip netns exec "$ns" tc -j filter show dev chaos-t-he0; ip -n "$ns" -o link show | awk -F': ' '{print $2}'; }

run_fault() { # target-json params-json -> stdout+stderr in $tmp/out, rc in $rc
    cat > "$tmp/s.json" <<JSON
{"version": 1, "name": "host-errors", "max_duration": "20s",
 "faults": [{"name": "slow", "kind": "network", "duration": "2s", "target": $1, "params": $2}]}
JSON
    rc=0
    "$CHAOS_BUILD/controller/chaos" run --state-dir "$tmp/state" "$tmp/s.json" > "$tmp/out" 2>&1 || rc=$?
}

if ! modprobe -n sch_prio 2>/dev/null; then
    before=$(state)
    run_fault "{\"netns\": \"$ns\", \"interface\": \"chaos-t-he0\", \"dst\": \"10.1.2.3\"}" '{"delay": "100ms"}'
    [[ $rc == 3 ]] || { cat "$tmp/out"; echo "FAIL: exit $rc, wanted 3"; exit 1; }
    grep -q 'kernel lacks sch_prio: load the module (modprobe sch_prio)' "$tmp/out" ||
        { cat "$tmp/out"; echo "FAIL: no precise missing-module error"; exit 1; }
    [[ $(state) == "$before" ]] || { echo "FAIL: tc state changed: $before => $(state)"; exit 1; }
    echo "ok: missing sch_prio named, nothing left behind"
    # The same on a kernel-default root (the htb removed first).
    ip netns exec "$ns" tc qdisc del dev chaos-t-he0 root
    before=$(state)
    run_fault "{\"netns\": \"$ns\", \"interface\": \"chaos-t-he0\"}" '{"loss": 10}'
    [[ $rc == 3 ]] && grep -q 'kernel lacks sch_prio' "$tmp/out" || { cat "$tmp/out"; echo "FAIL: default root case"; exit 1; }
    [[ $(state) == "$before" ]] || { echo "FAIL: tc state changed on the default root"; exit 1; }
    echo "ok: default root left as it was"
else
    echo "note: this kernel has sch_prio; skipping only the missing-module half"
fi

run_fault "{\"netns\": \"$ns\", \"interface\": \"chaos-t-nope\"}" '{"delay": "10ms"}'
[[ $rc == 3 ]] && grep -q 'interface chaos-t-nope: no such interface' "$tmp/out" ||
    { cat "$tmp/out"; echo "FAIL: missing interface (exit $rc)"; exit 1; }
run_fault '{"netns": "chaos-t-nope-ns", "interface": "chaos-t-he0"}' '{"delay": "10ms"}'
[[ $rc == 3 ]] && grep -q '/run/netns/chaos-t-nope-ns: no such namespace' "$tmp/out" ||
    { cat "$tmp/out"; echo "FAIL: missing namespace (exit $rc)"; exit 1; }
echo "ok: missing interface and namespace named"

# Without CAP_NET_ADMIN (as nobody): the error says what is missing, exit 3.
mkdir -p "$tmp/nobody" && chown 65534:65534 "$tmp/nobody" && chmod 755 "$tmp"
cat > "$tmp/nobody/s.json" <<JSON
{"version": 1, "name": "no-cap", "faults": [{"name": "slow", "kind": "network", "duration": "2s",
 "target": {"netns": "$ns", "interface": "chaos-t-he0"}, "params": {"delay": "10ms"}}]}
JSON
before=$(state)
rc=0
setpriv --reuid=65534 --regid=65534 --clear-groups env HOME="$tmp/nobody" \
    "$CHAOS_BUILD/controller/chaos" run --state-dir "$tmp/nobody/state" "$tmp/nobody/s.json" \
    > "$tmp/out" 2>&1 || rc=$?
[[ $rc == 3 ]] && grep -q 'network faults need CAP_NET_ADMIN: run chaos as root (uid 65534 lacks it)' "$tmp/out" ||
    { cat "$tmp/out"; echo "FAIL: no precise error without CAP_NET_ADMIN (exit $rc)"; exit 1; }
[[ $(state) == "$before" ]] || { echo "FAIL: tc state changed without CAP_NET_ADMIN"; exit 1; }
echo "ok: without CAP_NET_ADMIN the error says so and nothing changes"
