#!/usr/bin/env bash
# Smoke test of the VM harness (tests/vm/vm-run): exit statuses and output
# come out of the guest, a guest that cannot boot is a failure with a reason,
# a blacklisted module stays out, and netem really delays packets inside it,
# which the host kernel of our CI machines cannot do. Run by ctest as
# vm/smoke; the network half runs inside the guest as `smoke.sh --guest`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

fail() {
    echo "FAIL: $*" >&2
    exit 1
}
ok() { echo "ok: $*"; }

if [[ ${1:-} == --guest ]]; then
    [[ ${CHAOS_VM:-} == 1 ]] || fail "--guest is meant to run inside vm-run"
    X=chaos-t-smoke-x Y=chaos-t-smoke-y
    cleanup() {
        ip netns del "$X" 2>/dev/null || true
        ip netns del "$Y" 2>/dev/null || true
    }
    trap cleanup EXIT
    # rtt NS ADDR: prints the RTT of one ping in whole ms (fails on no reply).
    rtt() {
        local out
        out=$(ip netns exec "$1" ping -n -c 1 -W 3 "$2") || fail "no reply from $2: $out"
        [[ $out =~ time=([0-9]+)(\.[0-9]+)?\ ms ]] || fail "no time= in ping output: $out"
        echo "${BASH_REMATCH[1]}"
    }

    # Every exec costs tens of ms under TCG: the veth is created with both
    # ends already in their namespaces.
    ip netns add "$X"
    ip netns add "$Y"
    ip -n "$X" link add chaos-t-sx type veth peer name chaos-t-sy netns "$Y"
    ip -n "$X" addr add 10.200.0.1/24 dev chaos-t-sx
    ip -n "$Y" addr add 10.200.0.2/24 dev chaos-t-sy
    ip -n "$X" link set chaos-t-sx up
    ip -n "$Y" link set chaos-t-sy up
    base=$(rtt "$X" 10.200.0.2)
    ok "ping across the veth pair: ${base} ms"

    tc -n "$X" qdisc add dev chaos-t-sx root netem delay 50ms
    tc -n "$X" qdisc show dev chaos-t-sx | grep -q 'netem.*delay 50ms' ||
        fail "netem qdisc not shown: $(tc -n "$X" qdisc show dev chaos-t-sx)"
    delayed=$(rtt "$X" 10.200.0.2)
    ((delayed >= 50 && delayed < 90)) ||
        fail "RTT with netem delay 50ms is ${delayed} ms (wanted 50-90): netem is wrong"
    ok "netem delay 50ms: RTT ${delayed} ms (was ${base} ms)"

    cleanup
    trap - EXIT
    [[ -z $(ip netns list | grep chaos-t-smoke || true) ]] || fail "namespaces left: $(ip netns list)"
    ok "namespaces and links removed"
    exit 0
fi

# ---- on the host ----
: "${CHAOS_BUILD:?run through ctest (CHAOS_BUILD unset)}"
run=$here/vm-run

errf=$(mktemp "$CHAOS_BUILD/vm-smoke.XXXXXX")
trap 'rm -f "$errf"' EXIT
rc=0
# shellcheck disable=SC2016 # expanded inside the guest, on purpose
out=$("$run" --modules sch_etf -- sh -c 'echo "out $CHAOS_VM $CHAOS_BUILD $PWD $(uname -r)"
    grep -q "^sch_etf " /proc/modules && echo "etf loaded"; echo "err here" >&2; exit 3' \
    2>"$errf") || rc=$?
err=$(cat "$errf")
[[ $rc == 3 ]] || fail "exit 3 inside came out as $rc (stderr: $err)"
ok "vm-run passes COMMAND's exit status out (3 -> 3)"
kver=$(find /boot -maxdepth 1 -name 'vmlinuz-*' -printf '%f\n' | sed 's/^vmlinuz-//' | sort -V | tail -1)
[[ $out == "out 1 $CHAOS_BUILD $(pwd -P) $kver"$'\n'"etf loaded" ]] ||
    fail "stdout from inside was '$out'"
[[ $err == *"err here"* ]] || fail "stderr from inside was '$err'"
ok "stdout, stderr, CHAOS_VM, CHAOS_BUILD, the working directory and kernel $kver come through"
ok "--modules sch_etf: the module a suite asks for is loaded"

# A guest that cannot boot is a failure with a distinct code and the console's
# last lines, never a pass or a skip: 48 MB is too little for Debian's kernel
# and its initramfs.
rc=0
"$run" --mem 48M --timeout 60 -- true 2>"$errf" || rc=$?
[[ $rc == 125 ]] || fail "a guest with 48 MB exited $rc, wanted 125 (boot failure): $(cat "$errf")"
grep -q 'boot failure' "$errf" || fail "no 'boot failure' in: $(cat "$errf")"
grep -q 'last lines of the guest console' "$errf" || fail "no console lines in: $(cat "$errf")"
ok "a guest that cannot boot: exit 125 with the console's last lines"

# A blacklisted module stays out even though a real kernel loads modules on
# demand: this is how the missing-module suites get a kernel without one.
rc=0
"$run" --no-modules sch_netem -- sh -c \
    'tc qdisc add dev lo root netem delay 1ms 2>&1; ! grep -q "^sch_netem " /proc/modules' \
    >"$errf" 2>&1 || rc=$?
[[ $rc == 0 ]] || fail "sch_netem was loaded despite --no-modules sch_netem: $(cat "$errf")"
grep -qi 'unknown' "$errf" || fail "tc did not say the qdisc kind is unknown: $(cat "$errf")"
ok "--no-modules sch_netem: the kernel refuses it ($(head -1 "$errf"))"
rm -f "$errf"

"$run" --timeout 120 -- bash "$here/smoke.sh" --guest || fail "the in-guest network check failed"

# The guest's /run is a tmpfs: nothing of its namespaces may show on the host.
[[ ! -e /run/netns/chaos-t-smoke-x && ! -e /run/netns/chaos-t-smoke-y ]] ||
    fail "the guest's netns files appeared in the host's /run/netns"
ok "host /run/netns untouched"
